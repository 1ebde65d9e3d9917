// EventLog — the port every writer and reactor goes through. The embedded
// implementation is adapters/rocksdb; the scale-out one will sit on Kafka.
#pragma once

#include "events/event.hpp"
#include "events/result.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

namespace cascade::events {

struct AppendResult {
  std::int64_t last_version = 0;     // the stream's version after the append
  std::uint64_t last_position = 0;   // global position of the last appended event
  std::string last_hash;             // hash of the stream's last event after the append
  bool duplicate = false;            // every event id was already stored: nothing written
};

// An event read_all_readable() could not decode: where it is, the stream it
// belongs to when the log's index says (empty when it cannot tell), and why.
struct UnreadableEvent {
  std::uint64_t position = 0;
  std::string stream;
  std::string reason;
};

// What read_all_readable() found: the events it decoded and those it could
// not, both in position order.
struct ReadablePage {
  std::vector<RecordedEvent> events;
  std::vector<UnreadableEvent> unreadable;
  // The highest position covered (0 when nothing was), decoded or not.
  std::uint64_t last_position() const {
    std::uint64_t last = 0;
    if (!events.empty()) last = events.back().position;
    if (!unreadable.empty() && unreadable.back().position > last) last = unreadable.back().position;
    return last;
  }
};

// Thread-safe: any number of threads may call any method at once.
class EventLog {
 public:
  virtual ~EventLog() = default;

  // Appends `events` to `stream` as one atomic unit, when the stream's version
  // is `expected_version` (0: the stream must not exist yet). Assigns versions
  // expected_version+1…, global positions, prev_hash and hash.
  // Returns only once the events are durable (WAL synced); concurrent callers
  // share syncs. Errors: kAborted when the stream has moved (reload and retry);
  // kInvalidArgument when `events` is empty or only some of its event ids are
  // stored already. When all of its ids are stored already nothing is written
  // and the result says duplicate, with the stream's current version.
  virtual Result<AppendResult> append(const std::string& stream, std::int64_t expected_version,
                                      std::vector<NewEvent> events) = 0;

  // Events of `stream` with version >= from_version, in version order, at most
  // `limit`. An unknown stream reads as empty. kDataLoss for an unreadable event.
  virtual Result<std::vector<RecordedEvent>> read(
      const std::string& stream, std::int64_t from_version = 1,
      std::size_t limit = std::numeric_limits<std::size_t>::max()) = 0;

  // The events read() would return, handed to `visit` one at a time and
  // stopping at the first error `visit` returns (which it returns). The event
  // passed is valid only during the call: implementations may reuse it, so
  // that replaying a long stream allocates nothing per event.
  virtual Status read_each(const std::string& stream, std::int64_t from_version,
                           const std::function<Status(const RecordedEvent&)>& visit) {
    CASCADE_TRY(events, read(stream, from_version));
    for (const RecordedEvent& e : events) {
      CASCADE_TRY(visit(e));
    }
    return success();
  }

  // read_each() that checks the hash chain on the way: each event's hash
  // against its content and its prev_hash against the hash of the event
  // before it — for the first one, `expected_prev_hash` ("" when reading
  // from version 1). kDataLoss names the first broken link. A replay that
  // must prove nothing was altered reads this way.
  virtual Status read_each_verified(const std::string& stream, std::int64_t from_version,
                                    std::string expected_prev_hash,
                                    const std::function<Status(const RecordedEvent&)>& visit);

  // Durable events with position >= from_position, in position order, at most `limit`.
  virtual Result<std::vector<RecordedEvent>> read_all(std::uint64_t from_position, std::size_t limit) = 0;

  // read_all() for readers that must get past one bad record (the reactors):
  // an event that cannot be decoded (bit rot, a type a newer version wrote)
  // is reported in `unreadable` and read past instead of failing the read.
  // At most `limit` records, decoded or not. Errors only when the log itself
  // cannot be read.
  virtual Result<ReadablePage> read_all_readable(std::uint64_t from_position, std::size_t limit) = 0;

  // The stream's current version; 0 for a stream that does not exist.
  virtual Result<std::int64_t> stream_version(const std::string& stream) = 0;

  // Whether appends can be made: kUnavailable, with the reason, once a write
  // has failed (a full or failing disk). Such a log refuses appends until the
  // process restarts and recovers from what the disk holds; reads go on.
  virtual Status writable() const { return success(); }

  // Position of the last durable event; 0 for an empty log.
  virtual std::uint64_t head() const = 0;

  // Blocks (without polling) until head() > after or `timeout` has passed;
  // returns head().
  virtual std::uint64_t wait_for_events(std::uint64_t after, std::chrono::milliseconds timeout) = 0;
};

}  // namespace cascade::events
