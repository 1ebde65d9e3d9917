// The release aggregate's state: evolve, which folds one event into it and
// never fails, and the queries over it. decide is in decide.cpp.
#include "engine/release.hpp"

#include "events/did_you_mean.hpp"
#include "engine/release_internal.hpp"

#include "events/join.hpp"
#include "events/overloaded.hpp"

#include <algorithm>

namespace cascade::engine {
namespace {

using namespace cascade::events;
using release_internal::hard_failure;
using release_internal::step_done;

StageRecord* stage_of(ReleaseState& state, const Event& event) {
  return std::visit(
      [&state](const auto& payload) -> StageRecord* {
        if constexpr (kIsStageEvent<std::decay_t<decltype(payload)>>) {
          return state.find_stage(payload.stage);
        } else {
          return nullptr;
        }
      },
      event);
}

StepRecord* step_at(StageRecord& stage, int index) {
  if (index < 0 || static_cast<std::size_t>(index) >= stage.steps.size()) return nullptr;
  return &stage.steps[static_cast<std::size_t>(index)];
}

void start_attempt(const ReleaseState& release, StageRecord& stage, const StageTriggered& triggered, Timestamp at) {
  stage.attempt = triggered.attempt;
  stage.trigger_reason = triggered.reason;
  stage.rollback_of = triggered.rollback_of;
  stage.rollback.reset();
  stage.triggered_at = at;
  stage.started_at = 0;
  stage.finished_at = 0;
  stage.defer_until = 0;
  stage.failure_reason.clear();
  stage.canceled_by.clear();
  stage.approval = PendingApproval{};
  stage.steps.clear();
  if (const StageDefinition* definition = release.definition.find_stage(stage.name)) {
    for (const StepDefinition& step : definition->steps) {
      StepRecord record;
      record.name = step.name;
      stage.steps.push_back(std::move(record));
    }
  }
}

void end_steps(StageRecord& stage, StepStatus unfinished) {
  for (StepRecord& step : stage.steps) {
    if (step.status == StepStatus::kPending || step.status == StepStatus::kRunning || step.will_retry) {
      step.status = unfinished;
      step.will_retry = false;
    }
  }
}

ApprovalRecord decision(ApprovalPhase phase, const std::string& approver, const std::string& on_behalf_of,
                        ApprovalDecision what, const std::string& comment, Timestamp at) {
  ApprovalRecord record;
  record.phase = phase;
  record.approver = approver;
  record.on_behalf_of = on_behalf_of;
  record.decision = what;
  record.comment = comment;
  record.at = at;
  return record;
}

// The phase a decision event names. decide copies it from the approval the
// stage waits for, and the stage machine took the event only while the stage
// waits for one; a phase that does not parse (a log not written by decide)
// falls back to that approval's.
ApprovalPhase phase_of(const std::string& text, const StageRecord& stage) {
  return parse_approval_phase(text).value_or(stage.approval.phase.value_or(ApprovalPhase::kPre));
}

}  // namespace

std::string_view to_string(ApprovalPhase phase) {
  switch (phase) {
    case ApprovalPhase::kPre: return "pre";
    case ApprovalPhase::kPost: return "post";
  }
  return "unknown";
}

std::optional<ApprovalPhase> parse_approval_phase(std::string_view text) {
  if (text == "pre") return ApprovalPhase::kPre;
  if (text == "post") return ApprovalPhase::kPost;
  return std::nullopt;
}

std::string_view to_string(ApprovalDecision decision) {
  switch (decision) {
    case ApprovalDecision::kApproved: return "approved";
    case ApprovalDecision::kRejected: return "rejected";
    case ApprovalDecision::kTimedOut: return "timed out";
    case ApprovalDecision::kSkipped: return "skipped";
    case ApprovalDecision::kClosed: return "closed";
  }
  return "unknown";
}

std::string_view to_string(StepStatus status) {
  switch (status) {
    case StepStatus::kPending: return "Pending";
    case StepStatus::kRunning: return "Running";
    case StepStatus::kSucceeded: return "Succeeded";
    case StepStatus::kFailed: return "Failed";
    case StepStatus::kSkipped: return "Skipped";
    case StepStatus::kCanceled: return "Canceled";
  }
  return "Unknown";
}

std::string_view to_string(ReleaseStatus status) {
  switch (status) {
    case ReleaseStatus::kInProgress: return "InProgress";
    case ReleaseStatus::kWaitingForApproval: return "WaitingForApproval";
    case ReleaseStatus::kSucceeded: return "Succeeded";
    case ReleaseStatus::kPartiallySucceeded: return "PartiallySucceeded";
    case ReleaseStatus::kFailed: return "Failed";
    case ReleaseStatus::kRejected: return "Rejected";
    case ReleaseStatus::kCanceled: return "Canceled";
    case ReleaseStatus::kAbandoned: return "Abandoned";
  }
  return "Unknown";
}

std::string release_stream(std::string_view release_id) { return "release-" + std::string(release_id); }
std::string pipeline_stream(std::string_view pipeline) { return "pipeline-" + std::string(pipeline); }

const StageRecord* ReleaseState::find_stage(std::string_view name) const {
  auto it = std::find_if(stages.begin(), stages.end(), [&](const StageRecord& s) { return s.name == name; });
  return it == stages.end() ? nullptr : &*it;
}

Error ReleaseState::unknown_stage(std::string_view name) const {
  std::vector<std::string_view> names;
  std::string list;
  for (const StageRecord& stage : stages) {
    names.emplace_back(stage.name);
    list += (list.empty() ? "" : ", ") + stage.name;
  }
  const auto guess = events::did_you_mean(name, names);
  return make_error(ErrorCode::kNotFound, "release " + id + " has no stage '" + std::string(name) + "' (" +
                                              (guess ? "did you mean '" + *guess + "'? " : "") + "stages: " + list +
                                              ")");
}

StageRecord* ReleaseState::find_stage(std::string_view name) {
  return const_cast<StageRecord*>(std::as_const(*this).find_stage(name));
}

std::optional<std::string> automatic_trigger_reason(const ReleaseState& release, const StageRecord& stage) {
  if (stage.attempt != 0 || release.abandoned) return std::nullopt;
  const StageDefinition* definition = release.definition.find_stage(stage.name);
  if (definition == nullptr) return std::nullopt;
  switch (definition->trigger.kind) {
    case TriggerKind::kManual: return std::nullopt;
    case TriggerKind::kAfterRelease: return std::string("release created");
    case TriggerKind::kAfterStages: {
      for (const std::string& upstream : definition->trigger.after_stages) {
        const StageRecord* record = release.find_stage(upstream);
        const StageState state = record == nullptr ? StageState::kNotStarted : record->state();
        const bool done = state == StageState::kSucceeded ||
                          (state == StageState::kPartiallySucceeded && definition->trigger.on_partial_success);
        if (!done) return std::nullopt;
      }
      return "after " + join(definition->trigger.after_stages, ", ") + " succeeded";
    }
  }
  return std::nullopt;
}

bool step_should_run(const ReleaseState& release, const StageRecord& stage, int index) {
  const StageDefinition* definition = release.definition.find_stage(stage.name);
  if (definition == nullptr || index < 0 || static_cast<std::size_t>(index) >= definition->steps.size()) return false;
  bool failed = false;
  for (int i = 0; i < index && static_cast<std::size_t>(i) < stage.steps.size(); ++i) {
    failed = failed || hard_failure(stage.steps[static_cast<std::size_t>(i)]);
  }
  switch (definition->steps[static_cast<std::size_t>(index)].condition) {
    case StepCondition::kSucceeded: return !failed;
    case StepCondition::kFailed: return failed;
    case StepCondition::kAlways: return true;
  }
  return false;
}

bool all_steps_done(const StageRecord& stage) {
  return std::all_of(stage.steps.begin(), stage.steps.end(), step_done);
}

ReleaseStatus release_status(const ReleaseState& state) {
  if (state.abandoned) return ReleaseStatus::kAbandoned;
  bool running = false, awaiting = false, failed = false, rejected = false, canceled = false, partial = false,
       succeeded = false;
  for (const StageRecord& stage : state.stages) {
    switch (stage.state()) {
      case StageState::kTriggered:
      case StageState::kDeferred:
      case StageState::kApproved:
      case StageState::kDeploying: running = true; break;
      case StageState::kAwaitingPreApproval:
      case StageState::kAwaitingPostApproval: awaiting = true; break;
      case StageState::kFailed: failed = true; break;
      case StageState::kRejected: rejected = true; break;
      case StageState::kCanceled: canceled = true; break;
      case StageState::kPartiallySucceeded: partial = true; break;
      case StageState::kSucceeded: succeeded = true; break;
      case StageState::kNotStarted: running = running || automatic_trigger_reason(state, stage).has_value(); break;
    }
  }
  if (running) return ReleaseStatus::kInProgress;
  if (awaiting) return ReleaseStatus::kWaitingForApproval;
  if (failed) return ReleaseStatus::kFailed;
  if (rejected) return ReleaseStatus::kRejected;
  if (canceled) return ReleaseStatus::kCanceled;
  if (partial) return ReleaseStatus::kPartiallySucceeded;
  return succeeded ? ReleaseStatus::kSucceeded : ReleaseStatus::kInProgress;
}

void evolve(ReleaseState& state, const RecordedEvent& event) {
  state.version = event.version;
  state.last_hash = event.hash;
  if (!event.command_id.empty()) state.command_ids.insert(event.command_id);

  if (const auto* created = std::get_if<ReleaseCreated>(&event.data)) {
    state.id = created->release_id;
    state.name = created->name;
    state.pipeline = created->pipeline;
    const std::string prefix = created->pipeline + "-";
    if (state.id.compare(0, prefix.size(), prefix) == 0) {
      state.number = std::strtoll(state.id.c_str() + prefix.size(), nullptr, 10);
    }
    state.pipeline_version = created->pipeline_version;
    state.artifact = created->artifact;
    state.variables = created->variables;
    state.secret_variables = created->secret_variables;
    state.trigger = created->trigger;
    state.trigger_cdevent = created->trigger_cdevent;
    state.requested_by = created->requested_by;
    state.created_at = event.recorded_at;
    // The snapshot was validated before it was stored.
    if (auto definition = parse_pipeline(created->definition)) state.definition = std::move(definition).value();
    state.stages.clear();
    for (const StageDefinition& stage : state.definition.stages) {
      StageRecord record;
      record.name = stage.name;
      state.stages.push_back(std::move(record));
    }
    return;
  }
  if (const auto* abandoned = std::get_if<ReleaseAbandoned>(&event.data)) {
    state.abandoned = true;
    state.abandon_reason = abandoned->reason;
    state.abandoned_by = event.actor;
    return;
  }

  StageRecord* stage = stage_of(state, event.data);
  if (stage == nullptr || !stage->machine.accept(event.data)) return;  // not part of a valid history
  const Timestamp at = event.recorded_at;
  std::visit(Overloaded{
                 [](const PipelineDefined&) {},
                 [](const ReleaseCreated&) {},
                 [](const ReleaseAbandoned&) {},
                 [&](const StageTriggered& e) { start_attempt(state, *stage, e, at); },
                 [&](const ApprovalRequested& e) {
                   // The stage machine takes only "pre" and "post"; an order other
                   // than "sequential" has always meant any order.
                   stage->approval = PendingApproval{parse_approval_phase(e.phase),
                                                     e.approvers,
                                                     e.required,
                                                     parse_approval_order(e.order).value_or(ApprovalOrder::kAny),
                                                     e.deadline,
                                                     {},
                                                     {}};
                 },
                 [&](const ApprovalGranted& e) {
                   stage->approval.satisfied.push_back(e.on_behalf_of);
                   stage->approval.approved_by.push_back(e.approver);
                   ApprovalRecord record = decision(phase_of(e.phase, *stage), e.approver, e.on_behalf_of,
                                                    ApprovalDecision::kApproved, e.comment, at);
                   record.defer_until = e.defer_until;
                   record.override = e.override;
                   stage->approvals.push_back(record);
                   stage->defer_until = std::max(stage->defer_until, e.defer_until);
                 },
                 [&](const ApprovalRejected& e) {
                   stage->approvals.push_back(decision(phase_of(e.phase, *stage), e.approver, e.on_behalf_of,
                                                       ApprovalDecision::kRejected, e.comment, at));
                   stage->approvals.back().override = e.override;
                   stage->finished_at = at;
                   stage->failure_reason = "rejected by " + e.approver;
                 },
                 [&](const ApprovalTimedOut& e) {
                   const ApprovalPhase phase = phase_of(e.phase, *stage);
                   stage->approvals.push_back(decision(phase, event.actor, "", ApprovalDecision::kTimedOut, "", at));
                   stage->finished_at = at;
                   stage->failure_reason = std::string(to_string(phase)) + "-deployment approval timed out";
                 },
                 [&](const ApprovalSkipped& e) {
                   // The stage machine takes only a pre-deployment skip.
                   stage->approvals.push_back(
                       decision(ApprovalPhase::kPre, "", "", ApprovalDecision::kSkipped, e.reason, at));
                 },
                 [](const DeferralElapsed&) {},
                 [&](const DeploymentStarted&) { stage->started_at = at; },
                 [&](const StepStarted& e) {
                   if (StepRecord* step = step_at(*stage, e.step_index)) {
                     step->status = StepStatus::kRunning;
                     step->tries = e.try_number;
                     step->will_retry = false;
                     step->started_at = at;
                   }
                 },
                 [&](const StepSucceeded& e) {
                   if (StepRecord* step = step_at(*stage, e.step_index)) {
                     step->status = StepStatus::kSucceeded;
                     step->exit_code = e.exit_code;
                     step->duration_ms = e.duration_ms;
                     step->log_digest = e.log_digest;
                     step->reason.clear();
                     step->finished_at = at;
                   }
                 },
                 [&](const StepFailed& e) {
                   if (StepRecord* step = step_at(*stage, e.step_index)) {
                     step->status = StepStatus::kFailed;
                     step->exit_code = e.exit_code;
                     step->duration_ms = e.duration_ms;
                     step->log_digest = e.log_digest;
                     step->reason = e.reason;
                     step->will_retry = e.will_retry;
                     step->continued = e.continued;
                     step->finished_at = at;
                   }
                 },
                 [&](const StepSkipped& e) {
                   if (StepRecord* step = step_at(*stage, e.step_index)) {
                     step->status = StepStatus::kSkipped;
                     step->reason = e.reason;
                   }
                 },
                 [&](const DeploymentSucceeded&) { stage->finished_at = at; },
                 [&](const DeploymentFailed& e) {
                   stage->finished_at = at;
                   stage->failure_reason = e.reason;
                   end_steps(*stage, StepStatus::kSkipped);
                 },
                 [&](const DeploymentCanceled& e) {
                   stage->canceled_by = event.actor;
                   stage->finished_at = at;
                   stage->failure_reason = e.reason;
                   end_steps(*stage, StepStatus::kCanceled);
                 },
                 [&](const RollbackChosen& e) { stage->rollback = RollbackChoice{e.rollback_to, e.reason}; },
                 [&](const StageCanceled& e) {
                   // An approval still short of its count is closed, not left dangling.
                   const bool approval_pending =
                       stage->approval.phase.has_value() &&
                       stage->approval.satisfied.size() < static_cast<std::size_t>(std::max(stage->approval.required, 0));
                   if (approval_pending) {
                     stage->approvals.push_back(
                         decision(*stage->approval.phase, event.actor, "", ApprovalDecision::kClosed, e.reason, at));
                   }
                   stage->canceled_by = event.actor;
                   stage->finished_at = at;
                   stage->failure_reason = e.reason;
                 },
             },
             event.data);
}

}  // namespace cascade::engine
