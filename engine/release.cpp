#include "engine/release.hpp"

#include <algorithm>

namespace cascade::engine {
namespace {

using namespace cascade::events;

template <class... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

std::string join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

bool contains(const std::vector<std::string>& items, std::string_view item) {
  return std::find(items.begin(), items.end(), item) != items.end();
}

StageRecord* stage_of(ReleaseState& state, const Event& event) {
  return std::visit(
      [&state](const auto& payload) -> StageRecord* {
        using Payload = std::decay_t<decltype(payload)>;
        if constexpr (std::is_same_v<Payload, PipelineDefined> || std::is_same_v<Payload, ReleaseCreated>) {
          return nullptr;
        } else {
          return state.find_stage(payload.stage);
        }
      },
      event);
}

void start_attempt(const ReleaseState& release, StageRecord& stage, const StageTriggered& triggered,
                   Timestamp at) {
  stage.attempt = triggered.attempt;
  stage.trigger_reason = triggered.reason;
  stage.triggered_at = at;
  stage.started_at = 0;
  stage.finished_at = 0;
  stage.failure_reason.clear();
  stage.approvers.clear();
  stage.steps.clear();
  if (const StageDefinition* definition = release.definition.find_stage(stage.name)) {
    for (const StepDefinition& step : definition->steps) {
      StepRecord record;
      record.name = step.name;
      stage.steps.push_back(std::move(record));
    }
  }
}

void finish_step(StageRecord& stage, int index, StepStatus status, int exit_code, std::int64_t duration_ms,
                 const std::string& digest, const std::string& reason, Timestamp at) {
  if (index < 0 || static_cast<std::size_t>(index) >= stage.steps.size()) return;
  StepRecord& step = stage.steps[static_cast<std::size_t>(index)];
  step.status = status;
  step.exit_code = exit_code;
  step.duration_ms = duration_ms;
  step.log_digest = digest;
  step.reason = reason;
  step.finished_at = at;
}

}  // namespace

std::string_view to_string(StepStatus status) {
  switch (status) {
    case StepStatus::kPending: return "Pending";
    case StepStatus::kRunning: return "Running";
    case StepStatus::kSucceeded: return "Succeeded";
    case StepStatus::kFailed: return "Failed";
    case StepStatus::kSkipped: return "Skipped";
  }
  return "Unknown";
}

std::string_view to_string(ReleaseStatus status) {
  switch (status) {
    case ReleaseStatus::kInProgress: return "InProgress";
    case ReleaseStatus::kWaitingForApproval: return "WaitingForApproval";
    case ReleaseStatus::kSucceeded: return "Succeeded";
    case ReleaseStatus::kFailed: return "Failed";
    case ReleaseStatus::kRejected: return "Rejected";
  }
  return "Unknown";
}

std::string release_stream(std::string_view release_id) { return "release-" + std::string(release_id); }
std::string pipeline_stream(std::string_view pipeline) { return "pipeline-" + std::string(pipeline); }

const StageRecord* ReleaseState::find_stage(std::string_view name) const {
  auto it = std::find_if(stages.begin(), stages.end(), [&](const StageRecord& s) { return s.name == name; });
  return it == stages.end() ? nullptr : &*it;
}

StageRecord* ReleaseState::find_stage(std::string_view name) {
  return const_cast<StageRecord*>(std::as_const(*this).find_stage(name));
}

ReleaseStatus release_status(const ReleaseState& state) {
  bool running = false, awaiting = false, failed = false, rejected = false, succeeded = false;
  for (const StageRecord& stage : state.stages) {
    switch (stage.state()) {
      case StageState::kTriggered:
      case StageState::kApproved:
      case StageState::kDeploying: running = true; break;
      case StageState::kAwaitingPreApproval: awaiting = true; break;
      case StageState::kFailed: failed = true; break;
      case StageState::kRejected: rejected = true; break;
      case StageState::kSucceeded: succeeded = true; break;
      case StageState::kNotStarted: {
        // A stage whose trigger already holds is about to start.
        const StageDefinition* definition = state.definition.find_stage(stage.name);
        if (definition == nullptr || definition->trigger.kind == TriggerKind::kManual) break;
        bool ready = true;
        for (const std::string& upstream : definition->trigger.after_stages) {
          const StageRecord* record = state.find_stage(upstream);
          ready = ready && record != nullptr && record->state() == StageState::kSucceeded;
        }
        running = running || ready;
        break;
      }
    }
  }
  if (running) return ReleaseStatus::kInProgress;
  if (awaiting) return ReleaseStatus::kWaitingForApproval;
  if (failed) return ReleaseStatus::kFailed;
  if (rejected) return ReleaseStatus::kRejected;
  return succeeded ? ReleaseStatus::kSucceeded : ReleaseStatus::kInProgress;
}

void evolve(ReleaseState& state, const RecordedEvent& event) {
  state.version = event.version;
  state.last_hash = event.hash;
  if (!event.command_id.empty()) state.command_ids.insert(event.command_id);

  if (const auto* created = std::get_if<ReleaseCreated>(&event.data)) {
    state.id = created->release_id;
    state.pipeline = created->pipeline;
    state.pipeline_version = created->pipeline_version;
    state.artifact = created->artifact;
    state.variables = created->variables;
    state.trigger = created->trigger;
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

  StageRecord* stage = stage_of(state, event.data);
  if (stage == nullptr || !stage->machine.accept(event.data)) return;  // not part of a valid history
  const Timestamp at = event.recorded_at;
  std::visit(Overloaded{
                 [](const PipelineDefined&) {},
                 [](const ReleaseCreated&) {},
                 [&](const StageTriggered& e) { start_attempt(state, *stage, e, at); },
                 [&](const ApprovalRequested& e) { stage->approvers = e.approvers; },
                 [&](const ApprovalGranted& e) {
                   stage->approvals.push_back({e.phase, e.approver, "approved", e.comment, at});
                 },
                 [&](const ApprovalRejected& e) {
                   stage->approvals.push_back({e.phase, e.approver, "rejected", e.comment, at});
                   stage->finished_at = at;
                   stage->failure_reason = "rejected by " + e.approver;
                 },
                 [&](const DeploymentStarted&) { stage->started_at = at; },
                 [&](const StepStarted& e) {
                   if (e.step_index < 0 || static_cast<std::size_t>(e.step_index) >= stage->steps.size()) return;
                   StepRecord& step = stage->steps[static_cast<std::size_t>(e.step_index)];
                   step.status = StepStatus::kRunning;
                   step.started_at = at;
                 },
                 [&](const StepSucceeded& e) {
                   finish_step(*stage, e.step_index, StepStatus::kSucceeded, e.exit_code, e.duration_ms,
                               e.log_digest, "", at);
                 },
                 [&](const StepFailed& e) {
                   finish_step(*stage, e.step_index, StepStatus::kFailed, e.exit_code, e.duration_ms,
                               e.log_digest, e.reason, at);
                 },
                 [&](const DeploymentSucceeded&) { stage->finished_at = at; },
                 [&](const DeploymentFailed& e) {
                   stage->finished_at = at;
                   stage->failure_reason = e.reason;
                   for (StepRecord& step : stage->steps) {
                     if (step.status == StepStatus::kPending) step.status = StepStatus::kSkipped;
                   }
                 },
             },
             event.data);
}

namespace {

// Collects the events of one command for one stage, each checked by a copy
// of the stage's machine; the first refusal becomes the command's error.
class StageDecision {
 public:
  StageDecision(const ReleaseState& release, const StageRecord& stage, std::string verb)
      : release_(release), stage_(stage), machine_(stage.machine), verb_(std::move(verb)) {}

  Status propose(Event event) {
    if (!machine_.accept(event)) {
      std::vector<std::string> expected;
      for (StageState s : StageMachine::states_accepting(type_name(event))) expected.emplace_back(to_string(s));
      return make_error(ErrorCode::kFailedPrecondition,
                        "cannot " + verb_ + " stage '" + stage_.name + "' of release " + release_.id +
                            ": stage is " + std::string(to_string(machine_.state())) + ", expected " +
                            join(expected, " or "));
    }
    events_.push_back(std::move(event));
    return success();
  }

  std::vector<Event> take() { return std::move(events_); }

 private:
  const ReleaseState& release_;
  const StageRecord& stage_;
  StageMachine machine_;
  std::string verb_;
  std::vector<Event> events_;
};

Result<const StageRecord*> find_stage(const ReleaseState& state, const std::string& name) {
  if (const StageRecord* stage = state.find_stage(name)) return stage;
  std::vector<std::string> names;
  for (const StageRecord& s : state.stages) names.push_back(s.name);
  return make_error(ErrorCode::kNotFound, "release " + state.id + " has no stage '" + name + "' (stages: " +
                                              join(names, ", ") + ")");
}

Result<std::vector<Event>> trigger(const ReleaseState& state, const std::string& stage_name, std::string reason,
                                   const std::string& verb) {
  CASCADE_TRY(stage, find_stage(state, stage_name));
  StageDecision decision(state, *stage, verb);
  StageTriggered triggered;
  triggered.stage = stage->name;
  triggered.reason = std::move(reason);
  triggered.attempt = stage->attempt + 1;
  CASCADE_TRY(decision.propose(triggered));
  const StageDefinition* definition = state.definition.find_stage(stage->name);
  if (definition != nullptr && definition->pre_approval) {
    ApprovalRequested requested;
    requested.stage = stage->name;
    requested.phase = "pre";
    requested.approvers = definition->pre_approval->approvers;
    requested.required = 1;
    CASCADE_TRY(decision.propose(requested));
  }
  return decision.take();
}

template <class Decision>
Result<std::vector<Event>> decide_approval(const ReleaseState& state, const std::string& stage_name,
                                           const std::string& comment, const CommandContext& context,
                                           const std::string& verb) {
  CASCADE_TRY(stage, find_stage(state, stage_name));
  StageDecision decision(state, *stage, verb);
  Decision event;
  event.stage = stage->name;
  event.phase = "pre";
  event.approver = context.actor;
  event.comment = comment;
  CASCADE_TRY(decision.propose(event));
  if (!contains(stage->approvers, context.actor)) {
    return make_error(ErrorCode::kPermissionDenied,
                      "'" + context.actor + "' is not an approver of stage '" + stage->name + "' of release " +
                          state.id + " (approvers: " + join(stage->approvers, ", ") + ")");
  }
  return decision.take();
}

Status check_attempt(const ReleaseState& state, const StageRecord& stage, int attempt) {
  if (attempt == stage.attempt) return success();
  return make_error(ErrorCode::kFailedPrecondition,
                    "stage '" + stage.name + "' of release " + state.id + " is at attempt " +
                        std::to_string(stage.attempt) + ", not " + std::to_string(attempt));
}

Status check_step(const ReleaseState& state, const StageRecord& stage, int index, StepStatus expected) {
  if (index < 0 || static_cast<std::size_t>(index) >= stage.steps.size()) {
    return make_error(ErrorCode::kInvalidArgument, "stage '" + stage.name + "' of release " + state.id +
                                                       " has no step " + std::to_string(index));
  }
  const StepRecord& step = stage.steps[static_cast<std::size_t>(index)];
  if (step.status != expected) {
    return make_error(ErrorCode::kFailedPrecondition,
                      "step '" + step.name + "' of stage '" + stage.name + "' of release " + state.id + " is " +
                          std::string(to_string(step.status)) + ", expected " + std::string(to_string(expected)));
  }
  if (expected == StepStatus::kPending && index > 0 &&
      stage.steps[static_cast<std::size_t>(index - 1)].status != StepStatus::kSucceeded) {
    return make_error(ErrorCode::kFailedPrecondition, "step '" + step.name + "' of stage '" + stage.name +
                                                          "' cannot start before the step ahead of it succeeded");
  }
  return success();
}

}  // namespace

Result<std::vector<Event>> decide(const ReleaseState& state, const Command& command, const CommandContext& context) {
  if (!context.command_id.empty() && state.command_ids.count(context.command_id) != 0) {
    return std::vector<Event>{};  // applied before: a retry or a redelivery
  }
  if (!std::holds_alternative<CreateRelease>(command) && !state.exists()) {
    return make_error(ErrorCode::kNotFound, "no such release");
  }
  return std::visit(
      Overloaded{
          [&](const CreateRelease& c) -> Result<std::vector<Event>> {
            if (state.exists()) {
              return make_error(ErrorCode::kAlreadyExists, "release " + state.id + " exists already");
            }
            ReleaseCreated created;
            created.release_id = c.release_id;
            created.pipeline = c.definition.name;
            created.pipeline_version = c.pipeline_version;
            created.definition = to_json(c.definition);
            created.artifact = c.artifact;
            created.variables = c.variables;
            created.trigger = c.trigger;
            created.requested_by = context.actor;
            return std::vector<Event>{created};
          },
          [&](const TriggerStage& c) { return trigger(state, c.stage, c.reason, "trigger"); },
          [&](const DeployStage& c) -> Result<std::vector<Event>> {
            const StageRecord* stage = state.find_stage(c.stage);
            const bool redeploy = stage != nullptr && stage->attempt > 0;
            return trigger(state, c.stage, (redeploy ? "redeploy by " : "manual deploy by ") + context.actor,
                           "deploy");
          },
          [&](const ApproveStage& c) {
            return decide_approval<ApprovalGranted>(state, c.stage, c.comment, context, "approve");
          },
          [&](const RejectStage& c) {
            return decide_approval<ApprovalRejected>(state, c.stage, c.comment, context, "reject");
          },
          [&](const StartDeployment& c) -> Result<std::vector<Event>> {
            CASCADE_TRY(stage, find_stage(state, c.stage));
            StageDecision decision(state, *stage, "start deploying");
            DeploymentStarted started;
            started.stage = stage->name;
            started.attempt = stage->attempt;
            CASCADE_TRY(decision.propose(started));
            return decision.take();
          },
          [&](const RecordStepStarted& c) -> Result<std::vector<Event>> {
            CASCADE_TRY(stage, find_stage(state, c.stage));
            CASCADE_TRY(check_attempt(state, *stage, c.attempt));
            StageDecision decision(state, *stage, "start a step of");
            CASCADE_TRY(check_step(state, *stage, c.step_index, StepStatus::kPending));
            StepStarted started;
            started.stage = stage->name;
            started.attempt = c.attempt;
            started.step_index = c.step_index;
            started.step = stage->steps[static_cast<std::size_t>(c.step_index)].name;
            CASCADE_TRY(decision.propose(started));
            return decision.take();
          },
          [&](const RecordStepFinished& c) -> Result<std::vector<Event>> {
            CASCADE_TRY(stage, find_stage(state, c.stage));
            CASCADE_TRY(check_attempt(state, *stage, c.attempt));
            StageDecision decision(state, *stage, "finish a step of");
            CASCADE_TRY(check_step(state, *stage, c.step_index, StepStatus::kRunning));
            const std::string& step_name = stage->steps[static_cast<std::size_t>(c.step_index)].name;
            if (c.succeeded) {
              StepSucceeded done;
              done.stage = stage->name;
              done.attempt = c.attempt;
              done.step_index = c.step_index;
              done.step = step_name;
              done.exit_code = c.exit_code;
              done.duration_ms = c.duration_ms;
              done.log_digest = c.log_digest;
              CASCADE_TRY(decision.propose(done));
              if (static_cast<std::size_t>(c.step_index) + 1 == stage->steps.size()) {
                DeploymentSucceeded deployed;
                deployed.stage = stage->name;
                deployed.attempt = c.attempt;
                CASCADE_TRY(decision.propose(deployed));
              }
            } else {
              StepFailed failed;
              failed.stage = stage->name;
              failed.attempt = c.attempt;
              failed.step_index = c.step_index;
              failed.step = step_name;
              failed.exit_code = c.exit_code;
              failed.duration_ms = c.duration_ms;
              failed.log_digest = c.log_digest;
              failed.reason = c.reason;
              CASCADE_TRY(decision.propose(failed));
              DeploymentFailed deployment_failed;
              deployment_failed.stage = stage->name;
              deployment_failed.attempt = c.attempt;
              deployment_failed.reason = "step '" + step_name + "' failed: " + c.reason;
              CASCADE_TRY(decision.propose(deployment_failed));
            }
            return decision.take();
          },
          [&](const AbortDeployment& c) -> Result<std::vector<Event>> {
            CASCADE_TRY(stage, find_stage(state, c.stage));
            CASCADE_TRY(check_attempt(state, *stage, c.attempt));
            StageDecision decision(state, *stage, "abort the deployment of");
            for (std::size_t i = 0; i < stage->steps.size(); ++i) {
              if (stage->steps[i].status != StepStatus::kRunning) continue;
              StepFailed failed;
              failed.stage = stage->name;
              failed.attempt = c.attempt;
              failed.step_index = static_cast<int>(i);
              failed.step = stage->steps[i].name;
              failed.exit_code = -1;
              failed.reason = c.reason;
              CASCADE_TRY(decision.propose(failed));
            }
            DeploymentFailed failed;
            failed.stage = stage->name;
            failed.attempt = c.attempt;
            failed.reason = c.reason;
            CASCADE_TRY(decision.propose(failed));
            return decision.take();
          },
      },
      command);
}

}  // namespace cascade::engine
