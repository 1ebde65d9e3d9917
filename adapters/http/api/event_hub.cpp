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
  if (!after) {
    std::lock_guard<std::mutex> lock(mutex_);
    subscribers_.push_back({std::move(stream), delivered_});
    return outcome::success();
  }
  // The pager holds the stream weakly: a stream its client left is not kept
  // alive by its own pager.
  std::weak_ptr<SseStream> weak = stream;
  stream->page_from([this, weak, position = *after]() mutable {
    auto stream = weak.lock();
    return stream != nullptr && replay_page(stream, position);
  });
  return outcome::success();
}

bool EventHub::replay_page(const std::shared_ptr<SseStream>& stream, std::uint64_t& position) {
  // Events are read a few at a time and queued until the page's budget is
  // spent, so one page stays small whatever the events' sizes.
  constexpr std::size_t kReadChunk = 64;
  const std::size_t budget = stream->page_budget_bytes();
  std::uint64_t delivered;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    delivered = delivered_;
  }
  bool exhausted = false;  // the log has nothing more up to `delivered`
  while (position < delivered) {
    if (stream->backlog_bytes() >= budget) return true;  // the page is full
    auto events = log_.read_all(position + 1, kReadChunk);
    if (!events) {
      // The client sees the stream end and retries from its Last-Event-ID.
      stream->close();
      return false;
    }
    const std::uint64_t before = position;
    for (const events::RecordedEvent& event : events.value()) {
      if (event.position > delivered) break;
      if (!send_event(*stream, event)) return false;
      position = event.position;
    }
    if (position == before) {
      exhausted = true;
      break;
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  // Caught up with what the hub has delivered: from here on handle() sends.
  // Under the lock, so no event falls between the replay and live delivery.
  if (position < delivered_ && !exhausted) return true;
  subscribers_.push_back({stream, position});
  return false;
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
