// The CDEvents egress on librdkafka's mock cluster (3 brokers, real Kafka
// protocol): a release run through the engine is announced on the topic,
// read back with kcat (a third-party client) in binary and structured mode;
// a restart resumes without a gap, a crash before the save re-sends the same
// CDEvents (same ids), and a batch sent while every broker is down is sent
// again once they are back, nothing lost.

#include "adapters/metrics/metrics.hpp"
#include "adapters/kafka/egress.hpp"
#include "adapters/kafka/mock_cluster.hpp"

#include "tests/support/cdevents_validation.hpp"
#include "tests/support/engine_harness.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <set>
#include <thread>

namespace cascade::adapters::kafka {
namespace {

using nlohmann::json;

constexpr const char* kTopic = "cascade.cdevents";

// dev, then prod behind an approval: one deployment at a time, so the
// CDEvents of a release come in one order.
constexpr const char* kShopPipeline = R"({
  "name": "Shop",
  "stages": [
    {"name": "dev", "trigger": {"after_release": true}, "steps": [{"name": "deploy", "run": "deploy"}]},
    {"name": "prod", "trigger": {"after_stages": ["dev"]}, "pre_approval": {"approvers": ["release-manager"]},
     "steps": [{"name": "deploy", "run": "deploy"}]}
  ]
})";

// One record as kcat -J prints it.
struct Consumed {
  int partition = 0;
  std::int64_t offset = 0;
  std::string key;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string payload;

  std::string header(const std::string& name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) return v;
    }
    return "";
  }
  Record record() const {
    Record out{key, payload, {}};
    for (const auto& [k, v] : headers) out.headers.push_back({k, v});
    return out;
  }
};

// Everything on the topic, read with kcat from the beginning to the end of
// each partition, in (partition, offset) order.
std::vector<Consumed> consume_with_kcat(const std::string& brokers) {
  const std::string command = "/usr/bin/kcat -C -b '" + brokers + "' -t " + kTopic + " -o beginning -e -J -q 2>&1";
  std::vector<Consumed> out;
  FILE* pipe = popen(command.c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  if (pipe == nullptr) return out;
  std::string text;
  char buffer[8192];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) text += buffer;
  EXPECT_EQ(pclose(pipe), 0) << text;
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    const std::string line = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    start = end == std::string::npos ? text.size() : end + 1;
    if (line.empty() || line[0] != '{') {
      ADD_FAILURE() << "kcat: " << line;
      continue;
    }
    const json record = json::parse(line);
    Consumed consumed;
    consumed.partition = record["partition"];
    consumed.offset = record["offset"];
    consumed.key = record["key"].is_string() ? record["key"].get<std::string>() : "";
    consumed.payload = record["payload"].is_string() ? record["payload"].get<std::string>() : "";
    if (record.contains("headers") && record["headers"].is_array()) {
      const json& headers = record["headers"];
      for (std::size_t i = 0; i + 1 < headers.size(); i += 2) {
        consumed.headers.emplace_back(headers[i].get<std::string>(),
                                      headers[i + 1].is_string() ? headers[i + 1].get<std::string>() : "");
      }
    }
    out.push_back(std::move(consumed));
  }
  std::sort(out.begin(), out.end(), [](const Consumed& a, const Consumed& b) {
    return std::tie(a.partition, a.offset) < std::tie(b.partition, b.offset);
  });
  return out;
}

class KafkaEgressTest : public testing::EngineHarness {
 protected:
  void SetUp() override {
    EngineHarness::SetUp();
    auto cluster = MockCluster::start(3);
    ASSERT_TRUE(cluster) << cluster.error().message;
    cluster_ = std::move(cluster).value();
    ASSERT_TRUE(cluster_->create_topic(kTopic, 3, 3));
    open_state();
  }

  void TearDown() override {
    EngineHarness::TearDown();
    egress_.reset();
    state_.reset();
  }

  void open_state() {
    auto state = EgressStateStore::open(dir_ / "cdevents-egress");
    ASSERT_TRUE(state) << state.error().message;
    state_ = std::move(state).value();
  }

  // A new engine (reactors from their checkpoints) with a new egress.
  void start_engine(CloudEventsMode mode = CloudEventsMode::kBinary) {
    stop();
    egress_.reset();
    EgressOptions options;
    options.brokers = cluster_->bootstrap_servers();
    options.topic = kTopic;
    options.mode = mode;
    options.cdevents.source = "/cascade/test";
    options.delivery_timeout = std::chrono::milliseconds(2000);
    // Come back quickly once a broker that was down is up again.
    options.producer_config = {{"reconnect.backoff.ms", "20"}, {"reconnect.backoff.max.ms", "200"}};
    options.metrics = &metrics_;
    auto egress = CdEventsEgress::create(options, store_->log(), *state_);
    ASSERT_TRUE(egress) << egress.error().message;
    egress_ = std::move(egress).value();
    start(scripted_, /*run=*/false);
    runtime_->add_observer(*egress_);
    run();
  }

  void approve(const std::string& release, const std::string& stage) {
    ASSERT_TRUE(service().execute(release, engine::ApproveStage{stage, "", 0},
                                  engine::Invocation{"release-manager", "", ""}));
  }

  // What the whole log announces, mapped from scratch, each with its release.
  std::vector<std::pair<std::string, json>> announced() {
    auto log = store_->log().read_all(1, std::numeric_limits<std::size_t>::max());
    EXPECT_TRUE(log);
    std::vector<std::pair<std::string, json>> out;
    if (!log) return out;
    const std::vector<events::RecordedEvent>& events = log.value();
    std::map<std::string, FoldedRelease> folds;
    Environments environments;
    CdEventsOptions options;
    options.source = "/cascade/test";
    for (std::size_t i = 0; i < events.size(); ++i) {
      if (events[i].stream.rfind("release-", 0) != 0) continue;
      bool ends_command = true;
      for (std::size_t j = i + 1; j < events.size(); ++j) {
        if (events[j].stream == events[i].stream) {
          ends_command = events[j].command_id != events[i].command_id;
          break;
        }
      }
      FoldedRelease& release = folds[events[i].stream];
      const ReleaseBefore before = release.fold(events[i]);
      for (json& cdevent : to_cdevents(events[i], before, release.state(), ends_command, environments, options)) {
        out.emplace_back(release.state().id, std::move(cdevent));
      }
    }
    return out;
  }

  // What the log announces about `release` (all of it when empty).
  std::vector<json> expected_cdevents(const std::string& release = "") {
    std::vector<json> out;
    for (auto& [id, cdevent] : announced()) {
      if (release.empty() || id == release) out.push_back(std::move(cdevent));
    }
    return out;
  }

  // The CDEvents of each record, checking the record's envelope on the way.
  std::vector<json> cdevents_of(const std::vector<Consumed>& records, CloudEventsMode mode) {
    std::vector<json> out;
    for (const Consumed& record : records) {
      auto decoded = decode_cdevent(record.record());
      EXPECT_TRUE(decoded) << decoded.error().message << ": " << record.payload;
      if (!decoded) continue;
      EXPECT_EQ(decoded.value().mode, mode);
      const json& cdevent = decoded.value().cdevent;
      if (mode == CloudEventsMode::kBinary) {
        EXPECT_EQ(record.header("content-type"), "application/json");
        EXPECT_EQ(record.header("ce_specversion"), "1.0");
        EXPECT_EQ(record.header("ce_id"), cdevent["context"]["id"]);
        EXPECT_EQ(record.header("ce_type"), cdevent["context"]["type"]);
        EXPECT_EQ(record.header("ce_source"), cdevent["context"]["source"]);
        EXPECT_EQ(record.header("ce_subject"), cdevent["subject"]["id"]);
        EXPECT_EQ(record.header("ce_time"), cdevent["context"]["timestamp"]);
        EXPECT_EQ(json::parse(record.payload), cdevent);
      } else {
        EXPECT_EQ(record.header("content-type"), "application/cloudevents+json; charset=UTF-8");
        const json envelope = json::parse(record.payload);
        EXPECT_EQ(envelope["specversion"], "1.0");
        EXPECT_EQ(envelope["id"], cdevent["context"]["id"]);
        EXPECT_EQ(envelope["data"], cdevent);
      }
      out.push_back(cdevent);
    }
    return out;
  }

  // Records of one release in the order a consumer of its partition sees them.
  static std::vector<Consumed> of_release(const std::vector<Consumed>& records, const std::string& release) {
    std::vector<Consumed> out;
    for (const Consumed& record : records) {
      if (record.key == release) out.push_back(record);
    }
    return out;
  }

  void expect_valid(const std::vector<json>& cdevents) {
    if (!testing::have_cdevents_schemas()) {
      std::cout << "[  NOTE    ] schema validation skipped: no " << testing::cdevents_schemas_dir() << "\n";
      return;
    }
    const testing::CdEventsValidation validation = testing::validate_cdevents(cdevents, dir_ / "consumed.jsonl");
    EXPECT_EQ(validation.exit_code, 0) << validation.output;
    EXPECT_EQ(validation.valid, cdevents.size()) << validation.output;
  }

  metrics::MetricsRegistry metrics_;
  std::unique_ptr<MockCluster> cluster_;
  std::unique_ptr<EgressStateStore> state_;
  std::unique_ptr<CdEventsEgress> egress_;
};

std::vector<std::string> types_of(const std::vector<json>& cdevents) {
  std::vector<std::string> out;
  for (const json& cdevent : cdevents) {
    std::string type = cdevent["context"]["type"];
    out.push_back(type.substr(13, type.size() - 13 - 6));  // without dev.cdevents. and .0.3.0
  }
  return out;
}

TEST_F(KafkaEgressTest, AReleaseIsAnnouncedInBinaryModeKeyedByReleaseAndValid) {
  apply(kShopPipeline);
  start_engine();
  const std::string release = create("Shop", "1.4.2");
  settle();
  approve(release, "prod");
  settle();

  const std::vector<Consumed> records = consume_with_kcat(cluster_->bootstrap_servers());
  for (const Consumed& record : records) EXPECT_EQ(record.key, release);
  std::set<int> partitions;
  for (const Consumed& record : records) partitions.insert(record.partition);
  EXPECT_EQ(partitions.size(), 1u) << "one release, one partition: its CDEvents stay in order";

  const std::vector<json> cdevents = cdevents_of(records, CloudEventsMode::kBinary);
  EXPECT_THAT(types_of(cdevents),
              ::testing::ElementsAre("pipelinerun.queued", "pipelinerun.started", "taskrun.started",
                                     "taskrun.finished", "service.deployed", "taskrun.started", "taskrun.finished",
                                     "service.deployed", "pipelinerun.finished"));
  EXPECT_EQ(cdevents, expected_cdevents()) << "exactly what the log announces, in log order";
  EXPECT_EQ(cdevents.back()["subject"]["content"]["outcome"], "success");
  EXPECT_EQ(cdevents[4]["subject"]["content"]["artifactId"], "pkg:generic/Shop@1.4.2");
  expect_valid(cdevents);
  EXPECT_EQ(egress_->stats().published, cdevents.size());
  EXPECT_EQ(egress_->stats().position, store_->log().head());
  const std::string exposition = metrics_.render();
  EXPECT_THAT(exposition, ::testing::HasSubstr(
                              "cascade_cdevents_published_total{type=\"dev.cdevents.service.deployed.0.3.0\"} 2"));
  EXPECT_THAT(exposition, ::testing::HasSubstr(
                              "cascade_cdevents_published_total{type=\"dev.cdevents.pipelinerun.finished.0.3.0\"} 1"));
}

TEST_F(KafkaEgressTest, StructuredModeCarriesTheCdEventAsData) {
  apply(kShopPipeline);
  start_engine(CloudEventsMode::kStructured);
  const std::string release = create("Shop", "2.0.0");
  settle();

  const std::vector<Consumed> records = consume_with_kcat(cluster_->bootstrap_servers());
  const std::vector<json> cdevents = cdevents_of(records, CloudEventsMode::kStructured);
  EXPECT_THAT(types_of(cdevents), ::testing::ElementsAre("pipelinerun.queued", "pipelinerun.started",
                                                         "taskrun.started", "taskrun.finished", "service.deployed"));
  EXPECT_EQ(cdevents, expected_cdevents());
  expect_valid(cdevents);
}

TEST_F(KafkaEgressTest, ARestartResumesWithoutAGapAndACrashBeforeTheSaveResendsTheSameIds) {
  apply(kShopPipeline);
  start_engine();
  const std::string first = create("Shop", "1.0.0");
  settle();  // first waits for its prod approval

  // A clean restart: the new egress resumes after what the old one saved.
  start_engine();
  approve(first, "prod");
  settle();
  const std::uint64_t saved = egress_->stats().position;

  // Keep the egress's state as it is now, to play a crash that loses what
  // it saves from here on (sent, but the save never reached the disk).
  stop();
  egress_.reset();
  state_.reset();
  std::filesystem::copy(dir_ / "cdevents-egress", dir_ / "cdevents-egress-saved",
                        std::filesystem::copy_options::recursive);
  open_state();
  start_engine();
  const std::string second = create("Shop", "1.1.0");
  settle();
  approve(second, "prod");
  settle();
  const std::size_t before_crash = consume_with_kcat(cluster_->bootstrap_servers()).size();

  stop();
  egress_.reset();
  state_.reset();
  std::filesystem::remove_all(dir_ / "cdevents-egress");
  std::filesystem::rename(dir_ / "cdevents-egress-saved", dir_ / "cdevents-egress");
  open_state();
  start_engine();
  settle();
  EXPECT_EQ(egress_->stats().position, store_->log().head());

  const std::vector<Consumed> records = consume_with_kcat(cluster_->bootstrap_servers());
  const std::vector<json> cdevents = cdevents_of(records, CloudEventsMode::kBinary);
  const std::vector<json> expected = expected_cdevents();
  // Every CDEvent, once or twice; a re-sent one is the same event, byte for byte.
  std::map<std::string, json> by_id;
  std::size_t repeats = 0;
  for (const json& cdevent : cdevents) {
    auto [found, inserted] = by_id.emplace(cdevent["context"]["id"], cdevent);
    if (!inserted) {
      ++repeats;
      EXPECT_EQ(found->second, cdevent);
    }
  }
  EXPECT_EQ(by_id.size(), expected.size());
  for (const json& cdevent : expected) {
    auto found = by_id.find(cdevent["context"]["id"]);
    ASSERT_NE(found, by_id.end()) << "missing: " << cdevent.dump();
    EXPECT_EQ(found->second, cdevent);
  }
  // Exactly the second release's CDEvents were sent twice: those after the kept position.
  EXPECT_EQ(records.size() - before_crash, repeats);
  EXPECT_EQ(repeats, expected_cdevents(second).size());
  EXPECT_GT(saved, 0u);

  // Per record key (= release), in partition order, the first sighting of
  // each id is the log's order: no gap, no reordering, every key right.
  for (const std::string& release : {first, second}) {
    std::vector<json> seen;
    std::set<std::string> ids;
    for (const json& cdevent : cdevents_of(of_release(records, release), CloudEventsMode::kBinary)) {
      if (ids.insert(cdevent["context"]["id"]).second) seen.push_back(cdevent);
    }
    EXPECT_EQ(seen, expected_cdevents(release)) << release;
  }
  expect_valid(cdevents);
}

TEST_F(KafkaEgressTest, ABatchSentWhileTheBrokersAreDownIsSentAgainOnceTheyAreBack) {
  apply(kShopPipeline);
  start_engine();
  const std::string release = create("Shop", "3.0.0");
  settle();
  const std::uint64_t before_outage = egress_->stats().position;

  for (int broker = 1; broker <= 3; ++broker) ASSERT_TRUE(cluster_->set_broker_down(broker));
  approve(release, "prod");
  // The batch holding the approval and prod's deployment cannot be acknowledged.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (egress_->stats().failed_batches == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a condition, with a deadline
  }
  const CdEventsEgress::Stats during = egress_->stats();
  ASSERT_GT(during.failed_batches, 0u);
  EXPECT_THAT(during.last_error, ::testing::HasSubstr("not acknowledged"));
  const events::RecordedEvent* prod_started = testing::find_event(events_of(release), "DeploymentStarted", "prod");
  ASSERT_NE(prod_started, nullptr);
  EXPECT_GE(during.position, before_outage);
  EXPECT_LT(during.position, prod_started->position) << "nothing announced is saved while the brokers are away";

  for (int broker = 1; broker <= 3; ++broker) ASSERT_TRUE(cluster_->set_broker_up(broker));
  settle();

  const std::vector<json> cdevents = cdevents_of(consume_with_kcat(cluster_->bootstrap_servers()),
                                                 CloudEventsMode::kBinary);
  std::vector<json> distinct;
  std::set<std::string> ids;
  for (const json& cdevent : cdevents) {
    if (ids.insert(cdevent["context"]["id"]).second) distinct.push_back(cdevent);
  }
  EXPECT_EQ(distinct, expected_cdevents()) << "nothing lost, in order";
  EXPECT_THAT(metrics_.render(), ::testing::HasSubstr("cascade_cdevents_failed_batches_total{reason=\"timeout\"}"));
  EXPECT_EQ(distinct.back()["subject"]["content"]["outcome"], "success");
}

TEST_F(KafkaEgressTest, BadOptionsAreRefusedUpFront) {
  EgressOptions options;
  options.topic = kTopic;
  auto no_brokers = CdEventsEgress::create(options, store_->log(), *state_);
  ASSERT_FALSE(no_brokers);
  EXPECT_EQ(no_brokers.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(no_brokers.error().message, ::testing::HasSubstr("no brokers"));

  options.brokers = cluster_->bootstrap_servers();
  options.producer_config = {{"linger.ms", "not-a-number"}};
  auto bad_property = CdEventsEgress::create(options, store_->log(), *state_);
  ASSERT_FALSE(bad_property);
  EXPECT_EQ(bad_property.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(bad_property.error().message, ::testing::HasSubstr("linger.ms"));
}

TEST(EgressStateStoreTest, PositionAndEnvironmentsSurviveAReopenTogether) {
  testing::TempDir dir;
  {
    auto state = EgressStateStore::open(dir / "egress");
    ASSERT_TRUE(state) << state.error().message;
    auto empty = state.value()->load();
    ASSERT_TRUE(empty);
    EXPECT_EQ(empty.value().position, 0u);
    EXPECT_TRUE(empty.value().environments.empty());
    ASSERT_TRUE(state.value()->save(7, {{{"Shop", "dev"}, {1, "Shop-1", 0}}, {{"Shop", "prod"}, {0, "", 2}}}));
    // A later save writes only what changed; the rest stays.
    ASSERT_TRUE(state.value()->save(12, {{{"Shop", "dev"}, {2, "Shop-2", 0}}}));
  }
  auto state = EgressStateStore::open(dir / "egress");
  ASSERT_TRUE(state) << state.error().message;
  auto loaded = state.value()->load();
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(loaded.value().position, 12u);
  EXPECT_EQ(loaded.value().environments,
            (Environments{{{"Shop", "dev"}, {2, "Shop-2", 0}}, {{"Shop", "prod"}, {0, "", 2}}}));
}

TEST(EgressStateStoreTest, ASecondOpenOfTheSameDirectoryIsRefused) {
  testing::TempDir dir;
  auto first = EgressStateStore::open(dir / "egress");
  ASSERT_TRUE(first) << first.error().message;
  auto second = EgressStateStore::open(dir / "egress");
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(second.error().message, ::testing::HasSubstr("egress"));
}

}  // namespace
}  // namespace cascade::adapters::kafka
