// Why: a stage's state explained in a sentence, from the folded release.
#include "engine/audit_internal.hpp"
#include "events/join.hpp"
#include "events/time.hpp"

#include <initializer_list>

namespace cascade::engine {

using events::format_rfc3339;
using events::join;
using events::ZeroTime;

namespace {

std::string phase_words(std::optional<ApprovalPhase> phase) {
  return phase == ApprovalPhase::kPost ? "post-deployment approval" : "approval";
}

const StepRecord* failed_step(const StageRecord& stage) {
  for (const StepRecord& step : stage.steps) {
    if (step.status == StepStatus::kFailed && !step.continued) return &step;
  }
  return nullptr;
}

const ApprovalRecord* last_decision(const StageRecord& stage, std::initializer_list<ApprovalDecision> decisions) {
  for (auto it = stage.approvals.rbegin(); it != stage.approvals.rend(); ++it) {
    if (std::find(decisions.begin(), decisions.end(), it->decision) != decisions.end()) return &*it;
  }
  return nullptr;
}

std::string comment_of(const std::string& comment) { return comment.empty() ? "" : ": \"" + comment + "\""; }

std::string at_time(Timestamp at) { return at == 0 ? "" : " at " + format_rfc3339(at); }

// Why `stage` failed, was rejected or canceled, in a clause: "qa failed at step smoke-test".
std::string outcome_clause(const StageRecord& stage) {
  switch (stage.state()) {
    case StageState::kFailed:
      if (const StepRecord* step = failed_step(stage)) return stage.name + " failed at step " + step->name;
      return stage.name + " failed: " + stage.failure_reason;
    case StageState::kRejected:
      if (const ApprovalRecord* rejected = last_decision(stage, {ApprovalDecision::kRejected});
          rejected != nullptr && rejected->at >= stage.triggered_at) {
        return stage.name + " was rejected by " + rejected->approver + comment_of(rejected->comment);
      }
      return stage.name + " was rejected: " + stage.failure_reason;
    case StageState::kCanceled: return stage.name + " was canceled: " + stage.failure_reason;
    default: return stage.name + " is " + std::string(to_string(stage.state()));
  }
}

// Why an upstream stage does not (yet) let its downstream stages go on.
std::string upstream_clause(const ReleaseState& release, const StageRecord& upstream, bool partial_ok) {
  switch (upstream.state()) {
    case StageState::kFailed:
    case StageState::kRejected:
    case StageState::kCanceled: return outcome_clause(upstream);
    case StageState::kAwaitingPreApproval:
    case StageState::kAwaitingPostApproval:
      return upstream.name + " is waiting for " + phase_words(upstream.approval.phase) + " by " +
             join(upstream.approval.approvers);
    case StageState::kTriggered:
    case StageState::kApproved: return upstream.name + " is waiting to deploy";
    case StageState::kDeferred:
      return upstream.name + " is deferred until " + format_rfc3339(upstream.defer_until, ZeroTime::kEmpty);
    case StageState::kDeploying: return upstream.name + " is still deploying";
    case StageState::kPartiallySucceeded:
      return partial_ok ? upstream.name + " partially succeeded"
                        : upstream.name + " only partially succeeded (the trigger does not set on_partial_success)";
    case StageState::kSucceeded: return upstream.name + " succeeded";
    case StageState::kNotStarted: {
      const StageDefinition* definition = release.definition.find_stage(upstream.name);
      if (definition != nullptr && definition->trigger.kind == TriggerKind::kManual) {
        return upstream.name + " (a manual stage) was never deployed";
      }
      std::vector<std::string> reasons;
      if (definition != nullptr && definition->trigger.kind == TriggerKind::kAfterStages) {
        for (const std::string& name : definition->trigger.after_stages) {
          const StageRecord* record = release.find_stage(name);
          if (record == nullptr) continue;
          const StageState s = record->state();
          const bool done = s == StageState::kSucceeded ||
                            (s == StageState::kPartiallySucceeded && definition->trigger.on_partial_success);
          if (!done) reasons.push_back(upstream_clause(release, *record, definition->trigger.on_partial_success));
        }
      }
      return upstream.name + " was not triggered" + (reasons.empty() ? "" : " (" + join(reasons, "; ") + ")");
    }
  }
  return upstream.name + " is " + std::string(to_string(upstream.state()));
}

std::string not_started(const ReleaseState& release, const StageRecord& stage) {
  const std::string head = stage.name + " was not triggered: ";
  if (release.abandoned) {
    return head + "the release was abandoned" +
           (release.abandon_reason.empty() ? "" : " (" + release.abandon_reason + ")");
  }
  const StageDefinition* definition = release.definition.find_stage(stage.name);
  if (definition == nullptr) return head + "the release's definition has no such stage";
  switch (definition->trigger.kind) {
    case TriggerKind::kManual:
      return head + "it is a manual stage, waiting for someone to deploy it (cascade deploy " + release.id + " " +
             stage.name + ")";
    case TriggerKind::kAfterRelease:
      return stage.name + " is about to be triggered: it starts when the release is created";
    case TriggerKind::kAfterStages: {
      std::vector<std::string> reasons;
      for (const std::string& name : definition->trigger.after_stages) {
        const StageRecord* upstream = release.find_stage(name);
        if (upstream == nullptr) continue;
        const StageState s = upstream->state();
        const bool done = s == StageState::kSucceeded ||
                          (s == StageState::kPartiallySucceeded && definition->trigger.on_partial_success);
        if (!done) reasons.push_back(upstream_clause(release, *upstream, definition->trigger.on_partial_success));
      }
      if (reasons.empty()) {
        return stage.name + " is about to be triggered: " + join(definition->trigger.after_stages) + " succeeded";
      }
      return head + join(reasons, "; ");
    }
  }
  return head + "unknown trigger";
}

std::string attempt_text(const StageRecord& stage) { return "attempt " + std::to_string(stage.attempt); }

std::string queue_text(const ReleaseState& release, const StageRecord& stage) {
  const StageDefinition* definition = release.definition.find_stage(stage.name);
  if (definition == nullptr || definition->max_parallel == 0) return "; the executor starts it next";
  return "; it is in the deployment queue (at most " + std::to_string(definition->max_parallel) +
         " deployment" + (definition->max_parallel == 1 ? "" : "s") + " of " + stage.name +
         " at once, in release order)";
}

std::string awaiting_approval(const StageRecord& stage) {
  const PendingApproval& approval = stage.approval;
  // The request is made by the same command that triggered the stage (pre)
  // or that finished its deployment (post), so it carries that time.
  const Timestamp requested_at = approval.phase == ApprovalPhase::kPost ? stage.finished_at : stage.triggered_at;
  const int pending = std::max(0, approval.required - static_cast<int>(approval.satisfied.size()));
  std::string out = stage.name + " is waiting: " + phase_words(approval.phase) + " by " + join(approval.approvers) +
                    " requested" + at_time(requested_at) + ", " + std::to_string(pending) + " of " +
                    std::to_string(approval.required) + " pending";
  if (!approval.approved_by.empty()) out += "; approved so far by " + join(approval.approved_by);
  if (approval.order == ApprovalOrder::kSequential) {
    for (const std::string& entry : approval.approvers) {
      if (std::find(approval.satisfied.begin(), approval.satisfied.end(), entry) == approval.satisfied.end()) {
        out += "; in order, next: " + entry;
        break;
      }
    }
  }
  if (approval.deadline != 0) out += "; deadline " + format_rfc3339(approval.deadline);
  return out;
}

std::string approvals_of_attempt(const StageRecord& stage, ApprovalPhase phase) {
  std::vector<std::string> people;
  for (const ApprovalRecord& record : stage.approvals) {
    if (record.phase == phase && record.decision == ApprovalDecision::kApproved && record.at >= stage.triggered_at) {
      people.push_back(record.approver + (record.override ? " (admin override)" : "") + at_time(record.at));
    }
  }
  return join(people);
}

std::string finished(const StageRecord& stage) {
  std::string out = stage.name + (stage.state() == StageState::kSucceeded ? " succeeded" : " partially succeeded") +
                    at_time(stage.finished_at) + " (" + attempt_text(stage) + ", triggered: " + stage.trigger_reason +
                    ")";
  std::vector<std::string> continued;
  for (const StepRecord& step : stage.steps) {
    if (step.status == StepStatus::kFailed && step.continued) continued.push_back(step.name + " (" + step.reason + ")");
  }
  if (!continued.empty()) out += "; failed but continued on error: " + join(continued);
  const std::string pre = approvals_of_attempt(stage, ApprovalPhase::kPre);
  if (!pre.empty()) out += "; approved by " + pre;
  const std::string post = approvals_of_attempt(stage, ApprovalPhase::kPost);
  if (!post.empty()) out += "; post-deployment approval by " + post;
  return out;
}

std::string deploying(const StageRecord& stage) {
  std::string out = stage.name + " is deploying: " + attempt_text(stage) + ", started" + at_time(stage.started_at);
  std::size_t done = 0;
  for (std::size_t i = 0; i < stage.steps.size(); ++i) {
    const StepRecord& step = stage.steps[i];
    if (step.status == StepStatus::kRunning) {
      return out + "; step " + std::to_string(i + 1) + " of " + std::to_string(stage.steps.size()) + " (" +
             step.name + ") is running" + (step.tries > 1 ? " (try " + std::to_string(step.tries) + ")" : "") +
             " since " + format_rfc3339(step.started_at, ZeroTime::kEmpty);
    }
    if (step.status == StepStatus::kFailed && step.will_retry) {
      return out + "; step " + step.name + " failed (" + step.reason + ") and will be tried again";
    }
    if (step.status != StepStatus::kPending) ++done;
  }
  return out + "; " + std::to_string(done) + " of " + std::to_string(stage.steps.size()) + " steps done";
}

}  // namespace

std::string explain_stage(const ReleaseState& release, const std::string& stage_name) {
  const StageRecord* stage = release.find_stage(stage_name);
  if (stage == nullptr) return release.unknown_stage(stage_name).message;
  const StageRecord& s = *stage;
  switch (s.state()) {
    case StageState::kNotStarted: return not_started(release, s);
    case StageState::kTriggered:
      return s.name + " is waiting to deploy: triggered" + at_time(s.triggered_at) + " (" + s.trigger_reason + "), " +
             attempt_text(s) + queue_text(release, s);
    case StageState::kApproved: {
      const std::string people = approvals_of_attempt(s, ApprovalPhase::kPre);
      return s.name + " is waiting to deploy: " + (people.empty() ? "approved" : "approved by " + people) +
             queue_text(release, s);
    }
    case StageState::kAwaitingPreApproval:
    case StageState::kAwaitingPostApproval: return awaiting_approval(s);
    case StageState::kDeferred:
      return s.name + " is deferred until " + format_rfc3339(s.defer_until, ZeroTime::kEmpty) + ": approved by " +
             approvals_of_attempt(s, ApprovalPhase::kPre);
    case StageState::kDeploying: return deploying(s);
    case StageState::kSucceeded:
    case StageState::kPartiallySucceeded: return finished(s);
    case StageState::kFailed: {
      std::string out = s.name + " failed" + at_time(s.finished_at) + " (" + attempt_text(s) + "): ";
      const StepRecord* step = failed_step(s);
      out += step != nullptr ? "step " + step->name + " failed: " + step->reason : s.failure_reason;
      if (s.rollback) {
        out += s.rollback->rollback_to.empty() ? "; not rolled back: " + s.rollback->reason
                                               : "; rolled back to " + s.rollback->rollback_to;
      }
      return out;
    }
    case StageState::kRejected: {
      const ApprovalRecord* decision = last_decision(s, {ApprovalDecision::kRejected, ApprovalDecision::kTimedOut});
      if (decision != nullptr && decision->decision == ApprovalDecision::kTimedOut) {
        return s.name + " was rejected: the " + phase_words(decision->phase) + " timed out" +
               at_time(decision->at) + " (" + attempt_text(s) + ")";
      }
      if (decision != nullptr) {
        return s.name + " was rejected by " + decision->approver + at_time(decision->at) +
               comment_of(decision->comment) + " (" + attempt_text(s) + ")";
      }
      return s.name + " was rejected: " + s.failure_reason;
    }
    case StageState::kCanceled:
      return s.name + " was canceled" + at_time(s.finished_at) + " (" + attempt_text(s) + "): " + s.failure_reason;
  }
  return s.name + " is " + std::string(to_string(s.state()));
}

}  // namespace cascade::engine
