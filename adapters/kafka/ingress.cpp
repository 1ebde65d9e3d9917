#include "adapters/kafka/ingress.hpp"

#include "adapters/kafka/cloudevents.hpp"
#include "adapters/kafka/properties.hpp"
#include "adapters/metrics/metrics.hpp"
#include "engine/artifact_version.hpp"
#include "engine/release.hpp"
#include "events/retry_backoff.hpp"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <iostream>

namespace cascade::adapters::kafka {

// ---- PipelineCatalog ---------------------------------------------------------

PipelineCatalog::PipelineCatalog(std::vector<engine::StoredPipeline> known, std::uint64_t known_as_of)
    : known_as_of_(known_as_of), position_(known_as_of) {
  for (engine::StoredPipeline& stored : known) {
    versions_[stored.definition.name] = stored.version;
    if (stored.definition.artifact) pipelines_[stored.definition.name] = std::move(stored);
  }
}

Status PipelineCatalog::handle(const std::vector<events::RecordedEvent>& batch) {
  std::vector<std::pair<std::int64_t, engine::PipelineDefinition>> defined;
  for (const events::RecordedEvent& event : batch) {
    const auto* pipeline = std::get_if<events::PipelineDefined>(&event.data);
    if (pipeline == nullptr) continue;
    auto definition = engine::parse_pipeline(pipeline->definition);
    // A stored definition was valid when it was applied; one that no longer
    // parses (a stricter build) cannot be matched, which is all this affects.
    if (!definition) {
      std::cerr << "cascade: kafka ingress: pipeline '" << pipeline->pipeline << "' version " << pipeline->version
                << " is not readable: " << definition.error().message << "\n";
      continue;
    }
    defined.emplace_back(pipeline->version, std::move(definition).value());
  }
  {
    std::lock_guard lock(mutex_);
    for (auto& [version, definition] : defined) {
      auto& seen = versions_[definition.name];
      if (version <= seen) continue;
      seen = version;
      if (definition.artifact) {
        const std::string name = definition.name;
        pipelines_[name] = engine::StoredPipeline{version, std::move(definition)};
      } else {
        pipelines_.erase(definition.name);
      }
    }
    position_ = std::max(position_, batch.back().position);
  }
  advanced_.notify_all();
  return success();
}

Result<std::vector<engine::PipelineDefinition>> PipelineCatalog::pipelines_as_of(
    std::uint64_t position, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  if (!advanced_.wait_for(lock, timeout, [&] { return position_ >= position; })) {
    return make_error(ErrorCode::kUnavailable, "the pipeline catalog is at log position " + std::to_string(position_) +
                                                   ", behind " + std::to_string(position) + " for " +
                                                   std::to_string(timeout.count()) + " ms");
  }
  std::vector<engine::PipelineDefinition> out;
  for (const auto& [name, stored] : pipelines_) out.push_back(stored.definition);
  return out;
}

// ---- matching ----------------------------------------------------------------

bool source_matches(const engine::ArtifactTrigger& trigger, const BuildAnnouncement& a) {
  return trigger.matches_source(a.cdevent.source) || trigger.matches_source(a.subject_source) ||
         trigger.matches_source(a.artifact.base);
}

engine::NewRelease release_request(const BuildAnnouncement& a, const std::string& pipeline) {
  engine::NewRelease request;
  request.pipeline = pipeline;
  request.artifact.version = a.artifact.version;
  request.artifact.id = a.artifact_id;
  request.artifact.uri = a.artifact_uri;
  request.artifact.built_at = a.built_at;
  constexpr std::string_view kFileScheme = "file://";
  if (a.artifact_uri.rfind(kFileScheme, 0) == 0) {
    // file:///abs/path or file://localhost/abs/path
    std::string rest = a.artifact_uri.substr(kFileScheme.size());
    if (rest.rfind("localhost/", 0) == 0) rest = rest.substr(std::string_view("localhost").size());
    if (!rest.empty() && rest[0] == '/') request.artifact.path = rest;
  } else if (!a.artifact_uri.empty() && a.artifact_uri[0] == '/' && a.artifact_uri.rfind("//", 0) != 0) {
    request.artifact.path = a.artifact_uri;
  }
  request.trigger = "ci: " + a.cdevent.source;
  request.trigger_cdevent = a.cdevent;
  return request;
}

// ---- BuildIngress --------------------------------------------------------------

namespace {

// "CDEvent ID from SOURCE" for a log line, from a record that may not be
// valid: control characters become '?' and each value is cut to 200 bytes,
// so a producer cannot forge or flood the server's log.
std::string cdevent_about(const nlohmann::json& cdevent) {
  auto field = [&](const char* name) -> std::string {
    const auto context = cdevent.find("context");
    if (context == cdevent.end() || !context->is_object()) return "?";
    const auto value = context->find(name);
    if (value == context->end() || !value->is_string()) return "?";
    std::string text = value->get<std::string>().substr(0, 200);
    for (char& c : text) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    }
    return text;
  };
  return "CDEvent " + field("id") + " from " + field("source");
}

bool is_transient(ErrorCode code) {
  return code == ErrorCode::kUnavailable || code == ErrorCode::kAborted || code == ErrorCode::kInternal ||
         code == ErrorCode::kDataLoss;
}

// Delivery state of one dead-letter record, written by the delivery callback.
struct Delivery {
  bool done = false;
  rd_kafka_resp_err_t error = RD_KAFKA_RESP_ERR_NO_ERROR;
};

void on_delivery(rd_kafka_t*, const rd_kafka_message_t* message, void*) {
  auto* delivery = static_cast<Delivery*>(message->_private);
  if (delivery == nullptr) return;
  delivery->done = true;
  delivery->error = message->err;
}

void on_error(rd_kafka_t*, int error, const char* reason, void* opaque) {
  const auto* log = static_cast<const std::function<void(const std::string&)>*>(opaque);
  const std::string text = std::string("kafka: ") + rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(error)) +
                           ": " + reason;
  if (log && *log) (*log)(text);
}

}  // namespace

struct BuildIngress::Kafka {
  rd_kafka_t* consumer = nullptr;
  rd_kafka_t* producer = nullptr;
  // The next offset to commit per partition, of records fully handled.
  std::map<std::pair<std::string, std::int32_t>, std::int64_t> handled;
  ~Kafka() {
    if (consumer) rd_kafka_destroy(consumer);
    if (producer) {
      rd_kafka_flush(producer, 1000);
      rd_kafka_destroy(producer);
    }
  }
};

BuildIngress::BuildIngress(IngressOptions options, engine::ReleaseService& service, events::EventLog& log,
                           const PipelineCatalog& catalog)
    : options_(std::move(options)), service_(service), log_(log), catalog_(catalog), kafka_(std::make_unique<Kafka>()) {}

Result<std::unique_ptr<BuildIngress>> BuildIngress::create(IngressOptions options, engine::ReleaseService& service,
                                                           events::EventLog& log, const PipelineCatalog& catalog) {
  if (options.brokers.empty()) return make_error(ErrorCode::kInvalidArgument, "kafka ingress: no brokers given");
  if (options.topic.empty()) return make_error(ErrorCode::kInvalidArgument, "kafka ingress: no builds topic given");
  if (options.group.empty()) return make_error(ErrorCode::kInvalidArgument, "kafka ingress: no consumer group given");
  if (options.max_attempts < 1) {
    return make_error(ErrorCode::kInvalidArgument,
                      "kafka ingress: max attempts must be at least 1, not " + std::to_string(options.max_attempts));
  }
  if (options.dlq_topic.empty()) options.dlq_topic = options.topic + ".dlq";
  if (!options.log) options.log = [](const std::string& text) { std::cerr << "cascade: " << text << "\n"; };
  std::unique_ptr<BuildIngress> ingress(new BuildIngress(std::move(options), service, log, catalog));
  const IngressOptions& o = ingress->options_;
  char errstr[512];

  // Latency first: a fetch returns as soon as one record is there, and an
  // idle fetch comes back after 2 ms — on the mock cluster publish → dev
  // triggered measured p50 9.8 ms with 10 ms and 6.7 ms with 2 ms (issue 7,
  // figure 5); brokers coming back are retried soon.
  std::map<std::string, std::string> consumer = {{"bootstrap.servers", o.brokers},
                                                 {"group.id", o.group},
                                                 {"enable.auto.commit", "false"},
                                                 {"enable.auto.offset.store", "false"},
                                                 {"auto.offset.reset", "earliest"},
                                                 {"fetch.wait.max.ms", "2"},
                                                 {"fetch.min.bytes", "1"},
                                                 {"fetch.error.backoff.ms", "50"},
                                                 {"socket.nagle.disable", "true"},
                                                 {"reconnect.backoff.ms", "50"},
                                                 {"reconnect.backoff.max.ms", "1000"},
                                                 // A server that died without leaving holds its partitions
                                                 // this long before the group moves on without it.
                                                 {"session.timeout.ms", "10000"},
                                                 {"heartbeat.interval.ms", "1000"},
                                                 {"log_level", "2"}};
  for (const auto& [key, value] : o.consumer_config) consumer[key] = value;
  consumer["enable.auto.commit"] = "false";
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  if (auto set = set_kafka_properties(conf, consumer, "kafka ingress consumer"); !set) {
    rd_kafka_conf_destroy(conf);
    return set.error();
  }
  rd_kafka_conf_set_error_cb(conf, on_error);
  rd_kafka_conf_set_opaque(conf, const_cast<std::function<void(const std::string&)>*>(&o.log));
  ingress->kafka_->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (!ingress->kafka_->consumer) {
    rd_kafka_conf_destroy(conf);
    return make_error(ErrorCode::kInvalidArgument, std::string("kafka consumer: ") + errstr);
  }
  rd_kafka_poll_set_consumer(ingress->kafka_->consumer);

  std::map<std::string, std::string> producer = {{"bootstrap.servers", o.brokers},
                                                 {"linger.ms", "1"},
                                                 {"socket.nagle.disable", "true"},
                                                 {"reconnect.backoff.ms", "50"},
                                                 {"reconnect.backoff.max.ms", "1000"},
                                                 {"message.timeout.ms", std::to_string(o.dlq_timeout.count())},
                                                 {"log_level", "2"}};
  for (const auto& [key, value] : o.producer_config) producer[key] = value;
  producer["enable.idempotence"] = "true";
  producer["acks"] = "all";
  conf = rd_kafka_conf_new();
  if (auto set = set_kafka_properties(conf, producer, "kafka ingress dead-letter producer"); !set) {
    rd_kafka_conf_destroy(conf);
    return set.error();
  }
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_conf_set_error_cb(conf, on_error);
  rd_kafka_conf_set_opaque(conf, const_cast<std::function<void(const std::string&)>*>(&o.log));
  ingress->kafka_->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!ingress->kafka_->producer) {
    rd_kafka_conf_destroy(conf);
    return make_error(ErrorCode::kInvalidArgument, std::string("kafka DLQ producer: ") + errstr);
  }

  if (o.metrics != nullptr) {
    auto family = [&](const std::string& name, const std::string& help,
                      const std::vector<std::string>& labels) -> Result<metrics::CounterFamily*> {
      return o.metrics->counter(name, help, labels);
    };
    CASCADE_TRY(consumed, family("cascade_ingress_records_total", "build records consumed and committed", {}));
    CASCADE_TRY(created, family("cascade_ingress_releases_created_total", "releases created from build records", {}));
    CASCADE_TRY(redelivered, family("cascade_ingress_redelivered_total",
                                    "creates that found the release of an earlier delivery of the same CDEvent", {}));
    CASCADE_TRY(skipped, family("cascade_ingress_skipped_total", "build records that create nothing, by reason",
                                {"reason"}));
    CASCADE_TRY(dead, family("cascade_ingress_dead_lettered_total", "build records sent to the dead-letter topic",
                             {"reason"}));
    CASCADE_TRY(retries, family("cascade_ingress_retries_total",
                                "records tried again after a transient failure (log or broker)", {}));
    ingress->consumed_metric_ = consumed;
    ingress->created_metric_ = created;
    ingress->redelivered_metric_ = redelivered;
    ingress->skipped_metric_ = skipped;
    ingress->dead_lettered_metric_ = dead;
    ingress->retries_metric_ = retries;
  }
  return ingress;
}

BuildIngress::~BuildIngress() { stop(); }

void BuildIngress::start() {
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, options_.topic.c_str(), RD_KAFKA_PARTITION_UA);
  const rd_kafka_resp_err_t err = rd_kafka_subscribe(kafka_->consumer, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) say("kafka ingress: subscribe: " + std::string(rd_kafka_err2str(err)));
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void BuildIngress::stop() {
  {
    // Under the mutex, so a backoff between its check and its wait cannot miss it.
    std::lock_guard lock(wake_mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (kafka_->consumer == nullptr) return;
  // The last commits synchronously: a commit lost here only means a
  // redelivery, which the idempotency key absorbs.
  if (!kafka_->handled.empty()) {
    rd_kafka_topic_partition_list_t* offsets = rd_kafka_topic_partition_list_new(static_cast<int>(kafka_->handled.size()));
    for (const auto& [partition, offset] : kafka_->handled) {
      rd_kafka_topic_partition_list_add(offsets, partition.first.c_str(), partition.second)->offset = offset;
    }
    rd_kafka_commit(kafka_->consumer, offsets, 0);
    rd_kafka_topic_partition_list_destroy(offsets);
    kafka_->handled.clear();
  }
  rd_kafka_consumer_close(kafka_->consumer);
  rd_kafka_destroy(kafka_->consumer);
  kafka_->consumer = nullptr;
}

BuildIngress::Stats BuildIngress::stats() const {
  std::lock_guard lock(stats_mutex_);
  return stats_;
}

void BuildIngress::say(const std::string& text) const { options_.log(text); }

void BuildIngress::run() {
  while (!stopping_) {
    rd_kafka_message_t* message = rd_kafka_consumer_poll(kafka_->consumer, 100);
    if (message == nullptr) continue;
    if (message->err) {
      if (message->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        say("kafka ingress: " + std::string(rd_kafka_message_errstr(message)));
      }
      rd_kafka_message_destroy(message);
      continue;
    }
    handle(*message);
    rd_kafka_message_destroy(message);
  }
}

void BuildIngress::handle(const rd_kafka_message_t& message) {
  constexpr std::chrono::milliseconds kFirstBackoff{50};
  constexpr std::chrono::milliseconds kMaxBackoff{2000};
  // Seeded per record from the system's entropy: servers (and records) that
  // failed at the same moment draw different waits.
  events::RetryBackoff backoff(kFirstBackoff, kMaxBackoff, std::random_device{}());
  int engine_failures = 0;
  std::string engine_error;  // the last one, once the record is given up
  for (int retry = 0; !stopping_; ++retry) {
    Outcome outcome;
    if (engine_error.empty()) {
      outcome = process(message);
      if (outcome.kind == Outcome::Kind::kEngineFailed && ++engine_failures >= options_.max_attempts) {
        // Given up: from now on only its dead letter is tried again.
        engine_error = std::to_string(engine_failures) + " attempts failed; the last: " + outcome.error;
        say("kafka ingress: giving up on " + std::string(rd_kafka_topic_name(message.rkt)) + "/" +
            std::to_string(message.partition) + "@" + std::to_string(message.offset) + " after " + engine_error +
            "; dead-lettering it (engine_error)");
        {
          std::lock_guard lock(stats_mutex_);
          ++stats_.gave_up;
        }
      }
    }
    if (!engine_error.empty()) outcome = dead_letter(message, "engine_error", engine_error);
    if (outcome.kind == Outcome::Kind::kFinished) return;
    {
      std::lock_guard lock(stats_mutex_);
      ++stats_.retries;
    }
    if (retries_metric_) retries_metric_->with({}).inc();
    // On the steady clock, so a step of the wall clock neither stretches
    // nor skips it; stop() cuts it short.
    const auto until = std::chrono::steady_clock::now() + backoff.wait_before(retry);
    std::unique_lock lock(wake_mutex_);
    wake_.wait_until(lock, until, [&] { return stopping_.load(); });
  }
}

namespace {

Record record_of(const rd_kafka_message_t& message) {
  Record record;
  if (message.key) record.key.assign(static_cast<const char*>(message.key), message.key_len);
  if (message.payload) record.value.assign(static_cast<const char*>(message.payload), message.len);
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(&message, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR && headers) {
    const char* name = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    for (size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
      record.headers.push_back({name, value ? std::string(static_cast<const char*>(value), size) : std::string()});
    }
  }
  return record;
}

}  // namespace

BuildIngress::Outcome BuildIngress::process(const rd_kafka_message_t& message) {
  const Record record = record_of(message);
  auto decoded = decode_cdevent(record);
  if (!decoded) return dead_letter(message, "malformed", decoded.error().message);
  const Reading reading = read_build_announcement(decoded.value().cdevent);
  const std::string about = cdevent_about(decoded.value().cdevent);
  auto skip = [&](const std::string& reason) {
    // Builds that create nothing are expected on a shared topic, but the
    // one a team waits for must be findable: one line each.
    say("kafka ingress: skipped " + about + ": " + reason);
    commit(message);
    {
      std::lock_guard lock(stats_mutex_);
      ++stats_.skipped[reason];
    }
    if (skipped_metric_) skipped_metric_->with({reason}).inc();
    return Outcome{};
  };
  if (reading.kind == Reading::Kind::kInvalid) return dead_letter(message, reading.reason, reading.detail, about);
  if (reading.kind == Reading::Kind::kSkipped) return skip(reading.reason);

  const BuildAnnouncement& announcement = reading.announcement;
  // Every pipeline defined before the record was read takes part.
  const std::uint64_t head = log_.head();
  auto pipelines = catalog_.pipelines_as_of(head, options_.catalog_timeout);
  if (!pipelines) {
    say("kafka ingress: " + pipelines.error().message);
    return Outcome{Outcome::Kind::kEngineFailed, pipelines.error().message};
  }
  std::vector<std::string> wanted;
  bool any_source = false;
  for (const engine::PipelineDefinition& pipeline : pipelines.value()) {
    if (!source_matches(*pipeline.artifact, announcement)) continue;
    any_source = true;
    if (pipeline.artifact->matches_branch(announcement.branch)) wanted.push_back(pipeline.name);
  }
  if (wanted.empty()) return skip(any_source ? "branch_filtered" : "no_matching_pipeline");

  std::string failures;
  bool only_artifact_failures = true;  // then the dead-letter reason says `artifact`
  std::uint64_t created = 0;
  std::uint64_t redelivered = 0;
  for (const std::string& pipeline : wanted) {
    const engine::Invocation invocation{options_.actor, announcement.cdevent.id, announcement.cdevent.id};
    const engine::NewRelease request = release_request(announcement, pipeline);
    if (!request.artifact.path.empty()) {
      if (auto missing = engine::missing_artifact(request.artifact.path)) {
        failures += (failures.empty() ? "" : "; ") + ("pipeline " + pipeline + ": artifact.path: " + *missing);
        continue;
      }
    }
    auto release = service_.create_release(request, invocation);
    if (!release) {
      if (is_transient(release.error().code)) {
        const std::string error = "creating a release of " + pipeline + " for CDEvent " + announcement.cdevent.id +
                                  " failed: " + release.error().message;
        say("kafka ingress: " + error);
        return Outcome{Outcome::Kind::kEngineFailed, error};
      }
      failures += (failures.empty() ? "" : "; ") + ("pipeline " + pipeline + ": " + release.error().message);
      const auto& details = release.error().details;
      only_artifact_failures = only_artifact_failures && !details.empty() &&
                               std::all_of(details.begin(), details.end(), [](const Problem& problem) {
                                 return problem.path.rfind("artifact.path", 0) == 0;
                               });
      continue;
    }
    // New, or the release an earlier delivery created (its first event is older).
    auto first = log_.read(engine::release_stream(release.value()), 1, 1);
    if (first && !first.value().empty() && first.value().front().position <= head) {
      ++redelivered;
    } else {
      ++created;
    }
  }
  {
    std::lock_guard lock(stats_mutex_);
    stats_.created += created;
    stats_.redelivered += redelivered;
  }
  if (created_metric_ && created) created_metric_->with({}).inc(static_cast<double>(created));
  if (redelivered_metric_ && redelivered) redelivered_metric_->with({}).inc(static_cast<double>(redelivered));
  if (!failures.empty()) {
    return dead_letter(message, only_artifact_failures ? "artifact" : "create_failed", failures, about);
  }
  commit(message);
  return Outcome{};
}

BuildIngress::Outcome BuildIngress::dead_letter(const rd_kafka_message_t& message, const std::string& reason,
                               const std::string& detail, const std::string& about) {
  rd_kafka_headers_t* headers = nullptr;
  rd_kafka_headers_t* original = nullptr;
  if (rd_kafka_message_headers(&message, &original) == RD_KAFKA_RESP_ERR_NO_ERROR && original) {
    headers = rd_kafka_headers_copy(original);
  } else {
    headers = rd_kafka_headers_new(5);
  }
  const std::string topic = rd_kafka_topic_name(message.rkt);
  const std::string partition = std::to_string(message.partition);
  const std::string offset = std::to_string(message.offset);
  // A header value is bounded so that a huge list of problems cannot make
  // the record too large for the broker.
  constexpr std::size_t kMaxDetail = 4000;
  const std::string bounded = detail.size() > kMaxDetail ? detail.substr(0, kMaxDetail) + "…" : detail;
  rd_kafka_header_add(headers, "cascade_dlq_reason", -1, reason.data(), static_cast<ssize_t>(reason.size()));
  rd_kafka_header_add(headers, "cascade_dlq_detail", -1, bounded.data(), static_cast<ssize_t>(bounded.size()));
  rd_kafka_header_add(headers, "cascade_original_topic", -1, topic.data(), static_cast<ssize_t>(topic.size()));
  rd_kafka_header_add(headers, "cascade_original_partition", -1, partition.data(),
                      static_cast<ssize_t>(partition.size()));
  rd_kafka_header_add(headers, "cascade_original_offset", -1, offset.data(), static_cast<ssize_t>(offset.size()));

  Delivery delivery;
  const rd_kafka_resp_err_t err = rd_kafka_producev(
      kafka_->producer, RD_KAFKA_V_TOPIC(options_.dlq_topic.c_str()),
      RD_KAFKA_V_KEY(message.key, message.key_len), RD_KAFKA_V_VALUE(message.payload, message.len),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(&delivery),
      RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_headers_destroy(headers);
    const std::string error = "dead-letter produce to " + options_.dlq_topic + ": " + rd_kafka_err2str(err);
    say("kafka ingress: " + error);
    return Outcome{Outcome::Kind::kDeadLetterUnacknowledged, error};
  }
  // Acknowledged before the commit: flush until its delivery report arrives.
  while (!delivery.done) rd_kafka_flush(kafka_->producer, 100);
  if (delivery.error != RD_KAFKA_RESP_ERR_NO_ERROR) {
    const std::string error = "dead-letter record for " + topic + "/" + partition + "@" + offset +
                              " not acknowledged, the record is held: " + rd_kafka_err2str(delivery.error);
    say("kafka ingress: " + error);
    char fatal[256];
    if (rd_kafka_fatal_error(kafka_->producer, fatal, sizeof fatal) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      say(std::string("kafka ingress: the DLQ producer failed fatally: ") + fatal);
    }
    return Outcome{Outcome::Kind::kDeadLetterUnacknowledged, error};
  }
  commit(message);
  say("kafka ingress: dead-lettered " + (about.empty() ? "" : about + ", ") + "record " + topic + "/" + partition +
      "@" + offset + ", to " + options_.dlq_topic + ": " + reason + ": " + bounded);
  {
    std::lock_guard lock(stats_mutex_);
    ++stats_.dead_lettered;
  }
  if (dead_lettered_metric_) dead_lettered_metric_->with({reason}).inc();
  return Outcome{};
}

void BuildIngress::commit(const rd_kafka_message_t& message) {
  const std::string topic = rd_kafka_topic_name(message.rkt);
  kafka_->handled[{topic, message.partition}] = message.offset + 1;
  rd_kafka_topic_partition_list_t* offsets = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(offsets, topic.c_str(), message.partition)->offset = message.offset + 1;
  // Asynchronous: the record's effects are durable already, so a lost
  // commit only means a redelivery, which the idempotency key absorbs.
  const rd_kafka_resp_err_t err = rd_kafka_commit(kafka_->consumer, offsets, 1);
  rd_kafka_topic_partition_list_destroy(offsets);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) say("kafka ingress: commit: " + std::string(rd_kafka_err2str(err)));
  {
    std::lock_guard lock(stats_mutex_);
    ++stats_.consumed;
  }
  if (consumed_metric_) consumed_metric_->with({}).inc();
}

}  // namespace cascade::adapters::kafka
