// Release control through the running engine: time-driven decisions with a
// manual clock, queue policies across releases, cancel with real processes,
// and secrets that never reach the disk in plain text.
#include "adapters/process/process_step_runner.hpp"
#include "adapters/rocksdb/store.hpp"
#include "engine/executor.hpp"
#include "engine/orchestrator.hpp"
#include "engine/release_service.hpp"
#include "engine/scheduler.hpp"
#include "projections/release_summary.hpp"

#include "tests/support/release_fixture.hpp"
#include "tests/support/scripted_runner.hpp"
#include "tests/support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <fstream>

namespace cascade::engine {
namespace {

using events::RecordedEvent;
constexpr std::int64_t kHour = 3600LL * 1000;

class ReleaseControlEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = adapters::RocksStore::open(dir_ / "log");
    ASSERT_TRUE(store) << store.error().message;
    store_ = std::move(store).value();
    service_ = std::make_unique<ReleaseService>(store_->log(), store_->secrets(), clock_);
  }
  void TearDown() override { stop(); }

  void start(StepRunner& runner) {
    auto summaries = projections::ReleaseSummaryProjection::open(dir_ / "projections", store_->log());
    ASSERT_TRUE(summaries) << summaries.error().message;
    summaries_ = std::move(summaries).value();
    engine_ = std::make_unique<Engine>(store_->log());
    orchestrator_ = std::make_unique<Orchestrator>(*service_, store_->checkpoints());
    ExecutorOptions options;
    options.work_root = dir_ / "work";
    options.base_env = {{"PATH", "/usr/bin:/bin"}};
    auto notify = [this] { engine_->notify_progress(); };
    executor_ = std::make_unique<Executor>(*service_, runner, store_->step_logs(), store_->secrets(),
                                           store_->checkpoints(), clock_, options, notify);
    scheduler_ = std::make_unique<Scheduler>(*service_, store_->checkpoints(), clock_, notify);
    engine_->add(*orchestrator_);
    engine_->add(*executor_);
    engine_->add(*scheduler_);
    engine_->add(*summaries_);
    engine_->start();
  }

  void stop() {
    if (engine_) engine_->stop();
    scheduler_.reset();
    executor_.reset();
    orchestrator_.reset();
    engine_.reset();
    summaries_.reset();
  }

  void settle() { ASSERT_TRUE(engine_->wait_until_quiescent(std::chrono::seconds(30))) << engine_->last_error(); }

  void apply(const std::string& json) {
    auto definition = parse_pipeline_text(json);
    ASSERT_TRUE(definition) << definition.error().message;
    ASSERT_TRUE(service_->apply_pipeline(definition.value(), "alice"));
  }

  std::string create(const std::string& pipeline, const std::string& version = "1.0.0",
                     std::map<std::string, std::string> secrets = {}) {
    NewRelease request;
    request.pipeline = pipeline;
    request.artifact = {version, "/artifacts/" + version};
    request.secret_variables = std::move(secrets);
    auto id = service_->create_release(request, Invocation{"dave", "", ""});
    EXPECT_TRUE(id) << id.error().message;
    return id.value();
  }

  ReleaseState load(const std::string& id) {
    auto release = service_->load(id);
    EXPECT_TRUE(release) << release.error().message;
    return release.value();
  }

  StageState state_of(const std::string& id, const std::string& stage) { return load(id).find_stage(stage)->state(); }

  std::vector<RecordedEvent> all_events() {
    auto events = store_->log().read_all(1, 1'000'000);
    EXPECT_TRUE(events);
    return events.value();
  }

  template <class T>
  std::size_t count(const std::string& release_id) {
    std::size_t n = 0;
    for (const RecordedEvent& e : all_events()) {
      n += e.stream == release_stream(release_id) && std::holds_alternative<T>(e.data) ? 1 : 0;
    }
    return n;
  }

  testing::TempDir dir_;
  ManualClock clock_;
  testing::ScriptedStepRunner scripted_;
  std::unique_ptr<adapters::RocksStore> store_;
  std::unique_ptr<ReleaseService> service_;
  std::unique_ptr<projections::ReleaseSummaryProjection> summaries_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Orchestrator> orchestrator_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<Scheduler> scheduler_;
};

TEST_F(ReleaseControlEngineTest, AnUnansweredApprovalTimesOutAfterThirtyDaysOnTheClock) {
  start(scripted_);
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
  start(scripted_);
  apply(testing::kForkJoinPipeline);
  const std::string id = create("SampleApp");
  settle();
  ASSERT_TRUE(service_->execute(id, ApproveStage{"prod", "tonight", clock_.now() + 2 * kHour},
                                Invocation{"release-manager", "", ""}));
  settle();
  ASSERT_EQ(state_of(id, "prod"), StageState::kDeferred);
  stop();
  clock_.advance(std::chrono::hours(3));
  start(scripted_);
  settle();
  EXPECT_EQ(state_of(id, "prod"), StageState::kSucceeded);
  EXPECT_EQ(count<events::DeferralElapsed>(id), 1u);
  stop();
  start(scripted_);
  settle();
  EXPECT_EQ(count<events::DeferralElapsed>(id), 1u) << "a second restart fires nothing again";
  EXPECT_EQ(count<events::DeploymentStarted>(id), 4u);
}

TEST_F(ReleaseControlEngineTest, DeployLatestLeavesOnlyTheNewestOfThreeReleasesWaitingForProd) {
  apply(R"({"name": "Web", "stages": [
    {"name": "dev", "trigger": {"after_release": true}, "steps": [{"name": "d", "run": "d"}]},
    {"name": "prod", "trigger": {"after_stages": ["dev"]}, "on_new_release": "deploy_latest",
     "pre_approval": {"approvers": ["alice"]}, "steps": [{"name": "d", "run": "d"}]}]})");
  start(scripted_);
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
    EXPECT_EQ(release.find_stage("prod")->approvals.back().decision, "closed") << "no dangling approval";
  }
}

TEST_F(ReleaseControlEngineTest, MaxParallelOneDeploysReleasesOneAtATimeInOrder) {
  apply(R"({"name": "Db", "stages": [{"name": "migrate", "trigger": {"after_release": true}, "max_parallel": 1,
    "steps": [{"name": "a", "run": "a"}, {"name": "b", "run": "b"}]}]})");
  const std::string first = create("Db"), second = create("Db"), third = create("Db");
  start(scripted_);
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
  start(scripted_);
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
  ASSERT_TRUE(service_->execute(id, CancelStage{"dev", ""}, Invocation{"alice", "", ""}));
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
  apply(R"({"name": "Pay", "variables": {"DB_PASSWORD": {"value": ")" + pipeline_secret + R"json(", "secret": true}},
    "stages": [{"name": "dev", "trigger": {"after_release": true},
                "steps": [{"name": "show", "run": "connect $(DB_PASSWORD) $(API_TOKEN)"}]}]})json");
  start(scripted_);
  const std::string id = create("Pay", "1.0.0", {{"API_TOKEN", release_secret}});
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
