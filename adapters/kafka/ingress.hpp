// The CI ingress: a Kafka consumer-group member that turns build
// announcements (CDEvents, cdevents_in.hpp) into releases of every pipeline
// whose `artifact` trigger matches (engine/pipeline.hpp).
//
// Exactly-once effect: the CDEvent id is the create command's idempotency key
// (ReleaseService derives the ReleaseCreated event id from it and the
// pipeline), so a redelivered or republished record finds the release it
// created before. Offsets are committed only once everything a record caused
// is durable: its releases appended (WAL synced), or its dead-letter record
// acknowledged by the broker, or its skip counted. Auto commit is off.
//
// A malformed or schema-invalid record goes to `<topic>.dlq` with its key,
// value and headers, plus cascade_dlq_reason (a word: malformed, schema,
// artifact_id, custom_data, create_failed), cascade_dlq_detail (what exactly)
// and cascade_original_topic / _partition / _offset; the consumer goes on.
// A transient failure (the log, the broker for the DLQ) retries the same
// record with backoff and commits nothing meanwhile.
#pragma once

#include "adapters/kafka/cdevents_in.hpp"
#include "engine/pipeline.hpp"
#include "engine/reactor.hpp"
#include "engine/release_service.hpp"
#include "events/event_log.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

struct rd_kafka_s;
struct rd_kafka_message_s;

namespace cascade::adapters::metrics {
class MetricsRegistry;
class CounterFamily;
}  // namespace cascade::adapters::metrics

namespace cascade::adapters::kafka {

// The pipelines that have an `artifact` trigger, as of a log position: a
// reactor that folds PipelineDefined events, so the ingress matches a record
// against every pipeline defined before the record was read.
// Thread-safe.
class PipelineCatalog final : public engine::Reactor {
 public:
  static constexpr const char* kName = "kafka-ingress-pipelines";

  // Starts knowing `known` (latest definitions, e.g. read through the
  // pipelines projection) as of log position `known_as_of`, and follows the
  // log after it; an older PipelineDefined never replaces a newer one.
  explicit PipelineCatalog(std::vector<engine::StoredPipeline> known = {}, std::uint64_t known_as_of = 0);

  std::string name() const override { return kName; }
  Result<std::uint64_t> resume_position() override { return known_as_of_; }
  Status handle(const std::vector<events::RecordedEvent>& batch) override;

  // The pipelines with an artifact trigger once the catalog has handled the
  // log up to `position`. kUnavailable when that takes longer than `timeout`
  // (the engine is not running, or far behind).
  Result<std::vector<engine::PipelineDefinition>> pipelines_as_of(std::uint64_t position,
                                                                  std::chrono::milliseconds timeout) const;

 private:
  const std::uint64_t known_as_of_;
  mutable std::mutex mutex_;
  mutable std::condition_variable advanced_;
  std::uint64_t position_ = 0;  // guarded by mutex_
  std::map<std::string, engine::StoredPipeline> pipelines_;  // guarded by mutex_; artifact trigger only
  std::map<std::string, std::int64_t> versions_;            // guarded by mutex_; every pipeline seen
};

struct IngressOptions {
  std::string brokers;                 // bootstrap servers
  std::string topic = "cascade.builds";
  std::string group = "cascade";
  std::string dlq_topic;               // empty: <topic>.dlq
  std::string actor = "kafka-ingress";  // requested_by of the releases it creates
  // Extra librdkafka properties; they win over the defaults, except that
  // enable.auto.commit stays false and the DLQ producer stays idempotent.
  std::map<std::string, std::string> consumer_config;
  std::map<std::string, std::string> producer_config;
  // How long a dead-letter record may wait for the broker before the record
  // is tried again.
  std::chrono::milliseconds dlq_timeout{10'000};
  // How long to wait for the pipeline catalog to reach the log's head.
  std::chrono::milliseconds catalog_timeout{10'000};
  // How many times a record whose engine side fails transiently is tried
  // before it is dead-lettered with reason engine_error (>= 1; README).
  int max_attempts = 8;
  // When set, counts cascade_ingress_* there (see README). Must outlive the ingress.
  metrics::MetricsRegistry* metrics = nullptr;
  // Operator messages (broker errors, retries); default: stderr.
  std::function<void(const std::string&)> log;
};

class BuildIngress {
 public:
  // kInvalidArgument naming the problem for empty brokers/topic/group or a
  // property librdkafka refuses. Connecting happens in the background after
  // start(). `service`, `log` and `catalog` must outlive the ingress; the
  // catalog must be run by the engine's reactors.
  static Result<std::unique_ptr<BuildIngress>> create(IngressOptions options, engine::ReleaseService& service,
                                                      events::EventLog& log, const PipelineCatalog& catalog);
  ~BuildIngress();  // stops
  BuildIngress(const BuildIngress&) = delete;
  BuildIngress& operator=(const BuildIngress&) = delete;

  // Joins the group and consumes on a thread of its own.
  void start();
  // Finishes the record in hand, commits, leaves the group. Idempotent.
  void stop();

  struct Stats {
    std::uint64_t consumed = 0;       // records finished (created, skipped or dead-lettered) and committed
    std::uint64_t created = 0;        // releases created
    std::uint64_t redelivered = 0;    // creates that found the release of an earlier delivery
    std::uint64_t dead_lettered = 0;
    std::map<std::string, std::uint64_t> skipped;  // by reason
    std::uint64_t retries = 0;        // transient failures that made a record be tried again
    std::uint64_t gave_up = 0;        // records given up after max_attempts tries (then dead-lettered: engine_error)
  };
  // Thread-safe.
  Stats stats() const;

 private:
  struct Kafka;
  BuildIngress(IngressOptions options, engine::ReleaseService& service, events::EventLog& log,
               const PipelineCatalog& catalog);
  // What one try of a record came to.
  struct Outcome {
    enum class Kind {
      kFinished,                  // handled, skipped or dead-lettered, and committed
      kEngineFailed,              // a transient engine error: counts towards max_attempts
      kDeadLetterUnacknowledged,  // the broker did not take the dead letter: tried again without bound
    };
    Kind kind = Kind::kFinished;
    std::string error;  // what failed, unless finished
  };
  void run();
  // Tries `message` until it is finished (or the ingress stops), backing off
  // between tries and dead-lettering it after max_attempts engine failures.
  void handle(const rd_kafka_message_s& message);
  Outcome process(const rd_kafka_message_s& message);
  // `about` names the record for the operator's log line ("CDEvent ID from
  // SOURCE"); empty when it could not be read.
  Outcome dead_letter(const rd_kafka_message_s& message, const std::string& reason, const std::string& detail,
                      const std::string& about = "");
  void commit(const rd_kafka_message_s& message);
  void say(const std::string& text) const;

  IngressOptions options_;
  engine::ReleaseService& service_;
  events::EventLog& log_;
  const PipelineCatalog& catalog_;
  std::unique_ptr<Kafka> kafka_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::mutex wake_mutex_;
  std::condition_variable wake_;  // notified by stop(), ending a backoff early
  mutable std::mutex stats_mutex_;
  Stats stats_;  // guarded by stats_mutex_
  metrics::CounterFamily* consumed_metric_ = nullptr;
  metrics::CounterFamily* created_metric_ = nullptr;
  metrics::CounterFamily* redelivered_metric_ = nullptr;
  metrics::CounterFamily* skipped_metric_ = nullptr;
  metrics::CounterFamily* dead_lettered_metric_ = nullptr;
  metrics::CounterFamily* retries_metric_ = nullptr;
};

// The release a build announcement asks for in `pipeline`: artifact version
// from the purl, id, uri, built_at, and as path the local path of a file: URI
// or an absolute-path uri (so steps using CASCADE_ARTIFACT_PATH work).
engine::NewRelease release_request(const BuildAnnouncement& announcement, const std::string& pipeline);

// Whether `trigger` wants this announcement: its source pattern matches the
// CDEvent's context.source, subject.source or the artifact's purl without
// version; branch filters are checked separately (ArtifactTrigger::matches_branch).
bool source_matches(const engine::ArtifactTrigger& trigger, const BuildAnnouncement& announcement);

}  // namespace cascade::adapters::kafka
