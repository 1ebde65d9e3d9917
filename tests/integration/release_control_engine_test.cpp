// Release control through the running engine: time-driven decisions with a
// manual clock, queue policies across releases, cancel with real processes,
// and secrets that never reach the disk in plain text.
#include "adapters/process/process_step_runner.hpp"

#include "tests/support/engine_harness.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <fstream>

namespace cascade::engine {
namespace {

using events::RecordedEvent;
constexpr std::int64_t kHour = 3600LL * 1000;

class ReleaseControlEngineTest : public testing::EngineHarness {
 protected:
  std::vector<RecordedEvent> all_events() {
    auto events = store_->log().read_all(1, 1'000'000);
    EXPECT_TRUE(events);
    return events.value();
  }
};

TEST_F(ReleaseControlEngineTest, AnUnansweredApprovalTimesOutAfterThirtyDaysOnTheClock) {
  run();
  apply(testing::kForkJoinPipeline);
  const std::string id = create("SampleApp");
  settle();
  ASSERT_EQ(state_of(id, "prod"), StageState::kAwaitingPreApproval);
  clock_.advance(std::chrono::hours(24 * 30) - std::chrono::milliseconds(1));
  settle();
  EXPECT_EQ(state_of(id, "prod"), StageState::kAwaitingPreApproval) << "one millisecond early";
  clock_.advance(std::chrono::milliseconds(1));
  settle();
  EXPECT_EQ(state_of(id, "prod"), StageState::kRejected);
  EXPECT_EQ(count<events::ApprovalTimedOut>(id), 1u);
  EXPECT_EQ(release_status(load(id)), ReleaseStatus::kRejected);
}

TEST_F(ReleaseControlEngineTest, ADeferralFiresAfterARestartAtItsTimeAndOnlyOnce) {
  run();
  apply(testing::kForkJoinPipeline);
  const std::string id = create("SampleApp");
  settle();
  ASSERT_TRUE(service().execute(id, ApproveStage{"prod", "tonight", clock_.now() + 2 * kHour},
                                Invocation{"release-manager", "", ""}));
  settle();
  ASSERT_EQ(state_of(id, "prod"), StageState::kDeferred);
  stop();
  clock_.advance(std::chrono::hours(3));
  start();
  settle();
  EXPECT_EQ(state_of(id, "prod"), StageState::kSucceeded);
  EXPECT_EQ(count<events::DeferralElapsed>(id), 1u);
  stop();
  start();
  settle();
  EXPECT_EQ(count<events::DeferralElapsed>(id), 1u) << "a second restart fires nothing again";
  EXPECT_EQ(count<events::DeploymentStarted>(id), 4u);
}

TEST_F(ReleaseControlEngineTest, DeployLatestLeavesOnlyTheNewestOfThreeReleasesWaitingForProd) {
  apply(R"({"name": "Web", "stages": [
    {"name": "dev", "trigger": {"after_release": true}, "steps": [{"name": "d", "run": "d"}]},
    {"name": "prod", "trigger": {"after_stages": ["dev"]}, "on_new_release": "deploy_latest",
     "pre_approval": {"approvers": ["alice"]}, "steps": [{"name": "d", "run": "d"}]}]})");
  run();
  const std::string first = create("Web"), second = create("Web"), third = create("Web");
  settle();
  EXPECT_EQ(state_of(third, "prod"), StageState::kAwaitingPreApproval);
  // Each older release names the newer one that reached prod while it waited:
  // the second can only have met the third; the first met the second or the third.
  const std::map<std::string, std::vector<std::string>> superseded_by = {{first, {second, third}}, {second, {third}}};
  for (const auto& [older, newer] : superseded_by) {
    const ReleaseState release = load(older);
    EXPECT_EQ(release.find_stage("prod")->state(), StageState::kCanceled) << older;
    const std::string reason = release.find_stage("prod")->failure_reason;
    EXPECT_TRUE(reason == "superseded by " + newer.front() || reason == "superseded by " + newer.back())
        << older << ": " << reason;
    EXPECT_EQ(release.find_stage("prod")->approvals.back().decision, ApprovalDecision::kClosed) << "no dangling approval";
  }
}

TEST_F(ReleaseControlEngineTest, MaxParallelOneDeploysReleasesOneAtATimeInOrder) {
  apply(R"({"name": "Db", "stages": [{"name": "migrate", "trigger": {"after_release": true}, "max_parallel": 1,
    "steps": [{"name": "a", "run": "a"}, {"name": "b", "run": "b"}]}]})");
  const std::string first = create("Db"), second = create("Db"), third = create("Db");
  run();
  settle();
  std::vector<std::pair<std::string, std::string>> order;  // (release, event type)
  for (const RecordedEvent& e : all_events()) {
    if (std::holds_alternative<events::DeploymentStarted>(e.data) ||
        std::holds_alternative<events::DeploymentSucceeded>(e.data)) {
      order.emplace_back(e.correlation_id, std::string(events::type_name(e.data)));
    }
  }
  const std::vector<std::pair<std::string, std::string>> expected = {
      {first, "DeploymentStarted"},  {first, "DeploymentSucceeded"},  {second, "DeploymentStarted"},
      {second, "DeploymentSucceeded"}, {third, "DeploymentStarted"}, {third, "DeploymentSucceeded"}};
  EXPECT_EQ(order, expected);
}

TEST_F(ReleaseControlEngineTest, AFailedStageRedeploysTheLastReleaseThatSucceededThere) {
  apply(R"json({"name": "Api", "stages": [{"name": "prod", "trigger": {"after_release": true},
    "on_failure": "redeploy_last_good", "steps": [{"name": "deploy", "run": "deploy $(CASCADE_ARTIFACT_VERSION)"}]}]})json");
  scripted_.fail("prod", "deploy 2.0.0", 1);
  run();
  const std::string good = create("Api", "1.0.0");
  settle();
  const std::string bad = create("Api", "2.0.0");
  settle();
  EXPECT_EQ(state_of(bad, "prod"), StageState::kFailed);
  const ReleaseState rolled_back = load(good);
  EXPECT_EQ(rolled_back.find_stage("prod")->attempt, 2);
  EXPECT_EQ(rolled_back.find_stage("prod")->trigger_reason, "auto-redeploy: " + bad + " failed at prod");
  EXPECT_EQ(rolled_back.find_stage("prod")->state(), StageState::kSucceeded);
}

bool is_dead(pid_t pid) {
  // Bounded: the kill has been sent; the kernel only has to finish it. An
  // unreaped zombie counts as dead.
  for (int i = 0; i < 200; ++i) {
    if (kill(pid, 0) != 0 && errno == ESRCH) return true;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string pid_field, name, state;
    if (stat >> pid_field >> name >> state && state == "Z") return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

TEST_F(ReleaseControlEngineTest, CancelKillsTheRunningStepAndItsChildren) {
  SystemClock real_time;
  adapters::ProcessStepRunner processes(real_time);
  apply(R"({"name": "Batch", "stages": [{"name": "dev", "trigger": {"after_release": true}, "steps": [
    {"name": "long", "run": "sleep 60 & echo $! > child.pid; echo started; wait"},
    {"name": "never", "run": "touch never-ran"}]}]})");
  start(processes);
  const std::string id = create("Batch");
  const std::string pid_file = dir_ / ("work/" + id + "/dev/1/child.pid");
  // Wait (bounded, on the log's own signal) until the step has written its pid.
  for (int i = 0; i < 500 && !std::filesystem::exists(pid_file); ++i) {
    store_->log().wait_for_events(store_->log().head(), std::chrono::milliseconds(20));
  }
  std::ifstream in(pid_file);
  pid_t child = 0;
  ASSERT_TRUE(in >> child) << "the step never started";
  ASSERT_TRUE(service().execute(id, CancelStage{"dev", ""}, Invocation{"alice", "", ""}));
  settle();
  const ReleaseState release = load(id);
  EXPECT_EQ(release.find_stage("dev")->state(), StageState::kCanceled);
  EXPECT_EQ(release.find_stage("dev")->failure_reason, "canceled by alice");
  EXPECT_EQ(release.find_stage("dev")->steps[0].status, StepStatus::kCanceled);
  EXPECT_EQ(release.find_stage("dev")->steps[1].status, StepStatus::kCanceled);
  EXPECT_TRUE(is_dead(child)) << "the step's background child survived";
  EXPECT_FALSE(std::filesystem::exists(dir_ / ("work/" + id + "/dev/1/never-ran")));
}

TEST_F(ReleaseControlEngineTest, SecretsReachStepsButNeitherTheDiskNorTheLogs) {
  const std::string pipeline_secret = "pIpE-s3cret-7f1c", release_secret = "rElEaSe-s3cret-90ab";
  apply(R"({"name": "Pay", "variables": {"DB_PASSWORD": {"value": ")" + pipeline_secret + R"json(", "secret": true},
                                        "API_TOKEN": {"value": "default-token", "secret": true, "settable": true}},
    "stages": [{"name": "dev", "trigger": {"after_release": true},
                "steps": [{"name": "show", "run": "connect $(DB_PASSWORD) $(API_TOKEN)"}]}]})json");
  run();
  const std::string id = create("Pay", "1.0.0", {}, {{"API_TOKEN", release_secret}});
  settle();
  ASSERT_EQ(state_of(id, "dev"), StageState::kSucceeded);
  const auto environments = scripted_.environments();
  ASSERT_EQ(environments.size(), 1u);
  EXPECT_EQ(environments[0].at("DB_PASSWORD"), pipeline_secret) << "steps get the value";
  EXPECT_EQ(environments[0].at("API_TOKEN"), release_secret);
  auto lines = store_->step_logs().read({id, "dev", 1, 0});
  ASSERT_TRUE(lines);
  ASSERT_EQ(lines.value().size(), 1u);
  EXPECT_EQ(lines.value()[0].text, "dev ran connect *** ***") << "masked in the captured log";
  // $(name) is a reference to the environment: the command line holds no value.
  EXPECT_EQ(scripted_.command_lines().back(), "connect \"${DB_PASSWORD}\" \"${API_TOKEN}\"");

  // A releaser who guesses the pipeline's secret cannot confirm the guess by
  // comparing its digest with the one in the pipeline's definition.
  const std::string guess = create("Pay", "1.0.1", {}, {{"API_TOKEN", pipeline_secret}});
  const std::string guessed_digest = load(guess).secret_variables.at("API_TOKEN");
  const std::string pipeline_digest = service().load_pipeline("Pay").value().definition.variables.at("DB_PASSWORD").secret_digest;
  EXPECT_EQ(pipeline_digest.size(), 64u);
  EXPECT_NE(guessed_digest, pipeline_digest);
  settle();
  auto summary = summaries_->summary(id);
  ASSERT_TRUE(summary);
  EXPECT_NE(summary.value().find("API_TOKEN"), std::string::npos) << "the name is shown";

  stop();
  ASSERT_TRUE(store_->flush_for_test());
  store_.reset();  // everything on disk
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir_.path())) {
    if (!entry.is_regular_file()) continue;
    std::ifstream file(entry.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(file)), {});
    ++files;
    EXPECT_EQ(bytes.find(pipeline_secret), std::string::npos) << entry.path();
    EXPECT_EQ(bytes.find(release_secret), std::string::npos) << entry.path();
  }
  EXPECT_GT(files, 5u);
}

}  // namespace
}  // namespace cascade::engine
