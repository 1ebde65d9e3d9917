// Prometheus series about what the engine does, folded from the events as
// they are appended: deployments by outcome, step durations, approval waits.
// Counting from events (not from inside the executor) means every writer of
// the log is counted once, whichever process or reactor wrote the event.
#pragma once

#include "adapters/metrics/metrics.hpp"
#include "engine/reactor.hpp"

#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace cascade::adapters::metrics {

// A reactor that keeps nothing durable: it starts at the log's head, so the
// series count what happened since the server started (Prometheus counters
// reset on restart by design). An approval requested before the start is
// looked up in its release's stream when its decision arrives.
class EngineMetrics final : public engine::Reactor {
 public:
  // REQUIRES: `log` and `registry` outlive the reactor.
  static Result<std::unique_ptr<EngineMetrics>> create(events::EventLog& log,
                                                       MetricsRegistry& registry);

  std::string name() const override { return "metrics"; }
  Result<std::uint64_t> resume_position() override { return log_.head(); }
  Status handle(const std::vector<events::RecordedEvent>& batch) override;

 private:
  EngineMetrics(events::EventLog& log, CounterFamily& deployments,
                HistogramFamily& step_durations, HistogramFamily& approval_waits)
      : log_(log), deployments_(deployments), step_durations_(step_durations), approval_waits_(approval_waits) {}

  // When the approval of `stage` that `decided` closes was requested; 0 when unknown.
  Result<events::Timestamp> approval_requested_at(const events::RecordedEvent& decided, const std::string& stage);

  events::EventLog& log_;
  CounterFamily& deployments_;
  HistogramFamily& step_durations_;
  HistogramFamily& approval_waits_;
  std::map<std::string, events::Timestamp> open_approvals_;  // stream '/' stage → requested at
};

// The pipeline a release stream belongs to: "release-SampleApp-12" → "SampleApp".
std::string pipeline_of_stream(const std::string& stream);

}  // namespace cascade::adapters::metrics
