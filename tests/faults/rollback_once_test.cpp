// Issue 14, races: on_failure redeploy_last_good chooses its release once.
// The choice is recorded on the failed release (RollbackChosen) before
// anything is redeployed, so handling the failure again — after a crash
// before the orchestrator's checkpoint, or for a later event of the failed
// release — redeploys the same release under the same key (nothing new),
// even when a release that was still waiting has succeeded since. And a
// rollback that fails, or that a crash interrupts, is not rolled back in turn.
#include "engine/audit.hpp"
#include "projections/release_summary.hpp"

#include "tests/support/engine_harness.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

namespace cascade::engine {
namespace {

using events::RecordedEvent;

// prod needs ops' approval (so an older release can be held back, waiting,
// while a newer one fails) and rolls back on failure; docs is manual.
const char* kApprovedPipeline = R"json({"name": "Api", "stages": [
  {"name": "prod", "trigger": {"after_release": true}, "pre_approval": {"approvers": ["ops"]},
   "on_failure": "redeploy_last_good", "steps": [{"name": "deploy", "run": "deploy $(CASCADE_ARTIFACT_VERSION)"}]},
  {"name": "docs", "trigger": {"manual": true}, "steps": [{"name": "publish", "run": "publish"}]}]})json";

const char* kPipeline = R"json({"name": "Api", "stages": [
  {"name": "prod", "trigger": {"after_release": true},
   "on_failure": "redeploy_last_good", "steps": [{"name": "deploy", "run": "deploy $(CASCADE_ARTIFACT_VERSION)"}]}]})json";

// Runs every step through `others`, except those of one deployment
// ("<release>/<stage>/<attempt>"), which run until the engine cancels them,
// as stopping it does: a deployment the engine dies under.
class HangingRunner final : public StepRunner {
 public:
  HangingRunner(StepRunner& others, std::string deployment) : others_(others), deployment_(std::move(deployment)) {}

  StepOutcome run(const StepRequest& request) override {
    if (request.deployment != deployment_) return others_.run(request);
    std::unique_lock lock(mutex_);
    started_ = true;
    changed_.notify_all();
    while (!request.cancel->load()) changed_.wait_for(lock, std::chrono::milliseconds(10));
    StepOutcome outcome;
    outcome.exit_code = -1;
    outcome.canceled = true;
    return outcome;
  }

  bool wait_until_started() {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(30), [&] { return started_; });
  }

 private:
  StepRunner& others_;
  const std::string deployment_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool started_ = false;
};

class RollbackOnceTest : public testing::EngineHarness {
 protected:
  void approve(const std::string& id) {
    auto done = service().execute(id, ApproveStage{"prod", "", 0, false}, Invocation{"ops", "", ""});
    ASSERT_TRUE(done) << done.error().message;
    settle();
  }

  // The StageTriggered events of prod in `id`, oldest first.
  std::vector<events::StageTriggered> prod_triggers(const std::string& id) {
    std::vector<events::StageTriggered> out;
    for (const RecordedEvent& e : events_of(id)) {
      const auto* triggered = std::get_if<events::StageTriggered>(&e.data);
      if (triggered != nullptr && triggered->stage == "prod") out.push_back(*triggered);
    }
    return out;
  }

  // Api-1 succeeded at prod; Api-2 waits for its approval; Api-3 failed at
  // prod and the orchestrator rolled back to Api-1 (the only release that had
  // succeeded there), whose new attempt waits for approval in turn. Then Api-2
  // is approved and succeeds: from now on it is the last release that
  // succeeded before Api-3.
  void fail_while_an_older_release_still_waits() {
    apply(kApprovedPipeline);
    scripted_.fail("prod", "deploy 3.0.0", 1);
    run();
    ASSERT_EQ(create("Api", "1.0.0"), "Api-1");
    settle();
    approve("Api-1");
    ASSERT_EQ(state_of("Api-1", "prod"), StageState::kSucceeded);
    ASSERT_EQ(create("Api", "2.0.0"), "Api-2");
    ASSERT_EQ(create("Api", "3.0.0"), "Api-3");
    settle();
    approve("Api-3");
    ASSERT_EQ(state_of("Api-3", "prod"), StageState::kFailed);
    const ReleaseState failed = load("Api-3");
    ASSERT_TRUE(failed.find_stage("prod")->rollback.has_value());
    EXPECT_EQ(failed.find_stage("prod")->rollback->rollback_to, "Api-1");
    EXPECT_EQ(failed.find_stage("prod")->rollback->reason, "the last release before Api-3 that succeeded at prod");
    ASSERT_EQ(prod_triggers("Api-1").size(), 2u) << "rolled back to Api-1";
    EXPECT_EQ(prod_triggers("Api-1")[1].rollback_of, "Api-3");
    EXPECT_EQ(prod_triggers("Api-1")[1].reason, "auto-redeploy: Api-3 failed at prod");
    ASSERT_EQ(state_of("Api-1", "prod"), StageState::kAwaitingPreApproval) << "the rollback waits for its approval";
    approve("Api-2");
    ASSERT_EQ(state_of("Api-2", "prod"), StageState::kSucceeded);
  }

  // Nothing rolled back twice: Api-1 once (the recorded choice), Api-2
  // never, and the choice recorded once.
  void expect_rolled_back_once_to_api_1() {
    EXPECT_EQ(prod_triggers("Api-1").size(), 2u) << "Api-1 redeployed once";
    EXPECT_EQ(prod_triggers("Api-2").size(), 1u) << "Api-2 succeeded after the choice: never redeployed";
    EXPECT_EQ(load("Api-2").find_stage("prod")->attempt, 1);
    EXPECT_EQ(count<events::RollbackChosen>("Api-3"), 1u);
    const ReleaseState failed = load("Api-3");
    ASSERT_TRUE(failed.find_stage("prod")->rollback.has_value());
    EXPECT_EQ(failed.find_stage("prod")->rollback->rollback_to, "Api-1");
  }
};

TEST_F(RollbackOnceTest, HandlingTheFailureAgainAfterACrashRedeploysTheRecordedChoiceOnly) {
  fail_while_an_older_release_still_waits();
  // A crash before the orchestrator saved its checkpoint: the next engine
  // handles every event again, Api-3's failure included.
  stop();
  ASSERT_TRUE(store_->checkpoints().save("orchestrator", 0));
  start();
  settle();
  expect_rolled_back_once_to_api_1();
}

TEST_F(RollbackOnceTest, ALaterEventOfTheFailedReleaseDoesNotRollBackAgain) {
  fail_while_an_older_release_still_waits();
  // The orchestrator looks at Api-3 again for any event of it.
  ASSERT_TRUE(service().execute("Api-3", DeployStage{"docs"}, Invocation{"alice", "", ""}));
  settle();
  ASSERT_EQ(state_of("Api-3", "docs"), StageState::kSucceeded);
  expect_rolled_back_once_to_api_1();
}

TEST_F(RollbackOnceTest, AFailedRollbackIsNotRolledBackInTurn) {
  apply(kPipeline);
  run();
  ASSERT_EQ(create("Api", "1.0.0"), "Api-1");
  settle();
  ASSERT_EQ(create("Api", "2.0.0"), "Api-2");
  settle();
  ASSERT_EQ(state_of("Api-2", "prod"), StageState::kSucceeded);
  // 2.0.0 no longer deploys (its rollback will fail), nor does 3.0.0.
  scripted_.fail("prod", "deploy 2.0.0", 1);
  scripted_.fail("prod", "deploy 3.0.0", 1);
  ASSERT_EQ(create("Api", "3.0.0"), "Api-3");
  settle();
  ASSERT_EQ(state_of("Api-3", "prod"), StageState::kFailed);
  const ReleaseState failed = load("Api-3");
  ASSERT_TRUE(failed.find_stage("prod")->rollback.has_value());
  EXPECT_EQ(failed.find_stage("prod")->rollback->rollback_to, "Api-2");
  const ReleaseState rollback = load("Api-2");
  const StageRecord& prod = *rollback.find_stage("prod");
  ASSERT_EQ(prod.attempt, 2);
  EXPECT_EQ(prod.rollback_of, "Api-3");
  ASSERT_EQ(prod.state(), StageState::kFailed) << "the rollback itself failed";
  ASSERT_TRUE(prod.rollback.has_value());
  EXPECT_EQ(prod.rollback->rollback_to, "");
  EXPECT_EQ(prod.rollback->reason,
            "attempt 2 was itself the rollback of Api-3's failure at prod: not rolled back again");
  EXPECT_EQ(load("Api-1").find_stage("prod")->attempt, 1) << "no rollback of the rollback";
  EXPECT_NE(explain_stage(rollback, "prod").find("; not rolled back: attempt 2 was itself the rollback of Api-3"),
            std::string::npos)
      << explain_stage(rollback, "prod");
  const nlohmann::json summary = projections::summarize(rollback);
  EXPECT_EQ(summary["stages"][0]["rollback_of"], "Api-3");
  EXPECT_EQ(summary["stages"][0]["rollback"]["rollback_to"], "");
}

TEST_F(RollbackOnceTest, ARollbackInterruptedByACrashIsNotRolledBackInTurn) {
  apply(kPipeline);
  run();
  ASSERT_EQ(create("Api", "1.0.0"), "Api-1");
  settle();
  ASSERT_EQ(create("Api", "2.0.0"), "Api-2");
  settle();
  // Api-3 fails; the rollback to Api-2 (its attempt 2) runs when the engine dies.
  scripted_.fail("prod", "deploy 3.0.0", 1);
  HangingRunner runner(scripted_, deployment_name("Api-2", "prod", 2));
  start(runner);
  ASSERT_EQ(create("Api", "3.0.0"), "Api-3");
  ASSERT_TRUE(runner.wait_until_started());
  stop();  // the step is canceled with the engine; nothing records its end
  start();
  settle();
  const ReleaseState rollback = load("Api-2");
  const StageRecord& prod = *rollback.find_stage("prod");
  ASSERT_EQ(prod.attempt, 2);
  ASSERT_EQ(prod.state(), StageState::kFailed);
  EXPECT_EQ(prod.failure_reason, "interrupted: the engine stopped during the deployment");
  ASSERT_TRUE(prod.rollback.has_value());
  EXPECT_EQ(prod.rollback->rollback_to, "");
  EXPECT_NE(prod.rollback->reason.find("not rolled back again"), std::string::npos) << prod.rollback->reason;
  EXPECT_EQ(load("Api-1").find_stage("prod")->attempt, 1) << "no rollback of the interrupted rollback";
  EXPECT_EQ(count<events::RollbackChosen>("Api-3"), 1u);
}

TEST_F(RollbackOnceTest, WithNothingToRollBackToTheChoiceSaysSoOnce) {
  apply(kPipeline);
  scripted_.fail("prod", "deploy 1.0.0", 1);
  run();
  ASSERT_EQ(create("Api", "1.0.0"), "Api-1");
  settle();
  ASSERT_EQ(state_of("Api-1", "prod"), StageState::kFailed);
  const ReleaseState failed = load("Api-1");
  ASSERT_TRUE(failed.find_stage("prod")->rollback.has_value());
  EXPECT_EQ(failed.find_stage("prod")->rollback->rollback_to, "");
  EXPECT_EQ(failed.find_stage("prod")->rollback->reason, "no release before Api-1 succeeded at prod");
  stop();
  ASSERT_TRUE(store_->checkpoints().save("orchestrator", 0));
  start();
  settle();
  EXPECT_EQ(count<events::RollbackChosen>("Api-1"), 1u);
}

}  // namespace
}  // namespace cascade::engine
