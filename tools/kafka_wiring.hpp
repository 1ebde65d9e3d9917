// `cascade serve --kafka BROKERS`: the Kafka edges of the server — the CI
// ingress (adapters/kafka/ingress.hpp: build CDEvents → releases) and the
// CDEvents egress (adapters/kafka/egress.hpp: what Cascade deploys → a
// topic) — and the `dev-kafka` / `publish-build` commands. Composition only.
#pragma once

#include "adapters/metrics/metrics.hpp"
#include "adapters/kafka/cloudevents.hpp"
#include "adapters/kafka/egress.hpp"
#include "adapters/kafka/ingress.hpp"
#include "adapters/kafka/properties.hpp"
#include "tools/cli_support.hpp"
#include "adapters/runtime/runtime.hpp"

#include <CLI/CLI.hpp>

#include <memory>
#include <string>
#include <vector>

namespace cascade::tools {

struct KafkaServeOptions {
  std::string brokers;  // --kafka; empty: no Kafka edges
  std::string builds_topic = "cascade.builds";
  std::string group = "cascade";
  std::string events_topic = "cascade.cdevents";  // empty: no egress
  std::string cloudevents_mode = "binary";        // of the egress: binary | structured
  // Tries of a build record the engine fails on before it is dead-lettered
  // (reason engine_error): --kafka-max-attempts.
  int max_attempts = adapters::kafka::IngressOptions{}.max_attempts;
  // librdkafka properties for every client (SASL/SSL, timeouts…):
  // --kafka-config FILE (key=value lines), then --kafka-property key=value,
  // which wins over the file.
  std::string config_file;
  std::vector<std::string> properties;
};

// The librdkafka properties of --kafka-config and --kafka-property, the
// flags winning; kInvalidArgument naming the file and line of a bad one.
Result<adapters::kafka::KafkaProperties> kafka_properties(const KafkaServeOptions& options);

// The options `serve` was given (filled when the command line is parsed).
KafkaServeOptions& kafka_serve_options();
// Adds --kafka, --builds-topic, --group, --events-topic, --cloudevents-mode,
// --kafka-max-attempts, --kafka-config and --kafka-property to the serve
// subcommand, bound to kafka_serve_options().
void add_kafka_serve_options(CLI::App& serve);

// The running edges of one server. Without brokers every method does nothing.
class KafkaEdges {
 public:
  // REQUIRES: before runtime.start(): adds the ingress's pipeline catalog and
  // the egress reactor to the runtime. kInvalidArgument for a bad option
  // (naming it); the egress's state lives in <data>/cdevents-egress.
  static Result<std::unique_ptr<KafkaEdges>> attach(const KafkaServeOptions& options, Runtime& runtime,
                                                    adapters::metrics::MetricsRegistry& metrics);
  ~KafkaEdges();  // stops
  // After runtime.start(): the ingress joins its consumer group.
  void start();
  // Before runtime.stop(): the ingress finishes its record, commits and leaves.
  void stop();

 private:
  KafkaEdges() = default;
  std::unique_ptr<adapters::kafka::PipelineCatalog> catalog_;
  std::unique_ptr<adapters::kafka::BuildIngress> ingress_;
  std::unique_ptr<adapters::kafka::EgressStateStore> egress_state_;
  std::unique_ptr<adapters::kafka::CdEventsEgress> egress_;
};

// dev-kafka and publish-build (kafka_commands.cpp).
void add_kafka_commands(CLI::App& app, Common& common, int& exit_code);

}  // namespace cascade::tools
