// The closed sets of the release state (approval phase, order and decision,
// deployment outcome) are enums; their strings exist only at the edges and
// must be the very bytes the strings in state used to be.
#include "engine/release.hpp"
#include "projections/projection.hpp"
#include "projections/release_summary.hpp"
#include "tests/support/release_fixture.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace cascade::engine {
namespace {

using projections::DeploymentOutcome;
using testing::ReleaseHistory;

// Each to_string gives exactly the string the state used to hold, and each
// parse reads it back.
TEST(ApprovalEnumsTest, PhaseStringsAreTheOldOnesAndParseBack) {
  const std::vector<std::pair<ApprovalPhase, std::string>> phases = {{ApprovalPhase::kPre, "pre"},
                                                                     {ApprovalPhase::kPost, "post"}};
  for (const auto& [phase, text] : phases) {
    EXPECT_EQ(to_string(phase), text);
    EXPECT_EQ(parse_approval_phase(to_string(phase)), phase) << text;
  }
  for (const char* text : {"", "Pre", "pre ", "during"}) EXPECT_EQ(parse_approval_phase(text), std::nullopt) << text;
}

TEST(ApprovalEnumsTest, OrderStringsAreTheOldOnesAndParseBack) {
  const std::vector<std::pair<ApprovalOrder, std::string>> orders = {{ApprovalOrder::kAny, "any"},
                                                                     {ApprovalOrder::kSequential, "sequential"}};
  for (const auto& [order, text] : orders) {
    EXPECT_EQ(to_string(order), text);
    EXPECT_EQ(parse_approval_order(to_string(order)), order) << text;
  }
  for (const char* text : {"", "Any", "random"}) EXPECT_EQ(parse_approval_order(text), std::nullopt) << text;
}

// Decisions are never read back from text (each has its own event type).
TEST(ApprovalEnumsTest, DecisionStringsAreTheOldOnes) {
  EXPECT_EQ(to_string(ApprovalDecision::kApproved), "approved");
  EXPECT_EQ(to_string(ApprovalDecision::kRejected), "rejected");
  EXPECT_EQ(to_string(ApprovalDecision::kTimedOut), "timed out");
  EXPECT_EQ(to_string(ApprovalDecision::kSkipped), "skipped");
  EXPECT_EQ(to_string(ApprovalDecision::kClosed), "closed");
}

TEST(ApprovalEnumsTest, DeploymentOutcomeStringsAreTheOldOnesAndParseBack) {
  const std::vector<std::pair<DeploymentOutcome, std::string>> outcomes = {
      {DeploymentOutcome::kSucceeded, "Succeeded"},
      {DeploymentOutcome::kPartiallySucceeded, "PartiallySucceeded"},
      {DeploymentOutcome::kFailed, "Failed"},
      {DeploymentOutcome::kCanceled, "Canceled"}};
  for (const auto& [outcome, text] : outcomes) {
    EXPECT_EQ(projections::to_string(outcome), text);
    EXPECT_EQ(projections::parse_deployment_outcome(projections::to_string(outcome)), outcome) << text;
  }
  for (const char* text : {"", "succeeded", "Unknown"}) {
    EXPECT_EQ(projections::parse_deployment_outcome(text), std::nullopt) << text;
  }
}

// evolve maps the events' strings; "not requested yet" is no phase at all.
TEST(ApprovalEnumsTest, EvolveMapsTheEventsStrings) {
  ReleaseHistory release;
  EXPECT_EQ(release.state().find_stage("prod")->approval.phase, std::nullopt);
  release.given(testing::prod_awaiting_approval());
  const PendingApproval& pending = release.state().find_stage("prod")->approval;
  EXPECT_EQ(pending.phase, ApprovalPhase::kPre);
  EXPECT_EQ(pending.order, ApprovalOrder::kAny);
  ASSERT_TRUE(release.when(RejectStage{"prod", "not today"}, "release-manager"));
  const ApprovalRecord& rejected = release.state().find_stage("prod")->approvals.back();
  EXPECT_EQ(rejected.phase, ApprovalPhase::kPre);
  EXPECT_EQ(rejected.decision, ApprovalDecision::kRejected);
}

// Every decision an approval can end in, and both phases and orders:
//   dev     pre-approval approved by bob, deployed, post-approval timed out;
//   qa      pre-approval skipped (bob approved dev);
//   staging pre-approval rejected by carol;
//   perf    pre-approval closed: the waiting stage was canceled;
//   prod    sequential pre-approval, one of two given;
//   canary  manual, never triggered: no approval requested.
const char* kEveryDecisionPipeline = R"({
  "name": "Enums",
  "stages": [
    {"name": "dev", "trigger": {"after_release": true},
     "pre_approval": {"approvers": ["bob"]}, "post_approval": {"approvers": ["carol"], "timeout": "1h"},
     "steps": [{"name": "deploy", "run": "true"}, {"name": "smoke", "run": "true"}]},
    {"name": "qa", "trigger": {"after_stages": ["dev"]},
     "pre_approval": {"approvers": ["bob"], "skip_if_approved_earlier": true},
     "steps": [{"name": "deploy", "run": "true"}]},
    {"name": "staging", "trigger": {"after_stages": ["dev"]},
     "pre_approval": {"approvers": ["carol"]},
     "steps": [{"name": "deploy", "run": "true"}]},
    {"name": "perf", "trigger": {"after_stages": ["dev"]},
     "pre_approval": {"approvers": ["dave"]},
     "steps": [{"name": "deploy", "run": "true"}]},
    {"name": "prod", "trigger": {"after_stages": ["qa", "staging"]},
     "pre_approval": {"approvers": ["bob", "carol"], "required": "all", "order": "sequential"},
     "steps": [{"name": "deploy", "run": "true"}]},
    {"name": "canary", "trigger": {"manual": true},
     "steps": [{"name": "deploy", "run": "true"}]}
  ]
})";

ReleaseState release_with_every_decision() {
  auto definition = parse_pipeline_text(kEveryDecisionPipeline);
  EXPECT_TRUE(definition) << definition.error().message;
  ReleaseHistory release(definition.value(), "alice");
  EXPECT_TRUE(release.when(TriggerStage{"dev", "release created"}, "orchestrator"));
  EXPECT_TRUE(release.when(ApproveStage{"dev", "ship it", 0}, "bob"));
  EXPECT_TRUE(release.when(StartDeployment{"dev"}, "executor"));
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(release.when(RecordStepStarted{"dev", 1, i}, "executor"));
    RecordStepFinished finished;
    finished.stage = "dev";
    finished.attempt = 1;
    finished.step_index = i;
    finished.succeeded = true;
    finished.duration_ms = 100;
    EXPECT_TRUE(release.when(finished, "executor"));
  }
  EXPECT_TRUE(release.when(FinishDeployment{"dev", 1}, "executor"));
  release.advance(3600 * 1000);
  EXPECT_TRUE(release.when(ExpireApproval{"dev"}, "scheduler"));
  EXPECT_TRUE(release.when(TriggerStage{"qa", "after dev succeeded"}, "orchestrator"));
  EXPECT_TRUE(release.when(TriggerStage{"staging", "after dev succeeded"}, "orchestrator"));
  EXPECT_TRUE(release.when(RejectStage{"staging", "not today"}, "carol"));
  EXPECT_TRUE(release.when(TriggerStage{"perf", "after dev succeeded"}, "orchestrator"));
  EXPECT_TRUE(release.when(CancelStage{"perf", ""}, "alice"));
  EXPECT_TRUE(release.when(TriggerStage{"prod", "after qa, staging succeeded"}, "orchestrator"));
  EXPECT_TRUE(release.when(ApproveStage{"prod", "", 0}, "bob"));
  return release.state();
}

// summarize() of release_with_every_decision(), captured before the state
// held enums (when phase, order and decision were strings); since then the
// one intended change: a timed-out or closed approval names the actor of the
// closing event ("scheduler", "alice", where it was "") and the canceled
// stage has canceled_by.
const char* kEveryDecisionSummary =
    R"json({"abandon_reason":"","abandoned":false,"artifact":{"path":"/artifacts/1.0.0","version":"1.0.0"},"created_at":1800000001000,"id":"Enums-1","name":"Release-1","pipeline":"Enums","pipeline_version":1,"requested_by":"alice","secret_variables":[],"stages":[)json"
    R"json({"approvals":[{"approver":"bob","at":1800000003000,"comment":"ship it","decision":"approved","defer_until":0,"on_behalf_of":"bob","phase":"pre"},{"approver":"scheduler","at":1800003610000,"comment":"","decision":"timed out","defer_until":0,"on_behalf_of":"","phase":"post"}],"attempt":1,"defer_until":0,"failure_reason":"post-deployment approval timed out","finished_at":1800003610000,"name":"dev")json"
    R"json(,"pending_approval":{"approved_by":[],"approvers":["carol"],"deadline":1800003609000,"order":"any","phase":"post","required":1})json"
    R"json(,"started_at":1800000004000,"status":"Rejected","steps":[{"continued":false,"duration_ms":100,"exit_code":0,"finished_at":1800000006000,"log_digest":"","name":"deploy","reason":"")json"
    R"json(,"started_at":1800000005000,"status":"Succeeded","tries":1},{"continued":false,"duration_ms":100,"exit_code":0,"finished_at":1800000008000,"log_digest":"","name":"smoke","reason":"")json"
    R"json(,"started_at":1800000007000,"status":"Succeeded","tries":1}],"trigger_reason":"release created","triggered_at":1800000002000},)json"
    R"json({"approvals":[{"approver":"","at":1800003611000,"comment":"approved earlier by bob on dev","decision":"skipped","defer_until":0,"on_behalf_of":"","phase":"pre"}],"attempt":1,"defer_until":0,"failure_reason":"","finished_at":0,"name":"qa")json"
    R"json(,"pending_approval":{"approved_by":[],"approvers":[],"deadline":0,"order":"any","phase":"","required":0})json"
    R"json(,"started_at":0,"status":"Approved","steps":[{"continued":false,"duration_ms":0,"exit_code":0,"finished_at":0,"log_digest":"","name":"deploy","reason":"")json"
    R"json(,"started_at":0,"status":"Pending","tries":0}],"trigger_reason":"after dev succeeded","triggered_at":1800003611000},)json"
    R"json({"approvals":[{"approver":"carol","at":1800003613000,"comment":"not today","decision":"rejected","defer_until":0,"on_behalf_of":"carol","phase":"pre"}],"attempt":1,"defer_until":0,"failure_reason":"rejected by carol","finished_at":1800003613000,"name":"staging")json"
    R"json(,"pending_approval":{"approved_by":[],"approvers":["carol"],"deadline":1802595612000,"order":"any","phase":"pre","required":1})json"
    R"json(,"started_at":0,"status":"Rejected","steps":[{"continued":false,"duration_ms":0,"exit_code":0,"finished_at":0,"log_digest":"","name":"deploy","reason":"")json"
    R"json(,"started_at":0,"status":"Pending","tries":0}],"trigger_reason":"after dev succeeded","triggered_at":1800003612000},)json"
    R"json({"approvals":[{"approver":"alice","at":1800003615000,"comment":"canceled by alice","decision":"closed","defer_until":0,"on_behalf_of":"","phase":"pre"}],"attempt":1,"canceled_by":"alice","defer_until":0,"failure_reason":"canceled by alice","finished_at":1800003615000,"name":"perf")json"
    R"json(,"pending_approval":{"approved_by":[],"approvers":["dave"],"deadline":1802595614000,"order":"any","phase":"pre","required":1})json"
    R"json(,"started_at":0,"status":"Canceled","steps":[{"continued":false,"duration_ms":0,"exit_code":0,"finished_at":0,"log_digest":"","name":"deploy","reason":"")json"
    R"json(,"started_at":0,"status":"Pending","tries":0}],"trigger_reason":"after dev succeeded","triggered_at":1800003614000},)json"
    R"json({"approvals":[{"approver":"bob","at":1800003617000,"comment":"","decision":"approved","defer_until":0,"on_behalf_of":"bob","phase":"pre"}],"attempt":1,"defer_until":0,"failure_reason":"","finished_at":0,"name":"prod")json"
    R"json(,"pending_approval":{"approved_by":["bob"],"approvers":["bob","carol"],"deadline":1802595616000,"order":"sequential","phase":"pre","required":2})json"
    R"json(,"started_at":0,"status":"AwaitingPreApproval","steps":[{"continued":false,"duration_ms":0,"exit_code":0,"finished_at":0,"log_digest":"","name":"deploy","reason":"")json"
    R"json(,"started_at":0,"status":"Pending","tries":0}],"trigger_reason":"after qa, staging succeeded","triggered_at":1800003616000},)json"
    R"json({"approvals":[],"attempt":0,"defer_until":0,"failure_reason":"","finished_at":0,"name":"canary")json"
    R"json(,"pending_approval":{"approved_by":[],"approvers":[],"deadline":0,"order":"any","phase":"","required":0})json"
    R"json(,"started_at":0,"status":"NotStarted","steps":[],"trigger_reason":"","triggered_at":0})json"
    R"json(],"status":"InProgress","trigger":"manual","variables":{},"version":23})json";

TEST(ApprovalEnumsTest, ReleaseSummaryWithEveryDecisionIsByteIdentical) {
  EXPECT_EQ(projections::summarize(release_with_every_decision()).dump(), kEveryDecisionSummary);
}

}  // namespace
}  // namespace cascade::engine
