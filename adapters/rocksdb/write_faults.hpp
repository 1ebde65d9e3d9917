// Write failures on demand, for the fault tests: a store opened with a
// WriteFaults (StoreOptions::write_faults) writes its files through a RocksDB
// FileSystem that, while failing() is on, answers every write — creating a
// file, appending, flushing, syncing — as a full disk does (ENOSPC). Reads
// are untouched. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>

namespace cascade::adapters {

class WriteFaults {
 public:
  void fail_writes(bool on) { failing_.store(on); }
  bool failing() const { return failing_.load(); }
  // Writes refused since the store was opened.
  std::uint64_t refused() const { return refused_.load(); }
  void count_refusal() { refused_.fetch_add(1); }

 private:
  std::atomic<bool> failing_{false};
  std::atomic<std::uint64_t> refused_{0};
};

}  // namespace cascade::adapters
