// The /api/v1 route table of `cascade serve`: each handler parses the
// request, calls ReleaseService or a read-model query, and renders the answer.
// No decisions live here (they are the engine's).
#pragma once

#include "adapters/metrics/metrics.hpp"
#include "adapters/http/router.hpp"
#include "adapters/http/sse_stream.hpp"
#include "engine/reactor.hpp"
#include "adapters/runtime/runtime.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace cascade::tools {

// Fans every new event out to the open event streams. Added to the engine
// (Runtime::add_observer) before it starts; it keeps nothing durable and
// starts at the log's head, so a late joiner replays its backlog from the log.
class EventHub final : public engine::Reactor {
 public:
  explicit EventHub(events::EventLog& log) : log_(log) {}

  std::string name() const override { return "sse-hub"; }
  Result<std::uint64_t> resume_position() override;
  Status handle(const std::vector<events::RecordedEvent>& batch) override;

  // Replays the events after `after` (nullopt: none, live only) onto
  // `stream`, then forwards every later event to it, without gaps or
  // duplicates, until the stream closes.
  Status subscribe(std::shared_ptr<adapters::http::SseStream> stream, std::optional<std::uint64_t> after);

  // Closes every stream (server shutdown).
  void close_all();
  std::size_t subscribers() const;

 private:
  struct Subscriber {
    std::shared_ptr<adapters::http::SseStream> stream;
    std::uint64_t after = 0;  // the client has every event up to here
  };
  events::EventLog& log_;
  mutable std::mutex mutex_;
  std::uint64_t delivered_ = 0;  // position of the last event handled
  std::vector<Subscriber> subscribers_;
};

// Frames one event for an event stream.
bool send_event(adapters::http::SseStream& stream, const events::RecordedEvent& event);

struct ApiOptions {
  // /readyz fails while any projection is further behind the log's head.
  std::uint64_t max_ready_lag = 1000;
};

// Every route of the API. `started` tells readiness that the engine runs.
Result<adapters::http::Router> make_api_router(adapters::Runtime& runtime, EventHub& hub,
                                               std::shared_ptr<adapters::metrics::MetricsRegistry> metrics,
                                               const std::atomic<bool>& started, ApiOptions options = {});

}  // namespace cascade::tools
