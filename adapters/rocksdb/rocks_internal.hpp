// Private to adapters/rocksdb: the implementations behind RocksStore and the
// key encodings they share. The layout is described in event_log.cpp.
#pragma once

#include "adapters/rocksdb/store.hpp"
#include "adapters/rocksdb/write_faults.hpp"
#include "engine/ports.hpp"
#include "events/event_log.hpp"
#include "events/result.hpp"

#include <rocksdb/db.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace cascade::adapters::rocks {

inline constexpr char kEventsFamily[] = "events";
inline constexpr char kStreamsFamily[] = "streams";
inline constexpr char kEventIdsFamily[] = "event_ids";
inline constexpr char kCheckpointsFamily[] = "checkpoints";
inline constexpr char kStepLogsFamily[] = "step_logs";
inline constexpr char kSecretsFamily[] = "secrets";

// Big-endian, so that the bytewise key order is the numeric order.
std::string encode_u64(std::uint64_t value);
std::string encode_u32(std::uint32_t value);
// REQUIRES: bytes.size() == 8.
std::uint64_t decode_u64(std::string_view bytes);
// The `streams` index's key of a stream's version: stream '\0' BE64(version).
std::string stream_key(const std::string& stream, std::int64_t version);

// RocksStore::check_indexes() over the three column families of the log.
Result<IndexCheck> check_log_indexes(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* events,
                                     rocksdb::ColumnFamilyHandle* streams, rocksdb::ColumnFamilyHandle* event_ids);

// A failed RocksDB call as a Result error: kDataLoss for corruption, otherwise
// kUnavailable (the disk or the database is not usable right now).
Error from_rocks(const rocksdb::Status& status, std::string_view doing);

// RocksDB's default Env with its files written through WriteFaults
// (write_faults.cpp).
std::unique_ptr<rocksdb::Env> faulty_env(std::shared_ptr<WriteFaults> faults);

// The event log. The column family handles are owned by the caller and must
// outlive it. Thread-safe.
class RocksEventLog final : public events::EventLog {
 public:
  // Reads where the log ends. kUnavailable when RocksDB cannot be read.
  static Result<std::unique_ptr<RocksEventLog>> open(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* events,
                                                     rocksdb::ColumnFamilyHandle* streams,
                                                     rocksdb::ColumnFamilyHandle* event_ids);

  Result<events::AppendResult> append(const std::string& stream, std::int64_t expected_version,
                                      std::vector<events::NewEvent> events) override;
  Result<std::vector<events::RecordedEvent>> read(const std::string& stream, std::int64_t from_version,
                                                  std::size_t limit) override;
  Result<std::vector<events::RecordedEvent>> read_all(std::uint64_t from_position, std::size_t limit) override;
  Result<events::ReadablePage> read_all_readable(std::uint64_t from_position, std::size_t limit) override;
  // One forward walk, decoding every event into the same RecordedEvent.
  Status read_each(const std::string& stream, std::int64_t from_version,
                   const std::function<Status(const events::RecordedEvent&)>& visit) override;
  // The same walk, each event decoded and verified from its stored bytes in
  // one step (events::decode_verified).
  Status read_each_verified(const std::string& stream, std::int64_t from_version, std::string expected_prev_hash,
                            const std::function<Status(const events::RecordedEvent&)>& visit) override;
  Result<std::int64_t> stream_version(const std::string& stream) override;
  std::uint64_t head() const override;
  Status writable() const override;
  std::uint64_t wait_for_events(std::uint64_t after, std::chrono::milliseconds timeout) override;

  // Events written by appends since open (duplicates not counted).
  std::uint64_t events_appended() const { return events_appended_.load(std::memory_order_relaxed); }
  std::uint64_t streams_known() const {
    std::lock_guard<std::mutex> guard(mu_);
    return stream_states_.size();
  }

 private:
  // What the log knows of one stream, kept for every stream it has touched.
  struct StreamState {
    std::int64_t version = 0;  // last visible version; 0: no events
    std::string last_hash;     // hash of the event at `version`
    bool busy = false;         // an append to the stream is between its checks and its write's return
  };

  std::string stream_of_unreadable(std::uint64_t position, std::string_view bytes);
  RocksEventLog(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* events, rocksdb::ColumnFamilyHandle* streams,
                rocksdb::ColumnFamilyHandle* event_ids, std::uint64_t last_position);

  // read_each's walk with `decode(bytes, position, event)` filling the reused event.
  template <class Decode>
  Status walk_stream(const std::string& stream, std::int64_t from_version, Decode&& decode,
                     const std::function<Status(const events::RecordedEvent&)>& visit);

  // The stream's last version and hash as stored. Called without mu_.
  Result<StreamState> load_stream(const std::string& stream);
  // Where each id is stored, or 0 when it is not. Called without mu_.
  Result<std::vector<std::uint64_t>> stored_positions(const std::vector<std::string>& ids);
  Result<std::vector<events::RecordedEvent>> fetch(const std::vector<std::uint64_t>& positions);
  // The same, for ascending positions (a stream's), with one forward iterator.
  Result<std::vector<events::RecordedEvent>> fetch_ascending(const std::vector<std::uint64_t>& positions);
  // Hands the stored bytes at each of the ascending `positions` to `visit`.
  // kDataLoss when one is missing.
  Status for_each_stored(const std::vector<std::uint64_t>& positions,
                         const std::function<Status(std::string_view, std::uint64_t)>& visit);
  struct StreamIndex {
    std::vector<std::int64_t> versions;
    std::vector<std::uint64_t> positions;
  };
  // The stream's index entries from `from_version`, at most `limit`, once
  // head() covers them (see read()).
  Result<StreamIndex> stream_index(const std::string& stream, std::int64_t from_version, std::size_t limit);
  static Error misplaced(const std::string& stream, std::int64_t version, std::uint64_t position,
                         const events::RecordedEvent& found);
  // Waits, taking mu_, until head_ >= position or the log has failed; returns
  // the lower of head_ and position.
  std::uint64_t wait_visible(std::uint64_t position);

  // The helpers below REQUIRE mu_ held.
  void advance_head();
  void fail(const std::string& why);
  void release(StreamState& state, const std::vector<std::string>& ids);
  Error failed_error() const;

  rocksdb::DB* db_;
  rocksdb::ColumnFamilyHandle* events_;
  rocksdb::ColumnFamilyHandle* streams_;
  rocksdb::ColumnFamilyHandle* event_ids_;

  mutable std::mutex mu_;
  // Notified whenever head_ moves, a stream stops being busy, claimed ids are
  // released or the log fails: what wait_for_events and waiting appenders watch.
  std::condition_variable changed_;
  std::unordered_map<std::string, StreamState> stream_states_;
  // Ids of batches being appended: a second batch with one of them waits for
  // the first to finish, then finds the id stored.
  std::unordered_set<std::string> claimed_ids_;
  // First positions of the batches handed to RocksDB whose write has not returned.
  std::set<std::uint64_t> in_flight_;
  std::uint64_t next_position_;
  std::atomic<std::uint64_t> head_;
  std::atomic<std::uint64_t> events_appended_{0};
  bool failed_ = false;
  std::string failure_;
};

// Reactor checkpoints. Thread-safe.
class RocksCheckpointStore final : public engine::CheckpointStore {
 public:
  RocksCheckpointStore(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* family) : db_(db), family_(family) {}
  Result<std::uint64_t> load(const std::string& reactor) override;
  Status save(const std::string& reactor, std::uint64_t position) override;
  Status save(const std::string& reactor, std::uint64_t position, const engine::OpenReleaseChanges& changes) override;
  Result<engine::OpenReleases> load_open(const std::string& reactor) override;

 private:
  rocksdb::DB* db_;
  rocksdb::ColumnFamilyHandle* family_;
};

// Step logs. Thread-safe.
class RocksStepLogStore final : public engine::StepLogStore {
 public:
  RocksStepLogStore(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* family) : db_(db), family_(family) {}
  Status append_line(const engine::StepLogKey& key, const engine::LogLine& line) override;
  Status flush() override;
  Result<std::vector<engine::LogLine>> read(const engine::StepLogKey& key) override;
  Result<std::vector<engine::LogLine>> read_page(const engine::StepLogKey& key, std::uint64_t first_line,
                                                 std::size_t max_lines) override;
  // One iterator over the step's lines, so that it sees exactly what read()
  // sees, holding one line at a time.
  Status read_each(const engine::StepLogKey& key,
                   const std::function<Status(const engine::LogLine&)>& visit) override;
  // Overwrites the stored line `index` of a step (see
  // RocksStore::rewrite_step_log_line_for_test).
  Status rewrite_line_for_test(const engine::StepLogKey& key, std::uint64_t index, const engine::LogLine& line);

 private:
  rocksdb::DB* db_;
  rocksdb::ColumnFamilyHandle* family_;
  std::mutex mu_;
  // Next line sequence per step (key prefix), loaded from the database on first use.
  std::unordered_map<std::string, std::uint64_t> next_sequence_;
};

// Secret values, encrypted under keys derived from the key file (see
// secrets.cpp). Thread-safe.
class RocksSecretStore final : public engine::SecretStore {
 public:
  // Reads the key file at `key_path`, creating it (mode 0600) when it is
  // missing and `family` holds no secret. kDataLoss, naming the path, when the
  // file is not exactly 32 bytes or is missing while secrets are stored;
  // kUnavailable when it cannot be read or created. REQUIRES: the caller
  // holds the database's lock, so no other process creates the file at once.
  static Result<std::unique_ptr<RocksSecretStore>> open(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* family,
                                                        const std::filesystem::path& key_path);
  ~RocksSecretStore() override;
  RocksSecretStore(const RocksSecretStore&) = delete;
  RocksSecretStore& operator=(const RocksSecretStore&) = delete;

  // Also kInvalidArgument for a value of 2 GiB or more.
  Result<std::string> put(std::string_view scope, std::string_view value) override;
  // Also kInvalidArgument for a digest that is not 64 lowercase hex digits, and
  // kDataLoss when the stored entry fails authentication.
  Result<std::string> get(const std::string& digest) override;

  // For RocksStore::corrupt_secret_for_test: flips one ciphertext bit of the
  // entry under `digest`. kNotFound when there is none.
  Status corrupt_for_test(const std::string& digest);

  static constexpr std::size_t kKeyBytes = 32;
  using Key = std::array<unsigned char, kKeyBytes>;

 private:
  RocksSecretStore(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* family, const Key& digest_key,
                   const Key& encryption_key);

  rocksdb::DB* db_;
  rocksdb::ColumnFamilyHandle* family_;
  Key digest_key_;
  Key encryption_key_;
};

}  // namespace cascade::adapters::rocks
