#include "projections/projection_store.hpp"

#include "events/write_groups.hpp"

#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <filesystem>
#include <set>

namespace cascade::projections {

std::string big_endian(std::uint64_t value) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, value >>= 8) out[static_cast<std::size_t>(i)] = static_cast<char>(value & 0xff);
  return out;
}

std::uint64_t from_big_endian(std::string_view bytes) {
  std::uint64_t value = 0;
  for (char c : bytes) value = (value << 8) | static_cast<unsigned char>(c);
  return value;
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && text.compare(0, prefix.size(), prefix) == 0;
}

Error storage_error(const rocksdb::Status& status, const std::string& what) {
  return make_error(ErrorCode::kUnavailable, "projection store: " + what + ": " + status.ToString());
}

std::string encode_cursor(std::uint64_t position) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "c";
  for (int shift = 60; shift >= 0; shift -= 4) out.push_back(kHex[(position >> shift) & 0xf]);
  return out;
}

Result<std::uint64_t> decode_cursor(std::string_view cursor) {
  auto invalid = [&] { return make_error(ErrorCode::kInvalidArgument, "invalid cursor '" + std::string(cursor) + "'"); };
  if (cursor.size() != 17 || cursor[0] != 'c') return invalid();
  std::uint64_t position = 0;
  for (char c : cursor.substr(1)) {
    int digit = 0;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else {
      return invalid();
    }
    position = (position << 4) | static_cast<std::uint64_t>(digit);
  }
  return position;
}

// ---- Snapshot ---------------------------------------------------------------

Result<std::optional<std::string>> ProjectionStore::get(Family family, std::string_view key) const {
  // One Get is consistent by itself: no snapshot, whose creation and release
  // take the database's mutex on every request.
  std::string value;
  rocksdb::Status status = db_->Get(rocksdb::ReadOptions(), family, rocksdb::Slice(key.data(), key.size()), &value);
  if (status.IsNotFound()) return std::optional<std::string>();
  if (!status.ok()) return storage_error(status, "read");
  return std::optional<std::string>(std::move(value));
}

Snapshot::Snapshot(rocksdb::DB& db) : db_(db), snapshot_(db.GetSnapshot()) { options_.snapshot = snapshot_; }

Snapshot::~Snapshot() { db_.ReleaseSnapshot(snapshot_); }

Result<std::optional<std::string>> Snapshot::get(Family family, std::string_view key) const {
  std::string value;
  rocksdb::Status status = db_.Get(options_, family, rocksdb::Slice(key.data(), key.size()), &value);
  if (status.IsNotFound()) return std::optional<std::string>();
  if (!status.ok()) return storage_error(status, "read");
  return std::optional<std::string>(std::move(value));
}

std::unique_ptr<rocksdb::Iterator> Snapshot::iterate(Family family) const {
  return std::unique_ptr<rocksdb::Iterator>(db_.NewIterator(options_, family));
}

// ---- ProjectionStore ----------------------------------------------------------

Result<std::shared_ptr<ProjectionStore>> ProjectionStore::open(const std::string& dir,
                                                               const std::vector<std::string>& families,
                                                               rocksdb::Env* env) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return make_error(ErrorCode::kUnavailable, "projection store: cannot create " + dir + ": " + ec.message());
  // RocksDB refuses to open a database without naming every family in it.
  std::set<std::string> names(families.begin(), families.end());
  names.insert(rocksdb::kDefaultColumnFamilyName);
  names.insert(kMetaFamily);
  std::vector<std::string> existing;
  if (rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &existing).ok()) {
    names.insert(existing.begin(), existing.end());
  }
  // Read models are read far more than written, by point lookups (a
  // summary, an environment) and short scans: every family shares one block
  // cache big enough for a dashboard's working set — RocksDB's default is
  // 8 MiB per family, and figure 4b (2,000 random summaries of 1.5 KB) spent
  // its time re-reading and decompressing blocks — and has bloom filters, so
  // a lookup skips the tables that do not hold its key.
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(kBlockCacheBytes);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  rocksdb::ColumnFamilyOptions family_options;
  family_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const std::string& name : names) descriptors.emplace_back(name, family_options);
  rocksdb::DBOptions options;
  if (env != nullptr) options.env = env;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  events::without_cross_thread_write_groups_under_tsan(options);
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  rocksdb::Status status = rocksdb::DB::Open(options, dir, descriptors, &handles, &db);
  if (status.IsCorruption()) {
    // Damaged files are not transient: the caller must not retry in a loop.
    return make_error(ErrorCode::kStoreCorrupt, "projection store: " + dir + " is corrupt: " + status.ToString());
  }
  if (!status.ok()) return storage_error(status, "open " + dir);
  std::shared_ptr<ProjectionStore> store(new ProjectionStore());
  store->db_.reset(db);
  for (auto* handle : handles) store->families_[handle->GetName()] = handle;
  return store;
}

ProjectionStore::~ProjectionStore() {
  for (auto& [name, handle] : families_) db_->DestroyColumnFamilyHandle(handle);
}

Family ProjectionStore::family(const std::string& name) const {
  auto found = families_.find(name);
  return found == families_.end() ? nullptr : found->second;
}

Result<std::uint64_t> ProjectionStore::checkpoint(const std::string& projection) const {
  std::string value;
  rocksdb::Status status = db_->Get({}, meta(), checkpoint_key(projection), &value);
  if (status.IsNotFound()) return std::uint64_t{0};
  if (!status.ok()) return storage_error(status, "read checkpoint of " + projection);
  if (value.size() != 8) return make_error(ErrorCode::kDataLoss, "projection store: bad checkpoint of " + projection);
  return from_big_endian(value);
}

Result<int> ProjectionStore::stored_format(const std::string& projection) const {
  std::string value;
  rocksdb::Status status = db_->Get({}, meta(), format_key(projection), &value);
  if (status.IsNotFound()) return 1;
  if (!status.ok()) return storage_error(status, "read the format of " + projection);
  try {
    return std::stoi(value);
  } catch (const std::exception&) {
    return make_error(ErrorCode::kDataLoss, "projection store: bad format '" + value + "' of " + projection);
  }
}

Status ProjectionStore::clear(const std::string& projection, const std::vector<std::string>& families, int format) {
  rocksdb::WriteBatch write;
  for (const std::string& name : families) {
    Family handle = family(name);
    // One range tombstone per family instead of one delete per key: a
    // rebuild of a large read model starts at once.
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator({}, handle));
    it->SeekToFirst();
    if (!it->Valid()) {
      if (!it->status().ok()) return storage_error(it->status(), "clear " + name);
      continue;
    }
    const std::string first = it->key().ToString();
    it->SeekToLast();
    if (!it->status().ok()) return storage_error(it->status(), "clear " + name);
    const std::string last = it->key().ToString();
    write.DeleteRange(handle, first, last);
    write.Delete(handle, last);
  }
  write.Delete(meta(), checkpoint_key(projection));
  if (format > 0) write.Put(meta(), format_key(projection), std::to_string(format));
  rocksdb::Status status = db_->Write({}, &write);
  if (!status.ok()) return storage_error(status, "clear " + projection);
  return success();
}

// ---- ProjectionWrite ----------------------------------------------------------

ProjectionWrite::ProjectionWrite(ProjectionStore& store)
    : store_(store), batch_(rocksdb::BytewiseComparator(), 0, /*overwrite_key=*/true) {}

void ProjectionWrite::put(Family family, std::string_view key, std::string_view value) {
  batch_.Put(family, rocksdb::Slice(key.data(), key.size()), rocksdb::Slice(value.data(), value.size()));
}

void ProjectionWrite::remove(Family family, std::string_view key) {
  batch_.Delete(family, rocksdb::Slice(key.data(), key.size()));
}

Result<std::optional<std::string>> ProjectionWrite::get(Family family, std::string_view key) {
  std::string value;
  rocksdb::Status status = batch_.GetFromBatchAndDB(&store_.db(), rocksdb::ReadOptions(), family,
                                                    rocksdb::Slice(key.data(), key.size()), &value);
  if (status.IsNotFound()) return std::optional<std::string>();
  if (!status.ok()) return storage_error(status, "read");
  return std::optional<std::string>(std::move(value));
}

Status ProjectionWrite::commit() {
  rocksdb::Status status = store_.db().Write(rocksdb::WriteOptions(), batch_.GetWriteBatch());
  if (!status.ok()) return storage_error(status, "write");
  return success();
}

}  // namespace cascade::projections
