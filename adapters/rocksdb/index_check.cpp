// RocksStore::check_indexes(): the log's two indexes (`streams`, `event_ids`)
// against its events, for `cascade doctor`. The layout is described at the
// top of event_log.cpp. The hash chains are not checked here: engine/
// verification does that through the EventLog port, reading via these very
// indexes, which is why they are checked first.
#include "adapters/rocksdb/rocks_internal.hpp"
#include "events/codec.hpp"

#include <cstdio>
#include <set>

namespace cascade::adapters::rocks {

namespace {

// The key's bytes for a message: printable ASCII as it is, the rest as \xNN.
std::string printable(std::string_view bytes) {
  std::string out;
  for (const char c : bytes) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f && c != '\\') {
      out += c;
    } else {
      char escaped[5];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", u);
      out += escaped;
    }
  }
  return out;
}

std::string at(std::uint64_t position) { return "log position " + std::to_string(position); }

std::string stream_version(const std::string& stream, std::int64_t version) {
  return "stream " + stream + " version " + std::to_string(version);
}

// A snapshot released on every way out.
class ScopedSnapshot {
 public:
  explicit ScopedSnapshot(rocksdb::DB* db) : db_(db), snapshot_(db->GetSnapshot()) { options_.snapshot = snapshot_; }
  ~ScopedSnapshot() { db_->ReleaseSnapshot(snapshot_); }
  ScopedSnapshot(const ScopedSnapshot&) = delete;
  ScopedSnapshot& operator=(const ScopedSnapshot&) = delete;
  const rocksdb::ReadOptions& options() const { return options_; }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snapshot_;
  rocksdb::ReadOptions options_;
};

}  // namespace

Result<IndexCheck> check_log_indexes(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* events,
                                     rocksdb::ColumnFamilyHandle* streams, rocksdb::ColumnFamilyHandle* event_ids) {
  IndexCheck out;
  const ScopedSnapshot snapshot(db);
  const rocksdb::ReadOptions& read = snapshot.options();
  auto problem = [&out](std::string stream, std::int64_t version, std::uint64_t position, std::string message) {
    out.problems.push_back(IndexProblem{std::move(stream), version, position, std::move(message)});
  };
  // Positions whose bytes do not decode: the verification of the stream that
  // indexes one reports it; one no stream indexes is reported at the end.
  std::set<std::uint64_t> undecodable;
  std::set<std::uint64_t> undecodable_indexed;

  // Every stored event is in both indexes, pointing back at it.
  {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(read, events));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      ++out.events;
      if (it->key().size() != 8) {
        problem("", 0, 0, "the events column family holds a key that is not a log position: " +
                              printable(it->key().ToStringView()));
        continue;
      }
      const std::uint64_t position = decode_u64(it->key().ToStringView());
      auto event = events::decode(it->value().ToStringView(), position);
      if (!event) {
        undecodable.insert(position);
        continue;
      }
      const events::RecordedEvent& e = event.value();
      std::string indexed;
      rocksdb::Status s = db->Get(read, streams, stream_key(e.stream, e.version), &indexed);
      if (s.IsNotFound()) {
        problem(e.stream, e.version, position, at(position) + " holds " + stream_version(e.stream, e.version) +
                                                   ", which the streams index does not name");
      } else if (!s.ok()) {
        return from_rocks(s, "reading the streams index");
      } else if (indexed.size() != 8 || decode_u64(indexed) != position) {
        problem(e.stream, e.version, position,
                at(position) + " holds " + stream_version(e.stream, e.version) + ", but the streams index names " +
                    (indexed.size() == 8 ? at(decode_u64(indexed)) : "'" + printable(indexed) + "'") +
                    " for it");
      }
      s = db->Get(read, event_ids, e.event_id, &indexed);
      if (s.IsNotFound()) {
        problem(e.stream, e.version, position,
                at(position) + " holds event id " + e.event_id + ", which the event_ids index does not name");
      } else if (!s.ok()) {
        return from_rocks(s, "reading the event_ids index");
      } else if (indexed.size() != 8 || decode_u64(indexed) != position) {
        problem(e.stream, e.version, position,
                at(position) + " holds event id " + e.event_id + ", but the event_ids index names " +
                    (indexed.size() == 8 ? at(decode_u64(indexed)) : "'" + printable(indexed) + "'") + " for it");
      }
    }
    if (!it->status().ok()) return from_rocks(it->status(), "reading the events");
  }

  // The event an index entry names: nullopt (and a problem) when it is not
  // there; undecodable bytes are not this check's to report.
  enum class Found { kEvent, kMissing, kUndecodable };
  auto event_at = [&](std::uint64_t position, events::RecordedEvent* event) -> Result<Found> {
    std::string bytes;
    const rocksdb::Status s = db->Get(read, events, encode_u64(position), &bytes);
    if (s.IsNotFound()) return Found::kMissing;
    if (!s.ok()) return from_rocks(s, "reading " + at(position));
    auto decoded = events::decode(bytes, position);
    if (!decoded) {
      undecodable_indexed.insert(position);
      return Found::kUndecodable;
    }
    *event = std::move(decoded).value();
    return Found::kEvent;
  };

  // Every `streams` entry names an event of that stream and version.
  {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(read, streams));
    events::RecordedEvent event;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      ++out.index_entries;
      const std::string_view key = it->key().ToStringView();
      if (key.size() < 10 || key[key.size() - 9] != '\0' || it->value().size() != 8) {
        problem("", 0, 0, "the streams index holds a malformed entry: " + printable(key));
        continue;
      }
      const std::string stream(key.substr(0, key.size() - 9));
      const auto version = static_cast<std::int64_t>(decode_u64(key.substr(key.size() - 8)));
      const std::uint64_t position = decode_u64(it->value().ToStringView());
      if (out.streams.empty() || out.streams.back() != stream) out.streams.push_back(stream);
      CASCADE_TRY(found, event_at(position, &event));
      if (found == Found::kMissing) {
        problem(stream, version, position,
                "the streams index names " + at(position) + " for " + stream_version(stream, version) +
                    ", which holds no event");
      } else if (found == Found::kEvent && (event.stream != stream || event.version != version)) {
        problem(stream, version, position,
                "the streams index names " + at(position) + " for " + stream_version(stream, version) +
                    ", which holds " + stream_version(event.stream, event.version));
      }
    }
    if (!it->status().ok()) return from_rocks(it->status(), "reading the streams index");
  }

  // Every `event_ids` entry names an event with that id.
  {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(read, event_ids));
    events::RecordedEvent event;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      ++out.index_entries;
      const std::string id = it->key().ToString();
      if (it->value().size() != 8) {
        problem("", 0, 0, "the event_ids index holds a malformed entry for event id " + printable(id));
        continue;
      }
      const std::uint64_t position = decode_u64(it->value().ToStringView());
      CASCADE_TRY(found, event_at(position, &event));
      if (found == Found::kMissing) {
        problem("", 0, position,
                "the event_ids index names " + at(position) + " for event id " + printable(id) +
                    ", which holds no event");
      } else if (found == Found::kEvent && event.event_id != id) {
        problem(event.stream, event.version, position,
                "the event_ids index names " + at(position) + " for event id " + printable(id) + ", which holds " +
                    stream_version(event.stream, event.version) + " with id " + event.event_id);
      }
    }
    if (!it->status().ok()) return from_rocks(it->status(), "reading the event_ids index");
  }

  for (const std::uint64_t position : undecodable) {
    if (undecodable_indexed.count(position) != 0) continue;
    problem("", 0, position,
            at(position) + " holds bytes that do not decode as an event, and no stream's index names it");
  }
  return out;
}

}  // namespace cascade::adapters::rocks
