// The real `cascade serve` binary on an ephemeral loopback port: its first
// start, its admin token, graceful SIGTERM/SIGINT, what a step running at
// SIGTERM becomes, and the `cascade users` commands that edit its users file.
#include "adapters/http/auth.hpp"
#include "tests/support/cli_runner.hpp"
#include "tests/support/serve_process.hpp"
#include "tests/support/temp_dir.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace cascade {
namespace {

using nlohmann::json;
using testing::CommandRun;
using testing::read_file;
using testing::run;
using testing::ServeProcess;

constexpr auto kStopDeadline = std::chrono::seconds(20);

std::string sample_pipeline() { return std::string(CASCADE_SOURCE_DIR) + "/tools/examples/sampleapp.json"; }

mode_t file_mode(const std::string& path) {
  struct stat info {};
  ::stat(path.c_str(), &info);
  return info.st_mode & 0777;
}

class ServeBinaryTest : public ::testing::Test {
 protected:
  std::string data() const { return dir_ / "data"; }

  // A CLI command against `server` with `token`.
  CommandRun remote(const ServeProcess& server, const std::string& token, const std::string& arguments) {
    return run(arguments + " --server " + server.url() + " --token " + token);
  }

  // An artifact directory holding the index.html the sample's tests check.
  std::string artifact(const std::string& version) {
    const std::string path = data() + "/artifacts/artifact-" + version;  // inside serve's artifacts root
    std::filesystem::create_directories(path);
    std::ofstream(path + "/index.html") << "<!doctype html><h1>SampleApp</h1><p>build " << version << "</p>\n";
    return path;
  }

  testing::TempDir dir_;
};

TEST_F(ServeBinaryTest, FirstStartPrintsAnAdminTokenOnceThatAuthenticates) {
  std::string token;
  {
    ServeProcess server({"--data", data()});
    ASSERT_TRUE(server.started()) << server.output();
    token = server.printed_token();
    ASSERT_EQ(token.size(), 64u) << server.output();

    const std::string users = read_file(data() + "/users.json");
    EXPECT_NE(users.find(adapters::http::sha256_hex(token)), std::string::npos) << users;
    EXPECT_EQ(users.find(token), std::string::npos) << "the token itself must not be stored";
    EXPECT_EQ(file_mode(data() + "/users.json"), 0600u);

    EXPECT_EQ(testing::http_status(server.port(), "/api/v1/releases", token), 200);
    EXPECT_EQ(testing::http_status(server.port(), "/api/v1/releases", std::string(64, '0')), 401);
    EXPECT_EQ(testing::http_status(server.port(), "/api/v1/releases", ""), 401);
    EXPECT_EQ(testing::http_status(server.port(), "/api/v1/healthz", ""), 200);

    EXPECT_EQ(server.stop(SIGTERM, kStopDeadline), std::optional<int>(0)) << server.output();
    EXPECT_NE(server.output().find("SIGTERM, stopping"), std::string::npos) << server.output();
  }
  ServeProcess again({"--data", data()});
  ASSERT_TRUE(again.started()) << again.output();
  EXPECT_EQ(again.output().find("shown only this once"), std::string::npos) << again.output();
  EXPECT_EQ(again.printed_token(), "");
  EXPECT_EQ(testing::http_status(again.port(), "/api/v1/releases", token), 200) << "the first token still works";
  EXPECT_EQ(again.stop(SIGINT, kStopDeadline), std::optional<int>(0)) << again.output();
}

TEST_F(ServeBinaryTest, SigtermKeepsEveryEventAndTheDirectoryReopensOfflineAndServed) {
  std::string token, served_events;
  {
    ServeProcess server({"--data", data()});
    ASSERT_TRUE(server.started()) << server.output();
    token = server.printed_token();
    ASSERT_EQ(remote(server, token, "pipeline apply " + sample_pipeline()).exit_code, 0);
    const CommandRun created = remote(server, token,
                                      "release create SampleApp --version 1.0 --artifact " + artifact("1.0") +
                                          " --var SITES_ROOT=" + (dir_ / "sites"));
    ASSERT_EQ(created.exit_code, 0) << created.output;
    const CommandRun waited =
        remote(server, token, "release wait SampleApp-1 --until prod=AwaitingPreApproval --timeout 60s");
    ASSERT_EQ(waited.exit_code, 0) << waited.output;
    const CommandRun events = remote(server, token, "events SampleApp-1 --json");
    ASSERT_EQ(events.exit_code, 0) << events.output;
    served_events = events.output;
    EXPECT_EQ(json::parse(served_events).back()["type"], "ApprovalRequested");
    EXPECT_EQ(server.stop(SIGTERM, kStopDeadline), std::optional<int>(0)) << server.output();
  }
  const CommandRun offline = run("events SampleApp-1 --json --data " + data());
  ASSERT_EQ(offline.exit_code, 0) << offline.output;
  EXPECT_EQ(json::parse(offline.output), json::parse(served_events));

  ServeProcess again({"--data", data()});
  ASSERT_TRUE(again.started()) << again.output();
  const CommandRun reopened = remote(again, token, "events SampleApp-1 --json");
  ASSERT_EQ(reopened.exit_code, 0) << reopened.output;
  EXPECT_EQ(json::parse(reopened.output), json::parse(served_events));
  EXPECT_EQ(again.stop(SIGTERM, kStopDeadline), std::optional<int>(0));
}

// README: a deployment interrupted by a crash fails and is not re-run. A
// SIGTERM is handled the same way: the step's processes are killed at once
// (the step would sleep for 5 minutes), the server exits 0, and the next
// start records the deployment Failed as interrupted.
TEST_F(ServeBinaryTest, SigtermDuringAStepKillsItAndTheNextStartFailsTheDeploymentAsInterrupted) {
  const std::string pipeline = dir_ / "slow.json";
  std::ofstream(pipeline) << R"({"name": "Slow", "stages": [{"name": "dev", "trigger": {"after_release": true},
      "steps": [{"name": "long", "run": "echo started; sleep 300; echo finished"}]}]})";
  std::string token;
  {
    ServeProcess server({"--data", data()});
    ASSERT_TRUE(server.started()) << server.output();
    token = server.printed_token();
    ASSERT_EQ(remote(server, token, "pipeline apply " + pipeline).exit_code, 0);
    ASSERT_EQ(remote(server, token, "release create Slow --version 1 --artifact " + artifact("1")).exit_code, 0);
    const CommandRun deploying = remote(server, token, "release wait Slow-1 --until dev=Deploying --timeout 60s");
    ASSERT_EQ(deploying.exit_code, 0) << deploying.output;

    const auto stopping = std::chrono::steady_clock::now();
    EXPECT_EQ(server.stop(SIGTERM, kStopDeadline), std::optional<int>(0)) << server.output();
    EXPECT_LT(std::chrono::steady_clock::now() - stopping, kStopDeadline);
  }
  ServeProcess again({"--data", data()});
  ASSERT_TRUE(again.started()) << again.output();
  const CommandRun settled = remote(again, token, "release wait Slow-1 --until Failed --timeout 60s --json");
  ASSERT_EQ(settled.exit_code, 0) << settled.output;
  const json summary = json::parse(settled.output);
  EXPECT_EQ(summary["stages"][0]["status"], "Failed");
  EXPECT_EQ(summary["stages"][0]["failure_reason"], "interrupted: the engine stopped during the deployment");
  const json events = json::parse(remote(again, token, "events Slow-1 --json").output);
  std::vector<std::string> types;
  for (const json& event : events) types.push_back(event["type"]);
  EXPECT_EQ(std::count(types.begin(), types.end(), "DeploymentStarted"), 1) << "not re-run";
  EXPECT_EQ(types.back(), "DeploymentFailed");
  EXPECT_EQ(again.stop(SIGTERM, kStopDeadline), std::optional<int>(0));
}

class UsersCommandTest : public ServeBinaryTest {
 protected:
  std::string users() const { return dir_ / "users.json"; }
  std::string token_of(const CommandRun& command) {
    const json answer = json::parse(command.output, nullptr, false);
    return answer.is_object() ? answer.value("token", "") : "";
  }
};

TEST_F(UsersCommandTest, AddStoresOnlyTheHashInAPrivateFileAndListShowsRolesAndGroups) {
  const CommandRun added =
      run("users add alice --role approver --group release-managers --group cab --json --users " + users());
  ASSERT_EQ(added.exit_code, 0) << added.output;
  const std::string token = token_of(added);
  ASSERT_EQ(token.size(), 64u) << added.output;
  const std::string file = read_file(users());
  EXPECT_NE(file.find(adapters::http::sha256_hex(token)), std::string::npos);
  EXPECT_EQ(file.find(token), std::string::npos);
  EXPECT_EQ(file_mode(users()), 0600u);

  ASSERT_EQ(run("users add bob --role viewer --users " + users()).exit_code, 0);
  const std::string before_failures = read_file(users());
  const CommandRun listed = run("users list --json --users " + users());
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  const json list = json::parse(listed.output)["users"];
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0], (json{{"name", "alice"}, {"roles", {"approver"}}, {"groups", {"release-managers", "cab"}}}));
  EXPECT_EQ(list[1], (json{{"name", "bob"}, {"roles", {"viewer"}}, {"groups", json::array()}}));
  EXPECT_EQ(listed.output.find("token"), std::string::npos) << "list never shows hashes";

  auto loaded = adapters::http::load_users_file(users());
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(loaded.value()[0].groups, (std::vector<std::string>{"release-managers", "cab"}));

  const CommandRun duplicate = run("users add alice --role viewer --users " + users());
  EXPECT_NE(duplicate.exit_code, 0);
  EXPECT_NE(duplicate.output.find("user 'alice' already exists"), std::string::npos) << duplicate.output;
  const CommandRun bad_role = run("users add carol --role aprover --users " + users());
  EXPECT_EQ(bad_role.exit_code, 2) << bad_role.output;
  EXPECT_NE(bad_role.output.find("--role 'aprover'"), std::string::npos) << bad_role.output;
  EXPECT_EQ(read_file(users()), before_failures) << "failed commands change nothing";
}

TEST(UsersFileTest, GroupsAreOptionalNamesListedOnce) {
  const std::string hash(64, 'a');
  auto parsed = adapters::http::parse_users(R"({"users": [{"name": "alice", "roles": ["approver"], "token_sha256": ")" +
                                            hash + R"(", "groups": ["cab", "release-managers"]}]})");
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed.value()[0].groups, (std::vector<std::string>{"cab", "release-managers"}));
  EXPECT_EQ(adapters::http::parse_users(adapters::http::render_users(parsed.value())).value()[0].groups,
            parsed.value()[0].groups);

  auto bad = adapters::http::parse_users(R"({"users": [{"name": "alice", "roles": ["approver"], "token_sha256": ")" +
                                         hash + R"(", "groups": ["cab", "cab", "no spaces", 7]}]})");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  ASSERT_EQ(bad.error().details.size(), 3u) << bad.error().message;
  EXPECT_EQ(bad.error().details[0].path, "users[0].groups[1]");
  EXPECT_EQ(bad.error().details[0].message, "group 'cab' listed twice");
  EXPECT_EQ(bad.error().details[1].path, "users[0].groups[2]");
  EXPECT_EQ(bad.error().details[2].path, "users[0].groups[3]");

  // The authenticated principal carries them.
  testing::TempDir dir;
  auto token = adapters::http::add_user(dir / "users.json", "alice", {adapters::http::Role::kApprover}, {"cab"});
  ASSERT_TRUE(token) << token.error().message;
  auto users = adapters::http::load_users_file(dir / "users.json");
  ASSERT_TRUE(users) << users.error().message;
  const auto who = adapters::http::Authenticator(users.value()).authenticate("Bearer " + token.value());
  ASSERT_TRUE(who.user);
  EXPECT_EQ(who.user->groups, std::vector<std::string>{"cab"});
  EXPECT_TRUE(who.user->in_group("cab"));
  EXPECT_FALSE(who.user->in_group("release-managers"));
}

TEST_F(UsersCommandTest, SighupRereadsTheUsersFileRotationAndRevocationWithoutARestart) {
  const std::string alice = token_of(run("users add alice --role viewer --json --users " + users()));
  const std::string bob = token_of(run("users add bob --role viewer --json --users " + users()));
  ServeProcess server({"--data", data(), "--users", users()});
  ASSERT_TRUE(server.started()) << server.output();
  EXPECT_EQ(testing::http_status(server.port(), "/api/v1/releases", alice), 200);
  EXPECT_EQ(testing::http_status(server.port(), "/api/v1/releases", bob), 200);

  const std::string rotated = token_of(run("users rotate alice --json --users " + users()));
  ASSERT_EQ(rotated.size(), 64u);
  const std::string carol = token_of(run("users add carol --role viewer --json --users " + users()));
  // Revoke bob by hand, as an operator would: the file without him.
  json file = json::parse(read_file(users()));
  auto& list = file["users"];
  list.erase(std::remove_if(list.begin(), list.end(), [](const json& u) { return u["name"] == "bob"; }), list.end());
  std::ofstream(users()) << file.dump(2);
  ASSERT_EQ(::kill(server.pid(), SIGHUP), 0);
  ASSERT_TRUE(server.wait_for_output(
      [](const std::string& out) { return out.find("SIGHUP: reloaded 2 users") != std::string::npos; }, kStopDeadline))
      << server.output();
  EXPECT_EQ(testing::http_status(server.port(), "/api/v1/releases", alice), 401) << "the rotated-out token";
  EXPECT_EQ(testing::http_status(server.port(), "/api/v1/releases", rotated), 200);
  EXPECT_EQ(testing::http_status(server.port(), "/api/v1/releases", bob), 401) << "revoked";
  EXPECT_EQ(testing::http_status(server.port(), "/api/v1/releases", carol), 200) << "added";

  // A file that does not load keeps the users as they were.
  ASSERT_EQ(::chmod(users().c_str(), 0644), 0);
  ASSERT_EQ(::kill(server.pid(), SIGHUP), 0);
  ASSERT_TRUE(server.wait_for_output(
      [](const std::string& out) {
        const auto kept = out.find("keeping the users as they were");
        return kept != std::string::npos && out.find("chmod 600", kept) != std::string::npos;
      },
      kStopDeadline))
      << server.output();
  EXPECT_EQ(testing::http_status(server.port(), "/api/v1/releases", carol), 200);
  EXPECT_EQ(server.stop(SIGTERM, kStopDeadline), std::optional<int>(0));
}

TEST_F(UsersCommandTest, RotateInvalidatesTheOldTokenOnceTheServerRestarts) {
  const std::string old_token = token_of(run("users add alice --role viewer --json --users " + users()));
  ASSERT_EQ(old_token.size(), 64u);
  std::string new_token;
  {
    ServeProcess server({"--data", data(), "--users", users()});
    ASSERT_TRUE(server.started()) << server.output();
    EXPECT_EQ(server.printed_token(), "") << "with --users no admin is created";
    EXPECT_EQ(testing::http_status(server.port(), "/api/v1/releases", old_token), 200);

    const CommandRun rotated = run("users rotate alice --json --users " + users());
    ASSERT_EQ(rotated.exit_code, 0) << rotated.output;
    new_token = token_of(rotated);
    ASSERT_EQ(new_token.size(), 64u);
    EXPECT_NE(new_token, old_token);
    EXPECT_EQ(file_mode(users()), 0600u);
    // Until SIGHUP (the test above) a running server keeps the users it has.
    EXPECT_EQ(testing::http_status(server.port(), "/api/v1/releases", old_token), 200);
    EXPECT_EQ(server.stop(SIGTERM, kStopDeadline), std::optional<int>(0));
  }
  ServeProcess restarted({"--data", data(), "--users", users()});
  ASSERT_TRUE(restarted.started()) << restarted.output();
  EXPECT_EQ(testing::http_status(restarted.port(), "/api/v1/releases", old_token), 401);
  EXPECT_EQ(testing::http_status(restarted.port(), "/api/v1/releases", new_token), 200);

  const CommandRun unknown = run("users rotate nobody --users " + users());
  EXPECT_EQ(unknown.exit_code, 3) << unknown.output;
  EXPECT_NE(unknown.output.find("no user 'nobody'"), std::string::npos) << unknown.output;
}

}  // namespace
}  // namespace cascade
