// The `cascade` CLI as an HTTP client of a real `cascade serve` (ephemeral
// loopback port): every command prints over HTTP what it prints offline on
// the same data, errors carry the server's message and the offline exit
// codes, and the acting user is always the token's.
#include "adapters/http/auth.hpp"
#include "tests/support/cli_runner.hpp"
#include "tests/support/serve_process.hpp"
#include "tests/support/temp_dir.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>

namespace cascade {
namespace {

using nlohmann::json;
using testing::CommandRun;
using testing::run;
using testing::ServeProcess;

constexpr auto kStopDeadline = std::chrono::seconds(20);

class ClientCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    namespace http = adapters::http;
    for (const auto& [name, role] : std::vector<std::pair<std::string, http::Role>>{
             {"admin", http::Role::kAdmin},
             {"release-manager", http::Role::kApprover},
             {"bob", http::Role::kApprover},
             {"vic", http::Role::kViewer}}) {
      auto token = http::add_user(users(), name, {role}, {});
      ASSERT_TRUE(token) << token.error().message;
      tokens_[name] = token.value();
    }
    server_ = std::make_unique<ServeProcess>(std::vector<std::string>{"--data", data(), "--users", users()});
    ASSERT_TRUE(server_->started()) << server_->output();
  }

  void TearDown() override {
    if (server_) {
      EXPECT_EQ(server_->stop(SIGTERM, kStopDeadline), std::optional<int>(0)) << server_->output();
    }
  }

  std::string data() const { return dir_ / "data"; }
  std::string users() const { return dir_ / "users.json"; }

  // The command against the server, as `user`.
  CommandRun as(const std::string& user, const std::string& arguments, bool with_stderr = true) {
    return run(arguments + " --server " + server_->url() + " --token " + tokens_.at(user), with_stderr);
  }

  // What each command prints to stdout over the server as a viewer; every
  // one must succeed, and a --json one print JSON.
  std::map<std::string, std::string> outputs_as_viewer(const std::vector<std::string>& commands) {
    std::map<std::string, std::string> served;
    for (const std::string& command : commands) {
      const CommandRun answer = as("vic", command, /*with_stderr=*/false);
      EXPECT_EQ(answer.exit_code, 0) << command << "\n" << answer.output;
      if (command.find("--json") != std::string::npos) {
        EXPECT_FALSE(json::parse(answer.output, nullptr, false).is_discarded()) << command << "\n" << answer.output;
      }
      served[command] = answer.output;
    }
    return served;
  }

  // The sample release, waiting for prod's approval.
  void start_sample_release() {
    const CommandRun applied = as("admin", "pipeline apply " + std::string(CASCADE_SOURCE_DIR) + "/tools/examples/sampleapp.json");
    ASSERT_EQ(applied.exit_code, 0) << applied.output;
    ASSERT_NE(applied.output.find("pipeline SampleApp is at version 1"), std::string::npos) << applied.output;
    const std::string artifact = data() + "/artifacts/artifact";  // inside serve's artifacts root
    std::filesystem::create_directories(artifact);
    std::ofstream(artifact + "/index.html") << "<!doctype html><h1>SampleApp</h1><p>build 1.0</p>\n";
    const CommandRun created = as("release-manager", "release create SampleApp --version 1.0 --artifact " + artifact +
                                                         " --var SITES_ROOT=" + (dir_ / "sites") + " --json");
    ASSERT_EQ(created.exit_code, 0) << created.output;
    EXPECT_EQ(json::parse(created.output)["id"], "SampleApp-1");
    const CommandRun waited = as("vic", "release wait SampleApp-1 --until prod=AwaitingPreApproval --timeout 60s");
    ASSERT_EQ(waited.exit_code, 0) << waited.output;
    EXPECT_NE(waited.output.find("prod    AwaitingPreApproval"), std::string::npos) << waited.output;
  }

  testing::TempDir dir_;
  std::map<std::string, std::string> tokens_;
  std::unique_ptr<ServeProcess> server_;
};

TEST_F(ClientCliTest, EveryReadCommandPrintsOverHttpWhatItPrintsOfflineOnTheSameData) {
  start_sample_release();
  // A second pipeline version, so that versions and diff have something to say.
  const std::string edited = dir_ / "sampleapp-v2.json";
  json definition = json::parse(testing::read_file(std::string(CASCADE_SOURCE_DIR) + "/tools/examples/sampleapp.json"));
  definition["description"] = "edited for the diff";
  std::ofstream(edited) << definition.dump(2);
  ASSERT_EQ(as("admin", "pipeline apply " + edited).exit_code, 0);

  const std::vector<std::string> commands = {
      "release show SampleApp-1",
      "release show SampleApp-1 --json",
      "release list",
      "release list --json --pipeline SampleApp --limit 5",
      "events SampleApp-1",
      "events SampleApp-1 --json",
      "release events SampleApp-1 --json",
      "release logs SampleApp-1 dev",
      "release logs SampleApp-1 test --json",
      "environments",
      "environments --json --pipeline SampleApp",
      "environment history SampleApp qa",
      "environment history SampleApp dev --json",
      "pipeline versions SampleApp",
      "pipeline versions SampleApp --json",
      "pipeline diff SampleApp 1 2",
      "pipeline diff SampleApp 1 2 --json",
      "pipeline list",
      "pipeline list --json",
      "pipeline show SampleApp",
      "pipeline show SampleApp --version 1 --json",
      "metrics delivery --pipeline SampleApp --from 2020-01-01T00:00:00Z --to 2100-01-01T00:00:00Z",
      "metrics delivery --pipeline SampleApp --stage dev --from 2020-01-01T00:00:00Z --to 2100-01-01T00:00:00Z --json",
  };
  std::map<std::string, std::string> served = outputs_as_viewer(commands);
  EXPECT_NE(served["pipeline list"].find("SampleApp  2 "), std::string::npos) << served["pipeline list"];
  EXPECT_NE(served["pipeline show SampleApp"].find("\"description\": \"edited for the diff\""), std::string::npos);
  const json shipped = json::parse(testing::read_file(std::string(CASCADE_SOURCE_DIR) + "/tools/examples/sampleapp.json"));
  EXPECT_EQ(json::parse(served["pipeline show SampleApp --version 1 --json"])["definition"]["description"],
            shipped["description"]);
  const CommandRun inbox = as("release-manager", "approvals --json");
  ASSERT_EQ(inbox.exit_code, 0) << inbox.output;
  EXPECT_EQ(json::parse(inbox.output)["approvals"][0]["stage"], "prod") << inbox.output;
  const CommandRun inbox_table = as("release-manager", "approvals");

  ASSERT_EQ(server_->stop(SIGTERM, kStopDeadline), std::optional<int>(0));
  server_.reset();
  for (const std::string& command : commands) {
    const CommandRun offline = run(command + " --data " + data(), /*with_stderr=*/false);
    ASSERT_EQ(offline.exit_code, 0) << command << "\n" << offline.output;
    EXPECT_EQ(offline.output, served[command]) << command;
  }
  EXPECT_EQ(run("approvals --json --as release-manager --data " + data()).output, inbox.output);
  EXPECT_EQ(run("approvals --as release-manager --data " + data()).output, inbox_table.output);
}

TEST_F(ClientCliTest, WhyReplayAndAuditExportPrintOverHttpWhatTheyPrintOffline) {
  start_sample_release();
  const std::vector<std::string> commands = {
      "why SampleApp-1 prod",
      "why SampleApp-1 prod --json",
      "replay SampleApp-1",
      "replay SampleApp-1 --json",
      "replay SampleApp-1 --at 1",
      "replay SampleApp-1 --at 1 --json",
      "replay SampleApp-1 --verify",
      "replay SampleApp-1 --verify --json",
  };
  std::map<std::string, std::string> served = outputs_as_viewer(commands);
  EXPECT_EQ(served["why SampleApp-1 prod"].rfind("prod is waiting: approval by release-manager requested at ", 0), 0u)
      << served["why SampleApp-1 prod"];
  EXPECT_EQ(json::parse(served["replay SampleApp-1 --at 1 --json"])["at"]["version"], 1);
  EXPECT_NE(served["replay SampleApp-1 --at 1"].find("Release SampleApp-1 as of version 1 of "), std::string::npos)
      << served["replay SampleApp-1 --at 1"];
  EXPECT_NE(served["replay SampleApp-1 --verify"].find("verified: every check holds"), std::string::npos)
      << served["replay SampleApp-1 --verify"];

  // The bundle from the server, written to a file `cascade audit verify` accepts.
  const std::string served_bundle = dir_ / "served.audit.json";
  const CommandRun exported = as("vic", "audit export SampleApp-1 --out " + served_bundle);
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  EXPECT_EQ(exported.output.rfind("wrote " + served_bundle + ": release SampleApp-1, ", 0), 0u) << exported.output;
  const CommandRun checked = run("audit verify " + served_bundle);
  ASSERT_EQ(checked.exit_code, 0) << checked.output;
  EXPECT_NE(checked.output.find("verified: every check holds"), std::string::npos) << checked.output;
  EXPECT_EQ(json::parse(testing::read_file(served_bundle))["exported_by"], "vic");

  // Errors as offline: not found 3, a bad --at 2 (refused before asking).
  EXPECT_EQ(as("vic", "why Nope-9 prod").exit_code, 3);
  EXPECT_EQ(as("vic", "replay Nope-9 --verify").exit_code, 3);
  EXPECT_EQ(as("vic", "audit export Nope-9 --out " + (dir_ / "nope.json")).exit_code, 3);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "nope.json"));
  const CommandRun beyond = as("vic", "replay SampleApp-1 --at 100000");
  EXPECT_EQ(beyond.exit_code, 2) << beyond.output;
  EXPECT_NE(beyond.output.find("--at 100000 is beyond its last version"), std::string::npos) << beyond.output;
  EXPECT_EQ(as("vic", "why SampleApp-1 prdo").exit_code, 3);

  ASSERT_EQ(server_->stop(SIGTERM, kStopDeadline), std::optional<int>(0));
  server_.reset();
  for (const std::string& command : commands) {
    const CommandRun offline = run(command + " --data " + data(), /*with_stderr=*/false);
    ASSERT_EQ(offline.exit_code, 0) << command << "\n" << offline.output;
    EXPECT_EQ(offline.output, served[command]) << command;
  }
  // The same bundle offline, but for when it was exported.
  const std::string offline_bundle = dir_ / "offline.audit.json";
  const CommandRun exported_offline =
      run("audit export SampleApp-1 --as vic --out " + offline_bundle + " --data " + data());
  ASSERT_EQ(exported_offline.exit_code, 0) << exported_offline.output;
  EXPECT_EQ(std::regex_replace(exported_offline.output, std::regex("offline\\.audit"), "served.audit"),
            exported.output);
  json from_server = json::parse(testing::read_file(served_bundle));
  json from_disk = json::parse(testing::read_file(offline_bundle));
  for (json* bundle : {&from_server, &from_disk}) {
    bundle->erase("exported_at");
    bundle->erase("exported_at_ms");
  }
  EXPECT_EQ(from_server, from_disk);
}

TEST_F(ClientCliTest, ApprovalOverTheCliRecordsTheTokensUserAndTheReleaseFinishes) {
  start_sample_release();
  const CommandRun approved = as("release-manager", "approve SampleApp-1 prod --comment 'ship it'");
  ASSERT_EQ(approved.exit_code, 0) << approved.output;
  EXPECT_NE(approved.output.find("approved by release-manager"), std::string::npos) << approved.output;

  const CommandRun done = as("vic", "release wait SampleApp-1 --until Succeeded --timeout 60s --json");
  ASSERT_EQ(done.exit_code, 0) << done.output;
  EXPECT_EQ(json::parse(done.output)["status"], "Succeeded");

  const json events = json::parse(as("vic", "events SampleApp-1 --json").output);
  const json* granted = nullptr;
  for (const json& event : events) {
    if (event["type"] == "ApprovalGranted") granted = &event;
  }
  ASSERT_NE(granted, nullptr);
  EXPECT_EQ((*granted)["actor"], "release-manager");
  EXPECT_EQ((*granted)["data"]["approver"], "release-manager");
  EXPECT_EQ((*granted)["data"]["comment"], "ship it");
  EXPECT_EQ(json::parse(as("release-manager", "release show SampleApp-1 --json").output)["requested_by"],
            "release-manager");
}

TEST_F(ClientCliTest, AnAdminOverridesAnApprovalOnlyWithOverride) {
  start_sample_release();
  const CommandRun plain = as("admin", "approve SampleApp-1 prod");
  EXPECT_EQ(plain.exit_code, 5) << plain.output;
  EXPECT_NE(plain.output.find("'admin' is not an approver of stage 'prod'"), std::string::npos) << plain.output;
  const CommandRun not_admin = as("bob", "approve SampleApp-1 prod --override");
  EXPECT_EQ(not_admin.exit_code, 5) << not_admin.output;
  EXPECT_NE(not_admin.output.find("'bob' may not override an approval"), std::string::npos) << not_admin.output;

  const CommandRun overridden = as("admin", "approve SampleApp-1 prod --override --comment hotfix --json");
  ASSERT_EQ(overridden.exit_code, 0) << overridden.output;
  const json approvals = json::parse(overridden.output)["stages"][3]["approvals"];
  ASSERT_EQ(approvals.size(), 1u) << overridden.output;
  EXPECT_EQ(approvals[0]["approver"], "admin");
}

TEST_F(ClientCliTest, ErrorsPrintTheServersMessageWithTheOfflineExitCodes) {
  start_sample_release();
  auto expect_error = [&](const CommandRun& answer, int exit_code, const std::string& message) {
    EXPECT_EQ(answer.exit_code, exit_code) << answer.output;
    EXPECT_NE(answer.output.find("cascade: error: " + message), std::string::npos) << answer.output;
  };
  expect_error(as("vic", "release show Nope-9"), 3, "no release 'Nope-9'");
  expect_error(as("vic", "approve SampleApp-1 prod"), 5, "this needs the approver role (you have viewer)");
  expect_error(as("bob", "approve SampleApp-1 prod"), 5, "'bob' is not an approver of stage 'prod'");
  expect_error(as("release-manager", "approve SampleApp-1 dev"), 4,
               "cannot approve stage 'dev' of release SampleApp-1: stage is Succeeded, expected AwaitingPreApproval");
  expect_error(run("release list --server " + server_->url() + " --token " + std::string(64, 'f')), 5, "invalid token");

  const CommandRun json_error = as("vic", "release show Nope-9 --json", /*with_stderr=*/false);
  EXPECT_EQ(json_error.exit_code, 3);
  EXPECT_EQ(json::parse(json_error.output)["error"]["code"], "not_found") << json_error.output;

  // Port 1 is privileged and nothing here listens on it.
  expect_error(run("release list --server http://127.0.0.1:1 --token x"), 1,
               "cannot reach the cascade server at http://127.0.0.1:1 (connection refused)");
  expect_error(run("release list --server " + server_->url() + " --data " + data()), 2, "both --server");
  expect_error(run("release list --data " + data()), 1, data() + " is held by a running server");
  expect_error(as("release-manager", "approve SampleApp-1 prod --as bob"), 2, "--as works offline only");
  expect_error(run("approve SampleApp-1 prod --data " + (dir_ / "other")), 2, "--as USER is required offline");
  expect_error(run("release list --server ftp://127.0.0.1:1"), 2,
               "--server 'ftp://127.0.0.1:1': expected http://HOST[:PORT] or https://HOST[:PORT]");
  expect_error(run("release list --server http://127.0.0.1:1 --ca " + data() + "/ca.pem"), 2,
               "--server 'http://127.0.0.1:1': a CA file is given but the URL is not https://");
  expect_error(run("release list --server https://127.0.0.1:1 --ca " + data() + "/missing.pem"), 2,
               "cannot use the CA file " + data() + "/missing.pem");
}

TEST_F(ClientCliTest, WatchPrintsTheEventsOfARelease) {
  start_sample_release();
  const CommandRun watched = as("vic", "watch SampleApp-1 --after 0 --count 3 --json", /*with_stderr=*/false);
  ASSERT_EQ(watched.exit_code, 0) << watched.output;
  std::istringstream lines(watched.output);
  std::vector<std::string> types;
  for (std::string line; std::getline(lines, line);) types.push_back(json::parse(line)["type"]);
  EXPECT_EQ(types, (std::vector<std::string>{"ReleaseCreated", "StageTriggered", "DeploymentStarted"}));

  const CommandRun timeline = as("vic", "watch SampleApp-1 --after 0 --count 2");
  ASSERT_EQ(timeline.exit_code, 0) << timeline.output;
  EXPECT_NE(timeline.output.find("SampleApp-1    release SampleApp-1 (SampleApp-1) created"), std::string::npos)
      << timeline.output;
  EXPECT_NE(timeline.output.find("SampleApp-1    dev triggered: release created"), std::string::npos)
      << timeline.output;
}

TEST_F(ClientCliTest, LogsFollowPrintsAFinishedStagesLinesAndEnds) {
  start_sample_release();
  const CommandRun logs = as("vic", "release logs SampleApp-1 dev");
  const CommandRun followed = as("vic", "release logs SampleApp-1 dev --follow");
  ASSERT_EQ(followed.exit_code, 0) << followed.output;
  EXPECT_EQ(followed.output, logs.output);
  EXPECT_FALSE(logs.output.empty());
}

TEST_F(ClientCliTest, LogsFollowPrintsARunningDeploymentsLinesUntilItEnds) {
  const std::string pipeline = dir_ / "follow.json";
  std::ofstream(pipeline) << R"({"name": "Follow", "stages": [{"name": "dev", "trigger": {"after_release": true},
      "steps": [{"name": "one", "run": "echo first; sleep 1; echo second"}, {"name": "two", "run": "echo third >&2"}]}]})";
  ASSERT_EQ(as("admin", "pipeline apply " + pipeline).exit_code, 0);
  std::filesystem::create_directories(data() + "/artifacts/follow");
  ASSERT_EQ(as("admin", "release create Follow --version 1 --artifact " + data() + "/artifacts/follow").exit_code, 0);
  // Started while the first step runs; ends by itself when the deployment does.
  const CommandRun followed = as("vic", "release logs Follow-1 dev --follow --json", /*with_stderr=*/false);
  ASSERT_EQ(followed.exit_code, 0) << followed.output;
  std::istringstream lines(followed.output);
  std::vector<std::string> texts;
  for (std::string line; std::getline(lines, line);) texts.push_back(json::parse(line)["text"]);
  EXPECT_EQ(texts, (std::vector<std::string>{"first", "second", "third"}));
  EXPECT_EQ(as("vic", "release wait Follow-1 --until Succeeded --timeout 60s").exit_code, 0);
}

// ---- safe for scripts (issue 15) -------------------------------------------

TEST_F(ClientCliTest, ACommandLineTheParserRefusesExitsTwoWithADidYouMean) {
  const CommandRun unknown_command = run("releases list");
  EXPECT_EQ(unknown_command.exit_code, 2) << unknown_command.output;
  EXPECT_NE(unknown_command.output.find("cascade: error: unknown command 'releases' for `cascade` (did you mean 'release'?)"),
            std::string::npos)
      << unknown_command.output;
  EXPECT_NE(unknown_command.output.find("run `cascade --help` for its usage"), std::string::npos);

  const CommandRun unknown_option = run("release wait SampleApp-1 --untill prod=Succeeded");
  EXPECT_EQ(unknown_option.exit_code, 2) << unknown_option.output;
  EXPECT_NE(unknown_option.output.find("unknown option --untill for `cascade release wait` (did you mean --until?)"),
            std::string::npos)
      << unknown_option.output;

  const CommandRun no_subcommand = run("release");
  EXPECT_EQ(no_subcommand.exit_code, 2) << no_subcommand.output;
  EXPECT_NE(no_subcommand.output.find("run `cascade release --help` for its usage"), std::string::npos)
      << no_subcommand.output;

  const CommandRun missing_argument = run("release show");
  EXPECT_EQ(missing_argument.exit_code, 2) << missing_argument.output;
  EXPECT_NE(missing_argument.output.find("ID is required"), std::string::npos) << missing_argument.output;

  EXPECT_EQ(run("release wait --help").exit_code, 0);
}

TEST_F(ClientCliTest, ReleaseWaitRefusesAConditionTheReleaseCanNeverMeetBeforeWaiting) {
  start_sample_release();
  auto expect_refused = [&](const std::string& until, const std::string& message) {
    // The default timeout is 10 minutes: a refusal comes at once or not at all.
    const CommandRun answer = as("vic", "release wait SampleApp-1 --until " + until);
    EXPECT_EQ(answer.exit_code, 2) << until << ": " << answer.output;
    EXPECT_NE(answer.output.find("cascade: error: --until: " + message), std::string::npos) << answer.output;
  };
  expect_refused("prd=Succeeded", "release SampleApp-1 has no stage 'prd' (did you mean 'prod'?)");
  expect_refused("prod=Succeded", "'Succeded' (did you mean 'Succeeded'?) is not a stage state");
  expect_refused("succeeded", "'succeeded' (did you mean 'Succeeded'?) is not a release status");
  expect_refused("Deploying", "'Deploying' is a stage state, not a release status: write STAGE=Deploying");

  // The same help wherever a stage is named.
  const CommandRun logs = as("vic", "release logs SampleApp-1 prd");
  EXPECT_EQ(logs.exit_code, 3) << logs.output;
  EXPECT_NE(logs.output.find("release SampleApp-1 has no stage 'prd' (did you mean 'prod'? stages: dev, test, qa, prod)"),
            std::string::npos)
      << logs.output;

  const CommandRun timed_out = as("vic", "release wait SampleApp-1 --until prod=Succeeded --timeout 1");
  EXPECT_EQ(timed_out.exit_code, 1) << timed_out.output;
  EXPECT_NE(timed_out.output.find("timed out after 1s waiting for SampleApp-1 to reach prod=Succeeded"),
            std::string::npos)
      << timed_out.output;
}

TEST_F(ClientCliTest, ReleaseWaitExitsFourWhenTheReleaseEndedBadlyUnlessThatWasAsked) {
  start_sample_release();
  ASSERT_EQ(as("release-manager", "reject SampleApp-1 prod --comment no").exit_code, 0);
  const CommandRun settled = as("vic", "release wait SampleApp-1 --timeout 60s");
  EXPECT_EQ(settled.exit_code, 4) << settled.output;
  EXPECT_NE(settled.output.find("cascade: error: release SampleApp-1 ended Rejected"), std::string::npos)
      << settled.output;
  EXPECT_NE(settled.output.find("prod    Rejected"), std::string::npos) << settled.output;  // the summary first
  // Times in the table carry their date and zone.
  EXPECT_NE(settled.output.find("STARTED (UTC)"), std::string::npos) << settled.output;
  EXPECT_TRUE(std::regex_search(settled.output, std::regex(R"(\ndev +Succeeded +1 +20\d\d-\d\d-\d\dT\d\d:\d\d)")))
      << settled.output;
  const CommandRun settled_json = as("vic", "release wait SampleApp-1 --timeout 60s --json", /*with_stderr=*/false);
  EXPECT_EQ(settled_json.exit_code, 4);
  EXPECT_EQ(json::parse(settled_json.output)["status"], "Rejected") << settled_json.output;  // one document
  EXPECT_EQ(as("vic", "release wait SampleApp-1 --until Rejected --timeout 60s").exit_code, 0);
  EXPECT_EQ(as("vic", "release wait SampleApp-1 --until prod=Rejected --timeout 60s").exit_code, 0);
}

TEST_F(ClientCliTest, ReadOnlyCommandsNeverCreateADataDirectory) {
  const std::filesystem::path missing = dir_ / "typo";
  for (const std::string& command : std::vector<std::string>{"why SampleApp-2 prod", "replay SampleApp-2", "replay SampleApp-2 --verify",
                                     "audit export SampleApp-2 --out " + (dir_ / "bundle"), "release list",
                                     "release show SampleApp-2", "events SampleApp-2", "projections status"}) {
    const CommandRun answer = run(command + " --data " + missing.string());
    EXPECT_EQ(answer.exit_code, 3) << command << ": " << answer.output;
    EXPECT_NE(answer.output.find("no data directory " + missing.string() + ": give --data"), std::string::npos)
        << command << ": " << answer.output;
    EXPECT_FALSE(std::filesystem::exists(missing)) << command << " created " << missing;
  }
  const std::filesystem::path empty = dir_ / "empty";
  std::filesystem::create_directories(empty);
  const CommandRun in_empty = run("release list --data " + empty.string());
  EXPECT_EQ(in_empty.exit_code, 3) << in_empty.output;
  EXPECT_NE(in_empty.output.find("no Cascade data in " + empty.string() + " (it has no event log, log/)"),
            std::string::npos)
      << in_empty.output;
  EXPECT_TRUE(std::filesystem::is_empty(empty));
}

TEST_F(ClientCliTest, AReleaseOfAMissingArtifactIsRefusedAtCreation) {
  ASSERT_EQ(as("admin", "pipeline apply " + std::string(CASCADE_SOURCE_DIR) + "/tools/examples/sampleapp.json").exit_code, 0);
  const std::string missing = data() + "/artifacts/never-built";
  const CommandRun refused = as("release-manager", "release create SampleApp --version 1.0 --artifact " + missing);
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_NE(refused.output.find("artifact.path: no file or directory at " + missing + " on the server"),
            std::string::npos)
      << refused.output;
  EXPECT_EQ(as("vic", "release show SampleApp-1").exit_code, 3);  // nothing was created

  // Offline the same check runs where the steps would.
  const std::string offline = dir_ / "offline";
  ASSERT_EQ(run("pipeline apply " + std::string(CASCADE_SOURCE_DIR) + "/tools/examples/sampleapp.json --data " + offline)
                .exit_code,
            0);
  const CommandRun offline_refused = run("release create SampleApp --version 1.0 --artifact /nonexistent --data " + offline);
  EXPECT_EQ(offline_refused.exit_code, 2) << offline_refused.output;
  EXPECT_NE(offline_refused.output.find("--artifact: no file or directory at /nonexistent"), std::string::npos)
      << offline_refused.output;
}

TEST_F(ClientCliTest, ApproversNobodyCanActForAreAWarningAndWithStrictARefusal) {
  const std::string pipeline = dir_ / "gated.json";
  std::ofstream(pipeline) << R"({"name": "Gated", "groups": {"leads": ["bob"], "ghosts": ["nobody"]},
      "stages": [{"name": "prod", "trigger": {"after_release": true},
                  "pre_approval": {"approvers": ["release-manager", "leads", "cto", "ghosts"]},
                  "steps": [{"name": "deploy", "run": "true"}]}]})";
  const CommandRun strict = as("admin", "pipeline apply " + pipeline + " --strict");
  EXPECT_EQ(strict.exit_code, 2) << strict.output;
  EXPECT_NE(strict.output.find("stages[0].pre_approval.approvers[2]: 'cto' is no user or group the server knows: "
                               "stage 'prod' would wait for an approval nobody can give"),
            std::string::npos)
      << strict.output;
  EXPECT_NE(strict.output.find("stages[0].pre_approval.approvers[3]: 'ghosts'"), std::string::npos) << strict.output;
  EXPECT_EQ(as("vic", "pipeline versions Gated").exit_code, 3);  // nothing stored

  const CommandRun warned = as("admin", "pipeline apply " + pipeline);
  EXPECT_EQ(warned.exit_code, 0) << warned.output;
  EXPECT_NE(warned.output.find("cascade: warning: stages[0].pre_approval.approvers[2]: 'cto' is no user"),
            std::string::npos)
      << warned.output;
  EXPECT_EQ(warned.output.find("approvers[0]"), std::string::npos) << "release-manager is a user";
  EXPECT_EQ(warned.output.find("approvers[1]"), std::string::npos) << "leads has bob";
  EXPECT_NE(warned.output.find("pipeline Gated is at version 1"), std::string::npos) << warned.output;
}

TEST_F(ClientCliTest, AMalformedFileIsReportedOnce) {
  const std::string file = dir_ / "broken.json";
  std::ofstream(file) << "{\"name\": \"x\", ";
  const CommandRun answer = as("admin", "pipeline apply " + file);
  EXPECT_EQ(answer.exit_code, 2) << answer.output;
  const std::string message = "malformed JSON at line 1, column 15";
  const std::size_t first = answer.output.find(message);
  ASSERT_NE(first, std::string::npos) << answer.output;
  EXPECT_EQ(answer.output.find(message, first + 1), std::string::npos) << answer.output;
}

// Two pipelines that name releases the default way, Release-$(rev:r): Shop's
// second release has a name of its own, while Release-1 names two releases.
TEST_F(ClientCliTest, ADisplayNameWorksWhereverAnIdDoesAndARepeatedOneIsRefusedWithTheIds) {
  json sample = json::parse(testing::read_file(std::string(CASCADE_SOURCE_DIR) + "/tools/examples/sampleapp.json"));
  sample.erase("release_name_format");
  const std::string artifact = data() + "/artifacts/artifact";
  std::filesystem::create_directories(artifact);
  std::ofstream(artifact + "/index.html") << "<h1>SampleApp</h1><p>build 1.0</p>\n";  // what the checks look for
  for (const char* pipeline : {"Shop", "Blog"}) {
    sample["name"] = pipeline;
    const std::string file = dir_ / (std::string(pipeline) + ".json");
    std::ofstream(file) << sample.dump();
    const CommandRun applied = as("admin", "pipeline apply " + file);
    ASSERT_EQ(applied.exit_code, 0) << applied.output;
  }
  for (const char* pipeline : {"Shop", "Shop", "Blog"}) {
    const CommandRun created = as("release-manager", std::string("release create ") + pipeline +
                                                         " --version 1.0 --artifact " + artifact +
                                                         " --var SITES_ROOT=" + (dir_ / "sites") + " --json");
    ASSERT_EQ(created.exit_code, 0) << created.output;
    // One at a time: the sample's steps share one site folder per stage.
    const std::string id = json::parse(created.output)["id"];
    const CommandRun ready = as("vic", "release wait " + id + " --until prod=AwaitingPreApproval --timeout 60s");
    ASSERT_EQ(ready.exit_code, 0) << ready.output;
  }

  const CommandRun waited = as("vic", "release wait Release-2 --until prod=AwaitingPreApproval --timeout 60s --json");
  ASSERT_EQ(waited.exit_code, 0) << waited.output;
  EXPECT_EQ(json::parse(waited.output)["id"], "Shop-2");
  const CommandRun shown = as("vic", "release show Release-2 --json", /*with_stderr=*/false);
  ASSERT_EQ(shown.exit_code, 0) << shown.output;
  EXPECT_EQ(json::parse(shown.output)["id"], "Shop-2");
  EXPECT_EQ(as("vic", "why Release-2 prod", false).output, as("vic", "why Shop-2 prod", false).output);

  const CommandRun repeated = as("release-manager", "approve Release-1 prod");
  EXPECT_EQ(repeated.exit_code, 2) << repeated.output;
  EXPECT_NE(repeated.output.find("release name 'Release-1' belongs to 2 releases (Shop-1, Blog-1)"), std::string::npos)
      << repeated.output;
  const CommandRun approved = as("release-manager", "approve Release-2 prod --comment ok");
  ASSERT_EQ(approved.exit_code, 0) << approved.output;
  EXPECT_EQ(json::parse(as("vic", "release wait Shop-2 --timeout 60s --json", false).output)["status"], "Succeeded");

  // Offline, on the same data: the same resolution.
  ASSERT_EQ(server_->stop(SIGTERM, kStopDeadline), std::optional<int>(0));
  server_.reset();
  const CommandRun offline = run("release show Release-2 --json --data " + data(), /*with_stderr=*/false);
  ASSERT_EQ(offline.exit_code, 0) << offline.output;
  EXPECT_EQ(json::parse(offline.output)["id"], "Shop-2");
  EXPECT_EQ(run("replay Release-2 --at 1 --data " + data(), false).output,
            run("replay Shop-2 --at 1 --data " + data(), false).output);
  const CommandRun offline_repeated = run("release events Release-1 --data " + data());
  EXPECT_EQ(offline_repeated.exit_code, 2) << offline_repeated.output;
}

}  // namespace
}  // namespace cascade
