// The embedded event log on RocksDB.
//
// Storage layout — one database per `cascade serve`, one column family each:
//
//   events       BE64(position)                          → sealed canonical bytes (events::seal),
//                                                          decoded by events::decode
//   streams      stream '\0' BE64(version)               → BE64(position)
//   event_ids    event id                                → BE64(position)   (bloom-filtered: most
//                                                          lookups are for new ids)
//   checkpoints  reactor name                            → BE64(position)
//                reactor \0 "open" \0 release            → BE64(position)  (OpenReleases)
//   step_logs    release_id '\0' stage '\0' BE32(attempt) '\0' BE32(step_index) '\0' BE64(line)
//                                                        → BE64(at) u8(len) stream text
//   secrets      HMAC-SHA256 digest (hex)                → nonce || AES-256-GCM ciphertext || tag
//                                                          (see secrets.cpp; the key is in secret.key)
//
// BEn is an n-bit unsigned integer, big-endian, so that RocksDB's bytewise order
// is numeric order. Stream names, release ids and stage names may not contain
// '\0', which keeps every prefix unambiguous. A step log line is stored as raw
// bytes (not JSON) because step output need not be UTF-8 and its digest covers
// the exact bytes; line numbers start at 0.
//
// One append is one WriteBatch (events + streams + event_ids entries), written
// with sync = true. Positions are handed out under a mutex, but the write
// happens outside it so that appenders share fsyncs through RocksDB's group
// commit; writes therefore finish out of order, and head() is the highest
// position below which every write has finished. read_all() stops at head();
// read() of a stream waits for head() to cover what it found, so that no
// reader sees past head() and an appender reads its own events. Positions have
// no gaps while the process lives; after a crash a position whose write never
// finished may be missing, which readers skip (it was never acknowledged).
//
// read() and read_each() find a stream's positions in `streams`, then walk
// `events` with one forward iterator (a Seek only across gaps), decoding with
// events::decode; read_each() decodes every event into the same RecordedEvent.
//
// Appends to one stream do not overlap: the next waits until the previous
// one's write has returned. Otherwise version n+1 could reach the WAL before
// version n, and a crash between the two would leave a stream whose chain
// starts mid-air.

#include "adapters/rocksdb/rocks_internal.hpp"
#include "events/codec.hpp"

#include <algorithm>
#include <iostream>
#include <limits>

namespace cascade::adapters::rocks {

std::string encode_u64(std::uint64_t value) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = static_cast<char>(value & 0xff);
    value >>= 8;
  }
  return out;
}

std::string encode_u32(std::uint32_t value) {
  std::string out(4, '\0');
  for (int i = 3; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = static_cast<char>(value & 0xff);
    value >>= 8;
  }
  return out;
}

std::uint64_t decode_u64(std::string_view bytes) {
  std::uint64_t value = 0;
  for (char c : bytes.substr(0, 8)) value = (value << 8) | static_cast<unsigned char>(c);
  return value;
}

Error from_rocks(const rocksdb::Status& status, std::string_view doing) {
  const ErrorCode code = status.IsCorruption() ? ErrorCode::kDataLoss : ErrorCode::kUnavailable;
  return make_error(code, "rocksdb: " + std::string(doing) + ": " + status.ToString());
}

std::string stream_key(const std::string& stream, std::int64_t version) {
  return stream + '\0' + encode_u64(static_cast<std::uint64_t>(version));
}

namespace {

bool starts_with(const rocksdb::Slice& key, const std::string& prefix) {
  return key.size() >= prefix.size() && std::string_view(key.data(), prefix.size()) == prefix;
}

}  // namespace

RocksEventLog::RocksEventLog(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* events,
                             rocksdb::ColumnFamilyHandle* streams, rocksdb::ColumnFamilyHandle* event_ids,
                             std::uint64_t last_position)
    : db_(db),
      events_(events),
      streams_(streams),
      event_ids_(event_ids),
      next_position_(last_position + 1),
      head_(last_position) {}

Result<std::unique_ptr<RocksEventLog>> RocksEventLog::open(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* events,
                                                           rocksdb::ColumnFamilyHandle* streams,
                                                           rocksdb::ColumnFamilyHandle* event_ids) {
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), events));
  it->SeekToLast();
  std::uint64_t last = 0;
  if (it->Valid()) {
    if (it->key().size() != 8) {
      return make_error(ErrorCode::kDataLoss, "rocksdb: malformed event key of " +
                                                  std::to_string(it->key().size()) + " bytes");
    }
    last = decode_u64(it->key().ToStringView());
  } else if (!it->status().ok()) {
    return from_rocks(it->status(), "finding the end of the log");
  }
  return std::unique_ptr<RocksEventLog>(new RocksEventLog(db, events, streams, event_ids, last));
}

Result<events::AppendResult> RocksEventLog::append(const std::string& stream, std::int64_t expected_version,
                                                   std::vector<events::NewEvent> events) {
  const auto invalid = [&](const std::string& why) {
    return make_error(ErrorCode::kInvalidArgument, "append to stream " + stream + ": " + why);
  };
  if (events.empty()) return invalid("no events");
  if (stream.empty() || stream.find('\0') != std::string::npos) return invalid("malformed stream name");
  if (expected_version < 0) return invalid("negative expected version " + std::to_string(expected_version));
  std::vector<std::string> ids;
  ids.reserve(events.size());
  for (const events::NewEvent& e : events) {
    if (e.event_id.empty()) return invalid("an event has no id");
    if (std::find(ids.begin(), ids.end(), e.event_id) != ids.end()) {
      return invalid("event id " + e.event_id + " appears twice in the batch");
    }
    ids.push_back(e.event_id);
  }

  std::unique_lock<std::mutex> lock(mu_);
  StreamState* state = nullptr;
  while (state == nullptr) {
    if (failed_) return failed_error();
    auto found = stream_states_.find(stream);
    if (found == stream_states_.end()) {
      // Loaded without the mutex; an append that raced ahead has inserted the
      // newer state meanwhile, and try_emplace keeps it.
      lock.unlock();
      CASCADE_TRY(loaded, load_stream(stream));
      lock.lock();
      stream_states_.try_emplace(stream, std::move(loaded));
      continue;
    }
    const bool id_claimed =
        std::any_of(ids.begin(), ids.end(), [&](const std::string& id) { return claimed_ids_.count(id) > 0; });
    if (found->second.busy || id_claimed) {
      changed_.wait(lock);
      continue;
    }
    state = &found->second;  // unordered_map nodes never move, and states are never erased
  }
  // Only an append that may write claims the stream and its ids; the others
  // only look, and answer as of this moment.
  const bool version_matches = state->version == expected_version;
  if (version_matches) {
    state->busy = true;
    claimed_ids_.insert(ids.begin(), ids.end());
  }
  const std::int64_t current_version = state->version;
  std::string prev_hash = state->last_hash;
  lock.unlock();

  // From here on, the batch's ids are claimed (or not written by us), so an id
  // not found now cannot be stored by anyone else before our write.
  auto release_claim = [&] {
    if (!version_matches) return;
    std::lock_guard<std::mutex> guard(mu_);
    release(*state, ids);
  };
  auto stored = stored_positions(ids);
  if (!stored) {
    release_claim();
    return std::move(stored).error();
  }
  const std::vector<std::uint64_t>& positions = stored.value();
  const auto stored_count = std::count_if(positions.begin(), positions.end(), [](std::uint64_t p) { return p != 0; });
  if (static_cast<std::size_t>(stored_count) == ids.size()) {
    // A retry of an append that went through: the same answer, nothing written.
    release_claim();
    return events::AppendResult{current_version, positions.back(), prev_hash, true};
  }
  if (!version_matches) {
    return make_error(ErrorCode::kAborted, "append to stream " + stream + ": expected version " +
                                               std::to_string(expected_version) + ", but the stream is at version " +
                                               std::to_string(current_version));
  }
  if (stored_count > 0) {
    release_claim();
    const auto first = std::find_if(positions.begin(), positions.end(), [](std::uint64_t p) { return p != 0; });
    return invalid("event id " + ids[static_cast<std::size_t>(first - positions.begin())] +
                   " is already stored but the other events of the batch are not");
  }

  // Sealing (JSON and SHA-256) happens outside the mutex: the hash covers the
  // stream, version and prev_hash, which the claim fixes, but not the position.
  std::vector<std::string> sealed;
  sealed.reserve(events.size());
  try {
    for (std::size_t i = 0; i < events.size(); ++i) {
      events::NewEvent& e = events[i];
      events::RecordedEvent r;
      r.event_id = std::move(e.event_id);
      r.stream = stream;
      r.version = expected_version + 1 + static_cast<std::int64_t>(i);
      r.recorded_at = e.recorded_at;
      r.actor = std::move(e.actor);
      r.command_id = std::move(e.command_id);
      r.causation_id = std::move(e.causation_id);
      r.correlation_id = std::move(e.correlation_id);
      r.data = std::move(e.data);
      r.prev_hash = std::move(prev_hash);
      sealed.push_back(events::seal(r));
      prev_hash = std::move(r.hash);
    }
  } catch (const std::exception& ex) {  // nlohmann_json refuses strings that are not UTF-8
    release_claim();
    return invalid(std::string("an event cannot be encoded: ") + ex.what());
  }
  const std::int64_t last_version = expected_version + static_cast<std::int64_t>(events.size());

  lock.lock();
  if (failed_) {
    release(*state, ids);
    return failed_error();
  }
  const std::uint64_t first_position = next_position_;
  next_position_ += events.size();
  const std::uint64_t last_position = next_position_ - 1;
  in_flight_.insert(first_position);
  lock.unlock();

  rocksdb::WriteBatch batch;
  for (std::size_t i = 0; i < sealed.size(); ++i) {
    const std::string position = encode_u64(first_position + i);
    const std::int64_t version = expected_version + 1 + static_cast<std::int64_t>(i);
    batch.Put(events_, position, sealed[i]);
    batch.Put(streams_, stream_key(stream, version), position);
    batch.Put(event_ids_, ids[i], position);
  }
  rocksdb::WriteOptions options;
  options.sync = true;
  const rocksdb::Status written = db_->Write(options, &batch);
  if (written.ok()) events_appended_.fetch_add(sealed.size(), std::memory_order_relaxed);

  lock.lock();
  in_flight_.erase(first_position);
  if (!written.ok()) {
    // A synced write that fails means the disk (or the database) is full or
    // gone. Whether any of it reached the disk is unknown until a restart
    // reads the write-ahead log back, so the log refuses every further append
    // rather than guess at versions; RocksDB itself stops writing after a
    // failed log write, so no reactor's checkpoint can pass this batch
    // either. The head still moves past it: the appends acknowledged around
    // it stay visible to every reader.
    fail(written.ToString());
    advance_head();
    release(*state, ids);
    return make_error(ErrorCode::kUnavailable, "the event log cannot write (appending to stream " + stream +
                                                   "): " + written.ToString());
  }
  advance_head();
  // Durable, though maybe not yet visible: a write below ours may still be
  // running. read() waits for it rather than every appender here, which keeps
  // the appenders of one group commit from blocking on each other.
  state->version = last_version;
  state->last_hash = prev_hash;
  release(*state, ids);
  return events::AppendResult{last_version, last_position, std::move(prev_hash), false};
}

void RocksEventLog::advance_head() {
  const std::uint64_t head = in_flight_.empty() ? next_position_ - 1 : *in_flight_.begin() - 1;
  if (head == head_.load()) return;
  head_.store(head);
  changed_.notify_all();
}

void RocksEventLog::fail(const std::string& why) {
  // Said once, where the operator looks: every later append gets the same
  // answer without repeating it.
  if (!failed_) {
    std::cerr << "cascade: the event log cannot write: " << why
              << "; appends are refused until cascade serve restarts (free space or mend the disk first)\n";
  }
  failed_ = true;
  failure_ = why;
  changed_.notify_all();
}

void RocksEventLog::release(StreamState& state, const std::vector<std::string>& ids) {
  state.busy = false;
  for (const std::string& id : ids) claimed_ids_.erase(id);
  changed_.notify_all();
}

std::uint64_t RocksEventLog::wait_visible(std::uint64_t position) {
  if (head_.load() >= position) return position;
  std::unique_lock<std::mutex> lock(mu_);
  // Every position below `position` belongs to a write that is running (it
  // was handed out before ours was stored), so the wait ends when they do or
  // when one fails.
  changed_.wait(lock, [&] { return head_.load() >= position || failed_; });
  return std::min(head_.load(), position);
}

Error RocksEventLog::failed_error() const {
  return make_error(ErrorCode::kUnavailable,
                    "the event log cannot write and refuses appends until cascade serve restarts: " + failure_);
}

Result<RocksEventLog::StreamState> RocksEventLog::load_stream(const std::string& stream) {
  const std::string prefix = stream + '\0';
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), streams_));
  it->SeekForPrev(prefix + std::string(8, '\xff'));
  if (!it->Valid()) {
    if (!it->status().ok()) return from_rocks(it->status(), "reading stream " + stream);
    return StreamState{};
  }
  if (!starts_with(it->key(), prefix)) return StreamState{};
  if (it->key().size() != prefix.size() + 8 || it->value().size() != 8) {
    return make_error(ErrorCode::kDataLoss, "stream " + stream + ": malformed index entry");
  }
  const auto version = static_cast<std::int64_t>(decode_u64(it->key().ToStringView().substr(prefix.size())));
  const std::uint64_t position = decode_u64(it->value().ToStringView());
  CASCADE_TRY(last, fetch({position}));
  if (last[0].stream != stream || last[0].version != version) {
    return make_error(ErrorCode::kDataLoss, "stream " + stream + " version " + std::to_string(version) +
                                                ": the event at position " + std::to_string(position) +
                                                " belongs elsewhere");
  }
  StreamState state;
  state.version = version;
  state.last_hash = std::move(last[0].hash);
  return state;
}

Result<std::vector<std::uint64_t>> RocksEventLog::stored_positions(const std::vector<std::string>& ids) {
  std::vector<rocksdb::Slice> keys(ids.begin(), ids.end());
  std::vector<rocksdb::PinnableSlice> values(ids.size());
  std::vector<rocksdb::Status> statuses(ids.size());
  db_->MultiGet(rocksdb::ReadOptions(), event_ids_, keys.size(), keys.data(), values.data(), statuses.data());
  std::vector<std::uint64_t> positions(ids.size(), 0);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (statuses[i].IsNotFound()) continue;
    if (!statuses[i].ok()) return from_rocks(statuses[i], "looking up event id " + ids[i]);
    if (values[i].size() != 8) {
      return make_error(ErrorCode::kDataLoss, "event id " + ids[i] + ": malformed index entry");
    }
    positions[i] = decode_u64(values[i].ToStringView());
  }
  return positions;
}

Result<std::vector<events::RecordedEvent>> RocksEventLog::fetch(const std::vector<std::uint64_t>& positions) {
  std::vector<std::string> key_bytes;
  key_bytes.reserve(positions.size());
  for (std::uint64_t p : positions) key_bytes.push_back(encode_u64(p));
  std::vector<rocksdb::Slice> keys(key_bytes.begin(), key_bytes.end());
  std::vector<rocksdb::PinnableSlice> values(positions.size());
  std::vector<rocksdb::Status> statuses(positions.size());
  db_->MultiGet(rocksdb::ReadOptions(), events_, keys.size(), keys.data(), values.data(), statuses.data());
  std::vector<events::RecordedEvent> out;
  out.reserve(positions.size());
  for (std::size_t i = 0; i < positions.size(); ++i) {
    if (statuses[i].IsNotFound()) {
      return make_error(ErrorCode::kDataLoss,
                        "event at log position " + std::to_string(positions[i]) + " is indexed but missing");
    }
    if (!statuses[i].ok()) return from_rocks(statuses[i], "reading position " + std::to_string(positions[i]));
    CASCADE_TRY(e, events::decode(values[i].ToStringView(), positions[i]));
    out.push_back(std::move(e));
  }
  return out;
}

Status RocksEventLog::for_each_stored(const std::vector<std::uint64_t>& positions,
                                      const std::function<Status(std::string_view, std::uint64_t)>& visit) {
  if (positions.empty()) return success();
  // A stream's events lie in ascending positions, mostly close together (a
  // release's events interleave with a few others'), so one iterator walking
  // forward reads them at the speed of a scan; MultiGet would search the
  // tables afresh for each. Far gaps are jumped with Seek.
  constexpr std::uint64_t kMaxSteps = 16;
  const std::string upper = encode_u64(positions.back() + 1);
  const rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions options;
  options.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options, events_));
  auto where = [&] { return it->Valid() && it->key().size() == 8 ? decode_u64(it->key().ToStringView()) : 0; };
  std::uint64_t at = 0;  // the iterator's position; 0: not positioned
  for (const std::uint64_t wanted : positions) {
    if (at == 0 || wanted < at || wanted - at > kMaxSteps) {
      it->Seek(encode_u64(wanted));
      at = where();
    } else {
      while (at != 0 && at < wanted) {
        it->Next();
        at = where();
      }
    }
    if (at != wanted) {
      if (!it->status().ok()) return from_rocks(it->status(), "reading position " + std::to_string(wanted));
      return make_error(ErrorCode::kDataLoss,
                        "event at log position " + std::to_string(wanted) + " is indexed but missing");
    }
    CASCADE_TRY(visit(it->value().ToStringView(), wanted));
  }
  return success();
}

Result<std::vector<events::RecordedEvent>> RocksEventLog::fetch_ascending(const std::vector<std::uint64_t>& positions) {
  std::vector<events::RecordedEvent> out;
  out.reserve(positions.size());
  CASCADE_TRY(for_each_stored(positions, [&](std::string_view bytes, std::uint64_t position) -> Status {
    CASCADE_TRY(e, events::decode(bytes, position));
    out.push_back(std::move(e));
    return success();
  }));
  return out;
}

Result<RocksEventLog::StreamIndex> RocksEventLog::stream_index(const std::string& stream, std::int64_t from_version,
                                                               std::size_t limit) {
  StreamIndex index;
  if (limit == 0 || stream.find('\0') != std::string::npos) return index;
  const std::uint64_t visible = head_.load();
  const std::string prefix = stream + '\0';
  const std::string upper = stream + '\x01';  // the first key after every key of the stream
  const rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions options;
  options.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options, streams_));
  for (it->Seek(stream_key(stream, std::max<std::int64_t>(from_version, 1)));
       it->Valid() && index.positions.size() < limit; it->Next()) {
    if (it->key().size() != prefix.size() + 8 || it->value().size() != 8) {
      return make_error(ErrorCode::kDataLoss, "stream " + stream + ": malformed index entry");
    }
    index.versions.push_back(static_cast<std::int64_t>(decode_u64(it->key().ToStringView().substr(prefix.size()))));
    index.positions.push_back(decode_u64(it->value().ToStringView()));
  }
  if (!it->status().ok()) return from_rocks(it->status(), "reading stream " + stream);
  // What RocksDB shows is durable (it applies a synced batch only after the
  // sync), but it may lie beyond head(): wait until it does not, so that an
  // appender reads its own events and no reader sees past head().
  if (!index.positions.empty() && index.positions.back() > visible) {
    const std::uint64_t reached = wait_visible(index.positions.back());
    while (!index.positions.empty() && index.positions.back() > reached) {  // only when the log failed
      index.positions.pop_back();
      index.versions.pop_back();
    }
  }
  return index;
}

Error RocksEventLog::misplaced(const std::string& stream, std::int64_t version, std::uint64_t position,
                               const events::RecordedEvent& found) {
  return make_error(ErrorCode::kDataLoss, "stream " + stream + " version " + std::to_string(version) +
                                              ": the event at position " + std::to_string(position) +
                                              " belongs to stream " + found.stream + " version " +
                                              std::to_string(found.version));
}

Status RocksEventLog::read_each(const std::string& stream, std::int64_t from_version,
                                const std::function<Status(const events::RecordedEvent&)>& visit) {
  return walk_stream(
      stream, from_version,
      [](std::string_view bytes, std::uint64_t position, events::RecordedEvent& e) {
        return events::decode_into(bytes, position, e);
      },
      visit);
}

Status RocksEventLog::read_each_verified(const std::string& stream, std::int64_t from_version,
                                         std::string expected_prev_hash,
                                         const std::function<Status(const events::RecordedEvent&)>& visit) {
  bool first = true;
  return walk_stream(
      stream, from_version,
      [&](std::string_view bytes, std::uint64_t position, events::RecordedEvent& e) -> Status {
        // `e` still holds the event before, which this one must link to.
        if (!first) expected_prev_hash.assign(e.hash);
        first = false;
        return events::decode_verified(bytes, position, expected_prev_hash, e);
      },
      visit);
}

template <class Decode>
Status RocksEventLog::walk_stream(const std::string& stream, std::int64_t from_version, Decode&& decode,
                                  const std::function<Status(const events::RecordedEvent&)>& visit) {
  CASCADE_TRY(index, stream_index(stream, from_version, std::numeric_limits<std::size_t>::max()));
  events::RecordedEvent e;  // reused: decoding into it keeps its strings' storage
  std::size_t i = 0;
  bool visiting = false;  // an error of visit() is returned as is
  auto walked = for_each_stored(index.positions, [&](std::string_view bytes, std::uint64_t position) -> Status {
    CASCADE_TRY(decode(bytes, position, e));
    if (e.stream != stream || e.version != index.versions[i]) return misplaced(stream, index.versions[i], position, e);
    ++i;
    visiting = true;
    CASCADE_TRY(visit(e));
    visiting = false;
    return success();
  });
  if (walked || visiting) return walked;
  // Name the stream version, as read() does.
  Error error = std::move(walked).error();
  if (i < index.versions.size() && error.message.rfind("stream ", 0) != 0) {
    error.message = "stream " + stream + " version " + std::to_string(index.versions[i]) + ": " + error.message;
  }
  return error;
}

Result<std::vector<events::RecordedEvent>> RocksEventLog::read(const std::string& stream, std::int64_t from_version,
                                                               std::size_t limit) {
  CASCADE_TRY(index, stream_index(stream, from_version, limit));
  const std::vector<std::uint64_t>& positions = index.positions;
  const std::vector<std::int64_t>& versions = index.versions;
  auto fetched = fetch_ascending(positions);
  if (!fetched) {
    // Name the stream version too, not only the log position: an audit
    // reports where in the stream the damage is. Only this error path reads
    // one event at a time, to find which one it is.
    for (std::size_t i = 0; i < positions.size(); ++i) {
      auto one = fetch({positions[i]});
      if (one) continue;
      Error error = std::move(one).error();
      error.message = "stream " + stream + " version " + std::to_string(versions[i]) + ": " + error.message;
      return error;
    }
    return std::move(fetched).error();
  }
  std::vector<events::RecordedEvent> out = std::move(fetched).value();
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i].stream != stream || out[i].version != versions[i]) {
      return misplaced(stream, versions[i], positions[i], out[i]);
    }
  }
  return out;
}

Result<std::vector<events::RecordedEvent>> RocksEventLog::read_all(std::uint64_t from_position, std::size_t limit) {
  std::vector<events::RecordedEvent> out;
  const std::uint64_t visible = head_.load();
  from_position = std::max<std::uint64_t>(from_position, 1);
  if (limit == 0 || from_position > visible) return out;
  const std::string upper = encode_u64(visible + 1);
  const rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions options;
  options.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options, events_));
  for (it->Seek(encode_u64(from_position)); it->Valid() && out.size() < limit; it->Next()) {
    if (it->key().size() != 8) return make_error(ErrorCode::kDataLoss, "rocksdb: malformed event key");
    CASCADE_TRY(e, events::decode(it->value().ToStringView(), decode_u64(it->key().ToStringView())));
    out.push_back(std::move(e));
  }
  if (!it->status().ok()) return from_rocks(it->status(), "reading the log");
  return out;
}

namespace {

// Whether the `streams` index maps some version of `stream` to `position`.
bool indexes(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* streams, const std::string& stream,
             std::uint64_t position) {
  const std::string prefix = stream + '\0';
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), streams));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (it->value().size() == 8 && decode_u64(it->value().ToStringView()) == position) return true;
  }
  return false;
}

}  // namespace

// The stream an undecodable event belongs to. Its bytes usually still name
// it (one flipped byte rarely hits the name), which the index confirms; else
// the whole index is searched — slow, but only ever for a damaged record.
std::string RocksEventLog::stream_of_unreadable(std::uint64_t position, std::string_view bytes) {
  static constexpr std::string_view kField = "\"stream\":\"";
  if (const auto at = bytes.find(kField); at != std::string_view::npos) {
    const auto begin = at + kField.size();
    const auto end = bytes.find('"', begin);
    if (end != std::string_view::npos) {
      std::string named(bytes.substr(begin, end - begin));
      if (indexes(db_, streams_, named, position)) return named;
    }
  }
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), streams_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->value().size() != 8 || decode_u64(it->value().ToStringView()) != position) continue;
    const std::string_view key = it->key().ToStringView();
    const auto separator = key.find('\0');
    if (separator != std::string_view::npos) return std::string(key.substr(0, separator));
  }
  return std::string();
}

Result<events::ReadablePage> RocksEventLog::read_all_readable(std::uint64_t from_position, std::size_t limit) {
  events::ReadablePage page;
  const std::uint64_t visible = head_.load();
  from_position = std::max<std::uint64_t>(from_position, 1);
  if (limit == 0 || from_position > visible) return page;
  const std::string upper = encode_u64(visible + 1);
  const rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions options;
  options.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options, events_));
  for (it->Seek(encode_u64(from_position)); it->Valid() && page.events.size() + page.unreadable.size() < limit;
       it->Next()) {
    if (it->key().size() != 8) return make_error(ErrorCode::kDataLoss, "rocksdb: malformed event key");
    const std::uint64_t position = decode_u64(it->key().ToStringView());
    auto decoded = events::decode(it->value().ToStringView(), position);
    if (decoded) {
      page.events.push_back(std::move(decoded).value());
    } else {
      page.unreadable.push_back(
          {position, stream_of_unreadable(position, it->value().ToStringView()), decoded.error().message});
    }
  }
  if (!it->status().ok()) return from_rocks(it->status(), "reading the log");
  return page;
}

Result<std::int64_t> RocksEventLog::stream_version(const std::string& stream) {
  {
    std::lock_guard<std::mutex> guard(mu_);
    auto found = stream_states_.find(stream);
    if (found != stream_states_.end()) return found->second.version;
  }
  if (stream.find('\0') != std::string::npos) return std::int64_t{0};
  CASCADE_TRY(loaded, load_stream(stream));
  // A stream that does not exist is not remembered: every name ever asked
  // for (a mistyped pipeline in a create) would otherwise stay in memory.
  if (loaded.version == 0) return std::int64_t{0};
  std::lock_guard<std::mutex> guard(mu_);
  return stream_states_.try_emplace(stream, std::move(loaded)).first->second.version;
}

std::uint64_t RocksEventLog::head() const { return head_.load(); }

Status RocksEventLog::writable() const {
  std::lock_guard<std::mutex> guard(mu_);
  if (failed_) return failed_error();
  return success();
}

std::uint64_t RocksEventLog::wait_for_events(std::uint64_t after, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait_for(lock, timeout, [&] { return head_.load() > after; });
  return head_.load();
}

}  // namespace cascade::adapters::rocks
