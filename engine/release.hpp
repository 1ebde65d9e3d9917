// The release aggregate: its state, the commands it takes, and the two pure
// functions that are the whole of its behaviour.
//
//   evolve(state, event)             — folds one event; never fails.
//   decide(state, command, context)  — the events a command produces, or why not.
//
// Replay (audit) and the live path use the same evolve. decide asks copies of
// the stage machines whether each candidate event is legal; the policies on
// top (who may approve, in which order, which step runs next) live here.
#pragma once

#include "engine/pipeline.hpp"
#include "engine/stage_machine.hpp"
#include "events/event.hpp"
#include "events/result.hpp"

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_set>
#include <variant>
#include <vector>

namespace cascade::engine {

// Before the deployment (pre) or after it (post). Events, read models and the
// API spell it "pre" and "post".
enum class ApprovalPhase { kPre, kPost };
std::string_view to_string(ApprovalPhase phase);
// The phase an event names; nullopt for anything but "pre" and "post".
std::optional<ApprovalPhase> parse_approval_phase(std::string_view text);

// How an approval was decided: granted, rejected, past its deadline, skipped
// (approved earlier), or closed (the waiting stage was canceled). Read models
// and the API spell it "approved", "rejected", "timed out", "skipped", "closed".
enum class ApprovalDecision { kApproved, kRejected, kTimedOut, kSkipped, kClosed };
std::string_view to_string(ApprovalDecision decision);

struct ApprovalRecord {
  ApprovalPhase phase = ApprovalPhase::kPre;
  // Who decided: the approver, or for a closing (timed out, closed) whoever
  // the closing event records as its actor (the scheduler, the person who
  // canceled or abandoned, the orchestrator that superseded it).
  std::string approver;
  std::string on_behalf_of;
  ApprovalDecision decision = ApprovalDecision::kApproved;
  std::string comment;
  bool override = false;  // an administrator decided in place of the approvers
  Timestamp at = 0;
  Timestamp defer_until = 0;
};

// The approval a stage waits for (or last waited for).
struct PendingApproval {
  std::optional<ApprovalPhase> phase;  // nullopt: none requested in this attempt
  std::vector<std::string> approvers;  // entries: users or group names
  int required = 0;
  ApprovalOrder order = ApprovalOrder::kAny;
  Timestamp deadline = 0;
  std::vector<std::string> satisfied;  // entries that have approved, in order
  std::vector<std::string> approved_by;  // the people who did
};

enum class StepStatus { kPending, kRunning, kSucceeded, kFailed, kSkipped, kCanceled };
std::string_view to_string(StepStatus status);

struct StepRecord {
  std::string name;
  StepStatus status = StepStatus::kPending;
  int tries = 0;
  int exit_code = 0;
  std::int64_t duration_ms = 0;
  std::string log_digest;
  std::string reason;
  bool will_retry = false;  // failed, another try follows
  bool continued = false;   // failed under continue_on_error
  Timestamp started_at = 0;
  Timestamp finished_at = 0;
};

// on_failure redeploy_last_good: what was chosen when the current attempt
// failed (RollbackChosen).
struct RollbackChoice {
  std::string rollback_to;  // the older release redeployed; empty: none
  std::string reason;
};

struct StageRecord {
  std::string name;
  StageMachine machine;
  int attempt = 0;  // 0 until first triggered
  std::string trigger_reason;
  std::string rollback_of;               // the current attempt is the rollback of this release's failure; empty: not a rollback
  std::optional<RollbackChoice> rollback;  // chosen after the current attempt failed; nullopt: not (yet)
  PendingApproval approval;
  std::vector<ApprovalRecord> approvals;  // every decision, all attempts
  Timestamp defer_until = 0;              // of the current attempt's pre-approval
  std::vector<StepRecord> steps;          // of the current attempt
  std::string failure_reason;             // why it failed, was rejected or canceled
  std::string canceled_by;                // the actor of the current attempt's cancel; empty: not canceled
  Timestamp triggered_at = 0;
  Timestamp started_at = 0;
  Timestamp finished_at = 0;

  StageState state() const { return machine.state(); }
};

enum class ReleaseStatus {
  kInProgress,
  kWaitingForApproval,
  kSucceeded,
  kPartiallySucceeded,
  kFailed,
  kRejected,
  kCanceled,
  kAbandoned,
};
std::string_view to_string(ReleaseStatus status);

struct ReleaseState {
  std::string id;       // <pipeline>-<n>, stable, used to address the release
  std::int64_t number = 0;
  std::string name;     // from the pipeline's release_name_format
  std::string pipeline;
  std::int64_t pipeline_version = 0;
  PipelineDefinition definition;  // the snapshot the release was created from
  events::Artifact artifact;
  events::Variables variables;
  std::map<std::string, std::string> secret_variables;  // name → digest
  std::string trigger;
  std::optional<events::CdEventTrigger> trigger_cdevent;  // the CI event that asked for it, if one did
  std::string requested_by;
  Timestamp created_at = 0;
  bool abandoned = false;
  std::string abandon_reason;
  std::string abandoned_by;  // the actor of ReleaseAbandoned
  std::vector<StageRecord> stages;     // in definition order
  std::int64_t version = 0;            // stream version folded so far; 0: no such release
  std::string last_hash;               // hash of the last folded event
  std::unordered_set<std::string> command_ids;  // commands already applied (idempotency); hashed: one per command of a long history

  bool exists() const { return version > 0; }
  const StageRecord* find_stage(std::string_view name) const;
  StageRecord* find_stage(std::string_view name);
  // kNotFound for a stage `name` the release does not have, naming its
  // stages and the closest one: "release Shop-4 has no stage 'prd' (did you
  // mean 'prod'? stages: dev, test, qa, prod)". The one wording everywhere.
  Error unknown_stage(std::string_view name) const;
};

// Derived from the stages, never stored. Abandoned wins; then anything
// running or about to run is InProgress; then a pending approval is
// WaitingForApproval; then Failed, Rejected, Canceled in that order; then
// PartiallySucceeded if any stage is; Succeeded when some stage succeeded.
ReleaseStatus release_status(const ReleaseState& state);

std::string release_stream(std::string_view release_id);
std::string pipeline_stream(std::string_view pipeline);

void evolve(ReleaseState& state, const events::RecordedEvent& event);

// Why `stage` should be triggered now by its trigger, or nullopt. Only a
// stage that was never triggered qualifies: redeploys are decided by people
// (or by on_failure); an abandoned release triggers nothing.
std::optional<std::string> automatic_trigger_reason(const ReleaseState& release, const StageRecord& stage);

// Whether step `index` of the stage's current attempt runs, given its
// condition and whether an earlier step failed the deployment.
bool step_should_run(const ReleaseState& release, const StageRecord& stage, int index);

// Whether every step of the current attempt has run (for the last time) or
// been skipped.
bool all_steps_done(const StageRecord& stage);

// ---- Commands ---------------------------------------------------------------

struct CreateRelease {
  std::string release_id;
  std::int64_t number = 0;
  std::string name;
  std::int64_t pipeline_version = 0;
  PipelineDefinition definition;
  events::Artifact artifact;
  events::Variables variables;
  std::map<std::string, std::string> secret_variables;  // name → digest
  std::string trigger = "manual";
  std::optional<events::CdEventTrigger> trigger_cdevent;  // the CI event that asked for it (Kafka ingress)
};
// The orchestrator's: a stage's trigger condition holds.
struct TriggerStage {
  std::string stage;
  std::string reason;
};
// A person's: deploy a manual stage that never ran.
struct DeployStage {
  std::string stage;
};
// A person's (or the orchestrator's, for redeploy_last_good): a new attempt
// of a stage that has finished — redeploying an older release is a rollback.
struct RedeployStage {
  std::string stage;
  std::string reason;  // empty: "redeploy by <actor>"
  // The orchestrator's: the release whose failure this redeploy undoes
  // (recorded in StageTriggered.rollback_of). Empty for a person's redeploy.
  std::string rollback_of = {};
};
// The orchestrator's, for on_failure redeploy_last_good: records which older
// release (or none, rollback_to empty) undoes the failure of attempt
// `attempt`, once per failed attempt, before anything is redeployed.
struct ChooseRollback {
  std::string stage;
  int attempt = 0;
  std::string rollback_to;
  std::string reason;
};
// `override`: an administrator decides in place of the approvers (the
// caller checks the role; the engine records it). The approval completes at
// once, whatever the policy's approvers, count, order or requester rule.
struct ApproveStage {
  std::string stage;
  std::string comment;
  Timestamp defer_until = 0;
  bool override = false;
};
struct RejectStage {
  std::string stage;
  std::string comment;
  bool override = false;
};
// The scheduler's, once the clock has passed a deadline.
struct ExpireApproval {
  std::string stage;
};
struct EndDeferral {
  std::string stage;
};
// A person's: stop a running deployment, or a stage waiting to deploy.
struct CancelStage {
  std::string stage;
  std::string reason;
};
// The executor's, under deploy_latest: a newer release reached the stage.
struct SupersedeStage {
  std::string stage;
  std::string newer_release;
};
struct AbandonRelease {
  std::string reason;
};
// The executor's, as it runs a deployment. `attempt` is the attempt the
// executor queued: a start decided on a queue entry older than the stage (a
// newer attempt was triggered meanwhile) is refused rather than starting the
// newer attempt under the older one's key, where no thread would run it.
// 0 (tests, scenarios): the stage's current attempt.
struct StartDeployment {
  std::string stage;
  int attempt = 0;
};
struct RecordStepStarted {
  std::string stage;
  int attempt = 0;
  int step_index = 0;
};
struct RecordStepFinished {
  std::string stage;
  int attempt = 0;
  int step_index = 0;
  bool succeeded = false;
  int exit_code = 0;
  std::int64_t duration_ms = 0;
  std::string log_digest;
  std::string reason;       // why it failed
  bool will_retry = false;  // the executor will try the step again
};
struct RecordStepSkipped {
  std::string stage;
  int attempt = 0;
  int step_index = 0;
  std::string reason;
};
// Every step has run or been skipped: the deployment's outcome follows from
// its steps, and a post-deployment approval is requested when the stage has one.
struct FinishDeployment {
  std::string stage;
  int attempt = 0;
};
// What the step log store held for one step when its deployment was aborted.
struct StoredStepLog {
  std::string digest;  // hex SHA-256 of the digest_bytes of every stored line, all tries, in order
  std::int64_t lines = 0;
};
// Ends a deployment that cannot go on (e.g. the engine restarted under it).
struct AbortDeployment {
  std::string stage;
  int attempt = 0;
  std::string reason;
  // By step index: what was stored of each step that was running, recorded
  // in its StepFailed (stored_log_digest, stored_log_lines) so that
  // verification covers the lines of a cut-off step. A running step without
  // an entry is recorded without them.
  std::map<int, StoredStepLog> stored_logs = {};
};

using Command = std::variant<CreateRelease, TriggerStage, DeployStage, RedeployStage, ChooseRollback, ApproveStage,
                             RejectStage, ExpireApproval, EndDeferral, CancelStage, SupersedeStage, AbandonRelease,
                             StartDeployment, RecordStepStarted, RecordStepFinished, RecordStepSkipped,
                             FinishDeployment, AbortDeployment>;

// Who issues a command, when, and its idempotency key: a command whose key
// the release has already applied produces no events.
struct CommandContext {
  std::string command_id;
  std::string actor;
  std::string causation_id;
  Timestamp now = 0;
  // The approver groups the actor's credential says they belong to (the
  // users file's `groups`): an approval entry naming one of them may be given
  // by the actor, as may one naming a pipeline group that lists them.
  std::vector<std::string> actor_groups = {};
};

// kNotFound: no such release or stage. kFailedPrecondition: the stage machine
// refuses (the message names stage, state and the states expected) or the
// release is abandoned. kPermissionDenied: the actor may not do this.
// kInvalidArgument: malformed (a deferral in the past, for instance).
Result<std::vector<events::Event>> decide(const ReleaseState& state, const Command& command,
                                          const CommandContext& context);

}  // namespace cascade::engine
