// The release aggregate: its state, the commands it takes, and the two pure
// functions that are the whole of its behaviour.
//
//   evolve(state, event)             — folds one event; never fails.
//   decide(state, command, context)  — the events a command produces, or why not.
//
// Replay (audit) and the live path use the same evolve. decide asks copies of
// the stage machines whether each candidate event is legal.
#pragma once

#include "engine/pipeline.hpp"
#include "engine/stage_machine.hpp"
#include "events/event.hpp"
#include "events/result.hpp"

#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

namespace cascade::engine {

using events::Timestamp;

struct ApprovalRecord {
  std::string phase;
  std::string approver;
  std::string decision;  // "approved" | "rejected"
  std::string comment;
  Timestamp at = 0;
};

enum class StepStatus { kPending, kRunning, kSucceeded, kFailed, kSkipped };
std::string_view to_string(StepStatus status);

struct StepRecord {
  std::string name;
  StepStatus status = StepStatus::kPending;
  int exit_code = 0;
  std::int64_t duration_ms = 0;
  std::string log_digest;
  std::string reason;
  Timestamp started_at = 0;
  Timestamp finished_at = 0;
};

struct StageRecord {
  std::string name;
  StageMachine machine;
  int attempt = 0;  // 0 until first triggered
  std::string trigger_reason;
  std::vector<std::string> approvers;  // of the pending or last approval request
  std::vector<ApprovalRecord> approvals;
  std::vector<StepRecord> steps;       // of the current attempt
  std::string failure_reason;
  Timestamp triggered_at = 0;
  Timestamp started_at = 0;
  Timestamp finished_at = 0;

  StageState state() const { return machine.state(); }
};

enum class ReleaseStatus { kInProgress, kWaitingForApproval, kSucceeded, kFailed, kRejected };
std::string_view to_string(ReleaseStatus status);

struct ReleaseState {
  std::string id;
  std::string pipeline;
  std::int64_t pipeline_version = 0;
  PipelineDefinition definition;  // the snapshot the release was created from
  events::Artifact artifact;
  events::Variables variables;
  std::string trigger;
  std::string requested_by;
  Timestamp created_at = 0;
  std::vector<StageRecord> stages;     // in definition order
  std::int64_t version = 0;            // stream version folded so far; 0: no such release
  std::string last_hash;               // hash of the last folded event
  std::set<std::string> command_ids;   // commands already applied (idempotency)

  bool exists() const { return version > 0; }
  const StageRecord* find_stage(std::string_view name) const;
  StageRecord* find_stage(std::string_view name);
};

// Derived from the stages, never stored: a failed or rejected stage fails the
// release once nothing else is running; any stage awaiting approval (and none
// deploying) makes it WaitingForApproval; every stage that can run having
// succeeded makes it Succeeded.
ReleaseStatus release_status(const ReleaseState& state);

std::string release_stream(std::string_view release_id);
std::string pipeline_stream(std::string_view pipeline);

void evolve(ReleaseState& state, const events::RecordedEvent& event);

// ---- Commands ---------------------------------------------------------------

struct CreateRelease {
  std::string release_id;
  std::int64_t pipeline_version = 0;
  PipelineDefinition definition;
  events::Artifact artifact;
  events::Variables variables;
  std::string trigger = "manual";
};
// The orchestrator's: a stage's trigger condition holds.
struct TriggerStage {
  std::string stage;
  std::string reason;
};
// A person's: deploy a manual stage, or redeploy a finished one (a new attempt).
struct DeployStage {
  std::string stage;
};
struct ApproveStage {
  std::string stage;
  std::string comment;
};
struct RejectStage {
  std::string stage;
  std::string comment;
};
// The executor's, as it runs a deployment.
struct StartDeployment {
  std::string stage;
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
  std::string reason;  // why it failed
};
// Ends a deployment that cannot go on (e.g. the engine restarted under it).
struct AbortDeployment {
  std::string stage;
  int attempt = 0;
  std::string reason;
};

using Command = std::variant<CreateRelease, TriggerStage, DeployStage, ApproveStage, RejectStage,
                             StartDeployment, RecordStepStarted, RecordStepFinished, AbortDeployment>;

// Who issues a command, and its idempotency key: a command whose key the
// release has already applied produces no events.
struct CommandContext {
  std::string command_id;
  std::string actor;
  std::string causation_id;
  Timestamp now = 0;
};

// kNotFound: no such release or stage. kFailedPrecondition: the stage machine
// refuses (the message names stage, state and the states expected).
// kPermissionDenied: the actor may not do this. kInvalidArgument: malformed.
Result<std::vector<events::Event>> decide(const ReleaseState& state, const Command& command,
                                          const CommandContext& context);

}  // namespace cascade::engine
