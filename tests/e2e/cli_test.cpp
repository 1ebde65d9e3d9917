// The real `cascade` program, run as a user would, against a temp data dir.
#include "tests/support/cli_runner.hpp"
#include "tests/support/temp_dir.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <sys/wait.h>

namespace cascade {
namespace {

using testing::CommandRun;
using testing::read_file;
using testing::run;

const nlohmann::json* find_event(const nlohmann::json& events, const std::string& type, const std::string& stage) {
  for (const auto& e : events) {
    if (e["type"] == type && e["data"].value("stage", "") == stage) return &e;
  }
  return nullptr;
}

class CliTest : public ::testing::Test {
 protected:
  std::string data() const { return "--data " + dir_.path(); }
  testing::TempDir dir_;
};

TEST_F(CliTest, DemoRunsTheSampleReleaseEndToEnd) {
  const CommandRun demo = run("demo " + data());
  ASSERT_EQ(demo.exit_code, 0) << demo.output;
  const auto pending = demo.output.find("approval pending: prod (approvers: release-manager)");
  const auto approved = demo.output.find("prod approved by release-manager");
  const auto prod_deployed = demo.output.find("prod deployed");
  ASSERT_NE(pending, std::string::npos) << demo.output;
  EXPECT_LT(pending, approved);
  EXPECT_LT(approved, prod_deployed);
  EXPECT_NE(demo.output.find("status: Succeeded"), std::string::npos) << demo.output;

  const CommandRun listed = run("events SampleApp-1 --json " + data());
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  const nlohmann::json events = nlohmann::json::parse(listed.output);
  const std::string version = events[0]["data"]["artifact"]["version"];
  for (const char* site : {"SampleApp-Dev", "SampleApp-Test", "SampleApp-QA", "SampleApp-Prod"}) {
    EXPECT_NE(read_file(dir_ / ("sites/" + std::string(site) + "/index.html")).find("build " + version),
              std::string::npos)
        << site;
  }

  auto at = [&](const char* type, const char* stage) {
    const nlohmann::json* e = find_event(events, type, stage);
    EXPECT_NE(e, nullptr) << type << " " << stage;
    return e == nullptr ? std::pair<std::int64_t, std::uint64_t>{0, 0}
                        : std::pair<std::int64_t, std::uint64_t>{(*e)["recorded_at"], (*e)["position"]};
  };
  const auto dev_done = at("DeploymentSucceeded", "dev");
  const auto test_start = at("DeploymentStarted", "test"), test_end = at("DeploymentSucceeded", "test");
  const auto qa_start = at("DeploymentStarted", "qa"), qa_end = at("DeploymentSucceeded", "qa");
  // dev finished before test and qa started.
  EXPECT_LT(dev_done.second, test_start.second);
  EXPECT_LT(dev_done.second, qa_start.second);
  EXPECT_LE(dev_done.first, std::min(test_start.first, qa_start.first));
  // test and qa overlapped in time.
  EXPECT_LT(test_start.first, qa_end.first);
  EXPECT_LT(qa_start.first, test_end.first);
  // prod started only after the approval.
  EXPECT_GT(at("DeploymentStarted", "prod").second, at("ApprovalGranted", "prod").second);
  EXPECT_EQ(find_event(events, "ApprovalGranted", "prod")->at("actor"), "release-manager");
}

TEST_F(CliTest, StepByStepCommandsResumeFromTheLog) {
  const std::string pipeline = std::string(CASCADE_SOURCE_DIR) + "/tools/examples/sampleapp.json";
  const CommandRun applied = run("pipeline apply " + pipeline + " " + data());
  ASSERT_EQ(applied.exit_code, 0) << applied.output;
  EXPECT_NE(applied.output.find("pipeline SampleApp is at version 1"), std::string::npos);
  EXPECT_NE(run("pipeline apply " + pipeline + " " + data()).output.find("version 1"), std::string::npos)
      << "unchanged content, same version";

  const std::string artifact = dir_ / "artifact";
  std::filesystem::create_directories(artifact);
  std::ofstream(artifact + "/index.html") << "<h1>SampleApp</h1> build 2.0.0\n";
  const CommandRun created = run("release create SampleApp --version 2.0.0 --artifact " + artifact + " --var SITES_ROOT=" +
                          (dir_ / "sites") + " --as alice " + data());
  ASSERT_EQ(created.exit_code, 0) << created.output;
  EXPECT_NE(created.output.find("approval pending: prod"), std::string::npos) << created.output;
  EXPECT_NE(created.output.find("WaitingForApproval"), std::string::npos) << created.output;

  const CommandRun intruder = run("approve SampleApp-1 prod --as mallory " + data());
  EXPECT_EQ(intruder.exit_code, 5) << intruder.output;
  EXPECT_NE(intruder.output.find("'mallory' is not an approver of stage 'prod'"), std::string::npos);

  const CommandRun early = run("approve SampleApp-1 dev --as release-manager " + data());
  EXPECT_EQ(early.exit_code, 4) << early.output;
  EXPECT_NE(early.output.find("cannot approve stage 'dev' of release SampleApp-1: stage is Succeeded, expected "
                              "AwaitingPreApproval"),
            std::string::npos)
      << early.output;

  const CommandRun approved = run("approve SampleApp-1 prod --as release-manager --comment ship " + data());
  ASSERT_EQ(approved.exit_code, 0) << approved.output;
  EXPECT_NE(approved.output.find("prod deployed"), std::string::npos) << approved.output;

  const CommandRun shown = run("release show SampleApp-1 --json " + data());
  ASSERT_EQ(shown.exit_code, 0) << shown.output;
  const auto summary = nlohmann::json::parse(shown.output);
  EXPECT_EQ(summary["status"], "Succeeded");
  EXPECT_EQ(summary["requested_by"], "alice");
  EXPECT_EQ(summary["stages"][3]["approvals"][0]["comment"], "ship");

  const CommandRun logs = run("release logs SampleApp-1 prod " + data());
  EXPECT_EQ(logs.exit_code, 0);
  EXPECT_NE(logs.output.find("deployed 2.0.0 to SampleApp-Prod"), std::string::npos) << logs.output;

  const CommandRun list = run("release list " + data());
  EXPECT_NE(list.output.find("SampleApp-1"), std::string::npos) << list.output;
  EXPECT_NE(list.output.find("Succeeded"), std::string::npos);
}

TEST_F(CliTest, InvalidPipelineFileListsEveryProblemWithItsPath) {
  const std::string file = dir_ / "bad.json";
  std::ofstream(file) << R"({"name": "Bad", "stages": [
    {"name": "dev", "trigger": {"after_stages": ["prod"]}, "stepz": []},
    {"name": "prod", "trigger": {"after_stages": ["dev"]}, "steps": [{"name": "x", "run": "true"}]}]})";
  const CommandRun applied = run("pipeline apply " + file + " " + data());
  EXPECT_EQ(applied.exit_code, 2);
  EXPECT_NE(applied.output.find("stages[0].stepz: unknown field 'stepz' (did you mean 'steps'?)"), std::string::npos)
      << applied.output;
  EXPECT_NE(applied.output.find("cycle: "), std::string::npos) << applied.output;
  EXPECT_NE(applied.output.find("no stage is triggered by release creation"), std::string::npos);
}

TEST_F(CliTest, DemoApprovedBySomeoneNotListedStopsAtTheApproval) {
  const CommandRun demo = run("demo --approve-as mallory " + data());
  EXPECT_EQ(demo.exit_code, 5) << demo.output;
  EXPECT_NE(demo.output.find("'mallory' is not an approver of stage 'prod'"), std::string::npos);
  EXPECT_EQ(demo.output.find("prod deployed"), std::string::npos);
}

}  // namespace
}  // namespace cascade

namespace cascade {
namespace {

class CliReleaseControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pipeline_ = dir_ / "ops.json";
    std::ofstream(pipeline_) << R"json({
      "name": "Ops",
      "variables": {"DB_PASSWORD": {"value": "pw-Zx81-secret", "secret": true},
                    "API_TOKEN": {"value": "no-token", "secret": true, "settable": true}},
      "stages": [
        {"name": "build-check", "trigger": {"after_release": true},
         "steps": [{"name": "check", "run": "echo checking with $(DB_PASSWORD) and $API_TOKEN"}]},
        {"name": "prod", "trigger": {"after_stages": ["build-check"]}, "pre_approval": {"approvers": ["alice"]},
         "steps": [{"name": "deploy", "run": "echo deploying $CASCADE_ARTIFACT_VERSION"}]},
        {"name": "hotfix", "trigger": {"manual": true}, "steps": [{"name": "patch", "run": "echo patched"}]}
      ]})json";
    ASSERT_EQ(run("pipeline apply " + pipeline_ + " " + data()).exit_code, 0);
    std::filesystem::create_directories(dir_ / "artifact");
  }
  std::string data() const { return "--data " + dir_.path(); }
  std::string create(const std::string& extra = "") {
    CommandRun created = run("release create Ops --version 3.1.0 --artifact " + (dir_ / "artifact") +
                             " --as bob --json " + extra + " " + data());
    EXPECT_EQ(created.exit_code, 0) << created.output;
    return nlohmann::json::parse(created.output)["id"];
  }
  nlohmann::json show(const std::string& id) {
    return nlohmann::json::parse(run("release show " + id + " --json " + data()).output);
  }
  static std::string stage_status(const nlohmann::json& summary, const std::string& stage) {
    for (const auto& s : summary["stages"]) {
      if (s["name"] == stage) return s["status"];
    }
    return "";
  }
  testing::TempDir dir_;
  std::string pipeline_;
};

TEST_F(CliReleaseControlTest, CancelThenRedeployThenApproveLater) {
  const std::string id = create();
  EXPECT_EQ(stage_status(show(id), "prod"), "AwaitingPreApproval");
  const CommandRun canceled = run("cancel " + id + " prod --as alice --reason 'wrong window' " + data());
  ASSERT_EQ(canceled.exit_code, 0) << canceled.output;
  EXPECT_NE(canceled.output.find("prod canceled: wrong window"), std::string::npos) << canceled.output;
  EXPECT_EQ(show(id)["status"], "Canceled");

  const CommandRun again = run("cancel " + id + " prod --as alice " + data());
  EXPECT_EQ(again.exit_code, 4);
  EXPECT_NE(again.output.find("stage is Canceled, expected"), std::string::npos) << again.output;

  const CommandRun redeployed = run("redeploy " + id + " prod --as alice " + data());
  ASSERT_EQ(redeployed.exit_code, 0) << redeployed.output;
  EXPECT_NE(redeployed.output.find("prod triggered: redeploy by alice (attempt 2)"), std::string::npos);
  const CommandRun deferred = run("approve " + id + " prod --as alice --defer-until 2000-01-01T00:00:00Z " + data());
  EXPECT_EQ(deferred.exit_code, 2) << "a deferral in the past is refused";
  EXPECT_NE(deferred.output.find("defer_until must be in the future"), std::string::npos) << deferred.output;
  const CommandRun approved = run("approve " + id + " prod --as alice " + data());
  ASSERT_EQ(approved.exit_code, 0) << approved.output;
  const auto summary = show(id);
  EXPECT_EQ(stage_status(summary, "prod"), "Succeeded");
  EXPECT_EQ(summary["status"], "Succeeded");
}

TEST_F(CliReleaseControlTest, DeployRunsAManualStageOnceAndAbandonStopsTheRest) {
  const std::string id = create();
  const CommandRun redeploy = run("redeploy " + id + " hotfix --as bob " + data());
  EXPECT_EQ(redeploy.exit_code, 4);
  EXPECT_NE(redeploy.output.find("was never deployed; use deploy"), std::string::npos) << redeploy.output;
  const CommandRun deployed = run("deploy " + id + " hotfix --as bob " + data());
  ASSERT_EQ(deployed.exit_code, 0) << deployed.output;
  EXPECT_NE(deployed.output.find("hotfix deployed"), std::string::npos) << deployed.output;
  EXPECT_EQ(run("deploy " + id + " hotfix --as bob " + data()).exit_code, 4) << "deploy once; then redeploy";

  const CommandRun abandoned = run("abandon " + id + " --as alice --reason 'bad build' " + data());
  ASSERT_EQ(abandoned.exit_code, 0) << abandoned.output;
  EXPECT_NE(abandoned.output.find("release abandoned: bad build"), std::string::npos) << abandoned.output;
  const auto summary = show(id);
  EXPECT_EQ(summary["status"], "Abandoned");
  EXPECT_EQ(stage_status(summary, "prod"), "Canceled");
  const CommandRun late = run("approve " + id + " prod --as alice " + data());
  EXPECT_EQ(late.exit_code, 4) << late.output;
}

TEST_F(CliReleaseControlTest, SecretsAreMaskedInLogsAndNowhereOnDisk) {
  const std::string id = create("--secret API_TOKEN=tok-Qq72-secret");
  const CommandRun logs = run("release logs " + id + " build-check " + data());
  ASSERT_EQ(logs.exit_code, 0);
  EXPECT_NE(logs.output.find("checking with *** and ***"), std::string::npos) << logs.output;
  EXPECT_EQ(run("events " + id + " --json " + data()).output.find("tok-Qq72-secret"), std::string::npos);
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir_.path())) {
    if (!entry.is_regular_file() || entry.path() == pipeline_) continue;
    const std::string bytes = read_file(entry.path());
    EXPECT_EQ(bytes.find("pw-Zx81-secret"), std::string::npos) << entry.path();
    EXPECT_EQ(bytes.find("tok-Qq72-secret"), std::string::npos) << entry.path();
  }
}

}  // namespace
}  // namespace cascade

namespace cascade {
namespace {

TEST_F(CliReleaseControlTest, ARepeatedCommandWithItsIdempotencyKeyIsANoOp) {
  const std::string id = create();
  const std::string cancel = "cancel " + id + " prod --as alice --idempotency-key op-7 " + data();
  const CommandRun first = run(cancel);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_NE(first.output.find("prod canceled"), std::string::npos);
  const CommandRun repeated = run(cancel);
  EXPECT_EQ(repeated.exit_code, 0) << repeated.output;
  EXPECT_EQ(repeated.output.find("prod canceled"), std::string::npos) << "nothing happened the second time";

  const std::string create_once = "release create Ops --version 9.9.9 --artifact " + (dir_ / "artifact") +
                                  " --as bob --json --idempotency-key build-99 " + data();
  const auto a = nlohmann::json::parse(run(create_once).output);
  const auto b = nlohmann::json::parse(run(create_once).output);
  EXPECT_EQ(a["id"], b["id"]);
}

}  // namespace
}  // namespace cascade
