// decide: a command against the folded state of a release → the events that
// record it, or the error that refuses it. One function per command; each
// asks copies of the stage machines whether its events are legal. Over 600
// lines because it holds every command's rules, one short function each;
// splitting them would scatter the one place a command's rules are read.
#include "engine/release.hpp"
#include "engine/release_internal.hpp"

#include "events/join.hpp"
#include "events/overloaded.hpp"

#include <algorithm>

namespace cascade::engine {
namespace {

using namespace cascade::events;
using release_internal::hard_failure;
using release_internal::step_done;

bool contains(const std::vector<std::string>& items, std::string_view item) {
  return std::find(items.begin(), items.end(), item) != items.end();
}

const ApprovalPolicy* policy_for(const ReleaseState& release, const StageRecord& stage,
                                 std::optional<ApprovalPhase> phase) {
  const StageDefinition* definition = release.definition.find_stage(stage.name);
  if (definition == nullptr) return nullptr;
  const auto& policy = phase == ApprovalPhase::kPost ? definition->post_approval : definition->pre_approval;
  return policy ? &*policy : nullptr;
}

// Collects the events of one command for one stage, each checked by a copy
// of the stage's machine; the first refusal becomes the command's error.
class StageDecision {
 public:
  StageDecision(const ReleaseState& release, const StageRecord& stage, std::string verb)
      : release_(release), stage_(stage), machine_(stage.machine), verb_(std::move(verb)) {}

  // Whether the machine, in its state so far, would take `event`.
  Status check(const Event& event) const {
    if (machine_.would_accept(event)) return success();
    return refusal({std::string(type_name(event))});
  }

  Status propose(Event event) {
    if (!machine_.accept(event)) return refusal({std::string(type_name(event))});
    events_.push_back(std::move(event));
    return success();
  }

  // The error for an event none of `types` could make legal.
  Error refusal(const std::vector<std::string>& types) const {
    std::vector<std::string> expected;
    for (const std::string& type : types) {
      for (StageState s : StageMachine::states_accepting(type)) {
        if (!contains(expected, to_string(s))) expected.emplace_back(to_string(s));
      }
    }
    return make_error(ErrorCode::kFailedPrecondition, "cannot " + verb_ + " stage '" + stage_.name +
                                                          "' of release " + release_.id + ": stage is " +
                                                          std::string(to_string(machine_.state())) + ", expected " +
                                                          join(expected, " or "));
  }

  const StageMachine& machine() const { return machine_; }
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
  return state.unknown_stage(name);
}

Status check_open(const ReleaseState& state) {
  if (!state.abandoned) return success();
  return make_error(ErrorCode::kFailedPrecondition,
                    "release " + state.id + " is abandoned" +
                        (state.abandon_reason.empty() ? std::string() : " (" + state.abandon_reason + ")"));
}

std::string describe_time(Timestamp at) { return std::to_string(at) + " ms since the epoch"; }

// Earlier approvals of this release that cover `policy` (skip_if_approved_earlier).
std::optional<std::string> approved_earlier(const ReleaseState& state, const StageRecord& stage,
                                            const ApprovalPolicy& policy) {
  std::vector<std::string> people;
  std::vector<std::string> where;
  for (const StageRecord& other : state.stages) {
    if (other.name == stage.name) continue;
    for (const ApprovalRecord& record : other.approvals) {
      if (record.decision != ApprovalDecision::kApproved || contains(people, record.approver)) continue;
      if (policy.requester_cannot_approve && record.approver == state.requested_by) continue;
      people.push_back(record.approver);
      where.push_back(record.approver + " on " + other.name);
    }
  }
  std::vector<std::string> used;
  std::vector<std::string> covered_by;
  for (const std::string& entry : policy.approvers) {
    for (std::size_t i = 0; i < people.size(); ++i) {
      if (contains(used, people[i]) || !state.definition.acts_for(people[i], entry)) continue;
      used.push_back(people[i]);
      covered_by.push_back(where[i]);
      break;
    }
  }
  if (static_cast<int>(used.size()) < policy.required_count()) return std::nullopt;
  return "approved earlier by " + join(covered_by, ", ");
}

// The phase of the approval the stage waits for, as events spell it; empty
// when it waits for none (the stage machine then refuses the event).
std::string pending_phase(const StageRecord& stage) {
  return stage.approval.phase ? std::string(to_string(*stage.approval.phase)) : std::string();
}

ApprovalRequested approval_request(const StageRecord& stage, ApprovalPhase phase, const ApprovalPolicy& policy,
                                   Timestamp now) {
  ApprovalRequested requested;
  requested.stage = stage.name;
  requested.phase = to_string(phase);
  requested.approvers = policy.approvers;
  requested.required = policy.required_count();
  requested.order = to_string(policy.order);
  requested.deadline = now + policy.timeout_ms;
  return requested;
}

// `rollback_of`: the release whose failure this attempt undoes (redeploy_last_good), or empty.
Result<std::vector<Event>> trigger(const ReleaseState& state, const StageRecord& stage, std::string reason,
                                   const std::string& verb, const CommandContext& context,
                                   std::string rollback_of = {}) {
  CASCADE_TRY(check_open(state));
  StageDecision decision(state, stage, verb);
  StageTriggered triggered;
  triggered.stage = stage.name;
  triggered.reason = std::move(reason);
  triggered.attempt = stage.attempt + 1;
  triggered.rollback_of = std::move(rollback_of);
  CASCADE_TRY(decision.propose(triggered));
  const StageDefinition* definition = state.definition.find_stage(stage.name);
  if (definition != nullptr && definition->pre_approval) {
    const ApprovalPolicy& policy = *definition->pre_approval;
    auto earlier = policy.skip_if_approved_earlier ? approved_earlier(state, stage, policy) : std::nullopt;
    if (earlier) {
      ApprovalSkipped skipped;
      skipped.stage = stage.name;
      skipped.phase = to_string(ApprovalPhase::kPre);
      skipped.reason = *earlier;
      CASCADE_TRY(decision.propose(skipped));
    } else {
      CASCADE_TRY(decision.propose(approval_request(stage, ApprovalPhase::kPre, policy, context.now)));
    }
  }
  return decision.take();
}

// Whether the acting user may give an approval naming `entry`: it is them, a
// pipeline group listing them, or a group their credential names.
bool acts_for(const ReleaseState& state, const CommandContext& context, const std::string& entry) {
  return state.definition.acts_for(context.actor, entry) ||
         (!context.actor.empty() && contains(context.actor_groups, entry));
}

std::string not_an_approver(const ReleaseState& state, const StageRecord& stage, const std::string& actor) {
  return "'" + actor + "' is not an approver of stage '" + stage.name + "' of release " + state.id +
         " (approvers: " + join(stage.approval.approvers, ", ") + ")";
}

Result<std::vector<Event>> decide_approve(const ReleaseState& state, const ApproveStage& c,
                                          const CommandContext& context) {
  CASCADE_TRY(stage, find_stage(state, c.stage));
  StageDecision decision(state, *stage, "approve");
  ApprovalGranted granted;
  granted.stage = stage->name;
  granted.phase = pending_phase(*stage);
  granted.approver = context.actor;
  granted.comment = c.comment;
  granted.defer_until = c.defer_until;
  granted.override = c.override;
  CASCADE_TRY(decision.check(granted));
  const PendingApproval& approval = stage->approval;
  if (c.defer_until != 0 && approval.phase != ApprovalPhase::kPre) {
    return make_error(ErrorCode::kInvalidArgument, "defer_until applies to pre-deployment approvals only");
  }
  if (c.defer_until != 0 && c.defer_until <= context.now) {
    return make_error(ErrorCode::kInvalidArgument, "defer_until must be in the future (it is " +
                                                       describe_time(c.defer_until) + ", now is " +
                                                       describe_time(context.now) + ")");
  }
  if (c.override) {
    CASCADE_TRY(decision.propose(granted));
    return decision.take();
  }
  const ApprovalPolicy* policy = policy_for(state, *stage, approval.phase);
  if (policy != nullptr && policy->requester_cannot_approve && context.actor == state.requested_by) {
    return make_error(ErrorCode::kPermissionDenied, "'" + context.actor + "' requested release " + state.id +
                                                        " and may not approve it (requester_cannot_approve on stage '" +
                                                        stage->name + "')");
  }
  if (contains(approval.approved_by, context.actor)) {
    return make_error(ErrorCode::kPermissionDenied, "'" + context.actor + "' has already approved stage '" +
                                                        stage->name + "' of release " + state.id);
  }
  std::vector<std::string> open;
  for (const std::string& entry : approval.approvers) {
    if (!contains(approval.satisfied, entry)) open.push_back(entry);
  }
  auto acts = [&](const std::string& entry) { return acts_for(state, context, entry); };
  auto match = std::find_if(open.begin(), open.end(), acts);
  if (match == open.end()) return make_error(ErrorCode::kPermissionDenied, not_an_approver(state, *stage, context.actor));
  if (approval.order == ApprovalOrder::kSequential && match != open.begin()) {
    return make_error(ErrorCode::kPermissionDenied, "stage '" + stage->name + "' of release " + state.id +
                                                        " needs approval by '" + open.front() +
                                                        "' first (sequential order)");
  }
  granted.on_behalf_of = *match;
  CASCADE_TRY(decision.propose(granted));
  return decision.take();
}

Result<std::vector<Event>> decide_reject(const ReleaseState& state, const RejectStage& c,
                                         const CommandContext& context) {
  CASCADE_TRY(stage, find_stage(state, c.stage));
  StageDecision decision(state, *stage, "reject");
  ApprovalRejected rejected;
  rejected.stage = stage->name;
  rejected.phase = pending_phase(*stage);
  rejected.approver = context.actor;
  rejected.comment = c.comment;
  rejected.override = c.override;
  CASCADE_TRY(decision.check(rejected));
  if (c.override) {
    CASCADE_TRY(decision.propose(rejected));
    return decision.take();
  }
  const auto& entries = stage->approval.approvers;
  auto match = std::find_if(entries.begin(), entries.end(),
                            [&](const std::string& entry) { return acts_for(state, context, entry); });
  if (match == entries.end()) return make_error(ErrorCode::kPermissionDenied, not_an_approver(state, *stage, context.actor));
  rejected.on_behalf_of = *match;
  CASCADE_TRY(decision.propose(rejected));
  return decision.take();
}

Result<std::vector<Event>> cancel(const ReleaseState& state, const StageRecord& stage, const std::string& reason,
                                  const std::string& verb, bool include_deploying) {
  StageDecision decision(state, stage, verb);
  DeploymentCanceled deployment;
  deployment.stage = stage.name;
  deployment.attempt = stage.attempt;
  deployment.reason = reason;
  if (include_deploying && decision.machine().would_accept(deployment)) {
    CASCADE_TRY(decision.propose(deployment));
    return decision.take();
  }
  StageCanceled waiting;
  waiting.stage = stage.name;
  waiting.attempt = stage.attempt;
  waiting.reason = reason;
  if (!decision.machine().would_accept(waiting)) {
    std::vector<std::string> types{std::string(StageCanceled::kType)};
    if (include_deploying) types.emplace_back(DeploymentCanceled::kType);
    return decision.refusal(types);
  }
  CASCADE_TRY(decision.propose(waiting));
  return decision.take();
}

Status check_attempt(const ReleaseState& state, const StageRecord& stage, int attempt) {
  if (attempt == stage.attempt) return success();
  return make_error(ErrorCode::kFailedPrecondition,
                    "stage '" + stage.name + "' of release " + state.id + " is at attempt " +
                        std::to_string(stage.attempt) + ", not " + std::to_string(attempt));
}

// The step exists, every step before it is done, and it is in `expected`
// (or may be tried again).
Result<const StepRecord*> check_step(const ReleaseState& state, const StageRecord& stage, int index,
                                     StepStatus expected) {
  if (index < 0 || static_cast<std::size_t>(index) >= stage.steps.size()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "stage '" + stage.name + "' of release " + state.id + " has no step " + std::to_string(index));
  }
  const StepRecord& step = stage.steps[static_cast<std::size_t>(index)];
  const bool retry = expected == StepStatus::kPending && step.will_retry;
  if (step.status != expected && !retry) {
    return make_error(ErrorCode::kFailedPrecondition,
                      "step '" + step.name + "' of stage '" + stage.name + "' of release " + state.id + " is " +
                          std::string(to_string(step.status)) + ", expected " + std::string(to_string(expected)));
  }
  for (int i = 0; i < index; ++i) {
    if (!step_done(stage.steps[static_cast<std::size_t>(i)])) {
      return make_error(ErrorCode::kFailedPrecondition, "step '" + step.name + "' of stage '" + stage.name +
                                                            "' cannot start before the steps ahead of it are done");
    }
  }
  return &step;
}

Result<std::vector<Event>> finish_deployment(const ReleaseState& state, const StageRecord& stage,
                                             const CommandContext& context) {
  if (!all_steps_done(stage)) {
    return make_error(ErrorCode::kFailedPrecondition, "the deployment of stage '" + stage.name + "' of release " +
                                                          state.id + " still has steps to run");
  }
  StageDecision decision(state, stage, "finish the deployment of");
  auto failed = std::find_if(stage.steps.begin(), stage.steps.end(), hard_failure);
  if (failed != stage.steps.end()) {
    DeploymentFailed event;
    event.stage = stage.name;
    event.attempt = stage.attempt;
    event.reason = "step '" + failed->name + "' failed: " + failed->reason;
    CASCADE_TRY(decision.propose(event));
    return decision.take();
  }
  DeploymentSucceeded succeeded;
  succeeded.stage = stage.name;
  succeeded.attempt = stage.attempt;
  succeeded.partial = std::any_of(stage.steps.begin(), stage.steps.end(), [](const StepRecord& s) { return s.continued; });
  CASCADE_TRY(decision.propose(succeeded));
  const StageDefinition* definition = state.definition.find_stage(stage.name);
  if (definition != nullptr && definition->post_approval) {
    CASCADE_TRY(decision.propose(approval_request(stage, ApprovalPhase::kPost, *definition->post_approval, context.now)));
  }
  return decision.take();
}

Result<std::vector<Event>> decide_create(const ReleaseState& state, const CreateRelease& c,
                                         const CommandContext& context) {
  if (state.exists()) {
    return make_error(ErrorCode::kAlreadyExists, "release " + state.id + " exists already");
  }
  ReleaseCreated created;
  created.release_id = c.release_id;
  created.name = c.name;
  created.pipeline = c.definition.name;
  created.pipeline_version = c.pipeline_version;
  created.definition = to_json(c.definition);
  created.artifact = c.artifact;
  created.variables = c.variables;
  created.secret_variables = c.secret_variables;
  created.trigger = c.trigger;
  created.trigger_cdevent = c.trigger_cdevent;
  created.requested_by = context.actor;
  std::vector<Event> out;  // not {created}: an initializer list copies the definition snapshot
  out.emplace_back(std::move(created));
  return out;
}

Result<std::vector<Event>> decide_trigger(const ReleaseState& state, const TriggerStage& c,
                                          const CommandContext& context) {
  CASCADE_TRY(stage, find_stage(state, c.stage));
  return trigger(state, *stage, c.reason, "trigger", context);
}

Result<std::vector<Event>> decide_deploy(const ReleaseState& state, const DeployStage& c,
                                         const CommandContext& context) {
  CASCADE_TRY(stage, find_stage(state, c.stage));
  CASCADE_TRY(check_open(state));  // "abandoned" says more than "deployed before"
  if (stage->attempt != 0) {
    return make_error(ErrorCode::kFailedPrecondition,
                      "stage '" + stage->name + "' of release " + state.id + " was deployed before (attempt " +
                          std::to_string(stage->attempt) + "); use redeploy for a new attempt");
  }
  return trigger(state, *stage, "manual deploy by " + context.actor, "deploy", context);
}

Result<std::vector<Event>> decide_redeploy(const ReleaseState& state, const RedeployStage& c,
                                           const CommandContext& context) {
  CASCADE_TRY(stage, find_stage(state, c.stage));
  CASCADE_TRY(check_open(state));
  if (stage->attempt == 0) {
    return make_error(ErrorCode::kFailedPrecondition, "stage '" + stage->name + "' of release " + state.id +
                                                          " was never deployed; use deploy");
  }
  return trigger(state, *stage, c.reason.empty() ? "redeploy by " + context.actor : c.reason, "redeploy",
                 context, c.rollback_of);
}

// Not refused for an abandoned release: the rollback mends the environment
// the failed deployment left, whatever becomes of the release.
Result<std::vector<Event>> decide_choose_rollback(const ReleaseState& state, const ChooseRollback& c,
                                                  const CommandContext& /*context*/) {
  CASCADE_TRY(stage, find_stage(state, c.stage));
  CASCADE_TRY(check_attempt(state, *stage, c.attempt));
  if (stage->rollback) {
    return make_error(ErrorCode::kAlreadyExists,
                      "the rollback after attempt " + std::to_string(stage->attempt) + " of stage '" + stage->name +
                          "' of release " + state.id + " was chosen already: " +
                          (stage->rollback->rollback_to.empty() ? "none" : stage->rollback->rollback_to));
  }
  StageDecision decision(state, *stage, "choose a rollback for");
  RollbackChosen chosen;
  chosen.stage = stage->name;
  chosen.attempt = stage->attempt;
  chosen.rollback_to = c.rollback_to;
  chosen.reason = c.reason;
  CASCADE_TRY(decision.propose(chosen));
  return decision.take();
}

Result<std::vector<Event>> decide_expire_approval(const ReleaseState& state, const ExpireApproval& c,
                                                  const CommandContext& context) {
  CASCADE_TRY(stage, find_stage(state, c.stage));
  StageDecision decision(state, *stage, "time out the approval of");
  ApprovalTimedOut timed_out;
  timed_out.stage = stage->name;
  timed_out.phase = pending_phase(*stage);
  timed_out.deadline = stage->approval.deadline;
  CASCADE_TRY(decision.check(timed_out));
  if (context.now < stage->approval.deadline) {
    return make_error(ErrorCode::kFailedPrecondition, "the approval of stage '" + stage->name +
                                                          "' is not due before " +
                                                          describe_time(stage->approval.deadline));
  }
  CASCADE_TRY(decision.propose(timed_out));
  return decision.take();
}

Result<std::vector<Event>> decide_end_deferral(const ReleaseState& state, const EndDeferral& c,
                                               const CommandContext& context) {
  CASCADE_TRY(stage, find_stage(state, c.stage));
  StageDecision decision(state, *stage, "end the deferral of");
  DeferralElapsed elapsed;
  elapsed.stage = stage->name;
  elapsed.defer_until = stage->defer_until;
  CASCADE_TRY(decision.check(elapsed));
  if (context.now < stage->defer_until) {
    return make_error(ErrorCode::kFailedPrecondition, "stage '" + stage->name + "' is deferred until " +
                                                          describe_time(stage->defer_until));
  }
  CASCADE_TRY(decision.propose(elapsed));
  return decision.take();
}

Result<std::vector<Event>> decide_cancel(const ReleaseState& state, const CancelStage& c,
                                         const CommandContext& context) {
  CASCADE_TRY(stage, find_stage(state, c.stage));
  return cancel(state, *stage, c.reason.empty() ? "canceled by " + context.actor : c.reason, "cancel", true);
}

Result<std::vector<Event>> decide_supersede(const ReleaseState& state, const SupersedeStage& c,
                                            const CommandContext& /*context*/) {
  CASCADE_TRY(stage, find_stage(state, c.stage));
  return cancel(state, *stage, "superseded by " + c.newer_release, "supersede", false);
}

Result<std::vector<Event>> decide_abandon(const ReleaseState& state, const AbandonRelease& c,
                                          const CommandContext& context) {
  CASCADE_TRY(check_open(state));
  std::vector<Event> out;
  const std::string reason = "release abandoned" + (c.reason.empty() ? "" : ": " + c.reason);
  for (const StageRecord& stage : state.stages) {
    StageCanceled waiting;
    waiting.stage = stage.name;
    DeploymentCanceled running;
    running.stage = stage.name;
    if (!stage.machine.would_accept(waiting) && !stage.machine.would_accept(running)) continue;
    CASCADE_TRY(events, cancel(state, stage, reason, "abandon", true));
    out.insert(out.end(), events.begin(), events.end());
  }
  ReleaseAbandoned abandoned;
  abandoned.reason = c.reason.empty() ? "abandoned by " + context.actor : c.reason;
  out.push_back(abandoned);
  return out;
}

Result<std::vector<Event>> decide_start_deployment(const ReleaseState& state, const StartDeployment& c,
                                                   const CommandContext& /*context*/) {
  CASCADE_TRY(stage, find_stage(state, c.stage));
  CASCADE_TRY(check_open(state));
  if (c.attempt != 0) {
    CASCADE_TRY(check_attempt(state, *stage, c.attempt));
  }
  StageDecision decision(state, *stage, "start deploying");
  DeploymentStarted started;
  started.stage = stage->name;
  started.attempt = stage->attempt;
  CASCADE_TRY(decision.propose(started));
  return decision.take();
}

Result<std::vector<Event>> decide_step_started(const ReleaseState& state, const RecordStepStarted& c,
                                               const CommandContext& /*context*/) {
  CASCADE_TRY(stage, find_stage(state, c.stage));
  CASCADE_TRY(check_attempt(state, *stage, c.attempt));
  StageDecision decision(state, *stage, "start a step of");
  StepStarted started;
  started.stage = stage->name;
  started.attempt = c.attempt;
  started.step_index = c.step_index;
  CASCADE_TRY(decision.check(started));
  CASCADE_TRY(step, check_step(state, *stage, c.step_index, StepStatus::kPending));
  if (!step_should_run(state, *stage, c.step_index)) {
    return make_error(ErrorCode::kFailedPrecondition,
                      "step '" + step->name + "' of stage '" + stage->name + "' does not run: its condition does not hold");
  }
  started.step = step->name;
  started.try_number = step->tries + 1;
  CASCADE_TRY(decision.propose(started));
  return decision.take();
}

Result<std::vector<Event>> decide_step_finished(const ReleaseState& state, const RecordStepFinished& c,
                                                const CommandContext& /*context*/) {
  CASCADE_TRY(stage, find_stage(state, c.stage));
  CASCADE_TRY(check_attempt(state, *stage, c.attempt));
  StageDecision decision(state, *stage, "finish a step of");
  CASCADE_TRY(step, check_step(state, *stage, c.step_index, StepStatus::kRunning));
  const StageDefinition* definition = state.definition.find_stage(stage->name);
  const StepDefinition& step_definition = definition->steps[static_cast<std::size_t>(c.step_index)];
  if (c.succeeded) {
    StepSucceeded done;
    done.stage = stage->name;
    done.attempt = c.attempt;
    done.step_index = c.step_index;
    done.step = step->name;
    done.exit_code = c.exit_code;
    done.duration_ms = c.duration_ms;
    done.log_digest = c.log_digest;
    CASCADE_TRY(decision.propose(done));
  } else {
    if (c.will_retry && step->tries > step_definition.retries) {
      return make_error(ErrorCode::kFailedPrecondition, "step '" + step->name + "' has used its " +
                                                            std::to_string(step_definition.retries) + " retries");
    }
    StepFailed failed;
    failed.stage = stage->name;
    failed.attempt = c.attempt;
    failed.step_index = c.step_index;
    failed.step = step->name;
    failed.exit_code = c.exit_code;
    failed.duration_ms = c.duration_ms;
    failed.log_digest = c.log_digest;
    failed.reason = c.reason;
    failed.will_retry = c.will_retry;
    failed.continued = !c.will_retry && step_definition.continue_on_error;
    CASCADE_TRY(decision.propose(failed));
  }
  return decision.take();
}

Result<std::vector<Event>> decide_step_skipped(const ReleaseState& state, const RecordStepSkipped& c,
                                               const CommandContext& /*context*/) {
  CASCADE_TRY(stage, find_stage(state, c.stage));
  CASCADE_TRY(check_attempt(state, *stage, c.attempt));
  StageDecision decision(state, *stage, "skip a step of");
  CASCADE_TRY(step, check_step(state, *stage, c.step_index, StepStatus::kPending));
  if (step_should_run(state, *stage, c.step_index)) {
    return make_error(ErrorCode::kFailedPrecondition,
                      "step '" + step->name + "' of stage '" + stage->name + "' must run: its condition holds");
  }
  StepSkipped skipped;
  skipped.stage = stage->name;
  skipped.attempt = c.attempt;
  skipped.step_index = c.step_index;
  skipped.step = step->name;
  skipped.reason = c.reason;
  CASCADE_TRY(decision.propose(skipped));
  return decision.take();
}

Result<std::vector<Event>> decide_finish_deployment(const ReleaseState& state, const FinishDeployment& c,
                                                    const CommandContext& context) {
  CASCADE_TRY(stage, find_stage(state, c.stage));
  CASCADE_TRY(check_attempt(state, *stage, c.attempt));
  return finish_deployment(state, *stage, context);
}

Result<std::vector<Event>> decide_abort_deployment(const ReleaseState& state, const AbortDeployment& c,
                                                   const CommandContext& /*context*/) {
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
    if (auto stored = c.stored_logs.find(static_cast<int>(i)); stored != c.stored_logs.end()) {
      failed.stored_log_digest = stored->second.digest;
      failed.stored_log_lines = stored->second.lines;
    }
    CASCADE_TRY(decision.propose(failed));
  }
  DeploymentFailed failed;
  failed.stage = stage->name;
  failed.attempt = c.attempt;
  failed.reason = c.reason;
  CASCADE_TRY(decision.propose(failed));
  return decision.take();
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
          [&](const CreateRelease& c) { return decide_create(state, c, context); },
          [&](const TriggerStage& c) { return decide_trigger(state, c, context); },
          [&](const DeployStage& c) { return decide_deploy(state, c, context); },
          [&](const RedeployStage& c) { return decide_redeploy(state, c, context); },
          [&](const ChooseRollback& c) { return decide_choose_rollback(state, c, context); },
          [&](const ApproveStage& c) { return decide_approve(state, c, context); },
          [&](const RejectStage& c) { return decide_reject(state, c, context); },
          [&](const ExpireApproval& c) { return decide_expire_approval(state, c, context); },
          [&](const EndDeferral& c) { return decide_end_deferral(state, c, context); },
          [&](const CancelStage& c) { return decide_cancel(state, c, context); },
          [&](const SupersedeStage& c) { return decide_supersede(state, c, context); },
          [&](const AbandonRelease& c) { return decide_abandon(state, c, context); },
          [&](const StartDeployment& c) { return decide_start_deployment(state, c, context); },
          [&](const RecordStepStarted& c) { return decide_step_started(state, c, context); },
          [&](const RecordStepFinished& c) { return decide_step_finished(state, c, context); },
          [&](const RecordStepSkipped& c) { return decide_step_skipped(state, c, context); },
          [&](const FinishDeployment& c) { return decide_finish_deployment(state, c, context); },
          [&](const AbortDeployment& c) { return decide_abort_deployment(state, c, context); },
      },
      command);
}

}  // namespace cascade::engine
