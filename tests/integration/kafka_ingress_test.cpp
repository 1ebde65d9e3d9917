// The CI ingress on librdkafka's mock cluster (3 brokers) against a real
// engine on RocksDB: build CDEvents become releases exactly once, bad records
// go to the dead-letter topic, and broker faults lose and duplicate nothing.
#include "adapters/kafka/ingress.hpp"
#include "adapters/process/process_step_runner.hpp"
#include "adapters/kafka/mock_cluster.hpp"
#include "adapters/metrics/metrics.hpp"

#include "tests/support/engine_harness.hpp"
#include "tests/support/kafka_test_clients.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>

namespace cascade::testing {
namespace {

namespace kafka = adapters::kafka;
using nlohmann::json;

constexpr const char* kBuilds = "cascade.builds";
constexpr const char* kDeadLetters = "cascade.builds.dlq";
constexpr auto kDeadline = std::chrono::seconds(60);

const char* const kShopPipeline = R"({
  "name": "Shop",
  "artifact": {"source": "/ci/shop", "branch_filters": ["main", "release/*", "!release/old*"]},
  "needs_artifact": "uri",
  "stages": [
    {"name": "dev", "trigger": {"after_release": true}, "steps": [{"name": "deploy", "run": "deploy-dev"}]},
    {"name": "prod", "trigger": {"manual": true}, "steps": [{"name": "deploy", "run": "deploy-prod"}]}
  ]
})";

json announcement(const std::string& id, const std::string& version, const std::string& branch = "main",
                  const std::string& source = "/ci/shop") {
  json cdevent = {{"context",
                   {{"specversion", "0.5.1"},
                    {"id", id},
                    {"source", source},
                    {"type", "dev.cdevents.artifact.published.0.3.0"},
                    {"timestamp", "2026-11-28T10:00:00Z"}}},
                  {"subject", {{"id", "pkg:generic/shop@" + version}, {"content", json::object()}}},
                  {"customData", {{"branch", branch}, {"uri", "https://artifacts.example.com/shop-" + version + ".tgz"}}}};
  return cdevent;
}

// Waits for `condition` with a deadline, re-checking every few milliseconds.
template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds deadline = kDeadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// What the ingress is given other than the defaults: the release service
// and log it creates through (default: the engine's), its retry bound and
// how long it waits for a dead letter's acknowledgement.
struct IngressWiring {
  engine::ReleaseService* service = nullptr;
  events::EventLog* log = nullptr;
  int max_attempts = kafka::IngressOptions{}.max_attempts;
  std::chrono::milliseconds dlq_timeout = kafka::IngressOptions{}.dlq_timeout;
};

class KafkaIngressTest : public EngineHarness {
 protected:
  void SetUp() override {
    EngineHarness::SetUp();
    auto cluster = kafka::MockCluster::start(3);
    ASSERT_TRUE(cluster) << cluster.error().message;
    cluster_ = std::move(cluster).value();
    ASSERT_TRUE(cluster_->create_topic(kBuilds, 3, 3));
    ASSERT_TRUE(cluster_->create_topic(kDeadLetters, 3, 3));
    producer_ = std::make_unique<TestProducer>(cluster_->bootstrap_servers());
  }
  void TearDown() override {
    ingress_.reset();
    EngineHarness::TearDown();
    catalog_.reset();
    producer_.reset();
    cluster_.reset();
  }

  // A fresh engine (empty caches) with a fresh catalog, and an ingress in
  // `group`; steps run on `runner` (default: scripted, no processes).
  void start_ingress(const std::string& group = "cascade", engine::StepRunner* runner = nullptr,
                     const IngressWiring& wiring = {}) {
    ingress_.reset();
    stop();
    catalog_ = std::make_unique<kafka::PipelineCatalog>();
    start(runner != nullptr ? *runner : scripted_, /*run=*/false);
    runtime_->add_observer(*catalog_);
    run();
    kafka::IngressOptions options;
    options.brokers = cluster_->bootstrap_servers();
    options.topic = kBuilds;
    options.group = group;
    options.metrics = &metrics_;
    options.max_attempts = wiring.max_attempts;
    options.dlq_timeout = wiring.dlq_timeout;
    // The ingress's operator messages, when a failure needs them.
    options.log = [this](const std::string& message) {
      if (std::getenv("CASCADE_TEST_VERBOSE")) std::cerr << "ingress: " << message << "\n";
      std::lock_guard lock(said_mutex_);
      said_.push_back(message);
    };
    auto ingress = kafka::BuildIngress::create(options, wiring.service ? *wiring.service : service(),
                                               wiring.log ? *wiring.log : store_->log(), *catalog_);
    ASSERT_TRUE(ingress) << ingress.error().message;
    ingress_ = std::move(ingress).value();
    ingress_->start();
  }

  void publish(const json& cdevent, kafka::CloudEventsMode mode = kafka::CloudEventsMode::kBinary) {
    ASSERT_EQ(producer_->send(kBuilds, kafka::encode_cdevent(cdevent, mode, "shop")), "");
  }
  void publish_raw(const kafka::Record& record) { ASSERT_EQ(producer_->send(kBuilds, record), ""); }

  std::uint64_t consumed() const { return ingress_->stats().consumed; }
  // Whether the ingress told the operator a line containing `text`.
  bool said(const std::string& text) {
    std::lock_guard lock(said_mutex_);
    return std::any_of(said_.begin(), said_.end(), [&](const std::string& line) { return line.find(text) != std::string::npos; });
  }
  void wait_consumed(std::uint64_t n) {
    ASSERT_TRUE(eventually([&] { return consumed() >= n; }))
        << "consumed " << consumed() << " of " << n << " records";
  }

  // Every release of `pipeline` in number order. A create the log refused
  // leaves its reserved number unused, so a few missing numbers are passed over.
  std::vector<engine::ReleaseState> releases_of(const std::string& pipeline) {
    constexpr int kMaxGap = 16;
    std::vector<engine::ReleaseState> out;
    for (int n = 1, missing = 0; missing < kMaxGap; ++n) {
      auto release = service().load(pipeline + "-" + std::to_string(n));
      if (!release) {
        ++missing;
        continue;
      }
      missing = 0;
      out.push_back(release.value());
    }
    return out;
  }

  std::unique_ptr<kafka::MockCluster> cluster_;
  std::unique_ptr<TestProducer> producer_;
  std::unique_ptr<kafka::PipelineCatalog> catalog_;
  std::unique_ptr<kafka::BuildIngress> ingress_;
  std::mutex said_mutex_;
  std::vector<std::string> said_;  // the ingress's operator messages
  adapters::metrics::MetricsRegistry metrics_;
};

TEST_F(KafkaIngressTest, BinaryAndStructuredRecordsEachCreateAReleaseThatDeploysToDev) {
  apply(kShopPipeline);
  start_ingress();
  publish(announcement("ci-1", "1.0.0"), kafka::CloudEventsMode::kBinary);
  publish(announcement("ci-2", "1.0.1", "release/1.0"), kafka::CloudEventsMode::kStructured);
  wait_consumed(2);
  settle();

  const auto releases = releases_of("Shop");
  ASSERT_EQ(releases.size(), 2u);
  std::map<std::string, std::string> version_by_cdevent;
  for (const auto& release : releases) {
    const auto events = events_of(release.id);
    const auto* created = std::get_if<events::ReleaseCreated>(&events.front().data);
    ASSERT_NE(created, nullptr);
    ASSERT_TRUE(created->trigger_cdevent);
    EXPECT_EQ(created->trigger_cdevent->source, "/ci/shop");
    EXPECT_EQ(created->trigger_cdevent->type, "dev.cdevents.artifact.published.0.3.0");
    EXPECT_EQ(created->trigger, "ci: /ci/shop");
    EXPECT_EQ(created->requested_by, "kafka-ingress");
    EXPECT_EQ(events.front().command_id, created->trigger_cdevent->id);
    EXPECT_EQ(created->artifact.id, "pkg:generic/shop@" + created->artifact.version);
    version_by_cdevent[created->trigger_cdevent->id] = created->artifact.version;
    EXPECT_EQ(state_of(release.id, "dev"), engine::StageState::kSucceeded);
  }
  EXPECT_EQ(version_by_cdevent, (std::map<std::string, std::string>{{"ci-1", "1.0.0"}, {"ci-2", "1.0.1"}}));

  // The steps saw the artifact.
  std::set<std::string> seen;
  for (const auto& env : scripted_.environments()) {
    ASSERT_EQ(env.count("CASCADE_ARTIFACT_ID"), 1u);
    EXPECT_EQ(env.at("CASCADE_ARTIFACT_ID"), "pkg:generic/shop@" + env.at("CASCADE_ARTIFACT_VERSION"));
    EXPECT_EQ(env.at("CASCADE_ARTIFACT_URI"),
              "https://artifacts.example.com/shop-" + env.at("CASCADE_ARTIFACT_VERSION") + ".tgz");
    seen.insert(env.at("CASCADE_ARTIFACT_VERSION"));
  }
  EXPECT_EQ(seen, (std::set<std::string>{"1.0.0", "1.0.1"}));
  EXPECT_EQ(ingress_->stats().created, 2u);
  const std::string exposition = metrics_.render();
  EXPECT_NE(exposition.find("cascade_ingress_releases_created_total 2"), std::string::npos) << exposition;
  EXPECT_NE(exposition.find("cascade_ingress_records_total 2"), std::string::npos) << exposition;
}

TEST_F(KafkaIngressTest, TheSameCdEventTwiceGivesOneReleaseAlsoAfterARestart) {
  apply(kShopPipeline);
  start_ingress();
  publish(announcement("ci-7", "2.0.0"));
  publish(announcement("ci-7", "2.0.0"), kafka::CloudEventsMode::kStructured);
  wait_consumed(2);
  EXPECT_EQ(ingress_->stats().created, 1u);
  EXPECT_EQ(ingress_->stats().redelivered, 1u);

  // A restarted server whose consumer group starts over (its offsets lost)
  // reads both records again: the idempotency key holds across restarts.
  start_ingress("another-group");
  wait_consumed(2);
  EXPECT_EQ(ingress_->stats().created, 0u);
  EXPECT_EQ(ingress_->stats().redelivered, 2u);
  publish(announcement("ci-8", "2.0.1"));
  wait_consumed(3);
  settle();
  const auto releases = releases_of("Shop");
  ASSERT_EQ(releases.size(), 2u);
  EXPECT_EQ(releases[0].artifact.version, "2.0.0");
  EXPECT_EQ(releases[1].artifact.version, "2.0.1");
}

TEST_F(KafkaIngressTest, BranchesOutsideTheFiltersAndOtherSourcesCreateNothing) {
  apply(kShopPipeline);
  start_ingress();
  publish(announcement("ci-a", "3.0.0", "feature/login"));
  publish(announcement("ci-b", "3.0.1", "release/old-2"));  // excluded although release/* includes it
  publish(announcement("ci-c", "3.0.2", "main", "/ci/other-team"));
  json deployed = announcement("ci-d", "3.0.3");
  deployed["context"]["type"] = "dev.cdevents.service.deployed.0.3.0";
  deployed.erase("customData");
  publish(deployed);
  publish(announcement("ci-e", "3.0.4", "release/2.0"));
  wait_consumed(5);
  const auto stats = ingress_->stats();
  EXPECT_EQ(stats.skipped.at("branch_filtered"), 2u);
  EXPECT_EQ(stats.skipped.at("no_matching_pipeline"), 1u);
  EXPECT_EQ(stats.skipped.at("unsupported_type"), 1u);
  EXPECT_EQ(stats.created, 1u);
  const auto releases = releases_of("Shop");
  ASSERT_EQ(releases.size(), 1u);
  EXPECT_EQ(releases[0].artifact.version, "3.0.4");
  EXPECT_NE(metrics_.render().find("cascade_ingress_skipped_total{reason=\"branch_filtered\"} 2"), std::string::npos);
}

TEST_F(KafkaIngressTest, OneBuildCreatesOneReleaseInEachMatchingPipeline) {
  apply(kShopPipeline);
  apply(R"({"name": "ShopDocs", "artifact": {"source": "pkg:generic/shop"}, "needs_artifact": "uri",
            "stages": [{"name": "dev", "trigger": {"after_release": true},
                        "steps": [{"name": "publish", "run": "publish-docs"}]}]})");
  start_ingress();
  publish(announcement("ci-m", "4.0.0"));
  publish(announcement("ci-m", "4.0.0"));
  wait_consumed(2);
  EXPECT_EQ(ingress_->stats().created, 2u);
  EXPECT_EQ(ingress_->stats().redelivered, 2u);
  ASSERT_EQ(releases_of("Shop").size(), 1u);
  ASSERT_EQ(releases_of("ShopDocs").size(), 1u);
  EXPECT_EQ(releases_of("ShopDocs")[0].artifact.version, "4.0.0");
}

TEST_F(KafkaIngressTest, APipelineAppliedJustBeforeTheRecordTakesPart) {
  start_ingress();
  apply(kShopPipeline);  // the catalog learns it from the log, before matching the next record
  publish(announcement("ci-late", "5.0.0"));
  wait_consumed(1);
  EXPECT_EQ(ingress_->stats().created, 1u);
}

std::map<std::string, std::string> headers_of(const kafka::Record& record) {
  std::map<std::string, std::string> out;
  for (const auto& h : record.headers) out[h.key] = h.value;
  return out;
}

TEST_F(KafkaIngressTest, MalformedAndSchemaInvalidRecordsGoToTheDeadLetterTopicAndTheNextGoodOneIsCreated) {
  apply(kShopPipeline);
  start_ingress();
  kafka::Record garbage;
  garbage.key = "junk";
  garbage.value = std::string("\x00\x01garbage{", 10);
  garbage.headers = {{"x-trace", "t-1"}};
  publish_raw(garbage);
  json extra = announcement("ci-bad", "6.0.0");
  extra["subject"]["content"]["outcome"] = "success";  // artifact.published has no outcome
  publish(extra);
  publish(announcement("ci-good", "6.0.1"));
  wait_consumed(3);
  EXPECT_EQ(ingress_->stats().dead_lettered, 2u);
  EXPECT_EQ(ingress_->stats().created, 1u);
  ASSERT_EQ(releases_of("Shop").size(), 1u);
  EXPECT_EQ(releases_of("Shop")[0].artifact.version, "6.0.1");

  const auto dead = read_topic(cluster_->bootstrap_servers(), kDeadLetters, 2, kDeadline);
  ASSERT_EQ(dead.size(), 2u);
  std::map<std::string, std::map<std::string, std::string>> by_reason;
  for (const auto& read : dead) {
    auto headers = headers_of(read.record);
    by_reason[headers["cascade_dlq_reason"]] = headers;
    EXPECT_EQ(headers["cascade_original_topic"], kBuilds);
    EXPECT_FALSE(headers["cascade_original_partition"].empty());
    EXPECT_FALSE(headers["cascade_original_offset"].empty());
  }
  ASSERT_EQ(by_reason.count("malformed"), 1u);
  ASSERT_EQ(by_reason.count("schema"), 1u);
  EXPECT_EQ(by_reason["malformed"]["x-trace"], "t-1");  // the original headers are kept
  EXPECT_NE(by_reason["malformed"]["cascade_dlq_detail"].find("missing ce_specversion"), std::string::npos)
      << by_reason["malformed"]["cascade_dlq_detail"];
  EXPECT_NE(by_reason["schema"]["cascade_dlq_detail"].find("/subject/content/outcome: unknown field 'outcome'"),
            std::string::npos)
      << by_reason["schema"]["cascade_dlq_detail"];
  EXPECT_EQ(by_reason["schema"]["ce_id"], "ci-bad");
  for (const auto& read : dead) {
    if (headers_of(read.record)["cascade_dlq_reason"] == "malformed") {
      EXPECT_EQ(read.record.value, garbage.value);  // the bytes as they came
      EXPECT_EQ(read.record.key, "junk");
    }
  }
  const std::string exposition = metrics_.render();
  EXPECT_NE(exposition.find("cascade_ingress_dead_lettered_total{reason=\"malformed\"} 1"), std::string::npos)
      << exposition;
  EXPECT_NE(exposition.find("cascade_ingress_dead_lettered_total{reason=\"schema\"} 1"), std::string::npos);
}

TEST_F(KafkaIngressTest, ABuildWithoutTheArtifactItsPipelineNeedsIsDeadLetteredAsArtifact) {
  // The default need: a path on this machine, which a build gives as a file:// URI.
  apply(R"({"name": "Site", "artifact": {"source": "/ci/shop"},
            "stages": [{"name": "dev", "trigger": {"after_release": true},
                        "steps": [{"name": "copy", "run": "cp -R $(CASCADE_ARTIFACT_PATH)/. /srv/site"}]}]})");
  const std::string built = dir_ / "built-7.0.2";
  std::filesystem::create_directories(built);
  start_ingress();
  json no_location = announcement("ci-none", "7.0.0");
  no_location["customData"].erase("uri");
  publish(no_location);                         // nothing: the step would copy "/."
  publish(announcement("ci-https", "7.0.1"));  // a download the steps do not make
  json missing = announcement("ci-missing", "7.0.3");
  missing["customData"]["uri"] = "file://" + (dir_ / "never-built");
  publish(missing);
  json present = announcement("ci-file", "7.0.2");
  present["customData"]["uri"] = "file://" + built;
  publish(present);
  wait_consumed(4);
  EXPECT_EQ(ingress_->stats().dead_lettered, 3u);
  ASSERT_EQ(releases_of("Site").size(), 1u);
  EXPECT_EQ(releases_of("Site")[0].artifact.path, built);

  const auto dead = read_topic(cluster_->bootstrap_servers(), kDeadLetters, 3, kDeadline);
  ASSERT_EQ(dead.size(), 3u);
  std::map<std::string, std::string> detail_by_id;
  for (const auto& read : dead) {
    auto headers = headers_of(read.record);
    EXPECT_EQ(headers["cascade_dlq_reason"], "artifact") << headers["cascade_dlq_detail"];
    detail_by_id[headers["ce_id"]] = headers["cascade_dlq_detail"];
  }
  EXPECT_NE(detail_by_id["ci-none"].find("pipeline Site: artifact.path: required: pipeline 'Site' needs the "
                                         "artifact's path on the server, and none is given"),
            std::string::npos)
      << detail_by_id["ci-none"];
  EXPECT_NE(detail_by_id["ci-https"].find("only the URI https://artifacts.example.com/shop-7.0.1.tgz is given"),
            std::string::npos)
      << detail_by_id["ci-https"];
  EXPECT_NE(detail_by_id["ci-missing"].find("no file or directory at " + (dir_ / "never-built")), std::string::npos)
      << detail_by_id["ci-missing"];
  EXPECT_NE(metrics_.render().find("cascade_ingress_dead_lettered_total{reason=\"artifact\"} 3"), std::string::npos);
  // The operator finds each build that created nothing in the server's log.
  EXPECT_TRUE(said("kafka ingress: dead-lettered CDEvent ci-none from /ci/shop, record cascade.builds/"));
  EXPECT_TRUE(said(": artifact: pipeline Site: artifact.path: required"));
  publish(announcement("ci-other", "7.0.4", "main", "/ci/other-team"));
  wait_consumed(5);
  EXPECT_TRUE(said("kafka ingress: skipped CDEvent ci-other from /ci/other-team: no_matching_pipeline"));
}

TEST_F(KafkaIngressTest, BrokerOutagesAndInjectedErrorsLoseAndDuplicateNothing) {
  apply(kShopPipeline);
  start_ingress();
  constexpr int kBuildsCount = 30;
  constexpr int kWindow = 4;  // the publisher stays at most this many records ahead of the consumer
  std::atomic<int> published{0};
  std::atomic<std::uint64_t> consumed_total{0};  // over every consumer of the test
  std::uint64_t consumed_before = 0;             // by consumers already stopped
  std::mutex ingress_mutex;
  auto consumed_now = [&] {
    std::lock_guard lock(ingress_mutex);
    return consumed_before + (ingress_ ? ingress_->stats().consumed : 0);
  };
  std::atomic<bool> stop_publishing{false};
  std::thread publisher([&] {
    TestProducer producer(cluster_->bootstrap_servers());
    int records = 0;
    for (int i = 0; i < kBuildsCount && !stop_publishing; ++i) {
      // Every third build is announced twice, as a CI retry would.
      const json cdevent = announcement("fault-" + std::to_string(i), "7.0." + std::to_string(i));
      const auto mode = i % 2 ? kafka::CloudEventsMode::kStructured : kafka::CloudEventsMode::kBinary;
      for (int copy = 0; copy < (i % 3 == 0 ? 2 : 1); ++copy) {
        eventually([&] { return consumed_total + kWindow > static_cast<std::uint64_t>(records) || stop_publishing; });
        while (!producer.send(kBuilds, kafka::encode_cdevent(cdevent, mode, "shop")).empty() && !stop_publishing) {
        }
        ++records;
      }
      ++published;
    }
  });
  std::atomic<bool> watching{true};
  std::thread watcher([&] {
    while (watching) {
      consumed_total = consumed_now();
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  auto consumed_at_least = [&](std::uint64_t n) {
    return eventually([&] { return consumed_total >= n; });
  };

  // Request errors on fetches, commits and produces while records flow.
  ASSERT_TRUE(consumed_at_least(3));
  cluster_->push_request_errors(kafka::KafkaApi::kFetch, {6, 7, 6});            // NOT_LEADER, REQUEST_TIMED_OUT
  cluster_->push_request_errors(kafka::KafkaApi::kOffsetCommit, {15, 16, 14});  // coordinator not available/loading
  cluster_->push_request_errors(kafka::KafkaApi::kProduce, {6, 7});
  // Every broker down in turn, and back once the clients have had to cope.
  for (int broker = 1; broker <= 3; ++broker) {
    ASSERT_TRUE(consumed_at_least(3 + broker * 7)) << "consumed " << consumed_total;
    ASSERT_TRUE(cluster_->set_broker_down(broker));
    const std::uint64_t at = consumed_total;
    eventually([&] { return consumed_total >= at + 3; }, std::chrono::seconds(2));
    ASSERT_TRUE(cluster_->set_broker_up(broker));
  }
  // A restart of the consumer mid-stream (same group: it resumes from the
  // committed offsets; anything uncommitted is redelivered).
  {
    std::unique_ptr<kafka::BuildIngress> old;
    {
      std::lock_guard lock(ingress_mutex);
      old = std::move(ingress_);
    }
    old->stop();
    std::lock_guard lock(ingress_mutex);
    consumed_before += old->stats().consumed;
  }
  {
    std::lock_guard lock(ingress_mutex);
    start_ingress();
  }
  std::vector<engine::ReleaseState> releases;
  const bool complete = eventually([&] {
    std::lock_guard lock(ingress_mutex);
    releases = releases_of("Shop");
    return releases.size() >= static_cast<std::size_t>(kBuildsCount);
  });
  stop_publishing = true;
  publisher.join();
  watching = false;
  watcher.join();
  ASSERT_TRUE(complete) << releases.size() << " releases of " << kBuildsCount << " builds; published "
                        << published << ", consumed " << consumed_total;
  settle();
  releases = releases_of("Shop");
  std::map<std::string, int> by_version;
  for (const auto& release : releases) ++by_version[release.artifact.version];
  EXPECT_EQ(by_version.size(), static_cast<std::size_t>(kBuildsCount));
  for (const auto& [version, count] : by_version) EXPECT_EQ(count, 1) << version;
  EXPECT_EQ(releases.size(), static_cast<std::size_t>(kBuildsCount));
}

// A CI producer decides no code either: a purl whose version decodes to shell
// syntax is dead-lettered (reason artifact_id) before a release exists, and a
// plain one after it deploys through real processes; the marker every
// hostile version tries to create never appears.
TEST_F(KafkaIngressTest, APurlVersionThatIsShellSyntaxIsDeadLetteredAndRunsNothing) {
  const std::string marker = dir_ / "marker";
  const std::string out = dir_ / "versions.txt";
  apply(R"({"name": "Shop", "artifact": {"source": "/ci/shop", "branch_filters": ["main"]}, "needs_artifact": "uri",
    "stages": [{"name": "dev", "trigger": {"after_release": true},
                "steps": [{"name": "deploy", "run": "echo $(CASCADE_ARTIFACT_VERSION) >> )" + out + R"("}]}]})");
  engine::SystemClock real_time;
  adapters::ProcessStepRunner processes(real_time);
  start_ingress("cascade", &processes);

  // Percent-encoded as a purl carries them: ; space $ ( ) ` ' " newline # NUL.
  std::string m;
  for (unsigned char c : marker) {
    static const char* hex = "0123456789ABCDEF";
    m += std::isalnum(c) ? std::string(1, static_cast<char>(c)) : std::string{'%', hex[c >> 4], hex[c & 15]};
  }
  const std::vector<std::string> hostile = {"1%3Btouch%20" + m + "%3B%23", "%24(touch%20" + m + ")",
                                            "%60touch%20" + m + "%60",     "1%27%3Btouch%20" + m + "%3B%27",
                                            "1%22%3Btouch%20" + m + "%22", "1%0Atouch%20" + m,
                                            "1%23x",                       "1%00x"};
  for (std::size_t i = 0; i < hostile.size(); ++i) {
    json cdevent = announcement("ci-hostile-" + std::to_string(i), "0");
    cdevent["subject"]["id"] = "pkg:generic/shop@" + hostile[i];
    publish(cdevent);
  }
  publish(announcement("ci-plain", "6.0.1"));
  wait_consumed(hostile.size() + 1);
  EXPECT_EQ(ingress_->stats().dead_lettered, hostile.size());
  ASSERT_EQ(releases_of("Shop").size(), 1u);
  settle();
  EXPECT_EQ(state_of("Shop-1", "dev"), engine::StageState::kSucceeded);
  std::ifstream written(out);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(written), {}), "6.0.1\n");

  const auto dead = read_topic(cluster_->bootstrap_servers(), kDeadLetters, hostile.size(), kDeadline);
  ASSERT_EQ(dead.size(), hostile.size());
  for (const auto& read : dead) EXPECT_EQ(headers_of(read.record)["cascade_dlq_reason"], "artifact_id");
  EXPECT_FALSE(std::filesystem::exists(marker)) << "a CI event's version ran as code on the server";
}

// The engine's log, refusing every append of one command (the CDEvent id is
// the create command's idempotency key) with kUnavailable, as a log that
// cannot write answers, and counting the refusals; everything else goes
// through to the real log, where the engine's reactors see it.
class LogRefusingOneCommand final : public events::EventLog {
 public:
  LogRefusingOneCommand(events::EventLog& log, std::string command_id)
      : log_(log), command_id_(std::move(command_id)) {}

  Result<events::AppendResult> append(const std::string& stream, std::int64_t expected_version,
                                      std::vector<events::NewEvent> events) override {
    if (!events.empty() && events.front().command_id == command_id_) {
      ++refused_;
      return make_error(ErrorCode::kUnavailable, "injected: the log cannot write");
    }
    return log_.append(stream, expected_version, std::move(events));
  }
  Result<std::vector<events::RecordedEvent>> read(const std::string& stream, std::int64_t from_version,
                                                  std::size_t limit) override {
    return log_.read(stream, from_version, limit);
  }
  Status read_each(const std::string& stream, std::int64_t from_version,
                   const std::function<Status(const events::RecordedEvent&)>& visit) override {
    return log_.read_each(stream, from_version, visit);
  }
  Status read_each_verified(const std::string& stream, std::int64_t from_version, std::string expected_prev_hash,
                            const std::function<Status(const events::RecordedEvent&)>& visit) override {
    return log_.read_each_verified(stream, from_version, std::move(expected_prev_hash), visit);
  }
  Result<std::vector<events::RecordedEvent>> read_all(std::uint64_t from_position, std::size_t limit) override {
    return log_.read_all(from_position, limit);
  }
  Result<events::ReadablePage> read_all_readable(std::uint64_t from_position, std::size_t limit) override {
    return log_.read_all_readable(from_position, limit);
  }
  Result<std::int64_t> stream_version(const std::string& stream) override { return log_.stream_version(stream); }
  std::uint64_t head() const override { return log_.head(); }
  std::uint64_t wait_for_events(std::uint64_t after, std::chrono::milliseconds timeout) override {
    return log_.wait_for_events(after, timeout);
  }

  int refused() const { return refused_; }

 private:
  events::EventLog& log_;
  const std::string command_id_;
  std::atomic<int> refused_{0};
};

// One record the engine keeps failing on does not hold its partition: after
// exactly max_attempts tries it is dead-lettered (engine_error, the last
// error as detail) and committed, and the next record of the same partition
// becomes a release.
TEST_F(KafkaIngressTest, ARecordTheEngineKeepsFailingIsDeadLetteredAfterMaxAttemptsAndThePartitionMovesOn) {
  apply(kShopPipeline);
  LogRefusingOneCommand log(store_->log(), "ci-poison");
  engine::ReleaseService service_over_it(log, store_->secrets(), clock_);
  constexpr int kMaxAttempts = 3;
  start_ingress("cascade", nullptr, {&service_over_it, &log, kMaxAttempts});
  publish(announcement("ci-poison", "8.0.0"));
  publish(announcement("ci-after", "8.0.1"));
  wait_consumed(2);

  // Both records have the same key, so the same partition, the poisoned one first.
  const auto published = read_topic(cluster_->bootstrap_servers(), kBuilds, 2, kDeadline);
  ASSERT_EQ(published.size(), 2u);
  EXPECT_EQ(published[0].partition, published[1].partition);
  EXPECT_LT(published[0].offset, published[1].offset);

  EXPECT_EQ(log.refused(), kMaxAttempts);
  const auto stats = ingress_->stats();
  EXPECT_EQ(stats.gave_up, 1u);
  EXPECT_EQ(stats.dead_lettered, 1u);
  EXPECT_EQ(stats.created, 1u);
  EXPECT_EQ(stats.retries, static_cast<std::uint64_t>(kMaxAttempts - 1));
  settle();
  const auto releases = releases_of("Shop");
  ASSERT_EQ(releases.size(), 1u);
  EXPECT_EQ(releases[0].artifact.version, "8.0.1");
  EXPECT_EQ(state_of(releases[0].id, "dev"), engine::StageState::kSucceeded);

  const auto dead = read_topic(cluster_->bootstrap_servers(), kDeadLetters, 1, kDeadline);
  ASSERT_EQ(dead.size(), 1u);
  auto headers = headers_of(dead[0].record);
  EXPECT_EQ(headers["cascade_dlq_reason"], "engine_error");
  EXPECT_EQ(headers["ce_id"], "ci-poison");
  EXPECT_EQ(headers["cascade_original_partition"], std::to_string(published[0].partition));
  EXPECT_EQ(headers["cascade_original_offset"], std::to_string(published[0].offset));
  const std::string& detail = headers["cascade_dlq_detail"];
  EXPECT_NE(detail.find("3 attempts failed"), std::string::npos) << detail;
  EXPECT_NE(detail.find("injected: the log cannot write"), std::string::npos) << detail;

  const std::string exposition = metrics_.render();
  EXPECT_NE(exposition.find("cascade_ingress_dead_lettered_total{reason=\"engine_error\"} 1"), std::string::npos)
      << exposition;
  EXPECT_NE(exposition.find("cascade_ingress_retries_total 2"), std::string::npos) << exposition;
  EXPECT_NE(exposition.find("cascade_ingress_records_total 2"), std::string::npos) << exposition;
}

// The one case where a partition waits: a record given up whose dead letter
// the broker does not acknowledge is neither committed nor tried on the
// engine again; its dead letter is retried until the broker takes it.
TEST_F(KafkaIngressTest, AGivenUpRecordWhoseDeadLetterIsNotAcknowledgedIsHeldUntilItIs) {
  apply(kShopPipeline);
  LogRefusingOneCommand log(store_->log(), "ci-poison");
  engine::ReleaseService service_over_it(log, store_->secrets(), clock_);
  publish(announcement("ci-poison", "9.0.0"));
  publish(announcement("ci-after", "9.0.1"));
  // Every produce fails from now on (the records above are in already), so
  // no dead letter is acknowledged within its timeout.
  cluster_->push_request_errors(kafka::KafkaApi::kProduce, std::vector<int>(10'000, 7));  // REQUEST_TIMED_OUT
  constexpr int kMaxAttempts = 2;
  start_ingress("cascade", nullptr, {&service_over_it, &log, kMaxAttempts, std::chrono::milliseconds(200)});

  constexpr std::uint64_t kHeldRetries = kMaxAttempts + 3;
  ASSERT_TRUE(eventually([&] { return ingress_->stats().retries >= kHeldRetries; }))
      << "retries " << ingress_->stats().retries;
  EXPECT_EQ(consumed(), 0u);
  EXPECT_EQ(ingress_->stats().dead_lettered, 0u);
  EXPECT_EQ(log.refused(), kMaxAttempts);  // given up once: only the dead letter is tried again
  EXPECT_TRUE(releases_of("Shop").empty());

  cluster_->clear_request_errors(kafka::KafkaApi::kProduce);
  wait_consumed(2);
  EXPECT_EQ(log.refused(), kMaxAttempts);
  EXPECT_EQ(ingress_->stats().gave_up, 1u);
  EXPECT_EQ(ingress_->stats().dead_lettered, 1u);
  ASSERT_EQ(releases_of("Shop").size(), 1u);
  EXPECT_EQ(releases_of("Shop")[0].artifact.version, "9.0.1");
  const auto dead = read_topic(cluster_->bootstrap_servers(), kDeadLetters, 1, kDeadline);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(headers_of(dead[0].record)["cascade_dlq_reason"], "engine_error");
}

}  // namespace
}  // namespace cascade::testing
