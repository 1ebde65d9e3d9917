// The embedded store: one RocksDB database holding the event log, the reactors'
// checkpoints, the steps' logs and the secrets, each in its own column family.
// The storage layout is described at the top of adapters/rocksdb/event_log.cpp.
#pragma once

#include "adapters/rocksdb/write_faults.hpp"
#include "engine/ports.hpp"
#include "events/event_log.hpp"
#include "events/result.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace cascade::adapters {

// What the database has done since the store was opened, from RocksDB's
// tickers: how well concurrent appends share fsyncs (events_appended /
// wal_syncs is the events per fsync).
struct StoreStatistics {
  std::uint64_t wal_syncs = 0;        // fsyncs of the write-ahead log
  std::uint64_t write_groups = 0;     // synced or not, each group commit has one leader: writes done by self
  std::uint64_t writes_joined = 0;    // writes carried out by another writer's group (done by other)
  std::uint64_t wal_bytes = 0;        // bytes written to the write-ahead log
  std::uint64_t events_appended = 0;  // events written by the log's appends
  std::uint64_t streams_known = 0;    // streams the log keeps a version and hash of (those that exist)
};

// How a store is opened; the defaults are production's.
struct StoreOptions {
  // For fault tests: the database writes its files through this, which can
  // make every write fail as a full disk does. Null: the real filesystem only.
  std::shared_ptr<WriteFaults> write_faults;
};

// One disagreement between the log's indexes and its events.
struct IndexProblem {
  std::string stream;         // the stream concerned; empty when not known
  std::int64_t version = 0;   // its version, when known
  std::uint64_t position = 0; // the log position concerned, when known
  std::string message;        // one sentence naming all of it
};

// What check_indexes() looked at and found.
struct IndexCheck {
  std::vector<std::string> streams;  // every stream the `streams` index names, in key order
  std::uint64_t events = 0;          // events stored
  std::uint64_t index_entries = 0;   // entries of the `streams` and `event_ids` indexes
  std::vector<IndexProblem> problems;
};

// Owns the database; the stores it hands out live as long as it does.
// Thread-safe: the stores may be used from any number of threads at once.
class RocksStore {
 public:
  // Opens (creating `dir` and the database when missing) the store under `dir`.
  // kUnavailable, with RocksDB's message, when the database cannot be opened,
  // e.g. because another process (or another RocksStore) holds its lock.
  // kStoreCorrupt, with RocksDB's message (which names the damaged file where
  // it knows it), when the database's files are damaged: a garbled CURRENT, a
  // truncated MANIFEST or table file, a write-ahead log record that fails its
  // checksum before the log's end, a file the MANIFEST names that is missing.
  // kDataLoss when the stored log cannot be read back.
  //
  // The secrets' key lives outside the database, in `<dir>/secret.key` (32
  // random bytes, mode 0600, created on first open). Back it up together with
  // the data: without it the stored secrets can never be decrypted again.
  // kDataLoss, naming the file, when it is not exactly 32 bytes, or is missing
  // while secrets are stored; kUnavailable when it cannot be read or created.
  static Result<std::unique_ptr<RocksStore>> open(const std::string& dir, StoreOptions options = {});

  // Closes the database. REQUIRES: no call into its stores is in progress.
  ~RocksStore();
  RocksStore(const RocksStore&) = delete;
  RocksStore& operator=(const RocksStore&) = delete;

  events::EventLog& log();
  engine::CheckpointStore& checkpoints();
  engine::StepLogStore& step_logs();
  // Values encrypted with AES-256-GCM under a key derived from secret.key;
  // see adapters/rocksdb/secrets.cpp. put() is synced. get() is also
  // kInvalidArgument for a malformed digest and kDataLoss for an entry that
  // fails authentication. No error message ever holds a secret value.
  engine::SecretStore& secrets();

  // Checks the log's indexes against its events, as of one snapshot: every
  // `streams` entry (stream, version → position) and every `event_ids` entry
  // must point at a stored event of that stream and version (of that id), and
  // every stored event must be in both. Bytes that do not decode as an event
  // are left to the verification of the stream that indexes them; only when
  // no stream does are they a problem here. Reads every event: for `cascade
  // doctor`, offline. Errors are RocksDB's (kUnavailable, kDataLoss).
  Result<IndexCheck> check_indexes();

  // Counters since open; every store write counts (checkpoints, step logs,
  // secrets too), not only appends. Thread-safe, cheap (atomic loads).
  StoreStatistics statistics() const;

  // Test hooks for audit and tamper tests, never for production code: overwrite
  // the stored bytes of the event at global `position` with `bytes`, or delete
  // them, behind the log's back (its indexes and caches are left as they are).
  // kNotFound when no event is stored at `position`.
  Status corrupt_event_for_test(std::uint64_t position, std::string bytes);
  Status delete_event_for_test(std::uint64_t position);
  // Flips one bit of the stored ciphertext of the secret under `digest`.
  // kNotFound when no secret is stored under it.
  Status corrupt_secret_for_test(const std::string& digest);
  // Overwrites line `index` (0 is the first) of a step's log with `line`,
  // behind the digest's back. kNotFound when the step has no such line.
  Status rewrite_step_log_line_for_test(const engine::StepLogKey& key, std::uint64_t index,
                                        const engine::LogLine& line);
  // Flushes every column family's memtable to table files, so that a test can
  // inspect what reaches them.
  Status flush_for_test();

 private:
  class Impl;
  explicit RocksStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cascade::adapters
