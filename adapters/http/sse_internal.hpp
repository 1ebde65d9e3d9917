// The server's side of SseStream (implementation header: server.cpp and
// sse_stream.cpp only).
#pragma once

#include <functional>
#include <string>

#include "adapters/http/sse_stream.hpp"

namespace cascade::adapters::http::detail {

class SseStreamAccess {
 public:
  // The server starts writing `stream`: from now on the backlog is bounded and
  // `wake` is called (under the stream's lock, so it must only post work)
  // whenever there is something to write or the producer closed. Calls wake
  // once at once when something is already waiting. False when the stream has
  // already ended (nothing to write).
  static bool attach(SseStream& stream, std::function<void()> wake);

  struct Batch {
    std::string bytes;      // every queued frame, in order
    bool finished = false;  // nothing more will come: end the response
    // Nothing is queued and the stream has a pager: call page() on a worker
    // thread; it wakes the server when the page is queued.
    bool page_wanted = false;
  };
  // Takes everything queued.
  static Batch take(SseStream& stream);

  // Runs the stream's pager once (after take() asked for it).
  static void page(SseStream& stream);

  // The stream is over (any reason): later sends fail, wake is dropped, and
  // the on_close callbacks run on this thread. Idempotent.
  static void end(SseStream& stream);
};

}  // namespace cascade::adapters::http::detail
