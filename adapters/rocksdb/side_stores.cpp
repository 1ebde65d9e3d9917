// Reactor checkpoints and step logs, beside the event log in the same database
// (layout: see event_log.cpp).

#include "adapters/rocksdb/rocks_internal.hpp"

#include <limits>

namespace cascade::adapters::rocks {

Result<std::uint64_t> RocksCheckpointStore::load(const std::string& reactor) {
  std::string value;
  const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), family_, reactor, &value);
  if (s.IsNotFound()) return std::uint64_t{0};
  if (!s.ok()) return from_rocks(s, "loading the checkpoint of " + reactor);
  if (value.size() != 8) {
    return make_error(ErrorCode::kDataLoss, "checkpoint of " + reactor + ": malformed value");
  }
  return decode_u64(value);
}

Status RocksCheckpointStore::save(const std::string& reactor, std::uint64_t position) {
  // Not synced: a checkpoint lost in a crash only sends the reactor back over
  // events it has handled, and reactions are idempotent.
  const rocksdb::Status s = db_->Put(rocksdb::WriteOptions(), family_, reactor, encode_u64(position));
  if (!s.ok()) return from_rocks(s, "saving the checkpoint of " + reactor);
  return success();
}

namespace {

// A reactor's open releases are keyed "<reactor>\0open\0<release>" beside its
// checkpoint "<reactor>": no reactor or release name holds a NUL byte.
std::string open_prefix(const std::string& reactor) { return reactor + std::string("\0open\0", 6); }

}  // namespace

Status RocksCheckpointStore::save(const std::string& reactor, std::uint64_t position,
                                  const engine::OpenReleaseChanges& changes) {
  const std::string prefix = open_prefix(reactor);
  rocksdb::WriteBatch batch;
  batch.Put(family_, reactor, encode_u64(position));
  for (const auto& [release, at] : changes.opened) batch.Put(family_, prefix + release, encode_u64(at));
  for (const std::string& release : changes.closed) batch.Delete(family_, prefix + release);
  // Not synced, as save() above; a lost write sends the reactor back to an
  // older checkpoint with the open releases that went with it.
  const rocksdb::Status s = db_->Write(rocksdb::WriteOptions(), &batch);
  if (!s.ok()) return from_rocks(s, "saving the checkpoint of " + reactor);
  return success();
}

Result<engine::OpenReleases> RocksCheckpointStore::load_open(const std::string& reactor) {
  const std::string prefix = open_prefix(reactor);
  engine::OpenReleases open;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), family_));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (it->value().size() != 8) {
      return make_error(ErrorCode::kDataLoss, "open releases of " + reactor + ": malformed value");
    }
    open.emplace(it->key().ToString().substr(prefix.size()), decode_u64(it->value().ToString()));
  }
  if (!it->status().ok()) return from_rocks(it->status(), "loading the open releases of " + reactor);
  return open;
}

namespace {

// The key prefix shared by the lines of one step, or kInvalidArgument.
Result<std::string> step_prefix(const engine::StepLogKey& key) {
  if (key.release_id.find('\0') != std::string::npos || key.stage.find('\0') != std::string::npos ||
      key.attempt < 0 || key.step_index < 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "malformed step log key: release " + key.release_id + " stage " + key.stage + " attempt " +
                          std::to_string(key.attempt) + " step " + std::to_string(key.step_index));
  }
  return key.release_id + '\0' + key.stage + '\0' + encode_u32(static_cast<std::uint32_t>(key.attempt)) + '\0' +
         encode_u32(static_cast<std::uint32_t>(key.step_index)) + '\0';
}

// A line as stored: its time (8 bytes), the length of its stream's name (1
// byte), the name, then the text.
std::string encoded_line(const engine::LogLine& line) {
  std::string value = encode_u64(static_cast<std::uint64_t>(line.at));
  value += static_cast<char>(line.stream.size());
  value += line.stream;
  value += line.text;
  return value;
}

// A step's line keys lie in [prefix, upper): every prefix ends in '\0', so
// replacing it by '\1' bounds them.
std::string step_upper_bound(const std::string& prefix) {
  std::string upper = prefix;
  upper.back() = '\x01';
  return upper;
}

// Decodes the line under the iterator into `line`, reusing its buffers.
Status decode_line(const engine::StepLogKey& key, std::size_t prefix_size, const rocksdb::Iterator& it,
                   engine::LogLine& line) {
  const std::string_view value = it.value().ToStringView();
  if (it.key().size() != prefix_size + 8 || value.size() < 9 ||
      value.size() < 9 + std::size_t{static_cast<unsigned char>(value[8])}) {
    return make_error(ErrorCode::kDataLoss, "step log of release " + key.release_id + " stage " + key.stage +
                                                ": malformed line");
  }
  const std::size_t stream_size = static_cast<unsigned char>(value[8]);
  line.at = static_cast<engine::Timestamp>(decode_u64(value.substr(0, 8)));
  line.stream.assign(value.substr(9, stream_size));
  line.text.assign(value.substr(9 + stream_size));
  return success();
}

}  // namespace

Status RocksStepLogStore::append_line(const engine::StepLogKey& key, const engine::LogLine& line) {
  CASCADE_TRY(prefix, step_prefix(key));
  if (line.stream.size() > std::numeric_limits<std::uint8_t>::max()) {
    return make_error(ErrorCode::kInvalidArgument, "step log stream name longer than 255 bytes");
  }
  std::uint64_t sequence = 0;
  {
    std::lock_guard<std::mutex> guard(mu_);
    auto found = next_sequence_.find(prefix);
    if (found == next_sequence_.end()) {
      // First line of this step in this process: continue after what is stored.
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), family_));
      it->SeekForPrev(prefix + std::string(8, '\xff'));
      std::uint64_t next = 0;
      if (it->Valid()) {
        const rocksdb::Slice k = it->key();
        if (k.size() == prefix.size() + 8 && k.starts_with(prefix)) {
          next = decode_u64(k.ToStringView().substr(prefix.size())) + 1;
        }
      } else if (!it->status().ok()) {
        return from_rocks(it->status(), "reading a step log");
      }
      found = next_sequence_.emplace(prefix, next).first;
    }
    sequence = found->second++;
  }
  const std::string value = encoded_line(line);
  // Not synced: flush() makes the lines durable before the step's finishing
  // event records their digest. Written outside mu_ so that a line waiting in a
  // group commit behind synced appends does not hold up other steps.
  const rocksdb::Status s = db_->Put(rocksdb::WriteOptions(), family_, prefix + encode_u64(sequence), value);
  if (!s.ok()) return from_rocks(s, "appending a step log line");
  return success();
}

Status RocksStepLogStore::flush() {
  const rocksdb::Status s = db_->FlushWAL(/*sync=*/true);
  if (!s.ok()) return from_rocks(s, "syncing the step logs");
  return success();
}

Result<std::vector<engine::LogLine>> RocksStepLogStore::read(const engine::StepLogKey& key) {
  return read_page(key, 0, std::numeric_limits<std::size_t>::max());
}

Result<std::vector<engine::LogLine>> RocksStepLogStore::read_page(const engine::StepLogKey& key,
                                                                  std::uint64_t first_line, std::size_t max_lines) {
  CASCADE_TRY(prefix, step_prefix(key));
  const std::string upper = step_upper_bound(prefix);
  const rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions options;
  options.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options, family_));
  std::vector<engine::LogLine> lines;
  // A line's key ends in its sequence number, which is its index in the step.
  for (it->Seek(prefix + encode_u64(first_line)); it->Valid() && lines.size() < max_lines; it->Next()) {
    engine::LogLine line;
    CASCADE_TRY(decode_line(key, prefix.size(), *it, line));
    lines.push_back(std::move(line));
  }
  if (!it->status().ok()) return from_rocks(it->status(), "reading a step log");
  return lines;
}

Status RocksStepLogStore::read_each(const engine::StepLogKey& key,
                                    const std::function<Status(const engine::LogLine&)>& visit) {
  CASCADE_TRY(prefix, step_prefix(key));
  const std::string upper = step_upper_bound(prefix);
  const rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions options;
  options.iterate_upper_bound = &upper_slice;
  // A whole log read once (an audit, an export) would push the blocks the
  // engine reads again and again out of the cache.
  options.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options, family_));
  engine::LogLine line;
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    CASCADE_TRY(decode_line(key, prefix.size(), *it, line));
    CASCADE_TRY(visit(line));
  }
  if (!it->status().ok()) return from_rocks(it->status(), "reading a step log");
  return success();
}

Status RocksStepLogStore::rewrite_line_for_test(const engine::StepLogKey& key, std::uint64_t index,
                                                const engine::LogLine& line) {
  CASCADE_TRY(prefix, step_prefix(key));
  const std::string line_key = prefix + encode_u64(index);
  std::string stored;
  const rocksdb::Status found = db_->Get(rocksdb::ReadOptions(), family_, line_key, &stored);
  if (found.IsNotFound()) {
    return make_error(ErrorCode::kNotFound, "no line " + std::to_string(index) + " in that step log");
  }
  if (!found.ok()) return from_rocks(found, "reading a step log line");
  const rocksdb::Status s = db_->Put(rocksdb::WriteOptions(), family_, line_key, encoded_line(line));
  if (!s.ok()) return from_rocks(s, "rewriting a step log line");
  return success();
}

}  // namespace cascade::adapters::rocks
