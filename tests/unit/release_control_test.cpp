// Release control (approvals, step outcomes, operator actions), given /
// when / then on the aggregate, with time moved by hand.
#include "engine/release.hpp"
#include "engine/release_service.hpp"

#include "tests/support/release_fixture.hpp"

#include <gtest/gtest.h>

namespace cascade::engine {
namespace {

using events::ApprovalGranted;
using events::ApprovalRequested;
using events::DeploymentStarted;
using events::StageTriggered;
using events::StepFailed;
using events::StepStarted;
using events::StepSucceeded;
using testing::deployment_succeeded;
using testing::ReleaseHistory;
constexpr std::int64_t kDay = 24LL * 3600 * 1000;
constexpr events::Timestamp kFarFuture = 1'900'000'000'000;  // an approval deadline no test reaches

PipelineDefinition pipeline(const std::string& json) {
  auto parsed = parse_pipeline_text(json);
  EXPECT_TRUE(parsed) << (parsed ? "" : parsed.error().message + (parsed.error().details.empty() ? "" : ": " + parsed.error().details[0].path + " " + parsed.error().details[0].message));
  return parsed.value();
}

// One stage "prod" with the given pre_approval policy, one step.
PipelineDefinition approval_pipeline(const std::string& policy, const std::string& extra = "") {
  return pipeline(R"({"name": "Shop", "groups": {"release-managers": ["alice", "bob"]}, )" + extra +
                  R"( "stages": [{"name": "prod", "trigger": {"after_release": true}, "pre_approval": )" + policy +
                  R"(, "steps": [{"name": "deploy", "run": "deploy"}]}]})");
}

template <class T>
const T& event_at(const Result<std::vector<events::Event>>& events, std::size_t index = 0) {
  EXPECT_TRUE(events);
  return std::get<T>(events.value().at(index));
}

ApproveStage approve(const std::string& stage, events::Timestamp defer_until = 0) {
  return ApproveStage{stage, "", defer_until};
}

TEST(ReleaseControlTest, AnAdminOverrideCompletesAnApprovalWhateverItsPolicy) {
  // Two of three, in order, and the requester may not approve: an override
  // by an administrator (who is none of the approvers) completes it at once.
  ReleaseHistory release(approval_pipeline(
                             R"({"approvers": ["alice", "bob", "carol"], "required": 2, "order": "sequential", "requester_cannot_approve": true})"),
                         "dave");
  ASSERT_TRUE(release.when(TriggerStage{"prod", "r"}, "orchestrator"));
  auto plain = release.when(approve("prod"), "dave");
  ASSERT_FALSE(plain);
  EXPECT_EQ(plain.error().code, ErrorCode::kPermissionDenied);
  EXPECT_EQ(plain.error().message,
            "'dave' requested release Shop-1 and may not approve it (requester_cannot_approve on stage 'prod')");
  auto overridden = release.when(ApproveStage{"prod", "hotfix, approvers away", 0, true}, "dave");
  ASSERT_TRUE(overridden) << overridden.error().message;
  const auto& granted = event_at<events::ApprovalGranted>(overridden);
  EXPECT_TRUE(granted.override);
  EXPECT_EQ(granted.approver, "dave");
  EXPECT_EQ(granted.on_behalf_of, "");
  EXPECT_EQ(release.stage("prod"), StageState::kApproved);
  ASSERT_EQ(release.state().find_stage("prod")->approvals.size(), 1u);
  EXPECT_TRUE(release.state().find_stage("prod")->approvals[0].override);
  // It is still an approval: once given, the stage machine refuses another.
  auto again = release.when(ApproveStage{"prod", "", 0, true}, "erin");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(again.error().message.find("stage is Approved"), std::string::npos) << again.error().message;
}

TEST(ReleaseControlTest, AnAdminOverrideCanReject) {
  ReleaseHistory release(approval_pipeline(R"({"approvers": ["alice"]})"), "dave");
  ASSERT_TRUE(release.when(TriggerStage{"prod", "r"}, "orchestrator"));
  auto rejected = release.when(RejectStage{"prod", "not today", true}, "erin");
  ASSERT_TRUE(rejected) << rejected.error().message;
  EXPECT_TRUE(event_at<events::ApprovalRejected>(rejected).override);
  EXPECT_EQ(release.stage("prod"), StageState::kRejected);
}

TEST(ReleaseControlTest, NOfMApprovalCompletesWithTheNthApprover) {
  ReleaseHistory release(approval_pipeline(R"({"approvers": ["alice", "bob", "carol"], "required": 2})"), "dave");
  auto requested = release.when(TriggerStage{"prod", "r"}, "orchestrator");
  EXPECT_EQ(event_at<events::ApprovalRequested>(requested, 1).required, 2);
  ASSERT_TRUE(release.when(approve("prod"), "carol"));
  EXPECT_EQ(release.stage("prod"), StageState::kAwaitingPreApproval);
  auto twice = release.when(approve("prod"), "carol");
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code, ErrorCode::kPermissionDenied);
  EXPECT_EQ(twice.error().message, "'carol' has already approved stage 'prod' of release Shop-1");
  ASSERT_TRUE(release.when(approve("prod"), "alice"));
  EXPECT_EQ(release.stage("prod"), StageState::kApproved);
}

TEST(ReleaseControlTest, AllMeansEveryListedApprover) {
  ReleaseHistory release(approval_pipeline(R"({"approvers": ["alice", "carol"], "required": "all"})"), "dave");
  ASSERT_TRUE(release.when(TriggerStage{"prod", "r"}, "orchestrator"));
  ASSERT_TRUE(release.when(approve("prod"), "alice"));
  EXPECT_EQ(release.stage("prod"), StageState::kAwaitingPreApproval);
  ASSERT_TRUE(release.when(approve("prod"), "carol"));
  EXPECT_EQ(release.stage("prod"), StageState::kApproved);
}

TEST(ReleaseControlTest, SequentialApprovalsGoInListedOrder) {
  ReleaseHistory release(
      approval_pipeline(R"({"approvers": ["carol", "alice"], "required": "all", "order": "sequential"})"), "dave");
  ASSERT_TRUE(release.when(TriggerStage{"prod", "r"}, "orchestrator"));
  auto early = release.when(approve("prod"), "alice");
  ASSERT_FALSE(early);
  EXPECT_EQ(early.error().code, ErrorCode::kPermissionDenied);
  EXPECT_EQ(early.error().message, "stage 'prod' of release Shop-1 needs approval by 'carol' first (sequential order)");
  ASSERT_TRUE(release.when(approve("prod"), "carol"));
  ASSERT_TRUE(release.when(approve("prod"), "alice"));
  EXPECT_EQ(release.stage("prod"), StageState::kApproved);
}

TEST(ReleaseControlTest, AnyMemberActsForAGroupAndIsRecordedAsActingForIt) {
  ReleaseHistory release(approval_pipeline(R"({"approvers": ["release-managers"]})"), "dave");
  ASSERT_TRUE(release.when(TriggerStage{"prod", "r"}, "orchestrator"));
  auto outsider = release.when(approve("prod"), "carol");
  ASSERT_FALSE(outsider);
  EXPECT_EQ(outsider.error().code, ErrorCode::kPermissionDenied);
  EXPECT_EQ(outsider.error().message,
            "'carol' is not an approver of stage 'prod' of release Shop-1 (approvers: release-managers)");
  auto granted = release.when(approve("prod"), "bob");
  EXPECT_EQ(event_at<events::ApprovalGranted>(granted).on_behalf_of, "release-managers");
  EXPECT_EQ(event_at<events::ApprovalGranted>(granted).approver, "bob");
  EXPECT_EQ(release.stage("prod"), StageState::kApproved);
}

TEST(ReleaseControlTest, TheRequesterMayNotApproveWhenThePolicySaysSo) {
  ReleaseHistory release(approval_pipeline(R"({"approvers": ["release-managers"], "requester_cannot_approve": true})"),
                         "alice");
  ASSERT_TRUE(release.when(TriggerStage{"prod", "r"}, "orchestrator"));
  auto own = release.when(approve("prod"), "alice");
  ASSERT_FALSE(own);
  EXPECT_EQ(own.error().code, ErrorCode::kPermissionDenied);
  EXPECT_EQ(own.error().message,
            "'alice' requested release Shop-1 and may not approve it (requester_cannot_approve on stage 'prod')");
  ASSERT_TRUE(release.when(approve("prod"), "bob"));
}

TEST(ReleaseControlTest, AnApprovalTimesOutAfterThirtyDaysByDefault) {
  ReleaseHistory release(approval_pipeline(R"({"approvers": ["alice"]})"), "dave");
  auto requested = release.when(TriggerStage{"prod", "r"}, "orchestrator");
  const auto deadline = event_at<events::ApprovalRequested>(requested, 1).deadline;
  EXPECT_EQ(deadline, release.now() + 30 * kDay);
  auto early = release.when(ExpireApproval{"prod"}, "scheduler");
  ASSERT_FALSE(early);
  EXPECT_EQ(early.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(early.error().message,
            "the approval of stage 'prod' is not due before " + std::to_string(deadline) + " ms since the epoch");
  release.advance(30 * kDay);
  ASSERT_TRUE(release.when(ExpireApproval{"prod"}, "scheduler"));
  EXPECT_EQ(release.stage("prod"), StageState::kRejected);
  EXPECT_EQ(release.state().find_stage("prod")->failure_reason, "pre-deployment approval timed out");
  EXPECT_EQ(release_status(release.state()), ReleaseStatus::kRejected);
  auto late = release.when(approve("prod"), "alice");
  ASSERT_FALSE(late) << "too late";
  EXPECT_EQ(late.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(late.error().message.find("stage is Rejected"), std::string::npos) << late.error().message;
}

TEST(ReleaseControlTest, ADeferralMustLieInTheFuture) {
  ReleaseHistory release(approval_pipeline(R"({"approvers": ["alice"]})"), "dave");
  release.given(StageTriggered{"prod", "r", 1}, ApprovalRequested{"prod", "pre", {"alice"}, 1, "any", kFarFuture});
  auto past = release.when(approve("prod", release.now() - 1), "alice");
  ASSERT_FALSE(past);
  EXPECT_EQ(past.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(past.error().message.rfind("defer_until must be in the future", 0), 0u) << past.error().message;
  EXPECT_EQ(release.stage("prod"), StageState::kAwaitingPreApproval);
}

TEST(ReleaseControlTest, DeferredApprovalDeploysOnlyOnceItsTimeHasCome) {
  ReleaseHistory release(approval_pipeline(R"({"approvers": ["alice"]})"), "dave");
  const events::Timestamp at = release.now() + 6 * 3600 * 1000;
  release.given(StageTriggered{"prod", "r", 1}, ApprovalRequested{"prod", "pre", {"alice"}, 1, "any", kFarFuture},
                ApprovalGranted{"prod", "pre", "alice", "alice", "", at, false});
  EXPECT_EQ(release.stage("prod"), StageState::kDeferred);
  auto start = release.when(StartDeployment{"prod"}, "executor");
  ASSERT_FALSE(start);
  EXPECT_EQ(start.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(start.error().message.find("stage is Deferred, expected Triggered or Approved"), std::string::npos)
      << start.error().message;
  auto early = release.when(EndDeferral{"prod"}, "scheduler");
  ASSERT_FALSE(early) << "not yet";
  EXPECT_EQ(early.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(early.error().message, "stage 'prod' is deferred until " + std::to_string(at) + " ms since the epoch");
  release.advance(6 * 3600 * 1000);
  auto elapsed = release.when(EndDeferral{"prod"}, "scheduler");
  ASSERT_TRUE(elapsed) << elapsed.error().message;
  EXPECT_EQ(event_at<events::DeferralElapsed>(elapsed).defer_until, at);
  EXPECT_EQ(release.stage("prod"), StageState::kApproved);
  EXPECT_TRUE(release.when(StartDeployment{"prod"}, "executor"));
}

TEST(ReleaseControlTest, ApprovalIsSkippedWhenTheSameApproverApprovedAnEarlierStage) {
  ReleaseHistory release(pipeline(R"({"name": "Shop", "stages": [
    {"name": "qa", "trigger": {"after_release": true}, "pre_approval": {"approvers": ["bob"]}, "steps": [{"name": "d", "run": "d"}]},
    {"name": "prod", "trigger": {"after_stages": ["qa"]}, "pre_approval": {"approvers": ["bob", "carol"], "skip_if_approved_earlier": true},
     "steps": [{"name": "d", "run": "d"}]}]})"),
                         "dave");
  ASSERT_TRUE(release.when(TriggerStage{"qa", "r"}, "orchestrator"));
  ASSERT_TRUE(release.when(approve("qa"), "bob"));
  auto triggered = release.when(TriggerStage{"prod", "r"}, "orchestrator");
  EXPECT_EQ(event_at<events::ApprovalSkipped>(triggered, 1).reason, "approved earlier by bob on qa");
  EXPECT_EQ(release.stage("prod"), StageState::kApproved);
}

TEST(ReleaseControlTest, PostDeploymentApprovalHoldsTheOutcomeAndTheDownstreamStages) {
  ReleaseHistory release(pipeline(R"({"name": "Shop", "stages": [
    {"name": "qa", "trigger": {"after_release": true}, "post_approval": {"approvers": ["bob"]},
     "steps": [{"name": "deploy", "run": "d"}, {"name": "smoke", "run": "s"}]},
    {"name": "prod", "trigger": {"after_stages": ["qa"]}, "steps": [{"name": "d", "run": "d"}]}]})"));
  release.given(StageTriggered{"qa", "r", 1}, DeploymentStarted{"qa", 1}, StepStarted{"qa", 1, 0, "deploy", 1},
                StepSucceeded{"qa", 1, 0, "deploy", 0, 10, ""}, StepStarted{"qa", 1, 1, "smoke", 1},
                StepSucceeded{"qa", 1, 1, "smoke", 0, 10, ""});
  auto finished = release.when(FinishDeployment{"qa", 1}, "executor");
  ASSERT_TRUE(finished) << finished.error().message;
  ASSERT_EQ(finished.value().size(), 2u);
  EXPECT_EQ(event_at<ApprovalRequested>(finished, 1).phase, "post");
  EXPECT_EQ(event_at<ApprovalRequested>(finished, 1).approvers, std::vector<std::string>{"bob"});
  EXPECT_EQ(release.stage("qa"), StageState::kAwaitingPostApproval);
  EXPECT_EQ(release_status(release.state()), ReleaseStatus::kWaitingForApproval);
  EXPECT_FALSE(automatic_trigger_reason(release.state(), *release.state().find_stage("prod")));
  ASSERT_TRUE(release.when(approve("qa"), "bob"));
  EXPECT_EQ(release.stage("qa"), StageState::kSucceeded);
  EXPECT_EQ(automatic_trigger_reason(release.state(), *release.state().find_stage("prod")), "after qa succeeded");
}

PipelineDefinition steps_pipeline(const std::string& steps, const std::string& downstream_trigger = "") {
  return pipeline(R"({"name": "Shop", "stages": [
    {"name": "dev", "trigger": {"after_release": true}, "steps": )" + steps + R"(},
    {"name": "next", "trigger": {"after_stages": ["dev"])" + downstream_trigger + R"(}, "steps": [{"name": "d", "run": "d"}]}]})");
}

RecordStepFinished finished(int index, bool succeeded, bool will_retry = false) {
  RecordStepFinished f;
  f.stage = "dev";
  f.attempt = 1;
  f.step_index = index;
  f.succeeded = succeeded;
  f.exit_code = succeeded ? 0 : 1;
  f.reason = succeeded ? "" : "exit code 1";
  f.will_retry = will_retry;
  return f;
}

TEST(ReleaseControlTest, ContinueOnErrorEndsTheStagePartiallySucceeded) {
  for (const bool allowed : {false, true}) {
    ReleaseHistory release(steps_pipeline(R"([{"name": "lint", "run": "l", "continue_on_error": true}, {"name": "deploy", "run": "d"}])",
                                          allowed ? R"(, "on_partial_success": true)" : ""));
    ASSERT_TRUE(release.when(TriggerStage{"dev", "r"}, "orchestrator"));
    ASSERT_TRUE(release.when(StartDeployment{"dev"}, "executor"));
    ASSERT_TRUE(release.when(RecordStepStarted{"dev", 1, 0}, "executor"));
    auto failed = release.when(finished(0, false), "executor");
    EXPECT_TRUE(event_at<events::StepFailed>(failed).continued);
    ASSERT_TRUE(release.when(RecordStepStarted{"dev", 1, 1}, "executor")) << "the next step still runs";
    ASSERT_TRUE(release.when(finished(1, true), "executor"));
    auto done = release.when(FinishDeployment{"dev", 1}, "executor");
    EXPECT_TRUE(event_at<events::DeploymentSucceeded>(done).partial);
    EXPECT_EQ(release.stage("dev"), StageState::kPartiallySucceeded);
    EXPECT_EQ(automatic_trigger_reason(release.state(), *release.state().find_stage("next")).has_value(), allowed)
        << "on_partial_success: " << allowed;
  }
}

TEST(ReleaseControlTest, RetriesTryAgainUntilTheirCountIsUsed) {
  ReleaseHistory release(steps_pipeline(R"([{"name": "deploy", "run": "d", "retries": {"count": 1, "delay_s": 30}}])"));
  release.given(StageTriggered{"dev", "r", 1}, DeploymentStarted{"dev", 1}, StepStarted{"dev", 1, 0, "deploy", 1},
                StepFailed{"dev", 1, 0, "deploy", 1, 10, "", "exit code 1", /*will_retry=*/true, false, "", 0});
  auto pending = release.when(FinishDeployment{"dev", 1}, "executor");
  ASSERT_FALSE(pending) << "a retry is pending";
  EXPECT_EQ(pending.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(pending.error().message, "the deployment of stage 'dev' of release Shop-1 still has steps to run");
  auto second = release.when(RecordStepStarted{"dev", 1, 0}, "executor");
  EXPECT_EQ(event_at<events::StepStarted>(second).try_number, 2);
  auto no_more = release.when(finished(0, false, /*will_retry=*/true), "executor");
  ASSERT_FALSE(no_more);
  EXPECT_EQ(no_more.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(no_more.error().message, "step 'deploy' has used its 1 retries");
  ASSERT_TRUE(release.when(finished(0, false), "executor"));
  ASSERT_TRUE(release.when(FinishDeployment{"dev", 1}, "executor"));
  EXPECT_EQ(release.stage("dev"), StageState::kFailed);
}

TEST(ReleaseControlTest, StepConditionsDecideWhatRunsAfterAFailure) {
  ReleaseHistory release(steps_pipeline(R"([{"name": "deploy", "run": "d"}, {"name": "smoke", "run": "s"},
      {"name": "rollback", "run": "r", "condition": "failed"}, {"name": "cleanup", "run": "c", "condition": "always"}])"));
  release.given(StageTriggered{"dev", "r", 1}, DeploymentStarted{"dev", 1}, StepStarted{"dev", 1, 0, "deploy", 1},
                StepFailed{"dev", 1, 0, "deploy", 1, 10, "", "exit code 1", false, false, "", 0});
  auto smoke = release.when(RecordStepStarted{"dev", 1, 1}, "executor");
  ASSERT_FALSE(smoke);
  EXPECT_EQ(smoke.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(smoke.error().message, "step 'smoke' of stage 'dev' does not run: its condition does not hold");
  ASSERT_TRUE(release.when(RecordStepSkipped{"dev", 1, 1, "an earlier step failed"}, "executor"));
  auto rollback = release.when(RecordStepSkipped{"dev", 1, 2, "x"}, "executor");
  ASSERT_FALSE(rollback) << "rollback must run";
  EXPECT_EQ(rollback.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(rollback.error().message, "step 'rollback' of stage 'dev' must run: its condition holds");
  ASSERT_TRUE(release.when(RecordStepStarted{"dev", 1, 2}, "executor"));
  ASSERT_TRUE(release.when(finished(2, true), "executor"));
  ASSERT_TRUE(release.when(RecordStepStarted{"dev", 1, 3}, "executor"));
  ASSERT_TRUE(release.when(finished(3, true), "executor"));
  auto done = release.when(FinishDeployment{"dev", 1}, "executor");
  EXPECT_EQ(event_at<events::DeploymentFailed>(done).reason, "step 'deploy' failed: exit code 1");
  EXPECT_EQ(release.state().find_stage("dev")->steps[1].status, StepStatus::kSkipped);
  EXPECT_EQ(release.state().find_stage("dev")->steps[3].status, StepStatus::kSucceeded);
}

TEST(ReleaseControlTest, CancelStopsARunningDeploymentOrAWaitingStage) {
  ReleaseHistory running;
  running.given(StageTriggered{"dev", "r", 1}, DeploymentStarted{"dev", 1}, StepStarted{"dev", 1, 0, "deploy", 1});
  auto canceled = running.when(CancelStage{"dev", ""}, "alice");
  EXPECT_EQ(event_at<events::DeploymentCanceled>(canceled).reason, "canceled by alice");
  EXPECT_EQ(running.stage("dev"), StageState::kCanceled);
  EXPECT_EQ(running.state().find_stage("dev")->steps[0].status, StepStatus::kCanceled);
  EXPECT_EQ(running.state().find_stage("dev")->steps[1].status, StepStatus::kCanceled);
  EXPECT_EQ(release_status(running.state()), ReleaseStatus::kCanceled);

  ReleaseHistory waiting;
  waiting.given(testing::prod_awaiting_approval());
  auto closed = waiting.when(CancelStage{"prod", "not this week"}, "alice");
  EXPECT_EQ(event_at<events::StageCanceled>(closed).reason, "not this week");
  EXPECT_EQ(waiting.state().find_stage("prod")->approvals.back().decision, ApprovalDecision::kClosed);
  auto again = waiting.when(CancelStage{"prod", ""}, "alice");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(again.error().message,
            "cannot cancel stage 'prod' of release SampleApp-1: stage is Canceled, expected Triggered or "
            "AwaitingPreApproval or Deferred or Approved or AwaitingPostApproval or Deploying");
}

TEST(ReleaseControlTest, AbandonCancelsEverythingAndTriggersNothingMore) {
  ReleaseHistory release;
  release.given(StageTriggered{"dev", "r", 1}, deployment_succeeded("dev"), StageTriggered{"test", "r", 1},
                StageTriggered{"qa", "r", 1}, DeploymentStarted{"qa", 1});
  auto abandoned = release.when(AbandonRelease{"bad build"}, "alice");
  ASSERT_TRUE(abandoned);
  ASSERT_EQ(abandoned.value().size(), 3u);
  EXPECT_EQ(event_at<events::StageCanceled>(abandoned, 0).stage, "test");
  EXPECT_EQ(event_at<events::DeploymentCanceled>(abandoned, 1).stage, "qa");
  EXPECT_EQ(event_at<events::ReleaseAbandoned>(abandoned, 2).reason, "bad build");
  EXPECT_EQ(release.stage("test"), StageState::kCanceled);
  EXPECT_EQ(release.stage("qa"), StageState::kCanceled);
  EXPECT_EQ(release_status(release.state()), ReleaseStatus::kAbandoned);
  auto redeploy = release.when(RedeployStage{"dev", ""}, "alice");
  ASSERT_FALSE(redeploy);
  EXPECT_EQ(redeploy.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(redeploy.error().message, "release SampleApp-1 is abandoned (bad build)");
  auto twice = release.when(AbandonRelease{""}, "alice");
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(twice.error().message, "release SampleApp-1 is abandoned (bad build)");
  EXPECT_FALSE(automatic_trigger_reason(release.state(), *release.state().find_stage("prod")));
}

TEST(ReleaseControlTest, DeployIsForStagesNeverRunAndRedeployForFinishedOnes) {
  ReleaseHistory release;
  release.given(StageTriggered{"dev", "r", 1}, deployment_succeeded("dev"));
  auto deploy = release.when(DeployStage{"dev"}, "alice");
  ASSERT_FALSE(deploy);
  EXPECT_EQ(deploy.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(deploy.error().message,
            "stage 'dev' of release SampleApp-1 was deployed before (attempt 1); use redeploy for a new attempt");
  auto redeploy = release.when(RedeployStage{"test", ""}, "alice");
  ASSERT_FALSE(redeploy);
  EXPECT_EQ(redeploy.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(redeploy.error().message, "stage 'test' of release SampleApp-1 was never deployed; use deploy");
  auto again = release.when(RedeployStage{"dev", ""}, "alice");
  EXPECT_EQ(event_at<events::StageTriggered>(again).attempt, 2);
}

TEST(ReleaseControlTest, SupersedingCancelsOnlyAWaitingStageAndNamesTheNewerRelease) {
  ReleaseHistory release;
  release.given(testing::prod_awaiting_approval());
  auto superseded = release.when(SupersedeStage{"prod", "SampleApp-7"}, "executor");
  EXPECT_EQ(event_at<events::StageCanceled>(superseded).reason, "superseded by SampleApp-7");
  ReleaseHistory deploying;
  deploying.given(StageTriggered{"dev", "r", 1}, DeploymentStarted{"dev", 1});
  auto refused = deploying.when(SupersedeStage{"dev", "SampleApp-7"}, "executor");
  ASSERT_FALSE(refused) << "a running deployment finishes";
  EXPECT_EQ(refused.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(refused.error().message,
            "cannot supersede stage 'dev' of release SampleApp-1: stage is Deploying, expected Triggered or "
            "AwaitingPreApproval or Deferred or Approved or AwaitingPostApproval");
}

TEST(ReleaseControlTest, ReleaseNamesFollowThePipelinesFormat) {
  const events::Timestamp at = 1'795'000'000'000;  // 2026-11-18 UTC
  EXPECT_EQ(format_release_name("Release-$(rev:r)", 42, "1.2.3", at), "Release-42");
  EXPECT_EQ(format_release_name("$(build) ($(date:yyyyMMdd)) #$(rev:r)", 7, "1.2.3", at), "1.2.3 (20261118) #7");
  EXPECT_EQ(format_release_name("R$(date:yyyy-MM-dd).$(rev:r)", 3, "", at), "R2026-11-18.3");
}

}  // namespace
}  // namespace cascade::engine
