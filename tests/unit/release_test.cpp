#include "engine/release.hpp"

#include "tests/support/release_fixture.hpp"

#include <gtest/gtest.h>

namespace cascade::engine {
namespace {

using testing::ReleaseHistory;

template <class T>
const T& only(const std::vector<events::Event>& events, std::size_t index = 0) {
  EXPECT_LT(index, events.size());
  return std::get<T>(events.at(index));
}

TEST(ReleaseTest, CreatedReleaseHasEveryStageNotStarted) {
  ReleaseHistory release;
  EXPECT_TRUE(release.state().exists());
  EXPECT_EQ(release.state().id, "SampleApp-1");
  EXPECT_EQ(release.state().requested_by, "alice");
  ASSERT_EQ(release.state().stages.size(), 4u);
  for (const auto& stage : release.state().stages) EXPECT_EQ(stage.state(), StageState::kNotStarted);
  EXPECT_EQ(release_status(release.state()), ReleaseStatus::kInProgress);
}

TEST(ReleaseTest, TriggeringAStageWithApproversAlsoRequestsTheApproval) {
  ReleaseHistory release;
  auto events = release.when(TriggerStage{"prod", "after test, qa succeeded"}, "orchestrator");
  ASSERT_TRUE(events);
  ASSERT_EQ(events.value().size(), 2u);
  EXPECT_EQ(only<events::StageTriggered>(events.value()).attempt, 1);
  EXPECT_EQ(only<events::ApprovalRequested>(events.value(), 1).approvers,
            std::vector<std::string>{"release-manager"});
  EXPECT_EQ(release.stage("prod"), StageState::kAwaitingPreApproval);
}

TEST(ReleaseTest, ApprovingAStageThatIsDeployingNamesStageStateAndExpectation) {
  ReleaseHistory release;
  ASSERT_TRUE(release.when(TriggerStage{"dev", "release created"}, "orchestrator"));
  ASSERT_TRUE(release.when(StartDeployment{"dev"}, "executor"));
  auto refused = release.when(ApproveStage{"dev", "", 0}, "release-manager");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(refused.error().message,
            "cannot approve stage 'dev' of release SampleApp-1: stage is Deploying, expected AwaitingPreApproval or "
            "AwaitingPostApproval");
}

TEST(ReleaseTest, OnlyAListedApproverMayApproveOrReject) {
  ReleaseHistory release;
  ASSERT_TRUE(release.when(TriggerStage{"prod", "r"}, "orchestrator"));
  for (const Command& command : {Command{ApproveStage{"prod", "", 0}}, Command{RejectStage{"prod", ""}}}) {
    auto refused = release.when(command, "mallory");
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, ErrorCode::kPermissionDenied);
    EXPECT_EQ(refused.error().message,
              "'mallory' is not an approver of stage 'prod' of release SampleApp-1 (approvers: release-manager)");
  }
  EXPECT_EQ(release.stage("prod"), StageState::kAwaitingPreApproval);
  auto granted = release.when(ApproveStage{"prod", "ship it", 0}, "release-manager");
  ASSERT_TRUE(granted);
  const auto& event = only<events::ApprovalGranted>(granted.value());
  EXPECT_EQ(event.approver, "release-manager");
  EXPECT_EQ(event.comment, "ship it");
  EXPECT_EQ(release.stage("prod"), StageState::kApproved);
  ASSERT_EQ(release.state().find_stage("prod")->approvals.size(), 1u);
  EXPECT_EQ(release.state().find_stage("prod")->approvals[0].decision, "approved");
  EXPECT_GT(release.state().find_stage("prod")->approvals[0].at, 0);
}

TEST(ReleaseTest, RejectionEndsTheStageRejectedAndTheReleaseWithIt) {
  ReleaseHistory release;
  release.advance_to_prod_approval();
  EXPECT_EQ(release_status(release.state()), ReleaseStatus::kWaitingForApproval);
  ASSERT_TRUE(release.when(RejectStage{"prod", "not today"}, "release-manager"));
  EXPECT_EQ(release.stage("prod"), StageState::kRejected);
  EXPECT_EQ(release.state().find_stage("prod")->failure_reason, "rejected by release-manager");
  EXPECT_EQ(release_status(release.state()), ReleaseStatus::kRejected);
  auto again = release.when(StartDeployment{"prod"}, "executor");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().message,
            "cannot start deploying stage 'prod' of release SampleApp-1: stage is Rejected, expected Triggered or "
            "Approved");
}

TEST(ReleaseTest, ARepeatedCommandYieldsNoNewEvents) {
  ReleaseHistory release;
  ASSERT_TRUE(release.when(TriggerStage{"dev", "r"}, "orchestrator", "orchestrator/SampleApp-1/dev/1"));
  const auto version = release.state().version;
  auto repeated = release.when(TriggerStage{"dev", "r"}, "orchestrator", "orchestrator/SampleApp-1/dev/1");
  ASSERT_TRUE(repeated);
  EXPECT_TRUE(repeated.value().empty());
  EXPECT_EQ(release.state().version, version);
}

TEST(ReleaseTest, LastSucceededStepEndsTheDeploymentSucceeded) {
  ReleaseHistory release;
  ASSERT_TRUE(release.when(TriggerStage{"dev", "release created"}, "orchestrator"));
  release.deploy("dev");
  EXPECT_EQ(release.stage("dev"), StageState::kSucceeded);
  const StageRecord& dev = *release.state().find_stage("dev");
  ASSERT_EQ(dev.steps.size(), 2u);
  EXPECT_EQ(dev.steps[1].status, StepStatus::kSucceeded);
  EXPECT_GT(dev.finished_at, dev.started_at);
}

TEST(ReleaseTest, FailedStepFailsTheDeploymentWithItsReason) {
  ReleaseHistory release;
  ASSERT_TRUE(release.when(TriggerStage{"dev", "release created"}, "orchestrator"));
  release.deploy("dev", /*last_step_succeeds=*/false);
  EXPECT_EQ(release.stage("dev"), StageState::kFailed);
  EXPECT_EQ(release.state().find_stage("dev")->failure_reason, "step 'smoke' failed: exit code 3");
  EXPECT_EQ(release_status(release.state()), ReleaseStatus::kFailed);
}

TEST(ReleaseTest, StepsRunInOrderWithinTheCurrentAttempt) {
  ReleaseHistory release;
  ASSERT_TRUE(release.when(TriggerStage{"dev", "r"}, "orchestrator"));
  ASSERT_TRUE(release.when(StartDeployment{"dev"}, "executor"));
  auto skipped = release.when(RecordStepStarted{"dev", 1, 1}, "executor");
  ASSERT_FALSE(skipped);
  EXPECT_EQ(skipped.error().code, ErrorCode::kFailedPrecondition);
  auto stale = release.when(RecordStepStarted{"dev", 2, 0}, "executor");
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().message, "stage 'dev' of release SampleApp-1 is at attempt 1, not 2");
}

TEST(ReleaseTest, UnknownStageIsNotFoundAndListsTheStages) {
  ReleaseHistory release;
  auto missing = release.when(DeployStage{"prd"}, "alice");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(missing.error().message, "release SampleApp-1 has no stage 'prd' (stages: dev, test, qa, prod)");
}

TEST(ReleaseTest, RedeployOfAFinishedStageStartsTheNextAttempt) {
  ReleaseHistory release;
  ASSERT_TRUE(release.when(TriggerStage{"dev", "release created"}, "orchestrator"));
  release.deploy("dev", false);
  auto redeploy = release.when(RedeployStage{"dev", ""}, "alice");
  ASSERT_TRUE(redeploy);
  EXPECT_EQ(only<events::StageTriggered>(redeploy.value()).reason, "redeploy by alice");
  EXPECT_EQ(release.state().find_stage("dev")->attempt, 2);
  EXPECT_EQ(release.state().find_stage("dev")->steps[1].status, StepStatus::kPending);
  release.deploy("dev");
  EXPECT_EQ(release.stage("dev"), StageState::kSucceeded);
}

TEST(ReleaseTest, AbortFailsTheRunningStepAndTheDeployment) {
  ReleaseHistory release;
  ASSERT_TRUE(release.when(TriggerStage{"dev", "r"}, "orchestrator"));
  ASSERT_TRUE(release.when(StartDeployment{"dev"}, "executor"));
  ASSERT_TRUE(release.when(RecordStepStarted{"dev", 1, 0}, "executor"));
  auto aborted = release.when(AbortDeployment{"dev", 1, "interrupted"}, "executor");
  ASSERT_TRUE(aborted);
  ASSERT_EQ(aborted.value().size(), 2u);
  EXPECT_EQ(release.stage("dev"), StageState::kFailed);
  EXPECT_EQ(release.state().find_stage("dev")->steps[0].status, StepStatus::kFailed);
  EXPECT_EQ(release.state().find_stage("dev")->steps[1].status, StepStatus::kSkipped);
}

TEST(ReleaseTest, ReleaseStatusFollowsTheStages) {
  ReleaseHistory release;
  ASSERT_TRUE(release.when(TriggerStage{"dev", "r"}, "orchestrator"));
  release.deploy("dev");
  // test and qa may now start: still in progress, though nothing runs.
  EXPECT_EQ(release_status(release.state()), ReleaseStatus::kInProgress);
  for (const char* stage : {"test", "qa"}) {
    ASSERT_TRUE(release.when(TriggerStage{stage, "r"}, "orchestrator"));
    release.deploy(stage);
  }
  EXPECT_EQ(release_status(release.state()), ReleaseStatus::kInProgress);
  ASSERT_TRUE(release.when(TriggerStage{"prod", "r"}, "orchestrator"));
  EXPECT_EQ(release_status(release.state()), ReleaseStatus::kWaitingForApproval);
  ASSERT_TRUE(release.when(ApproveStage{"prod", "", 0}, "release-manager"));
  release.deploy("prod");
  EXPECT_EQ(release_status(release.state()), ReleaseStatus::kSucceeded);
}

}  // namespace
}  // namespace cascade::engine
