#include "adapters/rocksdb/store.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

namespace cascade::adapters {
namespace {

namespace fs = std::filesystem;

// Distinctive enough that no RocksDB file would hold it by chance.
constexpr char kSecret[] = "s3cr3t-Value-9f2c1";

std::string make_temp_dir() {
  char pattern[] = "/tmp/cascade-rocks-secrets-XXXXXX";
  const char* dir = mkdtemp(pattern);
  return dir != nullptr ? dir : "";
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// Every regular file under `dir`, recursively, whose bytes contain `needle`.
std::vector<std::string> files_containing(const fs::path& dir, const std::string& needle) {
  std::vector<std::string> found;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    if (read_file(entry.path()).find(needle) != std::string::npos) found.push_back(entry.path().string());
  }
  return found;
}

class RocksSecretsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir();
    ASSERT_FALSE(dir_.empty()) << std::strerror(errno);
    reopen();
  }
  void TearDown() override {
    store_.reset();
    std::error_code ignored;
    for (const std::string& dir : {dir_, other_dir_}) {
      if (!dir.empty()) fs::remove_all(dir, ignored);
    }
  }

  void reopen() {
    store_.reset();
    auto opened = RocksStore::open(dir_);
    ASSERT_TRUE(opened) << opened.error().message;
    store_ = std::move(opened).value();
  }

  std::string put(std::string_view value, std::string_view scope = "pipeline/Shop/variable/TOKEN") {
    auto digest = store_->secrets().put(scope, value);
    EXPECT_TRUE(digest) << digest.error().message;
    return digest ? digest.value() : std::string();
  }

  fs::path key_path() const { return fs::path(dir_) / "secret.key"; }

  std::string dir_;
  std::string other_dir_;
  std::unique_ptr<RocksStore> store_;
};

TEST_F(RocksSecretsTest, PutThenGetReturnsTheValue) {
  const std::string digest = put(kSecret);

  auto got = store_->secrets().get(digest);
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got.value(), kSecret);
}

TEST_F(RocksSecretsTest, EmptyAndBinaryValuesRoundTrip) {
  const std::string binary("a\0b\xff\n", 5);
  const std::string empty_digest = put("");
  const std::string binary_digest = put(binary);

  EXPECT_EQ(store_->secrets().get(empty_digest).value(), "");
  EXPECT_EQ(store_->secrets().get(binary_digest).value(), binary);
}

TEST_F(RocksSecretsTest, DigestIsLowercaseHexOfHmacSha256) {
  const std::string digest = put(kSecret);

  ASSERT_EQ(digest.size(), 64u);
  EXPECT_TRUE(std::all_of(digest.begin(), digest.end(),
                          [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }))
      << digest;
}

// A releaser who can store a guess under their own scope cannot confirm it by
// comparing digests with a pipeline's secret.
TEST_F(RocksSecretsTest, TheSameValueInAnotherScopeHasAnotherDigest) {
  const std::string pipeline = put(kSecret, "pipeline/Shop/variable/TOKEN");
  const std::string guess = put(kSecret, "release/3f1c/TOKEN");
  EXPECT_NE(pipeline, guess);
  EXPECT_NE(put(kSecret, "ab"), put(std::string("b") + kSecret, "a"));  // scope and value cannot trade bytes
  EXPECT_EQ(store_->secrets().get(guess).value(), kSecret);
}

TEST_F(RocksSecretsTest, SameValueSameDigestDifferentValuesDifferentDigests) {
  const std::string first = put(kSecret);
  const std::string again = put(kSecret);
  const std::string other = put("another-value");

  EXPECT_EQ(first, again);
  EXPECT_NE(first, other);
  EXPECT_EQ(store_->secrets().get(first).value(), kSecret);
  EXPECT_EQ(store_->secrets().get(other).value(), "another-value");
}

// The digest is keyed: without the store's key it says nothing about the value.
TEST_F(RocksSecretsTest, TwoStoresGiveTheSameValueDifferentDigests) {
  other_dir_ = make_temp_dir();
  ASSERT_FALSE(other_dir_.empty());
  auto other = RocksStore::open(other_dir_);
  ASSERT_TRUE(other) << other.error().message;

  const std::string here = put(kSecret);
  auto there = other.value()->secrets().put("pipeline/Shop/variable/TOKEN", kSecret);
  ASSERT_TRUE(there) << there.error().message;

  EXPECT_NE(here, there.value());
  EXPECT_EQ(other.value()->secrets().get(here).error().code, ErrorCode::kNotFound);
}

TEST_F(RocksSecretsTest, SecretsAndTheirDigestsSurviveReopen) {
  const std::string digest = put(kSecret);
  reopen();

  EXPECT_EQ(store_->secrets().get(digest).value(), kSecret);
  EXPECT_EQ(put(kSecret), digest);
}

TEST_F(RocksSecretsTest, UnknownDigestIsNotFound) {
  put(kSecret);
  auto got = store_->secrets().get(std::string(64, 'a'));
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, ErrorCode::kNotFound);
}

// A value passed where a digest belongs is refused without being echoed.
TEST_F(RocksSecretsTest, MalformedDigestIsInvalidArgumentAndNotEchoed) {
  auto got = store_->secrets().get(kSecret);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(got.error().message.find(kSecret), std::string::npos) << got.error().message;
  EXPECT_EQ(store_->secrets().get(std::string(64, 'A')).error().code, ErrorCode::kInvalidArgument);
}

TEST_F(RocksSecretsTest, TamperedCiphertextIsDataLossWithoutTheValue) {
  const std::string digest = put(kSecret);
  ASSERT_TRUE(store_->corrupt_secret_for_test(digest));

  auto got = store_->secrets().get(digest);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, ErrorCode::kDataLoss);
  EXPECT_NE(got.error().message.find(digest.substr(0, 12)), std::string::npos) << got.error().message;
  EXPECT_NE(got.error().message.find("cannot be decrypted"), std::string::npos) << got.error().message;
  EXPECT_EQ(got.error().message.find(kSecret), std::string::npos) << got.error().message;
}

TEST_F(RocksSecretsTest, CorruptingAnUnknownSecretIsNotFound) {
  auto corrupted = store_->corrupt_secret_for_test(std::string(64, 'b'));
  ASSERT_FALSE(corrupted);
  EXPECT_EQ(corrupted.error().code, ErrorCode::kNotFound);
}

TEST_F(RocksSecretsTest, KeyFileIsThirtyTwoBytesReadableOnlyByTheOwner) {
  struct stat info {};
  ASSERT_EQ(::stat(key_path().c_str(), &info), 0) << std::strerror(errno);
  EXPECT_TRUE(S_ISREG(info.st_mode));
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  EXPECT_EQ(info.st_size, 32);
}

TEST_F(RocksSecretsTest, KeyFileIsKeptAcrossReopens) {
  const std::string key = read_file(key_path());
  reopen();
  EXPECT_EQ(read_file(key_path()), key);
}

TEST_F(RocksSecretsTest, KeyFileOfTheWrongSizeIsDataLossNamingThePath) {
  store_.reset();
  write_file(key_path(), std::string(31, 'k'));

  auto opened = RocksStore::open(dir_);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, ErrorCode::kDataLoss);
  EXPECT_NE(opened.error().message.find(key_path().string()), std::string::npos) << opened.error().message;

  write_file(key_path(), std::string(33, 'k'));
  auto longer = RocksStore::open(dir_);
  ASSERT_FALSE(longer);
  EXPECT_EQ(longer.error().code, ErrorCode::kDataLoss);
}

// A fresh key would make every stored secret undecryptable; the store refuses
// to open instead of generating one.
TEST_F(RocksSecretsTest, MissingKeyFileWhileSecretsAreStoredIsDataLoss) {
  put(kSecret);
  store_.reset();
  ASSERT_TRUE(fs::remove(key_path()));

  auto opened = RocksStore::open(dir_);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, ErrorCode::kDataLoss);
  EXPECT_NE(opened.error().message.find(key_path().string()), std::string::npos) << opened.error().message;
  EXPECT_FALSE(fs::exists(key_path()));
}

TEST_F(RocksSecretsTest, ReplacedKeyFileMakesStoredSecretsDataLoss) {
  const std::string digest = put(kSecret);
  store_.reset();
  write_file(key_path(), std::string(32, 'k'));
  reopen();

  auto got = store_->secrets().get(digest);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, ErrorCode::kDataLoss);
  EXPECT_EQ(got.error().message.find(kSecret), std::string::npos) << got.error().message;
}

// The point of the store: the value is in no file of the store directory —
// WAL, MANIFEST, OPTIONS, LOG, the key file. The digest, stored as a plain
// key, shows that the scan does read the data the WAL holds.
TEST_F(RocksSecretsTest, SecretValueIsInNoFileOfTheStore) {
  const std::string digest = put(kSecret);
  store_.reset();

  EXPECT_EQ(files_containing(dir_, kSecret), std::vector<std::string>{});
  EXPECT_FALSE(files_containing(dir_, digest).empty());
}

TEST_F(RocksSecretsTest, SecretValueIsInNoTableFileAfterAFlush) {
  const std::string digest = put(kSecret);
  ASSERT_TRUE(store_->flush_for_test());
  // Written again after the flush, so that the WAL holds it too.
  put(kSecret);
  reopen();
  auto got = store_->secrets().get(digest);
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got.value(), kSecret);
  store_.reset();

  bool has_table = false;
  for (const auto& entry : fs::recursive_directory_iterator(dir_)) {
    if (entry.path().extension() == ".sst") has_table = true;
  }
  EXPECT_TRUE(has_table);
  EXPECT_EQ(files_containing(dir_, kSecret), std::vector<std::string>{});
}

}  // namespace
}  // namespace cascade::adapters
