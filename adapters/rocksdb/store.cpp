#include "adapters/rocksdb/store.hpp"
#include "adapters/rocksdb/store_options.hpp"

#include "adapters/rocksdb/rocks_internal.hpp"
#include "adapters/rocksdb/rocksdb_env.hpp"
#include "events/write_groups.hpp"

#include <rocksdb/filter_policy.h>
#include <rocksdb/statistics.h>
#include <rocksdb/table.h>

#include <algorithm>
#include <filesystem>
#include <system_error>

namespace cascade::adapters {

class RocksStore::Impl {
 public:
  ~Impl() {
    // Handles first: RocksDB requires them gone before the database closes.
    log_.reset();
    for (rocksdb::ColumnFamilyHandle* handle : handles_) db_->DestroyColumnFamilyHandle(handle);
    if (db_ != nullptr) db_->Close().PermitUncheckedError();
  }

  std::unique_ptr<rocksdb::Env> env_;  // declared first: the database uses it until it is closed
  std::unique_ptr<rocksdb::DB> db_;
  std::shared_ptr<rocksdb::Statistics> statistics_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* events_ = nullptr;
  std::unique_ptr<rocks::RocksEventLog> log_;
  std::unique_ptr<rocks::RocksCheckpointStore> checkpoints_;
  std::unique_ptr<rocks::RocksStepLogStore> step_logs_;
  std::unique_ptr<rocks::RocksSecretStore> secrets_;
};

rocksdb::Options store_db_options() {
  rocksdb::Options options;
  options.env = rocksdb_env();  // its LOG written best effort: see rocksdb_env.hpp
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  // The one non-default setting of the write path, for throughput only (the
  // WAL and its syncs are untouched): an append is a WriteBatch of three small
  // puts, and with concurrent memtable writes every writer of a group commit
  // inserts its own and then spin-waits for the others. On the two-core
  // machines Cascade targets, the group's leader inserting the whole group was
  // measured ~30% faster at 64 writers and ~10% at 8.
  options.allow_concurrent_memtable_write = false;
  // Writers of a group commit wait for the leader by blocking, not by spinning
  // with sched_yield for up to 100 µs first: with dozens of writers on two
  // cores the spinning took the CPU the leader needed (Fig1, 64 writers,
  // twice each: 48.1k/48.9k → 51.3k/51.5k appends/s; the raw baseline, opened
  // with these options too, moved within noise).
  options.enable_write_thread_adaptive_yield = false;
  // Tickers only (atomic counters): RocksStore::statistics() reports fsyncs
  // and write groups; histograms and timers would cost on every write.
  options.statistics = rocksdb::CreateDBStatistics();
  options.statistics->set_stats_level(rocksdb::StatsLevel::kExceptHistogramOrTimers);
  // Recovery of the write-ahead log at open (RocksDB's default is
  // kPointInTimeRecovery). Every append is synced before it is acknowledged,
  // so only the record being written when the process or the machine died —
  // never acknowledged — can be incomplete: this mode drops such a torn
  // record at the end of a log and refuses to open on any other damage (a
  // checksum mismatch earlier in the log). Point-in-time recovery would stop
  // replaying at that damage and open without every acknowledged event after
  // it; kAbsoluteConsistency would refuse even the torn tail that kill -9 can
  // leave. See README.md, "Recovery of the write-ahead log".
  options.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  events::without_cross_thread_write_groups_under_tsan(options);
  return options;
}

rocksdb::ColumnFamilyOptions store_family_options(const std::string& family) {
  rocksdb::ColumnFamilyOptions options;
  if (family == rocks::kStreamsFamily || family == rocks::kEventIdsFamily) {
    // The two indexes of an append take random keys (stream names, event
    // ids), and the write group's leader inserts every key of the group into
    // the memtables one after the other: in a 64 MiB skiplist each insert is a
    // walk of cache misses. 4 MiB memtables (flushed more often, compacted in
    // the background) kept sustained appends ~8% higher (10 s at 64 writers:
    // 40.5–42.9k → 45.2–46.4k/s; 1, 2, 4 and 8 MiB measured, 2–4 best).
    options.write_buffer_size = 4 << 20;
  }
  if (family == rocks::kEventIdsFamily) {
    // Most event-id lookups (one per appended event) are for ids not stored
    // yet: bloom filters, on the memtable and on the tables, answer those
    // without searching the skiplist or reading table blocks.
    options.memtable_prefix_bloom_size_ratio = 0.05;
    options.memtable_whole_key_filtering = true;
    rocksdb::BlockBasedTableOptions ids_table;
    ids_table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(ids_table));
  }
  return options;
}

namespace {

// Why DB::Open failed, as the caller must act on it. Damaged files — a
// garbled CURRENT, a truncated MANIFEST or table, a WAL record that fails its
// checksum, or a file the MANIFEST names that is gone — are kStoreCorrupt:
// retrying cannot help. Anything else (the lock held by another process, no
// permission, a full disk) is kUnavailable.
Error open_error(const std::string& dir, const rocksdb::Status& status) {
  const bool existed = std::filesystem::exists(std::filesystem::path(dir) / "CURRENT");
  const bool corrupt = status.IsCorruption() || (existed && status.IsPathNotFound());
  if (corrupt) {
    return make_error(ErrorCode::kStoreCorrupt, "the store in " + dir + " is corrupt: " + status.ToString());
  }
  return make_error(ErrorCode::kUnavailable, "cannot open the store in " + dir + ": " + status.ToString());
}

}  // namespace

Result<std::unique_ptr<RocksStore>> RocksStore::open(const std::string& dir, StoreOptions store_options) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return make_error(ErrorCode::kUnavailable, "cannot create " + dir + ": " + ec.message());

  auto impl = std::make_unique<Impl>();
  rocksdb::Options options = store_db_options();
  if (store_options.write_faults) {
    impl->env_ = rocks::faulty_env(store_options.write_faults);
    options.env = impl->env_.get();
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const char* name : {rocksdb::kDefaultColumnFamilyName.c_str(), rocks::kEventsFamily, rocks::kStreamsFamily,
                           rocks::kEventIdsFamily, rocks::kCheckpointsFamily, rocks::kStepLogsFamily,
                           rocks::kSecretsFamily}) {
    families.emplace_back(name, store_family_options(name));
  }
  // RocksDB opens a database only with all of its column families named, so
  // families added by others (a projection sharing the database) come along.
  std::vector<std::string> existing;
  if (rocksdb::DB::ListColumnFamilies(options, dir, &existing).ok()) {
    for (const std::string& name : existing) {
      const bool known = std::any_of(families.begin(), families.end(),
                                     [&](const rocksdb::ColumnFamilyDescriptor& d) { return d.name == name; });
      if (!known) families.emplace_back(name, store_family_options(name));
    }
  }

  rocksdb::DB* db = nullptr;
  const rocksdb::Status s = rocksdb::DB::Open(options, dir, families, &impl->handles_, &db);
  if (!s.ok()) return open_error(dir, s);
  impl->db_.reset(db);
  impl->statistics_ = options.statistics;
  // Handles come back in the order of `families`.
  impl->events_ = impl->handles_[1];
  CASCADE_TRY(log, rocks::RocksEventLog::open(db, impl->handles_[1], impl->handles_[2], impl->handles_[3]));
  impl->log_ = std::move(log);
  impl->checkpoints_ = std::make_unique<rocks::RocksCheckpointStore>(db, impl->handles_[4]);
  impl->step_logs_ = std::make_unique<rocks::RocksStepLogStore>(db, impl->handles_[5]);
  // After the database is open: its lock keeps a second process from creating
  // a different key file at the same moment.
  CASCADE_TRY(secrets, rocks::RocksSecretStore::open(db, impl->handles_[6], std::filesystem::path(dir) / "secret.key"));
  impl->secrets_ = std::move(secrets);
  return std::unique_ptr<RocksStore>(new RocksStore(std::move(impl)));
}

RocksStore::RocksStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RocksStore::~RocksStore() = default;

events::EventLog& RocksStore::log() { return *impl_->log_; }
engine::CheckpointStore& RocksStore::checkpoints() { return *impl_->checkpoints_; }
engine::StepLogStore& RocksStore::step_logs() { return *impl_->step_logs_; }
engine::SecretStore& RocksStore::secrets() { return *impl_->secrets_; }

Result<IndexCheck> RocksStore::check_indexes() {
  return rocks::check_log_indexes(impl_->db_.get(), impl_->handles_[1], impl_->handles_[2], impl_->handles_[3]);
}

StoreStatistics RocksStore::statistics() const {
  StoreStatistics out;
  const rocksdb::Statistics& s = *impl_->statistics_;
  out.wal_syncs = s.getTickerCount(rocksdb::WAL_FILE_SYNCED);
  out.write_groups = s.getTickerCount(rocksdb::WRITE_DONE_BY_SELF);
  out.writes_joined = s.getTickerCount(rocksdb::WRITE_DONE_BY_OTHER);
  out.wal_bytes = s.getTickerCount(rocksdb::WAL_FILE_BYTES);
  out.events_appended = impl_->log_->events_appended();
  out.streams_known = impl_->log_->streams_known();
  return out;
}

namespace {

Status require_event(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* events, const std::string& key,
                     std::uint64_t position) {
  std::string value;
  const rocksdb::Status s = db->Get(rocksdb::ReadOptions(), events, key, &value);
  if (s.IsNotFound()) {
    return make_error(ErrorCode::kNotFound, "no event at log position " + std::to_string(position));
  }
  if (!s.ok()) return rocks::from_rocks(s, "reading position " + std::to_string(position));
  return success();
}

}  // namespace

Status RocksStore::corrupt_event_for_test(std::uint64_t position, std::string bytes) {
  const std::string key = rocks::encode_u64(position);
  CASCADE_TRY(require_event(impl_->db_.get(), impl_->events_, key, position));
  rocksdb::WriteOptions options;
  options.sync = true;
  const rocksdb::Status s = impl_->db_->Put(options, impl_->events_, key, bytes);
  if (!s.ok()) return rocks::from_rocks(s, "overwriting position " + std::to_string(position));
  return success();
}

Status RocksStore::delete_event_for_test(std::uint64_t position) {
  const std::string key = rocks::encode_u64(position);
  CASCADE_TRY(require_event(impl_->db_.get(), impl_->events_, key, position));
  rocksdb::WriteOptions options;
  options.sync = true;
  const rocksdb::Status s = impl_->db_->Delete(options, impl_->events_, key);
  if (!s.ok()) return rocks::from_rocks(s, "deleting position " + std::to_string(position));
  return success();
}

Status RocksStore::corrupt_secret_for_test(const std::string& digest) {
  return impl_->secrets_->corrupt_for_test(digest);
}

Status RocksStore::rewrite_step_log_line_for_test(const engine::StepLogKey& key, std::uint64_t index,
                                                  const engine::LogLine& line) {
  return impl_->step_logs_->rewrite_line_for_test(key, index, line);
}

Status RocksStore::flush_for_test() {
  const rocksdb::Status s = impl_->db_->Flush(rocksdb::FlushOptions(), impl_->handles_);
  if (!s.ok()) return rocks::from_rocks(s, "flushing the memtables");
  return success();
}

}  // namespace cascade::adapters
