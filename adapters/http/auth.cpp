#include "adapters/http/auth.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "adapters/http/json_body.hpp"

namespace cascade::adapters::http {

namespace {

constexpr std::string_view kRoleNames[] = {"viewer", "releaser", "approver", "admin"};
constexpr char kHexDigits[] = "0123456789abcdef";

std::string to_hex(const unsigned char* data, std::size_t size) {
  std::string out;
  out.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    out.push_back(kHexDigits[data[i] >> 4]);
    out.push_back(kHexDigits[data[i] & 0xF]);
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// 32 bytes from 64 hex digits, or false.
bool from_hex(std::string_view hex, std::array<unsigned char, 32>& out) {
  if (hex.size() != 64) return false;
  for (std::size_t i = 0; i < 32; ++i) {
    int hi = hex_value(hex[2 * i]);
    int lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<unsigned char>(hi << 4 | lo);
  }
  return true;
}

std::array<unsigned char, 32> sha256(std::string_view data) {
  std::array<unsigned char, 32> digest{};
  unsigned int size = 0;
  EVP_Digest(data.data(), data.size(), digest.data(), &size, EVP_sha256(), nullptr);
  return digest;
}

bool valid_user_name(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
  if (!alnum(name[0])) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return alnum(c) || c == '.' || c == '_' || c == '@' || c == '-'; });
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// RFC 7235 token68: the characters a bearer token may hold.
bool is_token68(std::string_view token) {
  std::size_t i = 0;
  while (i < token.size()) {
    char c = token[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
              c == '_' || c == '~' || c == '+' || c == '/';
    if (!ok) break;
    ++i;
  }
  if (i == 0) return false;
  while (i < token.size() && token[i] == '=') ++i;
  return i == token.size();
}

Error io_error(const std::string& what, const std::string& path) {
  return make_error(ErrorCode::kUnavailable, what + " '" + path + "': " + std::strerror(errno));
}

}  // namespace

std::string_view to_string(Role role) { return kRoleNames[static_cast<int>(role)]; }

std::optional<Role> parse_role(std::string_view name) {
  for (int i = 0; i < 4; ++i) {
    if (kRoleNames[i] == name) return static_cast<Role>(i);
  }
  return std::nullopt;
}

bool User::has_role(Role needed) const {
  return std::any_of(roles.begin(), roles.end(), [&](Role r) { return r >= needed; });
}

std::string User::missing_role(Role needed) const {
  std::string held;
  for (Role role : roles) held += (held.empty() ? "" : ", ") + std::string(to_string(role));
  return "this needs the " + std::string(to_string(needed)) + " role (you have " + (held.empty() ? "no role" : held) +
         ")";
}

bool User::in_group(std::string_view group) const {
  return std::find(groups.begin(), groups.end(), group) != groups.end();
}

std::string sha256_hex(std::string_view data) {
  auto digest = sha256(data);
  return to_hex(digest.data(), digest.size());
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Result<std::string> generate_admin_token() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    return make_error(ErrorCode::kUnavailable, "the random number generator is not available");
  }
  std::string token = to_hex(bytes, sizeof bytes);
  OPENSSL_cleanse(bytes, sizeof bytes);
  return token;
}

Result<std::vector<UserRecord>> parse_users(std::string_view json_text) {
  CASCADE_TRY(root, parse_json_body(json_text));
  std::vector<Problem> problems;
  auto fail = [&](std::string path, std::string message) { problems.push_back({std::move(path), std::move(message)}); };
  auto absorb = [&](const Status& status) {
    if (!status) {
      for (const auto& p : status.error().details) problems.push_back(p);
    }
  };

  std::vector<UserRecord> users;
  if (!root.is_object()) {
    fail("", "must be an object with a \"users\" array");
  } else {
    absorb(check_fields(root, {"users"}));
    auto it = root.find("users");
    if (it == root.end()) {
      fail("users", "missing");
    } else if (!it->is_array()) {
      fail("users", "must be an array");
    } else {
      std::set<std::string> names;
      std::set<std::string> hashes;
      for (std::size_t i = 0; i < it->size(); ++i) {
        const auto& entry = (*it)[i];
        const std::string at = "users[" + std::to_string(i) + "]";
        if (!entry.is_object()) {
          fail(at, "must be an object");
          continue;
        }
        absorb(check_fields(entry, {"name", "roles", "token_sha256", "groups"}, at));
        UserRecord record;

        auto name = entry.find("name");
        if (name == entry.end()) {
          fail(at + ".name", "missing");
        } else if (!name->is_string()) {
          fail(at + ".name", "must be a string");
        } else {
          record.name = name->get<std::string>();
          if (!valid_user_name(record.name)) {
            fail(at + ".name", "'" + record.name + "' is not a valid user name ([A-Za-z0-9][A-Za-z0-9._@-]{0,127})");
          } else if (!names.insert(record.name).second) {
            fail(at + ".name", "duplicate user '" + record.name + "'");
          }
        }

        auto roles = entry.find("roles");
        if (roles == entry.end()) {
          fail(at + ".roles", "missing");
        } else if (!roles->is_array() || roles->empty()) {
          fail(at + ".roles", "must be a non-empty array of roles (viewer, releaser, approver, admin)");
        } else {
          for (std::size_t r = 0; r < roles->size(); ++r) {
            const std::string role_at = at + ".roles[" + std::to_string(r) + "]";
            const auto& value = (*roles)[r];
            if (!value.is_string()) {
              fail(role_at, "must be a string");
              continue;
            }
            const auto text = value.get<std::string>();
            if (auto role = parse_role(text)) {
              if (std::find(record.roles.begin(), record.roles.end(), *role) == record.roles.end()) {
                record.roles.push_back(*role);
              }
            } else {
              std::string message = "unknown role '" + text + "'";
              if (auto guess = did_you_mean(text, {std::begin(kRoleNames), std::end(kRoleNames)})) {
                message += " (did you mean '" + *guess + "'?)";
              } else {
                message += " (roles: viewer, releaser, approver, admin)";
              }
              fail(role_at, message);
            }
          }
        }

        auto hash = entry.find("token_sha256");
        if (hash == entry.end()) {
          fail(at + ".token_sha256", "missing");
        } else if (!hash->is_string()) {
          fail(at + ".token_sha256", "must be a string");
        } else {
          std::string text = hash->get<std::string>();
          std::array<unsigned char, 32> bytes{};
          if (!from_hex(text, bytes)) {
            // Never echo the value: someone may have pasted the token itself.
            fail(at + ".token_sha256", "must be 64 hex digits (the SHA-256 of the token, not the token)");
          } else {
            record.token_sha256 = to_hex(bytes.data(), bytes.size());
            if (!hashes.insert(record.token_sha256).second) {
              fail(at + ".token_sha256", "the same token hash as an earlier user");
            }
          }
        }
        auto groups = entry.find("groups");
        if (groups != entry.end()) {
          if (!groups->is_array()) {
            fail(at + ".groups", "must be an array of group names");
          } else {
            for (std::size_t g = 0; g < groups->size(); ++g) {
              const std::string group_at = at + ".groups[" + std::to_string(g) + "]";
              const auto& value = (*groups)[g];
              if (!value.is_string() || !valid_user_name(value.get<std::string>())) {
                fail(group_at, "must be a group name ([A-Za-z0-9][A-Za-z0-9._@-]{0,127})");
              } else if (std::find(record.groups.begin(), record.groups.end(), value.get<std::string>()) !=
                         record.groups.end()) {
                fail(group_at, "group '" + value.get<std::string>() + "' listed twice");
              } else {
                record.groups.push_back(value.get<std::string>());
              }
            }
          }
        }
        users.push_back(std::move(record));
      }
    }
  }
  if (!problems.empty()) {
    std::string message = "invalid users file: ";
    message += problems.front().path.empty() ? problems.front().message
                                             : problems.front().path + ": " + problems.front().message;
    if (problems.size() > 1) message += " (and " + std::to_string(problems.size() - 1) + " more)";
    return make_error(ErrorCode::kInvalidArgument, message, std::move(problems));
  }
  return users;
}

std::string render_users(const std::vector<UserRecord>& users) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const auto& user : users) {
    nlohmann::ordered_json roles = nlohmann::ordered_json::array();
    for (Role role : user.roles) roles.push_back(std::string(to_string(role)));
    nlohmann::ordered_json entry = {{"name", user.name}, {"roles", roles}, {"token_sha256", user.token_sha256}};
    if (!user.groups.empty()) entry["groups"] = user.groups;
    list.push_back(std::move(entry));
  }
  nlohmann::ordered_json root = {{"users", list}};
  return root.dump(2) + "\n";
}

Result<std::vector<UserRecord>> load_users_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return make_error(ErrorCode::kNotFound, "users file '" + path + "' does not exist");
    return io_error("cannot read users file", path);
  }
  // Token hashes are credentials' fingerprints: a file others can read (or
  // write: add themselves as admin) is refused, not trusted.
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0 && (info.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(info.st_mode & 07777));
    return make_error(ErrorCode::kInvalidArgument, "users file '" + path + "' has mode " + mode +
                                                       ": group and others may not read or write it; run chmod 600 '" +
                                                       path + "'");
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return io_error("cannot read users file", path);
  auto users = parse_users(text.str());
  if (!users) {
    Error error = users.error();
    error.message = "users file '" + path + "': " + error.message;
    return error;
  }
  return users;
}

namespace {

std::string directory_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
}

void sync_directory(const std::string& dir) {
  int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

// Writes `text` to a new temporary file beside `path` (mode 0600, synced) and
// returns its name; the caller links or renames it into place.
Result<std::string> write_temporary(const std::string& path, const std::string& text) {
  std::string temp = path + ".tmp-XXXXXX";
  int fd = ::mkstemp(temp.data());  // mode 0600
  if (fd < 0) return io_error("cannot create a temporary file beside", path);
  std::size_t written = 0;
  while (written < text.size()) {
    ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      auto error = io_error("cannot write", temp);
      ::close(fd);
      ::unlink(temp.c_str());
      return error;
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    auto error = io_error("cannot sync", temp);
    ::close(fd);
    ::unlink(temp.c_str());
    return error;
  }
  ::close(fd);
  return temp;
}

// Holds an exclusive flock on the users file's directory while alive, so
// read-modify-write cycles of `cascade users` do not lose each other's edits.
class DirectoryLock {
 public:
  explicit DirectoryLock(const std::string& dir) : fd_(::open(dir.c_str(), O_RDONLY | O_DIRECTORY)) {
    if (fd_ >= 0 && ::flock(fd_, LOCK_EX) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~DirectoryLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;
  bool held() const { return fd_ >= 0; }

 private:
  int fd_;
};

// The users in `path`, or none when the file does not exist yet.
Result<std::vector<UserRecord>> load_users_or_none(const std::string& path) {
  auto users = load_users_file(path);
  if (!users && users.error().code == ErrorCode::kNotFound) return std::vector<UserRecord>();
  return users;
}

}  // namespace

Result<std::optional<std::string>> create_users_file_if_missing(const std::string& path,
                                                                const std::string& admin_name) {
  if (!valid_user_name(admin_name)) {
    return make_error(ErrorCode::kInvalidArgument, "'" + admin_name + "' is not a valid user name");
  }
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0) return std::optional<std::string>();
  if (errno != ENOENT) return io_error("cannot inspect users file", path);

  CASCADE_TRY(token, generate_admin_token());
  const std::string text = render_users({UserRecord{admin_name, {Role::kAdmin}, sha256_hex(token)}});
  CASCADE_TRY(temp, write_temporary(path, text));
  // link() fails with EEXIST instead of replacing: a file created meanwhile
  // by someone else wins, and its tokens stay valid.
  if (::link(temp.c_str(), path.c_str()) != 0) {
    int saved = errno;
    ::unlink(temp.c_str());
    if (saved == EEXIST) return std::optional<std::string>();
    errno = saved;
    return io_error("cannot create users file", path);
  }
  ::unlink(temp.c_str());
  sync_directory(directory_of(path));
  return std::optional<std::string>(std::move(token));
}

Status write_users_file(const std::string& path, const std::vector<UserRecord>& users) {
  CASCADE_TRY(temp, write_temporary(path, render_users(users)));
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    auto error = io_error("cannot replace users file", path);
    ::unlink(temp.c_str());
    return error;
  }
  sync_directory(directory_of(path));
  return outcome::success();
}

Result<std::string> add_user(const std::string& path, const std::string& name, const std::vector<Role>& roles,
                             const std::vector<std::string>& groups) {
  if (!valid_user_name(name)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "'" + name + "' is not a valid user name ([A-Za-z0-9][A-Za-z0-9._@-]{0,127})");
  }
  if (roles.empty()) return make_error(ErrorCode::kInvalidArgument, "user '" + name + "' needs a role");
  for (const std::string& group : groups) {
    if (!valid_user_name(group)) {
      return make_error(ErrorCode::kInvalidArgument,
                        "'" + group + "' is not a valid group name ([A-Za-z0-9][A-Za-z0-9._@-]{0,127})");
    }
  }
  DirectoryLock lock(directory_of(path));
  if (!lock.held()) return io_error("cannot lock the directory of users file", path);
  CASCADE_TRY(users, load_users_or_none(path));
  for (const UserRecord& user : users) {
    if (user.name == name) {
      return make_error(ErrorCode::kAlreadyExists, "user '" + name + "' already exists in " + path +
                                                       " (cascade users rotate " + name + " gives a new token)");
    }
  }
  CASCADE_TRY(token, generate_admin_token());
  UserRecord record{name, roles, sha256_hex(token), {}};
  for (const std::string& group : groups) {
    if (std::find(record.groups.begin(), record.groups.end(), group) == record.groups.end()) record.groups.push_back(group);
  }
  users.push_back(std::move(record));
  CASCADE_TRY(write_users_file(path, users));
  return token;
}

Result<std::string> rotate_user_token(const std::string& path, const std::string& name) {
  DirectoryLock lock(directory_of(path));
  if (!lock.held()) return io_error("cannot lock the directory of users file", path);
  CASCADE_TRY(users, load_users_file(path));
  auto user = std::find_if(users.begin(), users.end(), [&](const UserRecord& u) { return u.name == name; });
  if (user == users.end()) return make_error(ErrorCode::kNotFound, "no user '" + name + "' in " + path);
  CASCADE_TRY(token, generate_admin_token());
  user->token_sha256 = sha256_hex(token);
  CASCADE_TRY(write_users_file(path, users));
  return token;
}

Authenticator::Authenticator(std::vector<UserRecord> users) {
  users_.reserve(users.size());
  for (auto& record : users) {
    Entry entry;
    entry.valid = from_hex(record.token_sha256, entry.hash);
    entry.user = User{std::move(record.name), std::move(record.roles), std::move(record.groups)};
    users_.push_back(std::move(entry));
  }
}

bool Authenticator::knows(std::string_view name) const {
  return std::any_of(users_.begin(), users_.end(), [&](const Entry& entry) {
    return entry.user.name == name || entry.user.in_group(name);
  });
}

Authentication Authenticator::authenticate(std::string_view authorization) const {
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
  };
  authorization = trim(authorization);
  Authentication result;
  if (authorization.empty()) {
    result.failure = "authentication required: send Authorization: Bearer <token>";
    return result;
  }
  auto space = authorization.find_first_of(" \t");
  std::string_view scheme = authorization.substr(0, space);
  if (!iequals(scheme, "Bearer")) {
    result.failure = "unsupported authorization scheme: send Authorization: Bearer <token>";
    return result;
  }
  std::string_view token = space == std::string_view::npos ? std::string_view() : trim(authorization.substr(space));
  if (!is_token68(token)) {
    result.failure = "malformed bearer token";
    result.invalid_token = true;
    return result;
  }
  const auto presented = sha256(token);
  const Entry* found = nullptr;
  for (const auto& entry : users_) {
    // No early exit: every hash is compared, so timing does not reveal how
    // many users were checked before the match.
    bool equal = CRYPTO_memcmp(presented.data(), entry.hash.data(), presented.size()) == 0;
    if (equal && entry.valid && found == nullptr) found = &entry;
  }
  if (found == nullptr) {
    result.failure = "invalid token";
    result.invalid_token = true;
    return result;
  }
  result.user = found->user;
  return result;
}

}  // namespace cascade::adapters::http
