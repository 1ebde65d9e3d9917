// The secret store, in the `secrets` column family beside the event log.
//
//   secrets   digest (64 lowercase hex) → nonce(12) || AES-256-GCM ciphertext || tag(16)
//
// digest = HMAC-SHA256(digest key, len(scope) ":" scope value), so the same
// value in the same scope always has the same digest (a secret is stored once
// however often it is put), the same value in another scope another one (no
// one can confirm a guess by storing it elsewhere), and a digest in the log
// cannot be brute-forced without the key. The plaintext sealed is that scoped
// text; the ciphertext authenticates "scoped\0" + digest as additional data,
// so an entry moved under another digest fails to decrypt instead of handing
// back the wrong secret. Entries written before scopes existed hold the bare
// value under the bare digest as additional data, and still read.
// Each put draws a fresh random nonce: a value put twice is re-encrypted, and
// with 96-bit random nonces the collision risk stays negligible for far more
// puts than a release engine makes.
//
// Both keys are derived (HMAC-SHA256 with distinct labels) from the 32 random
// bytes of `<store dir>/secret.key`, created mode 0600 on first open. The
// key file is not in the database: it must be backed up together with the
// data, and if it is lost every stored secret is unreadable for good.

#include "adapters/rocksdb/rocks_internal.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cerrno>
#include <cstdlib>
#include <limits>
#include <memory>
#include <system_error>
#include <utility>

namespace cascade::adapters::rocks {
namespace {

constexpr std::size_t kNonceBytes = 12;
constexpr std::size_t kTagBytes = 16;
constexpr std::size_t kDigestHexChars = 64;
// Only the start of a digest goes into messages: enough to find the entry.
constexpr std::size_t kDigestPrefixChars = 12;
constexpr char kDigestLabel[] = "cascade-secret-digest";
// The additional data of a scoped entry: "scoped\0" + its digest.
constexpr std::string_view kScopedAad{"scoped\0", 7};
constexpr char kEncryptionLabel[] = "cascade-secret-encrypt";

using Key = RocksSecretStore::Key;

std::string errno_message(int err) { return std::system_category().message(err); }

// The oldest queued OpenSSL error, and an empty queue afterwards (the queue
// is per thread and would otherwise confuse the next caller).
std::string openssl_error() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

// Never null, as OpenSSL wants for zero-length input too.
const unsigned char* bytes_of(std::string_view text) {
  static const unsigned char kNothing = 0;
  return text.empty() ? &kNothing : reinterpret_cast<const unsigned char*>(text.data());
}

Result<Key> hmac_sha256(const Key& key, std::string_view data) {
  Key out{};
  unsigned int size = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), bytes_of(data), data.size(), out.data(),
           &size) == nullptr ||
      size != out.size()) {
    return make_error(ErrorCode::kInternal, "HMAC-SHA256 failed: " + openssl_error());
  }
  return out;
}

std::string to_hex(const Key& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    hex += kDigits[b >> 4];
    hex += kDigits[b & 0x0f];
  }
  return hex;
}

bool is_digest(std::string_view text) {
  if (text.size() != kDigestHexChars) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string digest_prefix(std::string_view digest) { return std::string(digest.substr(0, kDigestPrefixChars)); }

struct CipherContextFree {
  void operator()(EVP_CIPHER_CTX* context) const { EVP_CIPHER_CTX_free(context); }
};
using CipherContext = std::unique_ptr<EVP_CIPHER_CTX, CipherContextFree>;

// nonce || ciphertext || tag. REQUIRES: plaintext.size() <= INT_MAX.
Result<std::string> seal(const Key& key, std::string_view plaintext, std::string_view aad) {
  std::string sealed(kNonceBytes + plaintext.size() + kTagBytes, '\0');
  auto* nonce = reinterpret_cast<unsigned char*>(sealed.data());
  unsigned char* ciphertext = nonce + kNonceBytes;
  unsigned char* tag = ciphertext + plaintext.size();
  if (RAND_bytes(nonce, static_cast<int>(kNonceBytes)) != 1) {
    return make_error(ErrorCode::kUnavailable, "no randomness for a secret's nonce: " + openssl_error());
  }
  CipherContext context(EVP_CIPHER_CTX_new());
  int written = 0;
  int final_written = 0;
  if (context == nullptr ||
      EVP_EncryptInit_ex(context.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(context.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kNonceBytes), nullptr) != 1 ||
      EVP_EncryptInit_ex(context.get(), nullptr, nullptr, key.data(), nonce) != 1 ||
      EVP_EncryptUpdate(context.get(), nullptr, &written, bytes_of(aad), static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(context.get(), ciphertext, &written, bytes_of(plaintext),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(context.get(), ciphertext + written, &final_written) != 1 ||
      static_cast<std::size_t>(written) + static_cast<std::size_t>(final_written) != plaintext.size() ||
      EVP_CIPHER_CTX_ctrl(context.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagBytes), tag) != 1) {
    return make_error(ErrorCode::kInternal, "encrypting a secret failed: " + openssl_error());
  }
  return sealed;
}

// The plaintext, or kDataLoss when `sealed` is malformed or fails authentication.
Result<std::string> open_sealed(const Key& key, std::string_view sealed, std::string_view aad) {
  const auto altered = [&aad] {
    return make_error(ErrorCode::kDataLoss,
                      "secret " + digest_prefix(aad) + " cannot be decrypted: the data or secret.key was altered");
  };
  if (sealed.size() < kNonceBytes + kTagBytes) return altered();
  const std::size_t size = sealed.size() - kNonceBytes - kTagBytes;
  const unsigned char* nonce = bytes_of(sealed);
  const unsigned char* ciphertext = nonce + kNonceBytes;
  // OpenSSL takes the expected tag through a non-const pointer but only reads it.
  auto* tag = const_cast<unsigned char*>(ciphertext + size);
  std::string plaintext(size, '\0');
  auto* out = reinterpret_cast<unsigned char*>(plaintext.data());
  CipherContext context(EVP_CIPHER_CTX_new());
  int written = 0;
  if (context == nullptr ||
      EVP_DecryptInit_ex(context.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(context.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kNonceBytes), nullptr) != 1 ||
      EVP_DecryptInit_ex(context.get(), nullptr, nullptr, key.data(), nonce) != 1 ||
      EVP_DecryptUpdate(context.get(), nullptr, &written, bytes_of(aad), static_cast<int>(aad.size())) != 1 ||
      EVP_DecryptUpdate(context.get(), out, &written, ciphertext, static_cast<int>(size)) != 1 ||
      EVP_CIPHER_CTX_ctrl(context.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagBytes), tag) != 1) {
    return make_error(ErrorCode::kInternal, "decrypting secret " + digest_prefix(aad) + " failed: " + openssl_error());
  }
  int final_written = 0;
  if (EVP_DecryptFinal_ex(context.get(), out + written, &final_written) != 1) {
    ERR_clear_error();
    OPENSSL_cleanse(plaintext.data(), plaintext.size());
    return altered();
  }
  return plaintext;
}

class UniqueFd {
 public:
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // Closes now, reporting the error that a deferred close would swallow.
  bool close() { return ::close(std::exchange(fd_, -1)) == 0; }

 private:
  int fd_;
};

Error key_file_error(const std::filesystem::path& path, const std::string& doing, int err) {
  return make_error(ErrorCode::kUnavailable, "cannot " + doing + " " + path.string() + ": " + errno_message(err));
}

// REQUIRES: the file at `path` is open as `fd`.
Result<Key> read_key(const std::filesystem::path& path, const UniqueFd& fd) {
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) return key_file_error(path, "inspect", errno);
  if (!S_ISREG(info.st_mode) || info.st_size != static_cast<off_t>(RocksSecretStore::kKeyBytes)) {
    return make_error(ErrorCode::kDataLoss, path.string() + " is not a secret key: it must be a file of exactly " +
                                                std::to_string(RocksSecretStore::kKeyBytes) +
                                                " bytes; restore it from the backup of this store");
  }
  Key key{};
  std::size_t done = 0;
  while (done < key.size()) {
    const ssize_t n = ::read(fd.get(), key.data() + done, key.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return key_file_error(path, "read", errno);
    if (n == 0) {
      return make_error(ErrorCode::kDataLoss, path.string() + " shrank while it was being read");
    }
    done += static_cast<std::size_t>(n);
  }
  return key;
}

// Writes a fresh key to a temporary file and renames it into place, so that a
// crash leaves either no key file or a whole one, never a short one that would
// make the store refuse to open.
Result<Key> create_key(const std::filesystem::path& path) {
  Key key{};
  if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1) {
    return make_error(ErrorCode::kUnavailable, "no randomness for a new secret key: " + openssl_error());
  }
  std::filesystem::path temporary = path;
  temporary += ".new";
  // Left over from a crash during an earlier first open; never a real key.
  if (::unlink(temporary.c_str()) != 0 && errno != ENOENT) return key_file_error(temporary, "remove", errno);
  UniqueFd fd(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (fd.get() < 0) return key_file_error(temporary, "create", errno);
  const auto fail = [&](const std::string& doing, int err) {
    OPENSSL_cleanse(key.data(), key.size());
    ::unlink(temporary.c_str());
    return key_file_error(temporary, doing, err);
  };
  // The umask may only remove bits from 0600, but the owner must be able to read it back.
  if (::fchmod(fd.get(), 0600) != 0) return fail("set the mode of", errno);
  std::size_t done = 0;
  while (done < key.size()) {
    const ssize_t n = ::write(fd.get(), key.data() + done, key.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("write", n < 0 ? errno : EIO);
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return fail("sync", errno);
  if (!fd.close()) return fail("close", errno);
  if (::rename(temporary.c_str(), path.c_str()) != 0) return fail("rename", errno);
  // The rename itself is durable only once the directory is synced.
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  UniqueFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() < 0 || ::fsync(dir_fd.get()) != 0) return key_file_error(dir, "sync", errno);
  return key;
}

Result<bool> holds_any_secret(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* family) {
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), family));
  it->SeekToFirst();
  if (!it->status().ok()) return from_rocks(it->status(), "looking for stored secrets");
  return it->Valid();
}

}  // namespace

Result<std::unique_ptr<RocksSecretStore>> RocksSecretStore::open(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* family,
                                                                 const std::filesystem::path& key_path) {
  Key master{};
  UniqueFd fd(::open(key_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() >= 0) {
    CASCADE_TRY(stored, read_key(key_path, fd));
    master = stored;
  } else if (errno != ENOENT) {
    return key_file_error(key_path, "open", errno);
  } else {
    // A fresh key would leave the stored secrets undecryptable and every
    // later get failing; refusing to open says what is wrong where it is.
    CASCADE_TRY(has_secrets, holds_any_secret(db, family));
    if (has_secrets) {
      return make_error(ErrorCode::kDataLoss, key_path.string() +
                                                  " is missing but the store holds secrets encrypted under it; "
                                                  "restore it from the backup of this store");
    }
    CASCADE_TRY(created, create_key(key_path));
    master = created;
  }
  auto digest_key = hmac_sha256(master, kDigestLabel);
  auto encryption_key = hmac_sha256(master, kEncryptionLabel);
  OPENSSL_cleanse(master.data(), master.size());
  if (!digest_key) return std::move(digest_key).error();
  if (!encryption_key) return std::move(encryption_key).error();
  return std::unique_ptr<RocksSecretStore>(
      new RocksSecretStore(db, family, digest_key.value(), encryption_key.value()));
}

RocksSecretStore::RocksSecretStore(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* family, const Key& digest_key,
                                   const Key& encryption_key)
    : db_(db), family_(family), digest_key_(digest_key), encryption_key_(encryption_key) {}

RocksSecretStore::~RocksSecretStore() {
  OPENSSL_cleanse(digest_key_.data(), digest_key_.size());
  OPENSSL_cleanse(encryption_key_.data(), encryption_key_.size());
}

Result<std::string> RocksSecretStore::put(std::string_view scope, std::string_view value) {
  if (value.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()) - kNonceBytes - kTagBytes) {
    return make_error(ErrorCode::kInvalidArgument, "a secret value must be smaller than 2 GiB");
  }
  // The scope's length first, so no scope and value can pose as another pair.
  std::string scoped = std::to_string(scope.size()) + ":";
  scoped.append(scope);
  scoped.append(value);
  CASCADE_TRY(mac, hmac_sha256(digest_key_, scoped));
  std::string digest = to_hex(mac);
  auto sealed = seal(encryption_key_, scoped, std::string(kScopedAad) + digest);
  OPENSSL_cleanse(scoped.data(), scoped.size());
  if (!sealed) return sealed.error();
  // Synced: events that refer to the digest are appended right after, and must
  // never outlive the secret in a crash.
  rocksdb::WriteOptions options;
  options.sync = true;
  const rocksdb::Status s = db_->Put(options, family_, digest, sealed.value());
  if (!s.ok()) return from_rocks(s, "storing secret " + digest_prefix(digest));
  return digest;
}

Result<std::string> RocksSecretStore::get(const std::string& digest) {
  // The malformed input is not echoed: it may be a secret passed by mistake.
  if (!is_digest(digest)) {
    return make_error(ErrorCode::kInvalidArgument, "not a secret digest (64 lowercase hex digits expected)");
  }
  std::string sealed;
  const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), family_, digest, &sealed);
  if (s.IsNotFound()) return make_error(ErrorCode::kNotFound, "no secret " + digest_prefix(digest));
  if (!s.ok()) return from_rocks(s, "reading secret " + digest_prefix(digest));
  // A scoped entry, else one written before scopes existed (bare value,
  // bare digest as additional data): authentication tells them apart.
  auto opened = open_sealed(encryption_key_, sealed, std::string(kScopedAad) + digest);
  const bool scoped = opened.has_value();
  if (!scoped) opened = open_sealed(encryption_key_, sealed, digest);
  if (!opened) return opened.error();
  std::string text = std::move(opened).value();
  // Authentication already ties the entry to `digest`; recomputing it also
  // catches a digest key that does not match the encryption key.
  CASCADE_TRY(mac, hmac_sha256(digest_key_, text));
  std::size_t value_at = 0;
  if (scoped) {
    const std::size_t colon = text.find(':');
    const std::size_t scope_length =
        colon == std::string::npos ? std::string::npos : std::strtoull(text.c_str(), nullptr, 10);
    value_at = colon == std::string::npos || scope_length > text.size() - colon - 1 ? std::string::npos
                                                                                     : colon + 1 + scope_length;
  }
  if (value_at == std::string::npos ||
      CRYPTO_memcmp(to_hex(mac).data(), digest.data(), kDigestHexChars) != 0) {
    OPENSSL_cleanse(text.data(), text.size());
    return make_error(ErrorCode::kDataLoss, "secret " + digest_prefix(digest) +
                                                " does not match its digest: the data or secret.key was altered");
  }
  std::string value = text.substr(value_at);
  OPENSSL_cleanse(text.data(), text.size());
  return value;
}

Status RocksSecretStore::corrupt_for_test(const std::string& digest) {
  std::string sealed;
  const rocksdb::Status found = db_->Get(rocksdb::ReadOptions(), family_, digest, &sealed);
  if (found.IsNotFound()) return make_error(ErrorCode::kNotFound, "no secret " + digest_prefix(digest));
  if (!found.ok()) return from_rocks(found, "reading secret " + digest_prefix(digest));
  // The first byte after the nonce: ciphertext, or the tag for an empty value.
  if (sealed.size() > kNonceBytes) sealed[kNonceBytes] = static_cast<char>(sealed[kNonceBytes] ^ 0x01);
  rocksdb::WriteOptions options;
  options.sync = true;
  const rocksdb::Status s = db_->Put(options, family_, digest, sealed);
  if (!s.ok()) return from_rocks(s, "overwriting secret " + digest_prefix(digest));
  return success();
}

}  // namespace cascade::adapters::rocks
