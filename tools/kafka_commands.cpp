// `cascade dev-kafka` (the development broker) and `cascade publish-build`
// (what a CI job runs to announce a build).
#include "adapters/kafka/cdevents_in.hpp"
#include "adapters/kafka/cloudevents.hpp"
#include "adapters/kafka/mock_cluster.hpp"
#include "events/codec.hpp"
#include "events/time.hpp"
#include "tools/kafka_wiring.hpp"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <iostream>
#include <pthread.h>
#include <sstream>
#include <thread>

namespace cascade::tools {
namespace {

namespace kafka = adapters::kafka;

struct DevKafkaOptions {
  int brokers = 3;
  int partitions = 3;
  std::vector<std::string> topics = {"cascade.builds", "cascade.builds.dlq", "cascade.cdevents"};
};

int dev_kafka(const DevKafkaOptions& options, bool json) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // before librdkafka starts its threads

  if (options.brokers < 1 || options.brokers > 16) {
    return report(make_error(ErrorCode::kInvalidArgument, "--brokers must be between 1 and 16"), json);
  }
  if (options.partitions < 1 || options.partitions > 64) {
    return report(make_error(ErrorCode::kInvalidArgument, "--partitions must be between 1 and 64"), json);
  }
  auto cluster = kafka::MockCluster::start(options.brokers);
  if (!cluster) return report(cluster.error(), json);
  for (const std::string& topic : options.topics) {
    if (auto created = cluster.value()->create_topic(topic, options.partitions, options.brokers); !created) {
      return report(created.error(), json);
    }
  }
  if (json) {
    std::cout << nlohmann::json{{"bootstrap_servers", cluster.value()->bootstrap_servers()},
                                {"brokers", options.brokers},
                                {"topics", options.topics}}
                     .dump()
              << "\n"
              << std::flush;
  } else {
    std::cout << "bootstrap.servers=" << cluster.value()->bootstrap_servers() << "\n" << std::flush;
    std::cerr << "cascade dev-kafka: " << options.brokers << " mock brokers on loopback (in memory, no "
              << "transactions); topics";
    for (const std::string& topic : options.topics) std::cerr << " " << topic;
    std::cerr << "; stop with Ctrl-C\n";
  }
  int received = 0;
  sigwait(&signals, &received);
  return 0;
}

struct PublishOptions {
  std::string brokers;
  std::string topic = "cascade.builds";
  std::string source;
  std::string artifact;
  std::string version;
  std::string branch;
  std::string uri;
  std::string id;
  bool structured = false;
  int timeout_s = 30;
  bool wait = false;       // then print the releases the build created, from the server
  int wait_timeout_s = 60;
};

// RFC 3986 unreserved characters stay; everything else in a purl version is %-encoded.
std::string purl_encode(std::string_view text) {
  std::string out;
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string now_rfc3339() {
  const auto now = std::chrono::system_clock::now();
  return events::format_rfc3339(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count());
}

// The artifact.published CDEvent for these options; kInvalidArgument naming
// the option that makes it invalid.
Result<nlohmann::json> build_cdevent(const PublishOptions& o) {
  if (!kafka::is_uri_reference(o.source) || o.source.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "--source '" + o.source + "' is not a URI reference (e.g. /ci/shop)");
  }
  if (o.version.empty()) return make_error(ErrorCode::kInvalidArgument, "--version is empty");
  CASCADE_TRY(purl, kafka::parse_purl(o.artifact));
  std::string purl_text = o.artifact;
  if (!purl.version.empty()) {
    if (purl.version != o.version) {
      return make_error(ErrorCode::kInvalidArgument, "--artifact '" + o.artifact + "' names version '" + purl.version +
                                                         "', --version says '" + o.version + "'");
    }
  } else {
    // The version goes before any qualifiers or subpath.
    const auto tail = purl_text.find_first_of("?#");
    purl_text.insert(tail == std::string::npos ? purl_text.size() : tail, "@" + purl_encode(o.version));
  }
  if (!o.uri.empty() && !kafka::is_uri_reference(o.uri)) {
    return make_error(ErrorCode::kInvalidArgument, "--uri '" + o.uri + "' is not a URI reference");
  }
  nlohmann::json custom = nlohmann::json::object();
  if (!o.branch.empty()) custom["branch"] = o.branch;
  if (!o.uri.empty()) custom["uri"] = o.uri;
  nlohmann::json cdevent = {
      {"context",
       {{"specversion", "0.5.1"},
        {"id", o.id.empty() ? events::random_uuid() : o.id},
        {"source", o.source},
        {"type", std::string(kafka::kArtifactPublishedType)},
        {"timestamp", now_rfc3339()}}},
      {"subject", {{"id", purl_text}, {"source", o.source}, {"content", nlohmann::json::object()}}}};
  if (!custom.empty()) cdevent["customData"] = custom;
  // What we send must be what we accept.
  const kafka::Reading reading = kafka::read_build_announcement(cdevent);
  if (reading.kind != kafka::Reading::Kind::kAnnouncement) {
    return make_error(ErrorCode::kInvalidArgument, "the CDEvent would be refused (" + reading.reason + "): " +
                                                       reading.detail);
  }
  return cdevent;
}

struct Acknowledgement {
  bool done = false;
  rd_kafka_resp_err_t error = RD_KAFKA_RESP_ERR_NO_ERROR;
};

// The releases the CDEvent `id` created, as the server lists them: polled
// until there is one (the ingress creates every release of one build in one
// go) or `o.wait_timeout_s` passes. kNotFound then, saying where to look.
Result<nlohmann::json> releases_created_by(const Common& common, const PublishOptions& o, const std::string& id) {
  CASCADE_TRY(client, api_client(common));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(o.wait_timeout_s);
  auto pause = std::chrono::milliseconds(50);
  for (;;) {
    CASCADE_TRY(page, client.get("/api/v1/releases?cdevent=" + url_encode(id)));
    if (!page["releases"].empty()) return page["releases"];
    if (std::chrono::steady_clock::now() + pause > deadline) {
      return make_error(ErrorCode::kNotFound,
                        "no release created by CDEvent " + id + " within " + std::to_string(o.wait_timeout_s) +
                            "s: no pipeline may trigger on " + o.artifact +
                            ", or the server skipped or dead-lettered the build (its log says which and why)");
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(1000));
  }
}

int publish_build(const PublishOptions& o, const Common& common) {
  const bool json = common.json;
  auto cdevent = build_cdevent(o);
  if (!cdevent) return report(cdevent.error(), json);
  auto purl = kafka::parse_purl(cdevent.value()["subject"]["id"].get<std::string>());
  // Keyed by the artifact: one artifact's builds stay in order on one partition.
  const kafka::Record record = kafka::encode_cdevent(
      cdevent.value(), o.structured ? kafka::CloudEventsMode::kStructured : kafka::CloudEventsMode::kBinary,
      purl ? purl.value().base : o.artifact);

  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  const std::map<std::string, std::string> properties = {
      {"bootstrap.servers", o.brokers},  {"enable.idempotence", "true"}, {"acks", "all"},
      {"linger.ms", "0"},                {"socket.nagle.disable", "true"},
      {"message.timeout.ms", std::to_string(o.timeout_s * 1000)}, {"log_level", "3"}};
  for (const auto& [key, value] : properties) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return report(make_error(ErrorCode::kInvalidArgument, key + ": " + errstr), json);
    }
  }
  rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t*, const rd_kafka_message_t* message, void*) {
    auto* ack = static_cast<Acknowledgement*>(message->_private);
    ack->done = true;
    ack->error = message->err;
  });
  rd_kafka_t* producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!producer) {
    rd_kafka_conf_destroy(conf);
    return report(make_error(ErrorCode::kInvalidArgument, errstr), json);
  }
  rd_kafka_headers_t* headers = rd_kafka_headers_new(record.headers.size());
  for (const auto& h : record.headers) {
    rd_kafka_header_add(headers, h.key.c_str(), -1, h.value.data(), static_cast<ssize_t>(h.value.size()));
  }
  Acknowledgement ack;
  rd_kafka_resp_err_t err = rd_kafka_producev(
      producer, RD_KAFKA_V_TOPIC(o.topic.c_str()), RD_KAFKA_V_KEY(record.key.data(), record.key.size()),
      RD_KAFKA_V_VALUE(const_cast<char*>(record.value.data()), record.value.size()),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(&ack), RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_headers_destroy(headers);
  } else {
    while (!ack.done) rd_kafka_flush(producer, 100);
    err = ack.error;
  }
  rd_kafka_destroy(producer);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return report(make_error(ErrorCode::kUnavailable, "publishing to " + o.topic + " at " + o.brokers + ": " +
                                                          rd_kafka_err2str(err)),
                  json);
  }
  const std::string id = cdevent.value()["context"]["id"].get<std::string>();
  nlohmann::json published = {{"id", id}, {"topic", o.topic}, {"cdevent", cdevent.value()}};
  if (!json) std::cout << id << "\n" << std::flush;
  if (o.wait) {
    auto releases = releases_created_by(common, o, id);
    if (!releases) return report(releases.error(), json);  // the message names the CDEvent id
    published["releases"] = releases.value();
    if (!json) {
      for (const nlohmann::json& release : releases.value()) {
        std::cout << "created " << release.value("id", "") << " (" << release.value("name", "") << ") of "
                  << release.value("pipeline", "") << "\n";
      }
    }
  }
  if (json) std::cout << published.dump() << "\n";
  return 0;
}

}  // namespace

void add_kafka_commands(CLI::App& app, Common& common, int& exit_code) {
  auto dev = std::make_shared<DevKafkaOptions>();
  auto* dev_command = app.add_subcommand(
      "dev-kafka", "run librdkafka's mock Kafka cluster on loopback for development and tests, until SIGINT/SIGTERM");
  dev_command->add_option("--brokers", dev->brokers, "number of brokers")->capture_default_str();
  dev_command->add_option("--partitions", dev->partitions, "partitions per topic")->capture_default_str();
  dev_command->add_option("--topics", dev->topics, "topics to create")->delimiter(',')->capture_default_str();
  dev_command->add_flag("--json", common.json, "print {\"bootstrap_servers\", ...} as JSON");
  dev_command->callback([&common, &exit_code, dev] { exit_code = dev_kafka(*dev, common.json); });

  auto publish = std::make_shared<PublishOptions>();
  auto* publish_command = app.add_subcommand(
      "publish-build", "announce a finished build as a CDEvent (artifact.published) on Kafka; prints its id");
  publish_command->add_option("--brokers", publish->brokers, "Kafka bootstrap servers")->required();
  publish_command->add_option("--topic", publish->topic, "topic")->capture_default_str();
  publish_command->add_option("--source", publish->source, "the CI source, a URI reference (e.g. /ci/shop)")
      ->required();
  publish_command->add_option("--artifact", publish->artifact, "the artifact's package URL, e.g. pkg:generic/shop")
      ->required();
  publish_command->add_option("--version", publish->version, "the build's version (appended to the purl as @V)")
      ->required();
  publish_command->add_option("--branch", publish->branch, "the branch it was built from (customData.branch)");
  publish_command->add_option("--uri", publish->uri, "where to download it (customData.uri → CASCADE_ARTIFACT_URI)");
  publish_command->add_option("--id", publish->id,
                              "the CDEvent id (default: a new UUID); publishing an id again creates nothing new");
  publish_command->add_flag("--structured", publish->structured, "structured CloudEvents mode (default binary)");
  publish_command->add_option("--timeout", publish->timeout_s, "seconds to wait for the broker's acknowledgement")
      ->capture_default_str();
  publish_command->add_flag("--wait", publish->wait,
                            "then print the release(s) the build created, asking the server (--server, --token)");
  publish_command->add_option("--wait-timeout", publish->wait_timeout_s, "seconds --wait waits for a release")
      ->capture_default_str();
  add_server_options(publish_command, common);
  publish_command->add_flag("--json", common.json,
                            "print {\"id\", \"topic\", \"cdevent\"} as JSON (with --wait, also \"releases\")");
  publish_command->callback([&common, &exit_code, publish] { exit_code = publish_build(*publish, common); });
}

}  // namespace cascade::tools
