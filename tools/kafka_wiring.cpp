#include "tools/kafka_wiring.hpp"

#include "adapters/kafka/properties.hpp"
#include "adapters/rocksdb/rocksdb_env.hpp"

#include "engine/release.hpp"
#include "projections/pipeline_versions.hpp"

#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

namespace cascade::tools {

namespace kafka = adapters::kafka;

KafkaServeOptions& kafka_serve_options() {
  static KafkaServeOptions options;
  return options;
}

void add_kafka_serve_options(CLI::App& serve) {
  KafkaServeOptions& o = kafka_serve_options();
  serve.add_option("--kafka", o.brokers,
                   "Kafka bootstrap servers (host:port,...): consume CI build CDEvents and publish deployment CDEvents");
  serve.add_option("--builds-topic", o.builds_topic, "topic of CI build CDEvents (dead letters go to <topic>.dlq)")
      ->capture_default_str();
  serve.add_option("--group", o.group, "consumer group of the build ingress")->capture_default_str();
  serve.add_option("--events-topic", o.events_topic, "topic Cascade publishes its CDEvents to")
      ->capture_default_str();
  serve.add_option("--cloudevents-mode", o.cloudevents_mode, "binary or structured CloudEvents on the events topic")
      ->check(CLI::IsMember({"binary", "structured"}))
      ->capture_default_str();
  serve.add_option("--kafka-max-attempts", o.max_attempts,
                   "tries of a build record the engine fails on transiently before it goes to the dead-letter topic "
                   "(reason engine_error), so its partition moves on")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  serve.add_option("--kafka-config", o.config_file,
                   "librdkafka properties for every Kafka client, one key=value a line (e.g. security.protocol, "
                   "sasl.*, ssl.*); values are never printed");
  serve.add_option("--kafka-property", o.properties, "a librdkafka property key=value (repeatable; wins over the file)");
}

Result<adapters::kafka::KafkaProperties> kafka_properties(const KafkaServeOptions& options) {
  adapters::kafka::KafkaProperties properties;
  if (!options.config_file.empty()) {
    std::ifstream in(options.config_file);
    if (!in) return make_error(ErrorCode::kInvalidArgument, "--kafka-config '" + options.config_file + "' cannot be read");
    std::stringstream text;
    text << in.rdbuf();
    CASCADE_TRY(read, adapters::kafka::parse_kafka_properties(text.str(), options.config_file));
    properties = std::move(read);
  }
  for (const std::string& property : options.properties) {
    CASCADE_TRY(one, adapters::kafka::parse_kafka_properties(property, "--kafka-property"));
    for (auto& [key, value] : one) properties[key] = std::move(value);
  }
  return properties;
}

namespace {

// The catalog starts from the pipelines read model (so a start does not
// replay the log) as of its checkpoint, reading each pipeline's latest
// definition from the log itself; it follows the log from there.
Result<std::unique_ptr<kafka::PipelineCatalog>> open_catalog(Runtime& runtime) {
  projections::PipelineProjection& pipelines = runtime.projections().pipelines();
  CASCADE_TRY(checkpoint, pipelines.checkpoint());  // before the contents: they cover at least this much
  CASCADE_TRY(entries, pipelines.contents());
  std::set<std::string> names;
  for (const auto& entry : entries) {
    if (entry.family != projections::PipelineProjection::kVersionsFamily) continue;
    names.insert(entry.key.substr(0, entry.key.find('\0')));
  }
  std::vector<engine::StoredPipeline> known;
  for (const std::string& name : names) {
    auto stored = runtime.service().load_pipeline(name);
    if (!stored) {
      std::cerr << "cascade serve: kafka ingress: pipeline '" << name << "' is not readable: "
                << stored.error().message << "\n";
      continue;
    }
    known.push_back(std::move(stored).value());
  }
  return std::make_unique<kafka::PipelineCatalog>(std::move(known), checkpoint);
}

}  // namespace

Result<std::unique_ptr<KafkaEdges>> KafkaEdges::attach(const KafkaServeOptions& options, Runtime& runtime,
                                                       adapters::metrics::MetricsRegistry& metrics) {
  std::unique_ptr<KafkaEdges> edges(new KafkaEdges());
  if (options.brokers.empty()) return edges;
  auto log = [](const std::string& text) { std::cerr << "cascade serve: " << text << "\n"; };

  CASCADE_TRY(catalog, open_catalog(runtime));
  edges->catalog_ = std::move(catalog);
  CASCADE_TRY(properties, kafka_properties(options));
  kafka::IngressOptions ingress;
  ingress.brokers = options.brokers;
  ingress.consumer_config = properties;
  ingress.producer_config = properties;
  ingress.topic = options.builds_topic;
  ingress.group = options.group;
  ingress.max_attempts = options.max_attempts;
  ingress.metrics = &metrics;
  ingress.log = log;
  CASCADE_TRY(consumer, kafka::BuildIngress::create(std::move(ingress), runtime.service(), runtime.log(),
                                                    *edges->catalog_));
  edges->ingress_ = std::move(consumer);
  runtime.add_observer(*edges->catalog_);

  if (!options.events_topic.empty()) {
    CASCADE_TRY(state, kafka::EgressStateStore::open(runtime.data_dir() + "/cdevents-egress", adapters::rocksdb_env()));
    edges->egress_state_ = std::move(state);
    kafka::EgressOptions egress;
    egress.brokers = options.brokers;
    egress.producer_config = properties;
    egress.topic = options.events_topic;
    egress.mode = options.cloudevents_mode == "structured" ? kafka::CloudEventsMode::kStructured
                                                           : kafka::CloudEventsMode::kBinary;
    egress.metrics = &metrics;
    CASCADE_TRY(reactor, kafka::CdEventsEgress::create(std::move(egress), runtime.log(), *edges->egress_state_));
    edges->egress_ = std::move(reactor);
    runtime.add_observer(*edges->egress_);
  }
  std::cout << "cascade serve: kafka " << options.brokers << ": builds from " << options.builds_topic << " (group "
            << options.group << ")"
            << (options.events_topic.empty() ? std::string()
                                             : ", CDEvents to " + options.events_topic + " (" +
                                                   options.cloudevents_mode + ")")
            << "\n"
            << std::flush;
  return edges;
}

KafkaEdges::~KafkaEdges() { stop(); }

void KafkaEdges::start() {
  if (ingress_) ingress_->start();
}

void KafkaEdges::stop() {
  if (ingress_) ingress_->stop();
}

}  // namespace cascade::tools
