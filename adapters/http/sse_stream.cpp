#include "adapters/http/sse_stream.hpp"

#include "adapters/http/sse_internal.hpp"

namespace cascade::adapters::http {

namespace {

// id and event are single-line fields.
void append_field(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += ": ";
  for (char c : value) out.push_back(c == '\n' || c == '\r' || c == '\0' ? ' ' : c);
  out += '\n';
}

}  // namespace

std::shared_ptr<SseStream> SseStream::create(std::size_t max_backlog_bytes) {
  return std::shared_ptr<SseStream>(new SseStream(max_backlog_bytes));
}

bool SseStream::send(std::string_view id, std::string_view event, std::string_view data) {
  std::string frame;
  frame.reserve(id.size() + event.size() + data.size() + 32);
  if (!id.empty()) append_field(frame, "id", id);
  if (!event.empty()) append_field(frame, "event", event);
  // Each line of data is its own data: field; the client joins them with \n.
  std::size_t start = 0;
  while (true) {
    std::size_t end = data.find_first_of("\r\n", start);
    frame += "data: ";
    frame.append(data.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    frame += '\n';
    if (end == std::string_view::npos) break;
    start = end + (data[end] == '\r' && end + 1 < data.size() && data[end + 1] == '\n' ? 2 : 1);
  }
  frame += '\n';
  return enqueue(std::move(frame));
}

bool SseStream::send_comment(std::string_view text) {
  std::string frame;
  append_field(frame, "", text);  // ": text\n"
  frame += '\n';
  return enqueue(std::move(frame));
}

bool SseStream::enqueue(std::string frame) {
  std::lock_guard lock(mutex_);
  if (ended_ || closing_) return false;
  if (attached_ && pending_bytes_ + frame.size() > max_backlog_bytes_) {
    // Too far behind: drop the backlog and end the response; the client
    // reconnects with the last id it did receive and catches up from there.
    pending_.clear();
    pending_bytes_ = 0;
    closing_ = true;
    if (wake_) wake_();
    return false;
  }
  pending_bytes_ += frame.size();
  pending_.push_back(std::move(frame));
  if (wake_) wake_();
  return true;
}

void SseStream::close() {
  std::lock_guard lock(mutex_);
  if (ended_ || closing_) return;
  closing_ = true;
  if (wake_) wake_();
}

bool SseStream::closed() const {
  std::lock_guard lock(mutex_);
  return ended_ || closing_;
}

void SseStream::on_close(std::function<void()> callback) {
  {
    std::lock_guard lock(mutex_);
    if (!ended_) {
      on_close_.push_back(std::move(callback));
      return;
    }
  }
  if (callback) callback();
}

namespace detail {

bool SseStreamAccess::attach(SseStream& stream, std::function<void()> wake) {
  std::lock_guard lock(stream.mutex_);
  if (stream.ended_) return false;
  stream.attached_ = true;
  stream.wake_ = std::move(wake);
  if (!stream.pending_.empty() || stream.closing_) stream.wake_();
  return true;
}

SseStreamAccess::Batch SseStreamAccess::take(SseStream& stream) {
  Batch batch;
  std::lock_guard lock(stream.mutex_);
  batch.bytes.reserve(stream.pending_bytes_);
  for (auto& frame : stream.pending_) batch.bytes += frame;
  stream.pending_.clear();
  stream.pending_bytes_ = 0;
  batch.finished = stream.ended_ || stream.closing_;
  return batch;
}

void SseStreamAccess::end(SseStream& stream) {
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard lock(stream.mutex_);
    if (stream.ended_) return;
    stream.ended_ = true;
    stream.wake_ = nullptr;
    stream.pending_.clear();
    stream.pending_bytes_ = 0;
    callbacks.swap(stream.on_close_);
  }
  for (auto& callback : callbacks) {
    if (!callback) continue;
    try {
      callback();
    } catch (...) {
      // A producer's callback must not take the server down with it.
    }
  }
}

}  // namespace detail

}  // namespace cascade::adapters::http
