#include "adapters/metrics/engine_metrics.hpp"

#include "engine/release.hpp"

#include <type_traits>
#include <variant>

namespace cascade::adapters::metrics {

namespace {

// Step durations: 100 ms … 1 h. Approval waits: 1 min … 7 d.
const std::vector<double> kStepBuckets = {0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600};
const std::vector<double> kApprovalBuckets = {60, 300, 900, 3600, 4 * 3600, 86'400, 3 * 86'400, 7 * 86'400};

std::string approval_key(const events::RecordedEvent& event, const std::string& stage) {
  return event.stream + "/" + stage;
}

}  // namespace

std::string pipeline_of_stream(const std::string& stream) {
  static const std::string kPrefix = "release-";
  if (stream.compare(0, kPrefix.size(), kPrefix) != 0) return "";
  const std::string id = stream.substr(kPrefix.size());
  const auto dash = id.rfind('-');
  return dash == std::string::npos ? id : id.substr(0, dash);
}

Result<std::unique_ptr<EngineMetrics>> EngineMetrics::create(events::EventLog& log, MetricsRegistry& registry) {
  CASCADE_TRY(deployments, registry.counter("cascade_deployments_total", "Stage deployments finished, by outcome.",
                                            {"pipeline", "stage", "outcome"}));
  CASCADE_TRY(steps, registry.histogram("cascade_step_duration_seconds", "Deploy step run time, by outcome.",
                                        {"pipeline", "stage", "outcome"}, kStepBuckets));
  CASCADE_TRY(approvals, registry.histogram("cascade_approval_wait_seconds",
                                            "Time from an approval's request to its decision.",
                                            {"pipeline", "stage", "decision"}, kApprovalBuckets));
  return std::unique_ptr<EngineMetrics>(new EngineMetrics(log, *deployments, *steps, *approvals));
}

Result<events::Timestamp> EngineMetrics::approval_requested_at(const events::RecordedEvent& decided,
                                                               const std::string& stage) {
  auto open = open_approvals_.find(approval_key(decided, stage));
  if (open != open_approvals_.end()) return open->second;
  // Requested before this process started: the request is in the stream.
  CASCADE_TRY(history, log_.read(decided.stream, 1, static_cast<std::size_t>(decided.version)));
  events::Timestamp at = 0;
  for (const events::RecordedEvent& event : history) {
    if (const auto* requested = std::get_if<events::ApprovalRequested>(&event.data)) {
      if (requested->stage == stage) at = event.recorded_at;
    }
  }
  return at;
}

Status EngineMetrics::handle(const std::vector<events::RecordedEvent>& batch) {
  for (const events::RecordedEvent& event : batch) {
    const std::string pipeline = pipeline_of_stream(event.stream);
    // Every decision (each grant of an N-of-M approval too) is measured from
    // the request; the request is forgotten once the stage moves on.
    auto decided = [&](const std::string& stage, engine::ApprovalDecision decision, bool closes) -> Status {
      CASCADE_TRY(requested_at, approval_requested_at(event, stage));
      if (requested_at > 0 && event.recorded_at >= requested_at) {
        approval_waits_.with({pipeline, stage, std::string(engine::to_string(decision))}).observe((event.recorded_at - requested_at) / 1000.0);
      }
      if (closes) open_approvals_.erase(approval_key(event, stage));
      return outcome::success();
    };
    auto moved_on = [&](const std::string& stage) { open_approvals_.erase(approval_key(event, stage)); };
    Status status = std::visit(
        [&](const auto& e) -> Status {
          using T = std::decay_t<decltype(e)>;
          if constexpr (std::is_same_v<T, events::ApprovalRequested>) {
            open_approvals_[approval_key(event, e.stage)] = event.recorded_at;
          } else if constexpr (std::is_same_v<T, events::ApprovalGranted>) {
            // Whether this grant completes the approval is the stage machine's
            // business; the entry goes when the stage moves on.
            return decided(e.stage, engine::ApprovalDecision::kApproved,
                           engine::parse_approval_phase(e.phase) == engine::ApprovalPhase::kPost);
          } else if constexpr (std::is_same_v<T, events::ApprovalRejected>) {
            return decided(e.stage, engine::ApprovalDecision::kRejected, true);
          } else if constexpr (std::is_same_v<T, events::ApprovalTimedOut>) {
            return decided(e.stage, engine::ApprovalDecision::kTimedOut, true);
          } else if constexpr (std::is_same_v<T, events::StepSucceeded>) {
            step_durations_.with({pipeline, e.stage, "succeeded"}).observe(e.duration_ms / 1000.0);
          } else if constexpr (std::is_same_v<T, events::StepFailed>) {
            step_durations_.with({pipeline, e.stage, "failed"}).observe(e.duration_ms / 1000.0);
          } else if constexpr (std::is_same_v<T, events::DeploymentStarted> ||
                               std::is_same_v<T, events::StageCanceled>) {
            moved_on(e.stage);
          } else if constexpr (std::is_same_v<T, events::DeploymentSucceeded>) {
            deployments_.with({pipeline, e.stage, e.partial ? "partially succeeded" : "succeeded"}).inc();
          } else if constexpr (std::is_same_v<T, events::DeploymentFailed>) {
            deployments_.with({pipeline, e.stage, "failed"}).inc();
          } else if constexpr (std::is_same_v<T, events::DeploymentCanceled>) {
            deployments_.with({pipeline, e.stage, "canceled"}).inc();
          }
          return outcome::success();
        },
        event.data);
    if (!status) return status;
  }
  return outcome::success();
}

}  // namespace cascade::adapters::metrics
