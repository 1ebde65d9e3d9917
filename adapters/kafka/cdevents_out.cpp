#include "adapters/kafka/cdevents_out.hpp"

#include "events/codec.hpp"
#include "events/time.hpp"

#include <cstdio>
#include <utility>

namespace cascade::adapters::kafka {
namespace {

using engine::ReleaseState;
using engine::ReleaseStatus;
using engine::StageState;
using nlohmann::json;

// RFC 3986 unreserved characters stay; everything else is %XX (purl and URIs agree on this).
std::string percent_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0x0f];
    }
  }
  return out;
}

bool is_terminal(ReleaseStatus status) {
  return status != ReleaseStatus::kInProgress && status != ReleaseStatus::kWaitingForApproval;
}

std::string environment_source(const CdEventsOptions& options, const std::string& pipeline) {
  std::string source = options.source;
  while (source.size() > 1 && source.back() == '/') source.pop_back();
  return source == "/" ? "/" + pipeline : source + "/" + pipeline;
}

class ReleaseCdEvents {
 public:
  ReleaseCdEvents(const events::RecordedEvent& event, const ReleaseState& after, const CdEventsOptions& options)
      : event_(event), after_(after), options_(options) {}

  json cdevent(std::string_view type, json subject) const {
    json context = {{"specversion", std::string(kCdEventsSpecVersion)},
                    {"id", cdevent_id(event_.position, type)},
                    {"source", options_.source},
                    {"type", std::string(type)},
                    {"timestamp", events::format_rfc3339(event_.recorded_at)}};
    return json{{"context", std::move(context)}, {"subject", std::move(subject)}};
  }

  json pipeline_run(std::string_view type, json extra_content = json::object()) const {
    json content = {{"pipelineName", after_.pipeline},
                    {"uri", options_.release_uri_prefix + percent_encode(after_.id)}};
    content.update(extra_content);
    return cdevent(type, {{"id", after_.id}, {"source", options_.source}, {"content", std::move(content)}});
  }

  json task_run(std::string_view type, const std::string& stage, int attempt,
                json extra_content = json::object()) const {
    json content = {{"taskName", stage}, {"pipelineRun", {{"id", after_.id}, {"source", options_.source}}}};
    content.update(extra_content);
    return cdevent(type, {{"id", after_.id + "/" + stage + "/" + std::to_string(attempt)},
                          {"source", options_.source},
                          {"content", std::move(content)}});
  }

  json service(std::string_view type, const std::string& stage) const {
    json content = {{"environment", {{"id", stage}, {"source", environment_source(options_, after_.pipeline)}}},
                    {"artifactId", artifact_purl(after_)}};
    return cdevent(type,
                   {{"id", "service/" + after_.pipeline}, {"source", options_.source}, {"content", std::move(content)}});
  }

 private:
  const events::RecordedEvent& event_;
  const ReleaseState& after_;
  const CdEventsOptions& options_;
};

// "partially succeeded: step 'smoke' failed: exit code 3" — what a partial
// deployment's continue_on_error steps went through.
std::string partial_errors(const engine::StageRecord* stage) {
  std::string out;
  if (stage == nullptr) return out;
  for (const engine::StepRecord& step : stage->steps) {
    if (!step.continued) continue;
    out += out.empty() ? "partially succeeded: " : "; ";
    out += "step '" + step.name + "' failed" + (step.reason.empty() ? "" : ": " + step.reason);
  }
  return out.empty() ? "partially succeeded" : out;
}

// The stages in `state`, each as "<stage>: <why>", joined by "; ".
std::string stage_errors(const ReleaseState& release, StageState state, std::string_view fallback) {
  std::string out;
  for (const engine::StageRecord& stage : release.stages) {
    if (stage.state() != state) continue;
    if (!out.empty()) out += "; ";
    out += stage.name + ": " + (stage.failure_reason.empty() ? std::string(fallback) : stage.failure_reason);
  }
  return out;
}

// The engine's own failure (a deployment cut off by a stop), not the pipeline's.
bool only_interrupted(const ReleaseState& release) {
  bool any = false;
  for (const engine::StageRecord& stage : release.stages) {
    if (stage.state() != StageState::kFailed) continue;
    any = true;
    if (stage.failure_reason.rfind("interrupted", 0) != 0) return false;
  }
  return any;
}

json finished_content(const ReleaseState& release, ReleaseStatus status) {
  switch (status) {
    case ReleaseStatus::kSucceeded: return {{"outcome", "success"}};
    case ReleaseStatus::kPartiallySucceeded: {
      std::string stages;
      for (const engine::StageRecord& stage : release.stages) {
        if (stage.state() != StageState::kPartiallySucceeded) continue;
        stages += (stages.empty() ? "" : ", ") + stage.name;
      }
      return {{"outcome", "success"}, {"errors", "partially succeeded: " + stages}};
    }
    case ReleaseStatus::kFailed:
      return {{"outcome", only_interrupted(release) ? "error" : "failure"},
              {"errors", stage_errors(release, StageState::kFailed, "failed")}};
    case ReleaseStatus::kRejected:
      return {{"outcome", "failure"}, {"errors", stage_errors(release, StageState::kRejected, "rejected")}};
    case ReleaseStatus::kCanceled:
      return {{"outcome", "cancel"}, {"errors", stage_errors(release, StageState::kCanceled, "canceled")}};
    case ReleaseStatus::kAbandoned:
      return {{"outcome", "cancel"},
              {"errors", "abandoned" + (release.abandon_reason.empty() ? "" : ": " + release.abandon_reason)}};
    case ReleaseStatus::kInProgress:
    case ReleaseStatus::kWaitingForApproval: break;
  }
  return json::object();
}

// Which service event a successful deployment of `number` makes, updating
// what runs there; empty for none (the same release again, undisturbed).
std::string_view service_event_type(ServiceInstance& instance, std::int64_t number, const std::string& release_id) {
  std::string_view type;
  if (instance.release_number == 0) {
    type = kServiceDeployed;
  } else if (number > instance.release_number) {
    type = kServiceUpgraded;
  } else if (number < instance.release_number) {
    type = kServiceRolledBack;
  } else if (instance.disturbed_by > number) {
    type = kServiceRolledBack;
  } else if (instance.disturbed_by != 0 && instance.disturbed_by < number) {
    type = kServiceUpgraded;
  }
  instance = ServiceInstance{number, release_id, 0};
  return type;
}

}  // namespace

ReleaseBefore FoldedRelease::fold(const events::RecordedEvent& event) {
  if (event.command_id.empty() || event.command_id != command_id_) {
    command_existed_ = state_.exists();
    if (command_existed_) command_status_ = engine::release_status(state_);
    command_id_ = event.command_id;
  }
  ReleaseBefore before;
  before.existed = command_existed_;
  before.status = command_status_;
  before.deployment_started = deployment_started_;
  engine::evolve(state_, event);
  if (std::holds_alternative<events::DeploymentStarted>(event.data)) deployment_started_ = true;
  return before;
}

std::vector<json> to_cdevents(const events::RecordedEvent& event, const ReleaseBefore& before,
                              const ReleaseState& after, bool ends_command, Environments& environments,
                              const CdEventsOptions& options) {
  std::vector<json> out;
  if (!after.exists() || std::holds_alternative<events::PipelineDefined>(event.data)) return out;
  const ReleaseCdEvents map(event, after, options);

  if (std::holds_alternative<events::ReleaseCreated>(event.data)) {
    out.push_back(map.pipeline_run(kPipelineRunQueued));
  } else if (const auto* started = std::get_if<events::DeploymentStarted>(&event.data)) {
    if (!before.deployment_started) out.push_back(map.pipeline_run(kPipelineRunStarted));
    out.push_back(map.task_run(kTaskRunStarted, started->stage, started->attempt));
  } else if (const auto* succeeded = std::get_if<events::DeploymentSucceeded>(&event.data)) {
    json content = {{"outcome", "success"}};
    if (succeeded->partial) content["errors"] = partial_errors(after.find_stage(succeeded->stage));
    out.push_back(map.task_run(kTaskRunFinished, succeeded->stage, succeeded->attempt, std::move(content)));
    ServiceInstance& instance = environments[EnvironmentKey{after.pipeline, succeeded->stage}];
    const std::string_view type = service_event_type(instance, after.number, after.id);
    if (!type.empty()) out.push_back(map.service(type, succeeded->stage));
  } else if (const auto* failed = std::get_if<events::DeploymentFailed>(&event.data)) {
    out.push_back(map.task_run(kTaskRunFinished, failed->stage, failed->attempt,
                               {{"outcome", "failure"}, {"errors", failed->reason.empty() ? "failed" : failed->reason}}));
    environments[EnvironmentKey{after.pipeline, failed->stage}].disturbed_by = after.number;
  } else if (const auto* canceled = std::get_if<events::DeploymentCanceled>(&event.data)) {
    out.push_back(map.task_run(kTaskRunFinished, canceled->stage, canceled->attempt,
                               {{"outcome", "cancel"},
                                {"errors", canceled->reason.empty() ? "canceled" : canceled->reason}}));
    environments[EnvironmentKey{after.pipeline, canceled->stage}].disturbed_by = after.number;
  }

  if (ends_command && before.existed && !is_terminal(before.status)) {
    const ReleaseStatus status = engine::release_status(after);
    if (is_terminal(status)) out.push_back(map.pipeline_run(kPipelineRunFinished, finished_content(after, status)));
  }
  return out;
}

std::string artifact_purl(const ReleaseState& release) {
  if (!release.artifact.id.empty()) return release.artifact.id;  // announced by CI
  std::string purl = "pkg:generic/" + percent_encode(release.pipeline);
  if (!release.artifact.version.empty()) purl += "@" + percent_encode(release.artifact.version);
  return purl;
}

std::string cdevent_id(std::uint64_t position, std::string_view type) {
  return events::uuid_from_seed("cascade/cdevent/" + std::to_string(position) + "/" + std::string(type));
}

}  // namespace cascade::adapters::kafka
