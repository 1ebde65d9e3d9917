// Server-Sent Events: a handler returns Response::event_stream(stream) and
// hands `stream` to whatever produces events; that producer calls send() from
// its own thread until send() returns false.
//
//   auto stream = SseStream::create();
//   stream->page_from(next_page_of_backlog);          // optional catch-up, paged
//   hub.subscribe(stream);                            // a producer thread sends
//   return Response::event_stream(stream);
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace cascade::adapters::http {

namespace detail {
class SseStreamAccess;
}

// One client's event stream. Thread-safe: send(), close() and on_close() may
// be called from any thread, concurrently with the server writing.
//
// At most `max_backlog_bytes` may wait unwritten, from the first frame on (a
// single frame larger than that is accepted when nothing waits): a client
// that falls further behind is disconnected (it reconnects with its
// Last-Event-ID), so a slow reader never grows the server's memory. A backlog
// that may be large (a replay from Last-Event-ID) is not sent up front: the
// producer pages it (page_from), one page each time the client has read the
// last one, so its size never depends on how far back the client asked. While no
// frame is written for the server's keep-alive interval, a comment line
// (": keep-alive") is sent, so proxies keep the connection and a vanished
// client is noticed.
class SseStream {
 public:
  static std::shared_ptr<SseStream> create(std::size_t max_backlog_bytes = 1 << 20);

  SseStream(const SseStream&) = delete;
  SseStream& operator=(const SseStream&) = delete;

  // Queues one event: "id: <id>\nevent: <event>\ndata: <line>\n…\n" (id and
  // event lines only when non-empty; one data line per line of `data`, split at
  // \n, \r\n or \r). CR, LF and NUL in id or event are replaced by spaces, as
  // they cannot be framed. Returns false, queueing nothing, once the stream is
  // closed: the client went away, the server is stopping, the client fell too
  // far behind, or close() was called. The producer then drops the stream.
  bool send(std::string_view id, std::string_view event, std::string_view data);

  // Queues a comment line (": <text>"), which clients ignore; as send().
  bool send_comment(std::string_view text);

  // Ends the stream from the producer's side: frames already queued are still
  // written, then the response ends. Idempotent.
  void close();

  // True once the stream no longer accepts frames.
  bool closed() const;

  // Sets the stream's pager: whenever everything queued has been written, the
  // server calls `next_page` on one of its worker threads (never two at once,
  // never under a lock of the stream); it queues the next page with send() —
  // keeping it about `page_budget_bytes()` — and returns true while more pages
  // remain, false once it has none (e.g. it handed the stream over to live
  // delivery), after which it is dropped. A pager that throws ends the stream.
  // Set it before the handler returns the stream.
  void page_from(std::function<bool()> next_page);

  // What a pager should queue per page: a quarter of the backlog bound.
  std::size_t page_budget_bytes() const { return max_backlog_bytes_ / 4; }

  // Bytes queued and not yet written.
  std::size_t backlog_bytes() const;

  // Registers `callback` to run once when the stream ends for any reason (at
  // once, on this thread, if it has already ended). It runs on a server thread
  // or on the thread that ended the stream and must not block; producers use
  // it to unsubscribe promptly instead of waiting for send() to fail.
  void on_close(std::function<void()> callback);

 private:
  friend class detail::SseStreamAccess;
  explicit SseStream(std::size_t max_backlog_bytes) : max_backlog_bytes_(max_backlog_bytes) {}
  bool enqueue(std::string frame);

  const std::size_t max_backlog_bytes_;
  mutable std::mutex mutex_;
  std::deque<std::string> pending_;
  std::size_t pending_bytes_ = 0;
  bool attached_ = false;       // the server is writing it
  bool closing_ = false;        // close() was called: flush, then end
  bool ended_ = false;          // no more frames will be written
  std::function<void()> wake_;  // set by the server while attached
  // See page_from(); shared, as it runs outside the lock and keeps its
  // position between calls.
  std::shared_ptr<std::function<bool()>> pager_;
  bool paging_ = false;          // the pager is running on a worker
  std::vector<std::function<void()>> on_close_;
};

}  // namespace cascade::adapters::http
