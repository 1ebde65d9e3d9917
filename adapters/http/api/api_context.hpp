// What the /api/v1 routes use: the engine's service, the log, the read
// models, the step logs and their followers, the event hub, the metrics —
// the ports, never the runtime that wired them.
#pragma once

#include "adapters/http/api/event_hub.hpp"
#include "adapters/metrics/metrics.hpp"
#include "adapters/runtime/log_follow.hpp"
#include "engine/ports.hpp"
#include "engine/reactor.hpp"
#include "engine/release_service.hpp"
#include "events/event_log.hpp"
#include "projections/projection_set.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

namespace cascade::adapters {
class Runtime;  // adapters/runtime/runtime.hpp
}  // namespace cascade::adapters

namespace cascade::adapters::http::api {

struct ApiOptions {
  // /readyz fails while any projection is further behind the log's head.
  std::uint64_t max_ready_lag = 1000;
  // POST /releases accepts an artifact.path only inside this directory
  // (symbolic links resolved), never an arbitrary server path. Empty in
  // ApiContext::of: <data>/artifacts.
  std::string artifacts_root;
};

// Every reference must outlive the router built on it.
struct ApiContext {
  engine::ReleaseService& service;
  events::EventLog& log;
  projections::ProjectionSet& projections;
  engine::StepLogStore& step_logs;  // read by GET …/logs and /verify
  LogFollowHub& log_follow;         // GET …/logs?follow=true
  EventHub& events;                 // GET /stream
  // Rendered by GET /metrics and counting cascade_commands_total; may be null.
  std::shared_ptr<metrics::MetricsRegistry> metrics;
  // Whether the engine runs (readiness).
  const std::atomic<bool>& started;
  ApiOptions options = {};
  // Each reactor's position, lag and last error (GET /metrics, /readyz); empty
  // when the context has no engine.
  std::function<std::vector<engine::ReactorStatus>()> reactor_status = {};

  // The ports of a runtime; `events` must be one of its observers.
  static ApiContext of(Runtime& runtime, EventHub& events, std::shared_ptr<metrics::MetricsRegistry> metrics,
                       const std::atomic<bool>& started, ApiOptions options = {});
};

}  // namespace cascade::adapters::http::api
