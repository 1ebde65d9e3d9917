// The canonical form of a pipeline definition: the JSON a release snapshots
// and a PipelineDefined event stores (and hashes), every field written.
#include "engine/pipeline_internal.hpp"

namespace cascade::engine {

using nlohmann::json;
using namespace pipeline_internal;

namespace {

// A non-secret as its text; a secret as {"secret": true, "digest": …} and
// never with its value. ReleaseService stores every secret and sets its digest
// before writing a definition; a secret without one (a definition straight
// from the user's file) is written with an empty digest, which does not
// parse back, rather than with its value. "settable" is written only when
// true, so every definition stored before it existed keeps its canonical bytes.
json variables_to_json(const VariableMap& variables) {
  json out = json::object();
  for (const auto& [name, variable] : variables) {
    if (variable.secret) {
      out[name] = {{"secret", true}, {"digest", variable.secret_digest}};
    } else if (variable.settable) {
      out[name] = {{"value", variable.value}};
    } else {
      out[name] = variable.value;
    }
    if (variable.settable) out[name]["settable"] = true;
  }
  return out;
}

json approval_to_json(const ApprovalPolicy& policy, bool pre) {
  json out = {{"approvers", policy.approvers},
              {"order", std::string(kApprovalOrders[static_cast<std::size_t>(policy.order)])},
              {"timeout", format_duration(policy.timeout_ms)},
              {"requester_cannot_approve", policy.requester_cannot_approve}};
  out["required"] = policy.required == 0 ? json("all") : json(policy.required);
  if (pre) out["skip_if_approved_earlier"] = policy.skip_if_approved_earlier;
  return out;
}

json trigger_to_json(const StageTrigger& trigger) {
  switch (trigger.kind) {
    case TriggerKind::kAfterRelease: return {{"after_release", true}};
    case TriggerKind::kAfterStages:
      return {{"after_stages", trigger.after_stages}, {"on_partial_success", trigger.on_partial_success}};
    case TriggerKind::kManual: return {{"manual", true}};
  }
  return {{"after_release", true}};  // unreachable: every kind is handled above
}

json step_to_json(const StepDefinition& step) {
  return {{"name", step.name},
          {"run", step.run},
          {"timeout_s", step.timeout_s},
          {"env", json(step.env)},
          {"continue_on_error", step.continue_on_error},
          {"retries", {{"count", step.retries}, {"delay_s", step.retry_delay_s}}},
          {"condition", std::string(kStepConditions[static_cast<std::size_t>(step.condition)])}};
}

json stage_to_json(const StageDefinition& stage) {
  json steps = json::array();
  for (const StepDefinition& step : stage.steps) steps.push_back(step_to_json(step));
  json out = {{"name", stage.name},
              {"trigger", trigger_to_json(stage.trigger)},
              {"variables", variables_to_json(stage.variables)},
              {"steps", std::move(steps)},
              {"max_parallel", stage.max_parallel},
              {"on_new_release", std::string(kOnNewReleaseChoices[static_cast<std::size_t>(stage.on_new_release)])}};
  if (stage.pre_approval) out["pre_approval"] = approval_to_json(*stage.pre_approval, true);
  if (stage.post_approval) out["post_approval"] = approval_to_json(*stage.post_approval, false);
  if (stage.on_failure == OnFailure::kRedeployLastGood) out["on_failure"] = std::string(kOnFailureChoices[0]);
  return out;
}

}  // namespace

json to_json(const PipelineDefinition& definition) {
  json stages = json::array();
  for (const StageDefinition& stage : definition.stages) stages.push_back(stage_to_json(stage));
  json groups = json::object();
  for (const auto& [name, members] : definition.groups) groups[name] = members;
  json out = {{"name", definition.name},
              {"description", definition.description},
              {"release_name_format", definition.release_name_format},
              {"variables", variables_to_json(definition.variables)},
              {"groups", std::move(groups)},
              {"stages", std::move(stages)}};
  // Absent rather than null: definitions without it keep their canonical form.
  if (definition.artifact) {
    out["artifact"] = {{"source", definition.artifact->source},
                       {"branch_filters", definition.artifact->branch_filters}};
  }
  if (definition.needs_artifact != ArtifactNeed::kPath) {  // likewise: absent when the default
    out["needs_artifact"] = std::string(kArtifactNeedChoices[static_cast<std::size_t>(definition.needs_artifact)]);
  }
  return out;
}

}  // namespace cascade::engine
