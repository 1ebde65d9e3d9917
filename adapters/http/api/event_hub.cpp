#include "adapters/http/api/event_hub.hpp"

#include "adapters/http/api/event_json.hpp"
#include "events/codec.hpp"

namespace cascade::adapters::http::api {

Result<std::uint64_t> EventHub::resume_position() {
  std::lock_guard<std::mutex> lock(mutex_);
  delivered_ = log_.head();
  return delivered_;
}

bool send_event(SseStream& stream, const events::RecordedEvent& event) {
  return stream.send(std::to_string(event.position), events::type_name(event.data), event_json(event).dump());
}

Status EventHub::handle(const std::vector<events::RecordedEvent>& batch) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const events::RecordedEvent& event : batch) {
    if (event.position <= delivered_) continue;  // a retried batch
    for (auto it = subscribers_.begin(); it != subscribers_.end();) {
      if (event.position <= it->after || send_event(*it->stream, event)) {
        ++it;
      } else {
        it = subscribers_.erase(it);
      }
    }
    delivered_ = event.position;
  }
  return outcome::success();
}

Status EventHub::subscribe(std::shared_ptr<SseStream> stream, std::optional<std::uint64_t> after) {
  constexpr std::size_t kChunk = 256;
  if (after) {
    // Most of the backlog outside the lock, so live delivery does not wait.
    std::uint64_t position = *after;
    for (;;) {
      std::uint64_t delivered;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        delivered = delivered_;
      }
      if (position + kChunk >= delivered) break;
      CASCADE_TRY(events, log_.read_all(position + 1, kChunk));
      if (events.empty()) break;
      for (const events::RecordedEvent& event : events) {
        if (!send_event(*stream, event)) return outcome::success();
        position = event.position;
      }
    }
    std::lock_guard<std::mutex> lock(mutex_);
    while (position < delivered_) {
      CASCADE_TRY(events, log_.read_all(position + 1, kChunk));
      if (events.empty()) break;
      for (const events::RecordedEvent& event : events) {
        if (event.position > delivered_) break;
        if (!send_event(*stream, event)) return outcome::success();
        position = event.position;
      }
    }
    subscribers_.push_back({std::move(stream), position});
    return outcome::success();
  }
  std::lock_guard<std::mutex> lock(mutex_);
  subscribers_.push_back({std::move(stream), 0});
  return outcome::success();
}

void EventHub::close_all() {
  std::vector<Subscriber> subscribers;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    subscribers.swap(subscribers_);
  }
  for (Subscriber& subscriber : subscribers) subscriber.stream->close();
}

std::size_t EventHub::subscribers() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return subscribers_.size();
}

}  // namespace cascade::adapters::http::api
