// Fans every new event out to the open event streams (GET /api/v1/stream).
#pragma once

#include "adapters/http/sse_stream.hpp"
#include "engine/reactor.hpp"
#include "events/event_log.hpp"

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace cascade::adapters::http::api {

// Added to the engine (Runtime::add_observer) before it starts; it keeps
// nothing durable and starts at the log's head, so a late joiner replays its
// backlog from the log. Thread-safe.
class EventHub final : public engine::Reactor {
 public:
  explicit EventHub(events::EventLog& log) : log_(log) {}

  std::string name() const override { return "sse-hub"; }
  Result<std::uint64_t> resume_position() override;
  Status handle(const std::vector<events::RecordedEvent>& batch) override;

  // Replays the events after `after` (nullopt: none, live only) onto
  // `stream`, then forwards every later event to it, without gaps or
  // duplicates, until the stream closes. The replay is paged (the stream's
  // pager reads the log a page at a time, as the client reads), so a stream
  // resuming from 0 on a log of millions of events holds one page, and the
  // hub's lock is taken only to hand the stream over to live delivery.
  Status subscribe(std::shared_ptr<SseStream> stream, std::optional<std::uint64_t> after);

  // Closes every stream (server shutdown).
  void close_all();
  std::size_t subscribers() const;

 private:
  struct Subscriber {
    std::shared_ptr<SseStream> stream;
    std::uint64_t after = 0;  // the client has every event up to here
  };
  // Queues the next page of the replay after `position` (advancing it);
  // false once the stream is live (or gone).
  bool replay_page(const std::shared_ptr<SseStream>& stream, std::uint64_t& position);

  events::EventLog& log_;
  mutable std::mutex mutex_;
  std::uint64_t delivered_ = 0;  // position of the last event handled
  std::vector<Subscriber> subscribers_;
};

// Frames one event for an event stream: id = position, event = type, data =
// event_json.
bool send_event(SseStream& stream, const events::RecordedEvent& event);

}  // namespace cascade::adapters::http::api
