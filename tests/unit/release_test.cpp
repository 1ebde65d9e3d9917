#include "engine/release.hpp"

#include "tests/support/release_fixture.hpp"

#include <gtest/gtest.h>

namespace cascade::engine {
namespace {

using events::ApprovalRequested;
using events::DeploymentStarted;
using events::StageTriggered;
using events::StepFailed;
using events::StepStarted;
using events::StepSucceeded;
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

TEST(ReleaseTest, CreateReleaseRecordsTheDefinitionSnapshotAndTheRequester) {
  CreateRelease create;
  create.release_id = "SampleApp-1";
  create.number = 1;
  create.name = "Release-1";
  create.pipeline_version = 1;
  create.definition = testing::fork_join_pipeline();
  create.artifact = {"1.0.0", "/artifacts/1.0.0", 0, "", ""};
  CommandContext context;
  context.actor = "alice";
  context.command_id = "create-1";
  auto created = decide(ReleaseState{}, create, context);
  ASSERT_TRUE(created) << created.error().message;
  const auto& event = only<events::ReleaseCreated>(created.value());
  EXPECT_EQ(event.release_id, "SampleApp-1");
  EXPECT_EQ(event.pipeline, "SampleApp");
  EXPECT_EQ(event.requested_by, "alice");
  EXPECT_EQ(event.definition, to_json(testing::fork_join_pipeline()));

  ReleaseHistory existing;
  auto again = existing.when(create, "alice");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(again.error().message, "release SampleApp-1 exists already");
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
  release.given(StageTriggered{"dev", "release created", 1}, DeploymentStarted{"dev", 1});
  auto refused = release.when(ApproveStage{"dev", "", 0}, "release-manager");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(refused.error().message,
            "cannot approve stage 'dev' of release SampleApp-1: stage is Deploying, expected AwaitingPreApproval or "
            "AwaitingPostApproval");
}

TEST(ReleaseTest, OnlyAListedApproverMayApproveOrReject) {
  ReleaseHistory release;
  release.given(StageTriggered{"prod", "r", 1},
                ApprovalRequested{"prod", "pre", {"release-manager"}, 1, "any", 1'900'000'000'000});
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
  EXPECT_EQ(release.state().find_stage("prod")->approvals[0].decision, ApprovalDecision::kApproved);
  EXPECT_GT(release.state().find_stage("prod")->approvals[0].at, 0);
}

TEST(ReleaseTest, RejectionEndsTheStageRejectedAndTheReleaseWithIt) {
  ReleaseHistory release;
  release.given(testing::prod_awaiting_approval());
  EXPECT_EQ(release_status(release.state()), ReleaseStatus::kWaitingForApproval);
  ASSERT_TRUE(release.when(RejectStage{"prod", "not today"}, "release-manager"));
  EXPECT_EQ(release.stage("prod"), StageState::kRejected);
  EXPECT_EQ(release.state().find_stage("prod")->failure_reason, "rejected by release-manager");
  EXPECT_EQ(release_status(release.state()), ReleaseStatus::kRejected);
  auto again = release.when(StartDeployment{"prod"}, "executor");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kFailedPrecondition);
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

TEST(ReleaseTest, EveryStepSucceededEndsTheDeploymentSucceeded) {
  ReleaseHistory release;
  release.given(StageTriggered{"dev", "release created", 1}, DeploymentStarted{"dev", 1},
                StepStarted{"dev", 1, 0, "deploy", 1}, StepSucceeded{"dev", 1, 0, "deploy", 0, 10, ""},
                StepStarted{"dev", 1, 1, "smoke", 1}, StepSucceeded{"dev", 1, 1, "smoke", 0, 10, ""});
  auto finished = release.when(FinishDeployment{"dev", 1}, "executor");
  ASSERT_TRUE(finished) << finished.error().message;
  ASSERT_EQ(finished.value().size(), 1u);
  EXPECT_FALSE(only<events::DeploymentSucceeded>(finished.value()).partial);
  EXPECT_EQ(release.stage("dev"), StageState::kSucceeded);
  const StageRecord& dev = *release.state().find_stage("dev");
  ASSERT_EQ(dev.steps.size(), 2u);
  EXPECT_EQ(dev.steps[1].status, StepStatus::kSucceeded);
  EXPECT_GT(dev.finished_at, dev.started_at);
}

TEST(ReleaseTest, FailedStepFailsTheDeploymentWithItsReason) {
  ReleaseHistory release;
  release.given(StageTriggered{"dev", "release created", 1}, DeploymentStarted{"dev", 1},
                StepStarted{"dev", 1, 0, "deploy", 1}, StepSucceeded{"dev", 1, 0, "deploy", 0, 10, ""},
                StepStarted{"dev", 1, 1, "smoke", 1},
                StepFailed{"dev", 1, 1, "smoke", 3, 10, "", "exit code 3", false, false, "", 0});
  auto finished = release.when(FinishDeployment{"dev", 1}, "executor");
  ASSERT_TRUE(finished) << finished.error().message;
  EXPECT_EQ(only<events::DeploymentFailed>(finished.value()).reason, "step 'smoke' failed: exit code 3");
  EXPECT_EQ(release.stage("dev"), StageState::kFailed);
  EXPECT_EQ(release.state().find_stage("dev")->failure_reason, "step 'smoke' failed: exit code 3");
  EXPECT_EQ(release_status(release.state()), ReleaseStatus::kFailed);
}

TEST(ReleaseTest, StepsRunInOrderWithinTheCurrentAttempt) {
  ReleaseHistory release;
  release.given(StageTriggered{"dev", "r", 1}, DeploymentStarted{"dev", 1});
  auto skipped = release.when(RecordStepStarted{"dev", 1, 1}, "executor");
  ASSERT_FALSE(skipped);
  EXPECT_EQ(skipped.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(skipped.error().message, "step 'smoke' of stage 'dev' cannot start before the steps ahead of it are done");
  auto stale = release.when(RecordStepStarted{"dev", 2, 0}, "executor");
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(stale.error().message, "stage 'dev' of release SampleApp-1 is at attempt 1, not 2");
}

TEST(ReleaseTest, UnknownStageIsNotFoundAndListsTheStages) {
  ReleaseHistory release;
  auto missing = release.when(DeployStage{"prd"}, "alice");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(missing.error().message, "release SampleApp-1 has no stage 'prd' (did you mean 'prod'? stages: dev, test, qa, prod)");
}

TEST(ReleaseTest, RedeployOfAFinishedStageStartsTheNextAttempt) {
  ReleaseHistory release;
  release.given(StageTriggered{"dev", "release created", 1}, DeploymentStarted{"dev", 1},
                StepStarted{"dev", 1, 0, "deploy", 1}, StepSucceeded{"dev", 1, 0, "deploy", 0, 10, ""},
                StepStarted{"dev", 1, 1, "smoke", 1},
                StepFailed{"dev", 1, 1, "smoke", 3, 10, "", "exit code 3", false, false, "", 0},
                events::DeploymentFailed{"dev", 1, "step 'smoke' failed: exit code 3"});
  auto redeploy = release.when(RedeployStage{"dev", ""}, "alice");
  ASSERT_TRUE(redeploy);
  EXPECT_EQ(only<events::StageTriggered>(redeploy.value()).reason, "redeploy by alice");
  EXPECT_EQ(release.state().find_stage("dev")->attempt, 2);
  EXPECT_EQ(release.state().find_stage("dev")->steps[1].status, StepStatus::kPending);
  release.deploy("dev");
  EXPECT_EQ(release.stage("dev"), StageState::kSucceeded);
}

// The executor queued attempt 1; before it started, attempt 1 was canceled
// and attempt 2 triggered. Starting "the stage" would start attempt 2 under
// attempt 1's command key, with no thread to run it, and a running engine
// would later fail it as interrupted: the start of attempt 1 is refused.
TEST(ReleaseTest, AStartOfAnAttemptTheStageHasLeftIsRefused) {
  ReleaseHistory release;
  release.given(StageTriggered{"dev", "release created", 1}, events::StageCanceled{"dev", 1, "canceled by alice"},
                StageTriggered{"dev", "redeploy by alice", 2});
  auto stale = release.when(StartDeployment{"dev", 1}, "executor");
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(stale.error().message, "stage 'dev' of release SampleApp-1 is at attempt 2, not 1");
  EXPECT_EQ(release.stage("dev"), StageState::kTriggered);
  auto current = release.when(StartDeployment{"dev", 2}, "executor");
  ASSERT_TRUE(current);
  EXPECT_EQ(only<DeploymentStarted>(current.value()).attempt, 2);
}

TEST(ReleaseTest, AbortFailsTheRunningStepAndTheDeployment) {
  ReleaseHistory release;
  release.given(StageTriggered{"dev", "r", 1}, DeploymentStarted{"dev", 1}, StepStarted{"dev", 1, 0, "deploy", 1});
  auto aborted = release.when(AbortDeployment{"dev", 1, "interrupted"}, "executor");
  ASSERT_TRUE(aborted);
  ASSERT_EQ(aborted.value().size(), 2u);
  EXPECT_EQ(only<StepFailed>(aborted.value()).reason, "interrupted");
  EXPECT_EQ(only<events::DeploymentFailed>(aborted.value(), 1).reason, "interrupted");
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
