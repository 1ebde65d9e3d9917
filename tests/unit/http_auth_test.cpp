// Users file, token hashing and bearer authentication.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <ostream>
#include <set>
#include <sstream>
#include <string>

#include "adapters/http/auth.hpp"
#include "tests/support/temp_dir.hpp"

namespace cascade {
// Readable failures for Problem lists.
inline void PrintTo(const Problem& problem, std::ostream* out) {
  *out << '{' << problem.path << ": " << problem.message << '}';
}
}  // namespace cascade

namespace cascade::adapters::http {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Written owner-only, as users files must be.
void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
  ::chmod(path.c_str(), 0600);
}

const std::string kAliceHash = sha256_hex("alice-token");
const std::string kBobHash = sha256_hex("bob-token");

TEST(TokenTest, Sha256MatchesKnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(TokenTest, ConstantTimeEqualComparesWholeStrings) {
  EXPECT_TRUE(constant_time_equal("", ""));
  EXPECT_TRUE(constant_time_equal(kAliceHash, sha256_hex("alice-token")));
  EXPECT_FALSE(constant_time_equal(kAliceHash, kBobHash));
  std::string last_differs = kAliceHash;
  last_differs.back() = last_differs.back() == '0' ? '1' : '0';
  EXPECT_FALSE(constant_time_equal(kAliceHash, last_differs));
  EXPECT_FALSE(constant_time_equal("abc", "abcd"));
  EXPECT_FALSE(constant_time_equal(std::string("a\0b", 3), std::string("a\0c", 3)));
}

TEST(TokenTest, AdminTokensAre32RandomBytesInHex) {
  std::set<std::string> seen;
  for (int i = 0; i < 16; ++i) {
    auto token = generate_admin_token();
    ASSERT_TRUE(token);
    EXPECT_EQ(token.value().size(), 64u);
    EXPECT_EQ(token.value().find_first_not_of("0123456789abcdef"), std::string::npos);
    seen.insert(token.value());
  }
  EXPECT_EQ(seen.size(), 16u);
}

TEST(RoleTest, EachRoleIncludesTheOnesBelow) {
  EXPECT_EQ(to_string(Role::kViewer), "viewer");
  EXPECT_EQ(parse_role("approver"), Role::kApprover);
  EXPECT_FALSE(parse_role("Admin").has_value());

  User approver{"bob", {Role::kApprover}};
  EXPECT_TRUE(approver.has_role(Role::kViewer));
  EXPECT_TRUE(approver.has_role(Role::kReleaser));
  EXPECT_TRUE(approver.has_role(Role::kApprover));
  EXPECT_FALSE(approver.has_role(Role::kAdmin));

  User viewer{"vera", {Role::kViewer}};
  EXPECT_FALSE(viewer.has_role(Role::kReleaser));
  EXPECT_TRUE((User{"ada", {Role::kAdmin}}).has_role(Role::kApprover));
  EXPECT_FALSE((User{"nobody", {}}).has_role(Role::kViewer));
  EXPECT_TRUE((User{"two", {Role::kViewer, Role::kReleaser}}).has_role(Role::kReleaser));
}

TEST(UsersFileTest, ParsesUsersAndLowerCasesHashes) {
  std::string upper = kBobHash;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto users = parse_users(R"({"users": [
      {"name": "alice", "roles": ["viewer"], "token_sha256": ")" +
                           kAliceHash + R"("},
      {"name": "bob@example.com", "roles": ["approver", "releaser", "approver"], "token_sha256": ")" +
                           upper + R"("}
  ]})");
  ASSERT_TRUE(users) << users.error().message;
  ASSERT_EQ(users.value().size(), 2u);
  EXPECT_EQ(users.value()[0].name, "alice");
  EXPECT_EQ(users.value()[0].roles, std::vector<Role>{Role::kViewer});
  EXPECT_EQ(users.value()[1].name, "bob@example.com");
  EXPECT_EQ(users.value()[1].roles, (std::vector<Role>{Role::kApprover, Role::kReleaser}));
  EXPECT_EQ(users.value()[1].token_sha256, kBobHash);
}

TEST(UsersFileTest, EveryProblemIsReportedWithItsPath) {
  auto users = parse_users(R"({"users": [
      {"name": "alice", "roles": ["aprover"], "token_sha256": ")" +
                           kAliceHash + R"(", "token_sha265": "x"},
      {"name": "alice", "roles": [], "token_sha256": "not-a-hash"},
      {"name": "-bad", "roles": ["viewer", 3, "wizard"], "token_sha256": ")" +
                           kAliceHash + R"("},
      {"roles": ["viewer"]},
      "carol"
  ], "version": 2})");
  ASSERT_FALSE(users);
  EXPECT_EQ(users.error().code, ErrorCode::kInvalidArgument);
  const std::vector<Problem> expected = {
      {"version", "unknown field 'version' (allowed: users)"},
      {"users[0].token_sha265", "unknown field 'token_sha265' (did you mean 'token_sha256'?)"},
      {"users[0].roles[0]", "unknown role 'aprover' (did you mean 'approver'?)"},
      {"users[1].name", "duplicate user 'alice'"},
      {"users[1].roles", "must be a non-empty array of roles (viewer, releaser, approver, admin)"},
      {"users[1].token_sha256", "must be 64 hex digits (the SHA-256 of the token, not the token)"},
      {"users[2].name", "'-bad' is not a valid user name ([A-Za-z0-9][A-Za-z0-9._@-]{0,127})"},
      {"users[2].roles[1]", "must be a string"},
      {"users[2].roles[2]", "unknown role 'wizard' (roles: viewer, releaser, approver, admin)"},
      {"users[2].token_sha256", "the same token hash as an earlier user"},
      {"users[3].name", "missing"},
      {"users[3].token_sha256", "missing"},
      {"users[4]", "must be an object"},
  };
  EXPECT_EQ(users.error().details, expected);
  EXPECT_EQ(users.error().message,
            "invalid users file: version: unknown field 'version' (allowed: users) (and 12 more)");
}

TEST(UsersFileTest, RejectsAFileThatIsNotAUsersObject) {
  EXPECT_EQ(parse_users("[]").error().details,
            (std::vector<Problem>{{"", "must be an object with a \"users\" array"}}));
  EXPECT_EQ(parse_users("{}").error().details, (std::vector<Problem>{{"users", "missing"}}));
  EXPECT_EQ(parse_users(R"({"users": {}})").error().details, (std::vector<Problem>{{"users", "must be an array"}}));
  auto malformed = parse_users("{\"users\": [\n,]}");
  ASSERT_FALSE(malformed);
  EXPECT_EQ(malformed.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(malformed.error().message.rfind("malformed JSON at line 2, column 1", 0), 0u) << malformed.error().message;
  EXPECT_TRUE(parse_users(R"({"users": []})"));
}

TEST(UsersFileTest, RenderedFileParsesBack) {
  std::vector<UserRecord> users = {{"alice", {Role::kViewer}, kAliceHash},
                                   {"bob", {Role::kApprover, Role::kAdmin}, kBobHash}};
  auto parsed = parse_users(render_users(users));
  ASSERT_TRUE(parsed);
  ASSERT_EQ(parsed.value().size(), 2u);
  EXPECT_EQ(parsed.value()[1].name, "bob");
  EXPECT_EQ(parsed.value()[1].roles, (std::vector<Role>{Role::kApprover, Role::kAdmin}));
  EXPECT_EQ(parsed.value()[1].token_sha256, kBobHash);
}

TEST(UsersFileTest, LoadNamesTheFileInItsErrors) {
  testing::TempDir dir;
  auto missing = load_users_file(dir / "users.json");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);

  write_file(dir / "users.json", R"({"users": [{"name": "x", "roles": ["viewer"]}]})");
  auto bad = load_users_file(dir / "users.json");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.error().message.find(dir / "users.json"), std::string::npos) << bad.error().message;
  EXPECT_EQ(bad.error().details, (std::vector<Problem>{{"users[0].token_sha256", "missing"}}));
}

TEST(UsersFileTest, AFileOthersCanReadIsRefusedSayingHowToFixIt) {
  testing::TempDir dir;
  const std::string path = dir / "users.json";
  ASSERT_TRUE(create_users_file_if_missing(path));
  ASSERT_TRUE(load_users_file(path));
  for (mode_t mode : {0640, 0604, 0620, 0666}) {
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    auto refused = load_users_file(path);
    ASSERT_FALSE(refused) << std::oct << mode;
    EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(refused.error().message.find("chmod 600 '" + path + "'"), std::string::npos) << refused.error().message;
  }
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  EXPECT_TRUE(load_users_file(path));
}

TEST(UsersFileTest, FirstStartCreatesAnAdminHoldingOnlyTheTokensHash) {
  testing::TempDir dir;
  const std::string path = dir / "users.json";
  auto created = create_users_file_if_missing(path);
  ASSERT_TRUE(created) << created.error().message;
  ASSERT_TRUE(created.value().has_value());
  const std::string token = *created.value();
  EXPECT_EQ(token.size(), 64u);

  const std::string text = read_file(path);
  EXPECT_EQ(text.find(token), std::string::npos) << "the token itself must never be stored";
  EXPECT_NE(text.find(sha256_hex(token)), std::string::npos);
  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600);

  auto users = load_users_file(path);
  ASSERT_TRUE(users);
  ASSERT_EQ(users.value().size(), 1u);
  EXPECT_EQ(users.value()[0].name, "admin");
  EXPECT_EQ(users.value()[0].roles, std::vector<Role>{Role::kAdmin});
  Authenticator authenticator(users.value());
  EXPECT_EQ(authenticator.authenticate("Bearer " + token).user->name, "admin");

  // Later starts leave the file alone and reveal nothing.
  auto again = create_users_file_if_missing(path);
  ASSERT_TRUE(again);
  EXPECT_FALSE(again.value().has_value());
  EXPECT_EQ(read_file(path), text);
  // No temporary files are left behind.
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 1u);
}

TEST(UsersFileTest, CreationFailsCleanlyWhereItCannotWrite) {
  testing::TempDir dir;
  auto result = create_users_file_if_missing(dir / "no/such/dir/users.json");
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kUnavailable);
  auto bad_name = create_users_file_if_missing(dir / "users.json", "bad name");
  ASSERT_FALSE(bad_name);
  EXPECT_EQ(bad_name.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad_name.error().message, "'bad name' is not a valid user name");
}

class AuthenticatorTest : public ::testing::Test {
 protected:
  Authenticator authenticator_{{{"alice", {Role::kViewer}, kAliceHash}, {"bob", {Role::kApprover}, kBobHash}}};
};

TEST_F(AuthenticatorTest, AcceptsAKnownBearerToken) {
  auto result = authenticator_.authenticate("Bearer bob-token");
  ASSERT_TRUE(result.user.has_value()) << result.failure;
  EXPECT_EQ(result.user->name, "bob");
  EXPECT_EQ(result.user->roles, std::vector<Role>{Role::kApprover});
  EXPECT_EQ(authenticator_.authenticate("bearer   alice-token  ").user->name, "alice");
  EXPECT_EQ(authenticator_.authenticate("BEARER alice-token").user->name, "alice");
}

TEST_F(AuthenticatorTest, RefusesMissingMalformedAndUnknownCredentials) {
  auto missing = authenticator_.authenticate("");
  EXPECT_FALSE(missing.user.has_value());
  EXPECT_FALSE(missing.invalid_token);
  EXPECT_EQ(missing.failure, "authentication required: send Authorization: Bearer <token>");

  auto basic = authenticator_.authenticate("Basic YWxpY2U6eA==");
  EXPECT_FALSE(basic.user.has_value());
  EXPECT_FALSE(basic.invalid_token);

  for (std::string header : {"Bearer", "Bearer ", "Bearer a b", "Bearer tok\xc3\xa9n", "Bearer =abc"}) {
    auto result = authenticator_.authenticate(header);
    EXPECT_FALSE(result.user.has_value()) << header;
    EXPECT_TRUE(result.invalid_token) << header;
  }

  auto wrong = authenticator_.authenticate("Bearer carol-token");
  EXPECT_FALSE(wrong.user.has_value());
  EXPECT_TRUE(wrong.invalid_token);
  EXPECT_EQ(wrong.failure, "invalid token");
  // The hash is not a token: presenting it does not authenticate.
  EXPECT_FALSE(authenticator_.authenticate("Bearer " + kAliceHash).user.has_value());
}

TEST_F(AuthenticatorTest, ARecordWithAnInvalidHashNeverMatches) {
  Authenticator broken({{"eve", {Role::kAdmin}, "zz"}});
  EXPECT_FALSE(broken.authenticate("Bearer zz").user.has_value());
  EXPECT_FALSE(broken.authenticate("Bearer ").user.has_value());
}

}  // namespace
}  // namespace cascade::adapters::http
