// The projection database: one RocksDB under <data>/projections shared by
// every read model. Each read model owns its column families and its
// checkpoint ("checkpoint/<name>" in the "meta" family). Private to
// projections/: the read models' headers show queries, not RocksDB.
#pragma once

#include "events/result.hpp"

#include <rocksdb/db.h>
#include <rocksdb/utilities/write_batch_with_index.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cascade::projections {

using Family = rocksdb::ColumnFamilyHandle*;

// Keys sort bytewise, so numbers are stored big-endian to sort by value.
std::string big_endian(std::uint64_t value);
// REQUIRES: bytes.size() == 8.
std::uint64_t from_big_endian(std::string_view bytes);
bool starts_with(std::string_view text, std::string_view prefix);
Error storage_error(const rocksdb::Status& status, const std::string& what);

// Paging cursors are opaque to callers: "c" and the 16 hex digits of a log
// position. kInvalidArgument for anything else.
std::string encode_cursor(std::uint64_t position);
Result<std::uint64_t> decode_cursor(std::string_view cursor);

// A consistent read view: every read through it sees the database as of the
// moment it was taken, so one answer never mixes two states of the data.
// Not thread-safe; cheap to take.
class Snapshot {
 public:
  explicit Snapshot(rocksdb::DB& db);
  ~Snapshot();
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;

  // nullopt when the key is absent.
  Result<std::optional<std::string>> get(Family family, std::string_view key) const;
  // An iterator over `family` as of the snapshot; check status() after use.
  std::unique_ptr<rocksdb::Iterator> iterate(Family family) const;

 private:
  rocksdb::DB& db_;
  const rocksdb::Snapshot* snapshot_;
  rocksdb::ReadOptions options_;
};

// Thread-safe (RocksDB is).
class ProjectionStore {
 public:
  static constexpr const char* kMetaFamily = "meta";
  // The block cache all families share (uncompressed blocks; resident only
  // as far as reads have filled it).
  static constexpr std::size_t kBlockCacheBytes = 64u << 20;

  // Opens (creating if needed) the database in `dir` with the meta family,
  // `families`, and every family already in it (those of read models this
  // build does not open are left as they are). kStoreCorrupt when the
  // database's files are damaged; kUnavailable for other failures. `env`:
  // the RocksDB Env to open it with (nullptr: RocksDB's default); serve's
  // is adapters/rocksdb/rocksdb_env.hpp's.
  static Result<std::shared_ptr<ProjectionStore>> open(const std::string& dir,
                                                       const std::vector<std::string>& families,
                                                       rocksdb::Env* env = nullptr);
  ~ProjectionStore();
  ProjectionStore(const ProjectionStore&) = delete;
  ProjectionStore& operator=(const ProjectionStore&) = delete;

  rocksdb::DB& db() const { return *db_; }
  // REQUIRES: the store was opened with `name` (or it is kMetaFamily).
  Family family(const std::string& name) const;
  Family meta() const { return family(kMetaFamily); }

  static std::string checkpoint_key(const std::string& projection) { return "checkpoint/" + projection; }
  // The log position `projection`'s data reflects; 0 when it has none.
  Result<std::uint64_t> checkpoint(const std::string& projection) const;
  // Deletes everything in `families` and `projection`'s checkpoint in one
  // atomic write; with a `format` (> 0), records it in the same write.
  // REQUIRES: nothing else writes those families meanwhile.
  Status clear(const std::string& projection, const std::vector<std::string>& families, int format = 0);
  static std::string format_key(const std::string& projection) { return "format/" + projection; }
  // The document format `projection`'s stored data was written in ("format/<name>"
  // in meta); 1, the first, when none was recorded.
  Result<int> stored_format(const std::string& projection) const;

  Snapshot snapshot() const { return Snapshot(*db_); }
  // One value as of now (nullopt when absent), for a read of one key that
  // needs no snapshot.
  Result<std::optional<std::string>> get(Family family, std::string_view key) const;

 private:
  ProjectionStore() = default;
  std::unique_ptr<rocksdb::DB> db_;
  std::map<std::string, Family> families_;
};

// The writes of one handled batch. get() reads this batch's own writes
// first, then the database, so a read model can update what an earlier event
// of the same batch wrote. Projection commits it with the checkpoint.
class ProjectionWrite {
 public:
  explicit ProjectionWrite(ProjectionStore& store);

  void put(Family family, std::string_view key, std::string_view value);
  void remove(Family family, std::string_view key);
  Result<std::optional<std::string>> get(Family family, std::string_view key);
  // Atomically applies every write.
  Status commit();

 private:
  ProjectionStore& store_;
  rocksdb::WriteBatchWithIndex batch_;
};

}  // namespace cascade::projections
