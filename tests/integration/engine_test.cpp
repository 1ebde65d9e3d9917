// The engine on a real RocksDB store, with a manual clock and a scripted
// step runner: fork/join, failures, manual stages, restarts, projection.
#include "tests/support/engine_harness.hpp"

#include "projections/release_summary.hpp"

#include <set>
#include <thread>

namespace cascade::engine {
namespace {

using events::RecordedEvent;

class EngineTest : public testing::EngineHarness {
 protected:
  void SetUp() override {
    EngineHarness::SetUp();
    run();
  }

  std::string create_release(const std::string& pipeline_json = testing::kForkJoinPipeline,
                             events::Variables variables = {}) {
    apply(pipeline_json);
    return create(parse_pipeline_text(pipeline_json).value().name, "1.0.0", std::move(variables));
  }

  // Position of the first event of `type` for `stage` (0 when none).
  std::uint64_t position_of(const std::vector<RecordedEvent>& events, std::string_view type,
                            const std::string& stage) {
    const RecordedEvent* found = testing::find_event(events, type, stage);
    return found == nullptr ? 0 : found->position;
  }
};

TEST_F(EngineTest, ProdIsTriggeredOnlyAfterTestAndQaSucceededAndDeploysOnlyAfterApproval) {
  const std::string id = create_release();
  settle();
  EXPECT_EQ(state_of(id, "prod"), StageState::kAwaitingPreApproval);
  auto events = events_of(id);
  const auto dev_done = position_of(events, "DeploymentSucceeded", "dev");
  const auto test_done = position_of(events, "DeploymentSucceeded", "test");
  const auto qa_done = position_of(events, "DeploymentSucceeded", "qa");
  const auto prod_triggered = position_of(events, "StageTriggered", "prod");
  ASSERT_GT(dev_done, 0u);
  EXPECT_GT(position_of(events, "StageTriggered", "test"), dev_done);
  EXPECT_GT(position_of(events, "StageTriggered", "qa"), dev_done);
  EXPECT_GT(prod_triggered, test_done);
  EXPECT_GT(prod_triggered, qa_done);
  EXPECT_EQ(position_of(events, "DeploymentStarted", "prod"), 0u) << "no deployment before the approval";
  for (const RecordedEvent& e : events) EXPECT_EQ(e.recorded_at, clock_.now()) << "time comes from the clock";

  clock_.advance(std::chrono::minutes(5));
  ASSERT_TRUE(service().execute(id, ApproveStage{"prod", "go", 0}, Invocation{"release-manager", "", ""}));
  settle();
  events = events_of(id);
  EXPECT_GT(position_of(events, "DeploymentStarted", "prod"), position_of(events, "ApprovalGranted", "prod"));
  auto release = service().load(id);
  EXPECT_EQ(release_status(release.value()), ReleaseStatus::kSucceeded);
  std::size_t triggers = 0;
  for (const RecordedEvent& e : events) triggers += std::holds_alternative<events::StageTriggered>(e.data);
  EXPECT_EQ(triggers, 4u) << "each stage triggered exactly once";
}

TEST_F(EngineTest, TestAndQaRunAtTheSameTime) {
  // test's first step cannot finish until qa's has started, and vice versa.
  scripted_.hold_until_started("test", "true", "qa");
  scripted_.hold_until_started("qa", "true", "test");
  const std::string id = create_release();
  settle();
  EXPECT_EQ(state_of(id, "test"), StageState::kSucceeded);
  EXPECT_EQ(state_of(id, "qa"), StageState::kSucceeded);
}

TEST_F(EngineTest, FailedQaLeavesProdUntriggeredAndFailsTheRelease) {
  scripted_.fail("qa", "false-smoke", 1);
  const char* pipeline = R"({"name": "Shop", "stages": [
    {"name": "dev", "trigger": {"after_release": true}, "steps": [{"name": "deploy", "run": "deploy"}]},
    {"name": "test", "trigger": {"after_stages": ["dev"]}, "steps": [{"name": "deploy", "run": "deploy"}]},
    {"name": "qa", "trigger": {"after_stages": ["dev"]},
     "steps": [{"name": "deploy", "run": "deploy"}, {"name": "smoke", "run": "false-smoke"}]},
    {"name": "prod", "trigger": {"after_stages": ["test", "qa"]}, "steps": [{"name": "deploy", "run": "deploy"}]}]})";
  const std::string id = create_release(pipeline);
  settle();
  EXPECT_EQ(state_of(id, "test"), StageState::kSucceeded);
  EXPECT_EQ(state_of(id, "qa"), StageState::kFailed);
  EXPECT_EQ(state_of(id, "prod"), StageState::kNotStarted);
  auto release = service().load(id);
  EXPECT_EQ(release_status(release.value()), ReleaseStatus::kFailed);
  EXPECT_EQ(release.value().find_stage("qa")->failure_reason, "step 'smoke' failed: exit code 1");
}

TEST_F(EngineTest, ManualStageWaitsForADeployCommand) {
  const char* pipeline = R"({"name": "Ops", "stages": [
    {"name": "build-check", "trigger": {"after_release": true}, "steps": [{"name": "check", "run": "check"}]},
    {"name": "hotfix", "trigger": {"manual": true}, "steps": [{"name": "deploy", "run": "deploy"}]}]})";
  const std::string id = create_release(pipeline);
  settle();
  EXPECT_EQ(state_of(id, "build-check"), StageState::kSucceeded);
  EXPECT_EQ(state_of(id, "hotfix"), StageState::kNotStarted);
  ASSERT_TRUE(service().execute(id, DeployStage{"hotfix"}, Invocation{"bob", "", ""}));
  settle();
  EXPECT_EQ(state_of(id, "hotfix"), StageState::kSucceeded);
  auto release = service().load(id);
  EXPECT_EQ(release.value().find_stage("hotfix")->trigger_reason, "manual deploy by bob");
}

TEST_F(EngineTest, StepsSeeVariablesAndTheCascadeEnvironment) {
  const char* pipeline = R"({"name": "Env", "variables": {"A": "pipeline", "B": "pipeline",
                                                          "REGION": {"value": "us", "settable": true},
                                                          "ZONE": {"value": "z1", "settable": true}},
    "stages": [{"name": "dev", "trigger": {"after_release": true}, "variables": {"B": "stage", "ZONE": "z9"},
                "steps": [{"name": "show", "run": "env", "env": {"C": "step"}}]}]})";
  const std::string id = create_release(pipeline, {{"REGION", "eu"}, {"ZONE", "z2"}});
  settle();
  auto environments = scripted_.environments();
  ASSERT_EQ(environments.size(), 1u);
  const auto& env = environments[0];
  EXPECT_EQ(env.at("A"), "pipeline");
  EXPECT_EQ(env.at("B"), "stage");
  EXPECT_EQ(env.at("C"), "step");
  EXPECT_EQ(env.at("REGION"), "eu");  // settable: the release's value
  EXPECT_EQ(env.at("ZONE"), "z9");    // the stage declares it again, not settable: the admin's value
  EXPECT_EQ(env.at("PATH"), "/usr/bin:/bin");
  EXPECT_EQ(env.at("CASCADE_RELEASE_ID"), id);
  EXPECT_EQ(env.at("CASCADE_RELEASE_NAME"), "Release-1");
  EXPECT_EQ(env.at("CASCADE_STAGE"), "dev");
  EXPECT_EQ(env.at("CASCADE_ARTIFACT_VERSION"), "1.0.0");
  EXPECT_EQ(env.at("CASCADE_ARTIFACT_PATH"), "/artifacts/1.0.0");
}

TEST_F(EngineTest, StepLogDigestInTheEventMatchesTheStoredLines) {
  const std::string id = create_release();
  settle();
  for (const RecordedEvent& e : events_of(id)) {
    const auto* step = std::get_if<events::StepSucceeded>(&e.data);
    if (step == nullptr) continue;
    auto lines = store_->step_logs().read({id, step->stage, step->attempt, step->step_index});
    ASSERT_TRUE(lines);
    ASSERT_EQ(lines.value().size(), 1u);
    events::Sha256 digest;
    for (const LogLine& line : lines.value()) digest.update(digest_bytes(line));
    EXPECT_EQ(digest.finish(), step->log_digest);
  }
}

TEST_F(EngineTest, RestartedEngineResumesWithoutRepeatingReactions) {
  const std::string id = create_release();
  settle();
  const auto before = events_of(id).size();
  stop();
  start();
  settle();
  EXPECT_EQ(events_of(id).size(), before) << "nothing is triggered or run twice";
  auto checkpoint = store_->checkpoints().load("orchestrator");
  ASSERT_TRUE(checkpoint);
  EXPECT_EQ(checkpoint.value(), store_->log().head());
  EXPECT_EQ(scripted_.started().size(), 6u) << "dev, test, qa: two steps each";
}

TEST_F(EngineTest, DeploymentInterruptedByARestartIsFailedNotRerun) {
  stop();
  start(scripted_, /*run=*/false);
  const std::string id = create_release();
  // As if the engine had started dev and died before its steps finished.
  ASSERT_TRUE(service().execute(id, TriggerStage{"dev", "release created"}, Invocation{"cascade/orchestrator", "orchestrator/" + id + "/dev/1", ""}));
  ASSERT_TRUE(service().execute(id, StartDeployment{"dev"}, Invocation{"cascade/executor", "", ""}));
  ASSERT_TRUE(service().execute(id, RecordStepStarted{"dev", 1, 0}, Invocation{"cascade/executor", "", ""}));
  stop();
  start();
  settle();
  auto release = service().load(id);
  const StageRecord& dev = *release.value().find_stage("dev");
  EXPECT_EQ(dev.state(), StageState::kFailed);
  EXPECT_EQ(dev.failure_reason, "interrupted: the engine stopped during the deployment");
  EXPECT_EQ(dev.steps[0].status, StepStatus::kFailed);
  EXPECT_TRUE(scripted_.started().empty()) << "no step of the interrupted deployment ran again";
  EXPECT_EQ(state_of(id, "test"), StageState::kNotStarted);
}

TEST_F(EngineTest, SummaryProjectionRebuiltFromScratchIsByteIdentical) {
  const std::string first = create_release();
  settle();
  scripted_.fail("qa", "true", 2);
  const std::string second = create_release();
  settle();
  ASSERT_TRUE(service().execute(first, ApproveStage{"prod", "ok", 0}, Invocation{"release-manager", "", ""}));
  settle();
  auto incremental_first = summaries_->summary(first);
  auto incremental_second = summaries_->summary(second);
  ASSERT_TRUE(incremental_first && incremental_second);
  auto summary = nlohmann::json::parse(incremental_first.value());
  EXPECT_EQ(summary["status"], "Succeeded");
  EXPECT_EQ(summary["stages"][3]["approvals"][0]["approver"], "release-manager");
  EXPECT_EQ(nlohmann::json::parse(incremental_second.value())["status"], "Failed");
  auto listed = summaries_->list(10);
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed.value().size(), 2u);
  EXPECT_EQ(nlohmann::json::parse(listed.value()[0])["id"], second) << "newest first";

  stop();
  {
    auto summaries = projections::ReleaseSummaryProjection::open(dir_ / "projections", store_->log());
    ASSERT_TRUE(summaries) << summaries.error().message;
    ASSERT_TRUE(summaries.value()->clear());
    EXPECT_FALSE(summaries.value()->summary(first));
  }
  start();
  settle();
  EXPECT_EQ(summaries_->summary(first).value(), incremental_first.value());
  EXPECT_EQ(summaries_->summary(second).value(), incremental_second.value());
  EXPECT_EQ(summaries_->checkpoint().value(), store_->log().head());
}

TEST_F(EngineTest, ReleaseNumbersAreDenseAndSurviveARestartOfTheService) {
  EXPECT_EQ(create_release(), "SampleApp-1");
  EXPECT_EQ(create_release(), "SampleApp-2");
  stop();
  start();  // a new service: forgets the numbers it handed out
  EXPECT_EQ(create_release(), "SampleApp-3");
  settle();
}

TEST_F(EngineTest, ApplyingAnUnchangedPipelineAppendsNothing) {
  auto definition = parse_pipeline_text(testing::kForkJoinPipeline);
  ASSERT_TRUE(definition);
  EXPECT_EQ(service().apply_pipeline(definition.value(), "alice").value(), 1);
  const auto head = store_->log().head();
  EXPECT_EQ(service().apply_pipeline(definition.value(), "alice").value(), 1);
  EXPECT_EQ(store_->log().head(), head);
  definition.value().description = "changed";
  EXPECT_EQ(service().apply_pipeline(definition.value(), "alice").value(), 2);
  settle();
}

}  // namespace
}  // namespace cascade::engine

namespace cascade::engine {
namespace {

TEST_F(EngineTest, CreatingAReleaseTwiceWithOneKeyCreatesOneRelease) {
  apply(testing::kForkJoinPipeline);
  NewRelease request;
  request.pipeline = "SampleApp";
  request.artifact = {"1.0.0", "/a", 0, "", ""};
  auto first = service().create_release(request, Invocation{"ci", "build-42", ""});
  auto again = service().create_release(request, Invocation{"ci", "build-42", ""});
  auto other = service().create_release(request, Invocation{"ci", "build-43", ""});
  ASSERT_TRUE(first && again && other);
  EXPECT_EQ(again.value(), first.value());
  EXPECT_EQ(first.value(), "SampleApp-1");
  EXPECT_EQ(other.value(), "SampleApp-2") << "numbers stay dense";
  settle();
}

TEST_F(EngineTest, AnOperatorCommandRepeatedWithItsKeyChangesNothing) {
  const std::string id = create_release();
  settle();
  ASSERT_TRUE(service().execute(id, CancelStage{"prod", ""}, Invocation{"alice", "cancel-1", ""}));
  const auto version = load(id).version;
  auto repeated = service().execute(id, CancelStage{"prod", ""}, Invocation{"alice", "cancel-1", ""});
  ASSERT_TRUE(repeated) << "a repeat is acknowledged, not refused";
  EXPECT_EQ(load(id).version, version);
}

// The service folds its own appends without reading them back; a service
// that folds the whole stream from the log must arrive at the same state.
TEST_F(EngineTest, TheServiceFoldOfItsOwnAppendsEqualsAFoldFromTheLog) {
  const std::string id = create_release();
  settle();
  clock_.advance(std::chrono::minutes(2));
  auto approved = service().execute(id, ApproveStage{"prod", "go", 0}, Invocation{"release-manager", "", ""});
  ASSERT_TRUE(approved);
  settle();
  ASSERT_TRUE(service().execute(id, RedeployStage{"dev", ""}, Invocation{"alice", "", ""}));
  settle();  // the redeploy's reactions appended too: both services read a log at rest

  const ReleaseState folded_in_memory = load(id);
  ReleaseService fresh(store_->log(), store_->secrets(), clock_);
  auto from_log = fresh.load(id);
  ASSERT_TRUE(from_log);
  EXPECT_EQ(folded_in_memory.version, from_log.value().version);
  EXPECT_EQ(folded_in_memory.last_hash, from_log.value().last_hash);
  EXPECT_FALSE(folded_in_memory.last_hash.empty());
  EXPECT_EQ(folded_in_memory.command_ids, from_log.value().command_ids);
  EXPECT_EQ(projections::summarize(folded_in_memory).dump(), projections::summarize(from_log.value()).dump());
  // And the state execute returned for the approval is the log's state at
  // that version.
  ReleaseState replayed;
  for (const RecordedEvent& e : events_of(id)) {
    if (e.version <= approved.value().version) evolve(replayed, e);
  }
  EXPECT_EQ(replayed.last_hash, approved.value().last_hash);
  EXPECT_EQ(projections::summarize(replayed).dump(), projections::summarize(approved.value()).dump());
}

}  // namespace
}  // namespace cascade::engine

namespace cascade::engine {
namespace {

TEST_F(EngineTest, SixtyFourConcurrentCreatesOfOnePipelineGetSixtyFourNumbers) {
  apply(testing::kForkJoinPipeline);
  stop();
  start(scripted_, /*run=*/false);  // only the command path: no deployments
  std::vector<std::string> ids(64);
  std::vector<std::thread> creators;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    creators.emplace_back([&, i] {
      NewRelease request;
      request.pipeline = "SampleApp";
      request.artifact = {"1.0." + std::to_string(i), "/a", 0, "", ""};
      auto id = service().create_release(request, Invocation{"ci", "", ""});
      ids[i] = id ? id.value() : "error: " + id.error().message;
    });
  }
  for (auto& creator : creators) creator.join();
  std::set<std::string> unique(ids.begin(), ids.end());
  EXPECT_EQ(unique.size(), 64u);
  for (int n = 1; n <= 64; ++n) EXPECT_EQ(unique.count("SampleApp-" + std::to_string(n)), 1u) << n;
}

}  // namespace
}  // namespace cascade::engine
