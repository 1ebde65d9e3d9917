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
  if (!pending_.empty() && pending_bytes_ + frame.size() > max_backlog_bytes_) {
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

void SseStream::page_from(std::function<bool()> next_page) {
  std::lock_guard lock(mutex_);
  pager_ = next_page ? std::make_shared<std::function<bool()>>(std::move(next_page)) : nullptr;
}

std::size_t SseStream::backlog_bytes() const {
  std::lock_guard lock(mutex_);
  return pending_bytes_;
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
  if (!stream.pending_.empty() || stream.closing_ || stream.pager_) stream.wake_();
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
  if (batch.bytes.empty() && !batch.finished && stream.pager_ && !stream.paging_) {
    stream.paging_ = true;
    batch.page_wanted = true;
  }
  return batch;
}

void SseStreamAccess::page(SseStream& stream) {
  std::shared_ptr<std::function<bool()>> pager;
  {
    std::lock_guard lock(stream.mutex_);
    pager = stream.pager_;
  }
  bool more = false;
  bool failed = false;
  try {
    more = pager && (*pager)();
  } catch (...) {
    failed = true;
  }
  std::lock_guard lock(stream.mutex_);
  stream.paging_ = false;
  if (!more) stream.pager_ = nullptr;
  if (failed && !stream.ended_) stream.closing_ = true;
  // Asks the server for the next round: a page written, or the next page.
  if (stream.wake_) stream.wake_();
}

void SseStreamAccess::end(SseStream& stream) {
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard lock(stream.mutex_);
    if (stream.ended_) return;
    stream.ended_ = true;
    stream.wake_ = nullptr;
    stream.pager_ = nullptr;
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
