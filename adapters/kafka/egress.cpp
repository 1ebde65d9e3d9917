#include "adapters/kafka/egress.hpp"

#include "adapters/kafka/properties.hpp"

#include "adapters/metrics/metrics.hpp"
#include "events/write_groups.hpp"

#include <librdkafka/rdkafka.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <filesystem>
#include <iostream>

namespace cascade::adapters::kafka {
namespace {

constexpr std::string_view kReleaseStreamPrefix = "release-";
constexpr const char* kPositionKey = "position";
constexpr std::string_view kEnvironmentPrefix{"env\0", 4};

std::string encode_be64(std::uint64_t value) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = static_cast<char>(value & 0xff);
    value >>= 8;
  }
  return out;
}

std::uint64_t decode_be64(std::string_view bytes) {
  std::uint64_t value = 0;
  for (char c : bytes) value = (value << 8) | static_cast<unsigned char>(c);
  return value;
}

std::string environment_key(const EnvironmentKey& key) {
  return std::string(kEnvironmentPrefix) + key.pipeline + '\0' + key.stage;
}

Error storage_error(const rocksdb::Status& status, const std::string& doing) {
  return make_error(status.IsCorruption() ? ErrorCode::kDataLoss : ErrorCode::kUnavailable,
                    "cdevents egress state: " + doing + ": " + status.ToString());
}

}  // namespace

// ---- EgressStateStore ---------------------------------------------------------

struct EgressStateStore::Db {
  std::unique_ptr<rocksdb::DB> db;
  std::string dir;
};

EgressStateStore::EgressStateStore(std::unique_ptr<Db> db) : db_(std::move(db)) {}
EgressStateStore::~EgressStateStore() = default;

Result<std::unique_ptr<EgressStateStore>> EgressStateStore::open(const std::string& dir, rocksdb::Env* env) {
  std::error_code created;
  std::filesystem::create_directories(dir, created);
  if (created) {
    return make_error(ErrorCode::kUnavailable, "cdevents egress state: cannot create " + dir + ": " +
                                                   created.message());
  }
  rocksdb::Options options;
  if (env != nullptr) options.env = env;
  options.create_if_missing = true;
  options.max_open_files = 64;  // a handful of entries: keep its footprint small
  options.keep_log_file_num = 2;
  events::without_cross_thread_write_groups_under_tsan(options);
  rocksdb::DB* raw = nullptr;
  const rocksdb::Status s = rocksdb::DB::Open(options, dir, &raw);
  if (!s.ok()) return storage_error(s, "opening " + dir);
  auto db = std::make_unique<Db>();
  db->db.reset(raw);
  db->dir = dir;
  return std::unique_ptr<EgressStateStore>(new EgressStateStore(std::move(db)));
}

Result<EgressStateStore::Snapshot> EgressStateStore::load() const {
  Snapshot snapshot;
  rocksdb::ReadOptions read;
  const rocksdb::Snapshot* view = db_->db->GetSnapshot();
  read.snapshot = view;
  struct Release {
    rocksdb::DB& db;
    const rocksdb::Snapshot* view;
    ~Release() { db.ReleaseSnapshot(view); }
  } release{*db_->db, view};

  std::string position;
  rocksdb::Status s = db_->db->Get(read, kPositionKey, &position);
  if (s.ok()) {
    if (position.size() != 8) {
      return make_error(ErrorCode::kDataLoss, "cdevents egress state in " + db_->dir + ": malformed position");
    }
    snapshot.position = decode_be64(position);
  } else if (!s.IsNotFound()) {
    return storage_error(s, "reading the position");
  }

  std::unique_ptr<rocksdb::Iterator> it(db_->db->NewIterator(read));
  for (it->Seek(rocksdb::Slice(kEnvironmentPrefix.data(), kEnvironmentPrefix.size()));
       it->Valid() && it->key().starts_with(rocksdb::Slice(kEnvironmentPrefix.data(), kEnvironmentPrefix.size()));
       it->Next()) {
    const std::string key = it->key().ToString();
    const std::string rest = key.substr(kEnvironmentPrefix.size());
    const std::size_t separator = rest.find('\0');
    const std::string shown = rest.substr(0, separator) + "/" + (separator == std::string::npos ? "" : rest.substr(separator + 1));
    try {
      if (separator == std::string::npos) throw std::invalid_argument("no stage in the key");
      const nlohmann::json value = nlohmann::json::parse(it->value().ToStringView());
      ServiceInstance instance;
      instance.release_number = value.at("release_number").get<std::int64_t>();
      instance.release_id = value.at("release_id").get<std::string>();
      instance.disturbed_by = value.at("disturbed_by").get<std::int64_t>();
      snapshot.environments[EnvironmentKey{rest.substr(0, separator), rest.substr(separator + 1)}] = instance;
    } catch (const std::exception& e) {
      return make_error(ErrorCode::kDataLoss, "cdevents egress state in " + db_->dir + ": environment " + shown +
                                                  ": " + e.what());
    }
  }
  if (!it->status().ok()) return storage_error(it->status(), "reading the environments");
  return snapshot;
}

Status EgressStateStore::save(std::uint64_t position, const Environments& changed) {
  rocksdb::WriteBatch batch;
  for (const auto& [key, instance] : changed) {
    const nlohmann::json value = {{"release_number", instance.release_number},
                                  {"release_id", instance.release_id},
                                  {"disturbed_by", instance.disturbed_by}};
    batch.Put(environment_key(key), value.dump());
  }
  batch.Put(kPositionKey, encode_be64(position));
  // Not synced (see the header): a lost tail only means CDEvents sent again.
  const rocksdb::Status s = db_->db->Write(rocksdb::WriteOptions(), &batch);
  if (!s.ok()) return storage_error(s, "saving position " + std::to_string(position));
  return success();
}

// ---- CdEventsEgress -----------------------------------------------------------

namespace {

// Which batch a record belongs to: delivery reports of an older batch (one
// that timed out and is being retried) must not count for the current one.
struct RecordTag {
  std::uint64_t generation;
};

Result<rd_kafka_t*> make_producer(const EgressOptions& options, void* opaque,
                                  void (*on_delivery)(rd_kafka_t*, const rd_kafka_message_t*, void*),
                                  void (*on_error)(rd_kafka_t*, int, const char*, void*)) {
  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  std::map<std::string, std::string> properties = {
      {"bootstrap.servers", options.brokers},
      {"client.id", "cascade-cdevents-egress"},
      // Latency matters more than batching: a release's CDEvents go out as
      // they happen.
      {"linger.ms", "5"},
      {"message.timeout.ms", std::to_string(options.delivery_timeout.count())},
      // Unreachable brokers are reported through the batch's error, not a
      // log line per reconnect attempt.
      {"log.connection.close", "false"},
      {"log_level", "3"},
  };
  for (const auto& [name, value] : options.producer_config) properties[name] = value;
  // No duplicates from the producer's own retries, and an acknowledgement
  // means every in-sync replica has the record.
  properties["enable.idempotence"] = "true";
  properties["acks"] = "all";
  if (auto set = set_kafka_properties(conf, properties, "cdevents egress producer"); !set) {
    rd_kafka_conf_destroy(conf);
    return set.error();
  }
  rd_kafka_conf_set_opaque(conf, opaque);
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_conf_set_error_cb(conf, on_error);
  rd_kafka_t* producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error);
  if (producer == nullptr) {
    rd_kafka_conf_destroy(conf);
    return make_error(ErrorCode::kInvalidArgument, std::string("cdevents egress: cannot create the producer: ") + error);
  }
  return producer;
}

std::string release_id_of(const events::RecordedEvent& event) {
  return event.stream.substr(kReleaseStreamPrefix.size());
}

}  // namespace

Result<std::unique_ptr<CdEventsEgress>> CdEventsEgress::create(EgressOptions options, events::EventLog& log,
                                                               EgressStateStore& state) {
  if (options.brokers.empty()) return make_error(ErrorCode::kInvalidArgument, "cdevents egress: no brokers given");
  if (options.topic.empty()) return make_error(ErrorCode::kInvalidArgument, "cdevents egress: no topic given");
  if (options.cdevents.source.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "cdevents egress: the CDEvents source may not be empty");
  }
  if (options.delivery_timeout.count() <= 0) {
    return make_error(ErrorCode::kInvalidArgument, "cdevents egress: the delivery timeout must be positive");
  }
  std::unique_ptr<CdEventsEgress> egress(new CdEventsEgress(std::move(options), log, state, nullptr));
  CASCADE_TRY(egress->ensure_producer());
  if (egress->options_.metrics != nullptr) {
    CASCADE_TRY(published, egress->options_.metrics->counter(
                               "cascade_cdevents_published_total",
                               "CDEvents the Kafka broker acknowledged, by type (re-sends included)", {"type"}));
    CASCADE_TRY(failed, egress->options_.metrics->counter(
                            "cascade_cdevents_failed_batches_total",
                            "Batches of CDEvents that failed and will be sent again, by reason", {"reason"}));
    egress->published_metric_ = published;
    egress->failed_metric_ = failed;
  }
  return egress;
}

CdEventsEgress::CdEventsEgress(EgressOptions options, events::EventLog& log, EgressStateStore& state,
                               rd_kafka_t* producer)
    : options_(std::move(options)), log_(log), state_(state), producer_(producer) {}

CdEventsEgress::~CdEventsEgress() {
  if (producer_ != nullptr) {
    // Every batch was flushed before its position was saved: nothing here is
    // owed to anyone, so do not wait long for a broker that is gone.
    rd_kafka_flush(producer_, 1000);
    rd_kafka_destroy(producer_);
  }
}

Status CdEventsEgress::ensure_producer() {
  if (producer_ != nullptr) return success();
  CASCADE_TRY(producer, make_producer(options_, this, &CdEventsEgress::on_delivery, &CdEventsEgress::on_error));
  producer_ = producer;
  return success();
}

void CdEventsEgress::on_delivery(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
  auto* self = static_cast<CdEventsEgress*>(opaque);
  std::unique_ptr<RecordTag> tag(static_cast<RecordTag*>(message->_private));
  if (tag == nullptr || tag->generation != self->batch_generation_) return;
  if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++self->acknowledged_;
  } else {
    ++self->refused_;
    if (self->first_refusal_.empty()) {
      self->first_refusal_ = rd_kafka_err2str(message->err);
      self->refusal_timed_out_ = message->err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT;
    }
  }
}

void CdEventsEgress::on_error(rd_kafka_t*, int error, const char* reason, void* opaque) {
  auto* self = static_cast<CdEventsEgress*>(opaque);
  std::lock_guard lock(self->stats_mutex_);
  self->stats_.last_error = std::string("kafka: ") + rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(error)) +
                            ": " + (reason == nullptr ? "" : reason);
}

Result<std::uint64_t> CdEventsEgress::resume_position() {
  CASCADE_TRY(snapshot, state_.load());
  environments_ = std::move(snapshot.environments);
  folds_.clear();
  fold_ages_.clear();
  std::lock_guard lock(stats_mutex_);
  stats_.position = snapshot.position;
  return snapshot.position;
}

Result<std::pair<ReleaseBefore, const FoldedRelease*>> CdEventsEgress::fold(const events::RecordedEvent& event) {
  const std::string release_id = release_id_of(event);
  auto [found, inserted] = folds_.try_emplace(release_id);
  FoldEntry& entry = found->second;
  if (inserted) {
    fold_ages_.push_front(release_id);
  } else {
    fold_ages_.splice(fold_ages_.begin(), fold_ages_, entry.age);
  }
  entry.age = fold_ages_.begin();
  // Anything but the release just before the event (never seen, evicted, or
  // ahead after a failed batch) is folded again from its stream: the event
  // is mapped against the release as it was then, never as it is now.
  if (entry.release.version() + 1 != event.version) {
    entry.release = FoldedRelease();
    if (event.version > 1) {
      CASCADE_TRY(prefix, log_.read(event.stream, 1, static_cast<std::size_t>(event.version - 1)));
      for (const events::RecordedEvent& e : prefix) entry.release.fold(e);
      if (entry.release.version() + 1 != event.version) {
        folds_.erase(found);
        fold_ages_.pop_front();
        return make_error(ErrorCode::kUnavailable, "stream " + event.stream + " is shorter than version " +
                                                       std::to_string(event.version));
      }
    }
  }
  const ReleaseBefore before = entry.release.fold(event);
  return std::make_pair(before, static_cast<const FoldedRelease*>(&entry.release));
}

void CdEventsEgress::fail(const std::string& reason, const std::string& message) {
  if (failed_metric_ != nullptr) failed_metric_->with({reason}).inc();
  std::lock_guard lock(stats_mutex_);
  ++stats_.failed_batches;
  stats_.last_error = message;
}

Status CdEventsEgress::publish(const std::vector<Record>& records, const std::vector<std::string>& types) {
  CASCADE_TRY(ensure_producer());
  ++batch_generation_;
  acknowledged_ = 0;
  refused_ = 0;
  first_refusal_.clear();
  refusal_timed_out_ = false;
  const auto deadline = std::chrono::steady_clock::now() + options_.delivery_timeout;
  std::size_t produced = 0;
  for (const Record& record : records) {
    rd_kafka_headers_t* headers = rd_kafka_headers_new(record.headers.size());
    for (const RecordHeader& header : record.headers) {
      rd_kafka_header_add(headers, header.key.data(), static_cast<ssize_t>(header.key.size()), header.value.data(),
                          static_cast<ssize_t>(header.value.size()));
    }
    auto tag = std::make_unique<RecordTag>(RecordTag{batch_generation_});
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    while (true) {
      err = rd_kafka_producev(producer_, RD_KAFKA_V_TOPIC(options_.topic.c_str()),
                              RD_KAFKA_V_KEY(record.key.data(), record.key.size()),
                              RD_KAFKA_V_VALUE(const_cast<char*>(record.value.data()), record.value.size()),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers),
                              RD_KAFKA_V_OPAQUE(tag.get()), RD_KAFKA_V_END);
      // A full local queue drains as the broker acknowledges; wait for it.
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || std::chrono::steady_clock::now() >= deadline) break;
      rd_kafka_poll(producer_, 50);
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_headers_destroy(headers);
      refused_ += records.size() - produced;
      if (first_refusal_.empty()) first_refusal_ = rd_kafka_err2str(err);
      break;
    }
    tag.release();  // owned by the record now; on_delivery frees it
    ++produced;
  }
  // Delivery reports arrive from flush, on this thread. Records time out
  // after delivery_timeout, so flush returns before its own bound unless the
  // producer is stuck.
  const auto flush_bound = options_.delivery_timeout + std::chrono::seconds(1);
  const rd_kafka_resp_err_t flushed = rd_kafka_flush(producer_, static_cast<int>(flush_bound.count()));

  char fatal[512];
  if (rd_kafka_fatal_error(producer_, fatal, sizeof fatal) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    // A fatal producer cannot send again: start over with a new one (a new
    // producer id) for the retried batch.
    rd_kafka_destroy(producer_);
    producer_ = nullptr;
    const std::string message = std::string("kafka producer failed fatally: ") + fatal;
    fail("fatal", message);
    return make_error(ErrorCode::kUnavailable, message);
  }
  if (refused_ > 0 || flushed != RD_KAFKA_RESP_ERR_NO_ERROR || acknowledged_ != records.size()) {
    const std::size_t unacknowledged = records.size() - acknowledged_;
    const std::string cause = !first_refusal_.empty() ? first_refusal_ : rd_kafka_err2str(flushed);
    const std::string message = std::to_string(unacknowledged) + " of " + std::to_string(records.size()) +
                                " CDEvents not acknowledged by the broker on topic " + options_.topic + ": " +
                                cause + "; the batch will be sent again";
    // timeout: the broker did not answer in time (down, unreachable);
    // refused: it answered with an error.
    fail(refused_ == 0 || refusal_timed_out_ ? "timeout" : "refused", message);
    return make_error(ErrorCode::kUnavailable, message);
  }
  if (published_metric_ != nullptr) {
    for (const std::string& type : types) published_metric_->with({type}).inc();
  }
  std::lock_guard lock(stats_mutex_);
  stats_.published += records.size();
  return success();
}

Status CdEventsEgress::handle(const std::vector<events::RecordedEvent>& batch) {
  if (batch.empty()) return success();
  // The batch works on a copy: a failed batch leaves the knowledge as of the
  // saved position, and its retry maps the same events the same way.
  Environments environments = environments_;
  std::vector<Record> records;
  std::vector<std::string> types;
  // The command id of the next event of the same stream within the batch.
  std::vector<const std::string*> next_command(batch.size(), nullptr);
  {
    std::unordered_map<std::string_view, const std::string*> later;
    for (std::size_t i = batch.size(); i-- > 0;) {
      auto [found, inserted] = later.try_emplace(batch[i].stream, &batch[i].command_id);
      if (!inserted) {
        next_command[i] = found->second;
        found->second = &batch[i].command_id;
      }
    }
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const events::RecordedEvent& event = batch[i];
    if (event.stream.compare(0, kReleaseStreamPrefix.size(), kReleaseStreamPrefix) != 0) continue;
    bool ends_command = true;
    if (!event.command_id.empty()) {
      if (next_command[i] != nullptr) {
        ends_command = *next_command[i] != event.command_id;
      } else {
        // The batch may end inside one append: the rest of it is durable already.
        CASCADE_TRY(next, log_.read(event.stream, event.version + 1, 1));
        ends_command = next.empty() || next.front().command_id != event.command_id;
      }
    }
    CASCADE_TRY(folded, fold(event));
    const auto& [before, release] = folded;
    for (nlohmann::json& cdevent :
         to_cdevents(event, before, release->state(), ends_command, environments, options_.cdevents)) {
      types.push_back(cdevent["context"]["type"].get<std::string>());
      records.push_back(encode_cdevent(cdevent, options_.mode, release->state().id));
    }
  }
  if (!records.empty()) {
    CASCADE_TRY(publish(records, types));
  }

  Environments changed;
  for (const auto& [key, instance] : environments) {
    auto previous = environments_.find(key);
    if (previous == environments_.end() || !(previous->second == instance)) changed.emplace(key, instance);
  }
  const std::uint64_t position = batch.back().position;
  if (Status saved = state_.save(position, changed); !saved) {
    fail("state", saved.error().message);
    return saved;
  }
  environments_ = std::move(environments);
  while (fold_ages_.size() > kFoldCapacity) {
    folds_.erase(fold_ages_.back());
    fold_ages_.pop_back();
  }
  std::lock_guard lock(stats_mutex_);
  stats_.position = position;
  return success();
}

CdEventsEgress::Stats CdEventsEgress::stats() const {
  std::lock_guard lock(stats_mutex_);
  return stats_;
}

}  // namespace cascade::adapters::kafka
