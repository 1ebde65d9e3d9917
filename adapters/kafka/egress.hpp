// The CDEvents egress: a reactor that follows the log and announces what
// Cascade deploys on a Kafka topic (mapping in cdevents_out.hpp), with
// librdkafka's idempotent producer (acks=all), keyed by release id so that one
// release's CDEvents stay in order on one partition.
//
// Delivery: at least once, recognisably. A batch's position is saved only
// after the broker acknowledged every record of it, so a restart resumes
// without a gap; a batch that failed (broker unreachable past the delivery
// timeout) or a crash before the save is sent again, and every re-sent CDEvent
// carries the same context.id (derived from the log position and its type).
// Consumers that must see each CDEvent once drop repeated ids.
#pragma once

#include "adapters/kafka/cdevents_out.hpp"
#include "adapters/kafka/cloudevents.hpp"
#include "engine/reactor.hpp"
#include "events/event_log.hpp"

#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

struct rd_kafka_s;
struct rd_kafka_message_s;

namespace rocksdb {
class Env;
}  // namespace rocksdb

namespace cascade::adapters::metrics {
class MetricsRegistry;
class CounterFamily;
}  // namespace cascade::adapters::metrics

namespace cascade::adapters::kafka {

// The egress's durable state: the log position it has announced up to and the
// environment knowledge (what runs where) as of that position, written
// together in one atomic RocksDB write in its own small database — so a crash
// can never leave one ahead of the other, and a start needs no replay of the
// log (it reads one entry per pipeline stage). Writes are not synced: a crash
// of the machine may take the egress back to an earlier consistent pair, from
// which it re-sends CDEvents with the same ids. It takes the place of an
// engine::CheckpointStore entry, which holds a position only: here the
// position must move together with the environment knowledge.
//
// Layout: "position" → BE64; "env" '\0' pipeline '\0' stage →
// {"release_number", "release_id", "disturbed_by"}.
// Thread-safe.
class EgressStateStore {
 public:
  // Opens (creating `dir` and the database when missing) the store in `dir`,
  // e.g. <data>/cdevents-egress. kUnavailable with RocksDB's message when it
  // cannot be opened (another process holds it, for instance). `env`: the
  // RocksDB Env to open it with (nullptr: RocksDB's default).
  static Result<std::unique_ptr<EgressStateStore>> open(const std::string& dir, rocksdb::Env* env = nullptr);
  ~EgressStateStore();
  EgressStateStore(const EgressStateStore&) = delete;
  EgressStateStore& operator=(const EgressStateStore&) = delete;

  struct Snapshot {
    std::uint64_t position = 0;  // 0: nothing announced yet
    Environments environments;
  };
  // kDataLoss naming the key when an entry cannot be read back.
  Result<Snapshot> load() const;
  // Stores `changed` entries and `position` in one atomic write.
  Status save(std::uint64_t position, const Environments& changed);

 private:
  struct Db;
  explicit EgressStateStore(std::unique_ptr<Db> db);
  std::unique_ptr<Db> db_;
};

struct EgressOptions {
  std::string brokers;                   // bootstrap servers, "host:port,host:port"
  std::string topic = "cascade.cdevents";
  CloudEventsMode mode = CloudEventsMode::kBinary;
  CdEventsOptions cdevents;              // context.source and the release URI prefix
  // How long a record may wait for the broker (librdkafka message.timeout.ms)
  // before its batch fails and is retried by the runner.
  std::chrono::milliseconds delivery_timeout{10'000};
  // Extra librdkafka producer properties; they win over the defaults above
  // except enable.idempotence and acks, which are always true / all.
  std::map<std::string, std::string> producer_config;
  // When set, counts cascade_cdevents_published_total{type} and
  // cascade_cdevents_failed_batches_total{reason} there. Must outlive the egress.
  metrics::MetricsRegistry* metrics = nullptr;
};

// Runs on the reactor runner's thread; stats() may be called from any thread.
class CdEventsEgress final : public engine::Reactor {
 public:
  static constexpr const char* kName = "cdevents-egress";
  static constexpr std::size_t kFoldCapacity = 1024;  // releases kept folded between batches

  // kInvalidArgument naming the problem for an empty broker list, topic or
  // source, or a producer property librdkafka refuses. `log` and `state` must
  // outlive the egress. Connecting happens later, in the background: a broker
  // that is down only makes batches fail (and be retried) until it is up.
  static Result<std::unique_ptr<CdEventsEgress>> create(EgressOptions options, events::EventLog& log,
                                                        EgressStateStore& state);
  ~CdEventsEgress() override;
  CdEventsEgress(const CdEventsEgress&) = delete;
  CdEventsEgress& operator=(const CdEventsEgress&) = delete;

  std::string name() const override { return kName; }
  // The saved position; loads the environment knowledge saved with it.
  Result<std::uint64_t> resume_position() override;
  // Maps the batch, produces its CDEvents, waits until the broker
  // acknowledged every one (or the delivery timeout), then saves the state
  // and position. kUnavailable naming the cause when any record was not
  // acknowledged: nothing is saved and the runner retries the batch.
  Status handle(const std::vector<events::RecordedEvent>& batch) override;

  struct Stats {
    std::uint64_t position = 0;        // announced up to here (saved)
    std::uint64_t published = 0;       // CDEvents the broker acknowledged, re-sends included
    std::uint64_t failed_batches = 0;  // batches that will be sent again
    std::string last_error;            // why the last batch failed, or the producer's last error
  };
  Stats stats() const;

 private:
  CdEventsEgress(EgressOptions options, events::EventLog& log, EgressStateStore& state, rd_kafka_s* producer);

  // The release of `event`, folded up to just before it (from the cache, or
  // from the log on a miss), then with `event`: what held before.
  Result<std::pair<ReleaseBefore, const FoldedRelease*>> fold(const events::RecordedEvent& event);
  Status ensure_producer();
  Status publish(const std::vector<Record>& records, const std::vector<std::string>& types);
  void fail(const std::string& reason, const std::string& message);
  static void on_delivery(rd_kafka_s* producer, const rd_kafka_message_s* message, void* opaque);
  static void on_error(rd_kafka_s* producer, int error, const char* reason, void* opaque);

  EgressOptions options_;
  events::EventLog& log_;
  EgressStateStore& state_;
  rd_kafka_s* producer_ = nullptr;  // recreated after a fatal producer error
  Environments environments_;       // as of the saved position

  struct FoldEntry {
    FoldedRelease release;
    std::list<std::string>::iterator age;
  };
  std::unordered_map<std::string, FoldEntry> folds_;
  std::list<std::string> fold_ages_;  // most recently used first

  // Delivery reports of the batch in flight (the runner's thread only).
  std::uint64_t batch_generation_ = 0;
  std::size_t acknowledged_ = 0;
  std::size_t refused_ = 0;
  std::string first_refusal_;
  bool refusal_timed_out_ = false;

  metrics::CounterFamily* published_metric_ = nullptr;
  metrics::CounterFamily* failed_metric_ = nullptr;
  mutable std::mutex stats_mutex_;
  Stats stats_;
};

}  // namespace cascade::adapters::kafka
