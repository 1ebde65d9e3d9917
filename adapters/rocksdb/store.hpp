// The embedded store: one RocksDB database holding the event log, the reactors'
// checkpoints and the steps' logs, each in its own column family. The storage
// layout is described at the top of adapters/rocksdb/event_log.cpp.
#pragma once

#include "engine/ports.hpp"
#include "events/event_log.hpp"
#include "events/result.hpp"

#include <cstdint>
#include <memory>
#include <string>

namespace cascade::adapters {

// Owns the database; the stores it hands out live as long as it does.
// Thread-safe: the stores may be used from any number of threads at once.
class RocksStore {
 public:
  // Opens (creating `dir` and the database when missing) the store under `dir`.
  // kUnavailable, with RocksDB's message, when the database cannot be opened,
  // e.g. because another process (or another RocksStore) holds its lock.
  // kDataLoss when the stored log cannot be read back.
  static Result<std::unique_ptr<RocksStore>> open(const std::string& dir);

  // Closes the database. REQUIRES: no call into its stores is in progress.
  ~RocksStore();
  RocksStore(const RocksStore&) = delete;
  RocksStore& operator=(const RocksStore&) = delete;

  events::EventLog& log();
  engine::CheckpointStore& checkpoints();
  engine::StepLogStore& step_logs();

  // Test hooks for audit and tamper tests, never for production code: overwrite
  // the stored bytes of the event at global `position` with `bytes`, or delete
  // them, behind the log's back (its indexes and caches are left as they are).
  // kNotFound when no event is stored at `position`.
  Status corrupt_event_for_test(std::uint64_t position, std::string bytes);
  Status delete_event_for_test(std::uint64_t position);

 private:
  class Impl;
  explicit RocksStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cascade::adapters
