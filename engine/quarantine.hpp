// Quarantine — the streams whose stored history cannot be trusted: an event
// that fails verification (edited on disk) or cannot be decoded (bit rot, a
// type a newer version wrote). One such stream stops only itself: the
// service answers kDataLoss for it without reading it again, the reactors
// read past its events, and every other release goes on. Operators see the
// list in /readyz and cascade_quarantined_streams in /metrics.
//
// Kept in memory: after a restart a stream is quarantined again as soon as
// anything reads it (a reactor catching up, a command, a verification);
// `cascade doctor` finds every one offline. Repairing a stream (from a
// backup, or by an audit) is an offline act followed by a restart.
#pragma once

#include "events/event.hpp"

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace cascade::engine {

struct QuarantinedStream {
  std::string stream;
  std::string reason;  // the verification or decoding failure, naming the version or position
  events::Timestamp since = 0;
};

// Thread-safe.
class Quarantine {
 public:
  // Records `stream` (the first reason found is kept). Returns whether it is new.
  bool add(const std::string& stream, const std::string& reason, events::Timestamp now);
  std::optional<QuarantinedStream> find(const std::string& stream) const;
  bool contains(const std::string& stream) const { return size() != 0 && find(stream).has_value(); }
  std::vector<QuarantinedStream> list() const;
  std::size_t size() const { return size_.load(std::memory_order_acquire); }
  // Grows with every add: a reader that filtered with an older generation
  // knows to filter again.
  std::uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, QuarantinedStream> streams_;
  std::atomic<std::size_t> size_{0};
  std::atomic<std::uint64_t> generation_{0};
};

}  // namespace cascade::engine
