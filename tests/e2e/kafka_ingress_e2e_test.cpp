// CI → Kafka → releases, end to end with real processes: `cascade dev-kafka`
// (librdkafka's mock cluster, 3 brokers) as the broker, `cascade serve
// --kafka` as the server, and kcat — a third-party client — or `cascade
// publish-build` as the CI job.
#include "tests/support/cli_runner.hpp"
#include "tests/support/kafka_test_clients.hpp"
#include "tests/support/serve_process.hpp"
#include "tests/support/temp_dir.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <regex>

namespace cascade {
namespace {

using nlohmann::json;
using testing::CommandRun;
using testing::run;
using testing::ServeProcess;

constexpr const char* kKcat = "/usr/bin/kcat";
constexpr auto kDeadline = std::chrono::seconds(60);

// `cascade dev-kafka` as a child process, stopped with SIGTERM.
class DevKafka {
 public:
  explicit DevKafka(const std::string& arguments = "") {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], STDOUT_FILENO);
      const std::string command = "exec " + std::string(CASCADE_BINARY) + " dev-kafka " + arguments + " 2>/dev/null";
      ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(fds[1]);
    fd_ = fds[0];
    // The first line: bootstrap.servers=...
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char c[256];
      const ssize_t n = ::read(fd_, c, sizeof c);
      if (n <= 0) break;
      line.append(c, static_cast<std::size_t>(n));
    }
    first_line_ = line.substr(0, line.find('\n'));
    const std::string prefix = "bootstrap.servers=";
    if (first_line_.rfind(prefix, 0) == 0) bootstrap_ = first_line_.substr(prefix.size());
  }
  ~DevKafka() {
    if (pid_ > 0 && !stopped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) ::close(fd_);
  }
  const std::string& bootstrap() const { return bootstrap_; }
  const std::string& first_line() const { return first_line_; }
  // SIGTERM; the exit code.
  int stop() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    stopped_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  bool stopped_ = false;
  std::string first_line_;
  std::string bootstrap_;
};

std::string shell_output(const std::string& command) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return out;
  char buffer[4096];
  std::size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  pclose(pipe);
  return out;
}

json artifact_published(const std::string& id, const std::string& version, const std::string& branch) {
  return {{"context",
           {{"specversion", "0.5.1"},
            {"id", id},
            {"source", "/ci/shop"},
            {"type", "dev.cdevents.artifact.published.0.3.0"},
            {"timestamp", "2026-11-28T10:00:00Z"}}},
          {"subject", {{"id", "pkg:generic/shop@" + version}, {"content", json::object()}}},
          {"customData", {{"branch", branch}}}};
}

class KafkaIngressE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kKcat)) GTEST_SKIP() << kKcat << " is not installed (tools/dev installs it)";
  }

  std::string data() const { return dir_ / "data"; }

  // kcat -P of one record whose value is `value`, with `headers`.
  void kcat_publish(const std::string& brokers, const std::string& value,
                    const std::vector<std::string>& headers, const std::string& key = "shop") {
    const std::string file = dir_ / ("record-" + std::to_string(++records_));
    std::ofstream(file, std::ios::binary) << value;
    std::string command = std::string(kKcat) + " -P -b " + brokers + " -t cascade.builds -k " + key +
                          " -X enable.idempotence=true -X acks=all";
    for (const std::string& h : headers) command += " -H '" + h + "'";
    // -D with a delimiter that never occurs: the whole file is one record.
    command += " -D '\\x1e' " + file + " 2>&1";
    const std::string out = shell_output(command);
    ASSERT_EQ(out, "") << command;
  }

  void kcat_binary(const std::string& brokers, const json& cdevent) {
    const auto& c = cdevent["context"];
    kcat_publish(brokers, cdevent.dump(),
                 {"ce_specversion=1.0", "ce_id=" + c["id"].get<std::string>(),
                  "ce_source=" + c["source"].get<std::string>(), "ce_type=" + c["type"].get<std::string>(),
                  "ce_subject=" + cdevent["subject"]["id"].get<std::string>(), "content-type=application/json"});
  }

  void kcat_structured(const std::string& brokers, const json& cdevent) {
    const auto& c = cdevent["context"];
    const json envelope = {{"specversion", "1.0"},
                           {"id", c["id"]},
                           {"source", c["source"]},
                           {"type", c["type"]},
                           {"subject", cdevent["subject"]["id"]},
                           {"time", c["timestamp"]},
                           {"datacontenttype", "application/json"},
                           {"data", cdevent}};
    kcat_publish(brokers, envelope.dump(), {"content-type=application/cloudevents+json; charset=UTF-8"});
  }

  CommandRun remote(const ServeProcess& server, const std::string& token, const std::string& arguments) {
    return run(arguments + " --server " + server.url() + " --token " + token, /*with_stderr=*/false);
  }

  // The releases of Shop, waiting until there are at least `count`.
  json releases(const ServeProcess& server, const std::string& token, std::size_t count) {
    json list = json::array();
    const auto deadline = std::chrono::steady_clock::now() + kDeadline;
    while (std::chrono::steady_clock::now() < deadline) {
      const CommandRun listed = remote(server, token, "release list --pipeline Shop --json");
      if (listed.exit_code == 0) {
        list = json::parse(listed.output)["releases"];
        if (list.size() >= count) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return list;
  }

  std::string dev_state(const ServeProcess& server, const std::string& token, const std::string& id) {
    const CommandRun waited = remote(server, token, "release wait " + id + " --until dev=Succeeded --timeout 60s");
    return waited.exit_code == 0 ? "Succeeded" : waited.output;
  }

  testing::TempDir dir_;
  int records_ = 0;
};

TEST_F(KafkaIngressE2eTest, DevKafkaPrintsItsBootstrapServersAndServesTheTopics) {
  DevKafka broker("--brokers 3 --topics cascade.builds,cascade.builds.dlq,cascade.cdevents,extra");
  ASSERT_FALSE(broker.bootstrap().empty()) << broker.first_line();
  EXPECT_EQ(std::count(broker.bootstrap().begin(), broker.bootstrap().end(), ','), 2) << broker.bootstrap();
  const json metadata = json::parse(shell_output(std::string(kKcat) + " -L -J -b " + broker.bootstrap()));
  EXPECT_EQ(metadata["brokers"].size(), 3u);
  std::set<std::string> topics;
  for (const auto& topic : metadata["topics"]) topics.insert(topic["topic"].get<std::string>());
  for (const char* wanted : {"cascade.builds", "cascade.builds.dlq", "cascade.cdevents", "extra"}) {
    EXPECT_EQ(topics.count(wanted), 1u) << wanted;
  }
  EXPECT_EQ(broker.stop(), 0);
}

TEST_F(KafkaIngressE2eTest, KcatAndPublishBuildRecordsBecomeReleasesExactlyOnceAndBadOnesAreDeadLettered) {
  DevKafka broker;
  ASSERT_FALSE(broker.bootstrap().empty()) << broker.first_line();
  const std::string pipeline = dir_ / "shop.json";
  std::ofstream(pipeline) << R"({"name": "Shop", "needs_artifact": "none",
    "artifact": {"source": "/ci/shop", "branch_filters": ["main", "release/*", "!release/old*"]},
    "stages": [{"name": "dev", "trigger": {"after_release": true},
      "steps": [{"name": "deploy", "run": "echo \"deploy $CASCADE_ARTIFACT_ID ($CASCADE_ARTIFACT_VERSION) from ${CASCADE_ARTIFACT_URI:-nowhere}\""}]}]})";
  const CommandRun applied = run("pipeline apply " + pipeline + " --data " + data() + " --as alice");
  ASSERT_EQ(applied.exit_code, 0) << applied.output;

  ServeProcess server({"--data", data(), "--kafka", broker.bootstrap()});
  ASSERT_TRUE(server.started()) << server.output();
  const std::string token = server.printed_token();
  const std::string b = broker.bootstrap();

  // Binary and structured mode, the same record twice, a branch outside the filters.
  kcat_binary(b, artifact_published("kcat-1", "1.0.0", "main"));
  kcat_structured(b, artifact_published("kcat-2", "1.0.1", "release/1.0"));
  kcat_binary(b, artifact_published("kcat-2", "1.0.1", "release/1.0"));  // the same CDEvent again
  kcat_binary(b, artifact_published("kcat-3", "1.0.2", "feature/x"));    // filtered out
  // Garbage bytes and a schema-invalid CDEvent, then a good record.
  kcat_publish(b, std::string("\x01\x02not json at all", 17), {"x-origin=e2e"}, "junk");
  json invalid = artifact_published("kcat-4", "1.0.3", "main");
  invalid["context"]["type"] = "dev.cdevents.artifact.published.0.2.0";
  kcat_binary(b, invalid);
  const CommandRun published = run("publish-build --brokers " + b +
                                   " --source /ci/shop --artifact pkg:generic/shop --version 1.0.4 --branch main"
                                   " --uri https://artifacts.example.com/shop-1.0.4.tgz --structured"
                                   " --wait --server " + server.url() + " --token " + token,
                                   /*with_stderr=*/false);
  ASSERT_EQ(published.exit_code, 0) << published.output << server.output();
  const std::string published_id = published.output.substr(0, published.output.find('\n'));
  EXPECT_EQ(published_id.size(), 36u) << published.output;
  // --wait: the release the build led to, as the server lists it by CDEvent id.
  std::smatch created_line;
  const std::string after_id = published.output.substr(published.output.find('\n') + 1);
  ASSERT_TRUE(std::regex_search(after_id, created_line, std::regex("^created (Shop-[0-9]+) \\(Release-[0-9]+\\) of Shop\n")))
      << published.output;
  const std::string waited_for = created_line[1];
  const CommandRun by_cdevent = remote(server, token, "release list --cdevent " + published_id + " --json");
  ASSERT_EQ(by_cdevent.exit_code, 0) << by_cdevent.output;
  ASSERT_EQ(json::parse(by_cdevent.output)["releases"].size(), 1u) << by_cdevent.output;
  EXPECT_EQ(json::parse(by_cdevent.output)["releases"][0]["id"], waited_for);

  const json list = releases(server, token, 3);
  ASSERT_EQ(list.size(), 3u) << list.dump(2) << server.output();
  std::map<std::string, std::string> id_by_version;
  for (const auto& release : list) id_by_version[release["artifact"]["version"]] = release["id"];
  EXPECT_EQ(id_by_version.size(), 3u);
  for (const char* version : {"1.0.0", "1.0.1", "1.0.4"}) {
    ASSERT_EQ(id_by_version.count(version), 1u) << version << " " << list.dump();
    EXPECT_EQ(dev_state(server, token, id_by_version[version]), "Succeeded");
  }
  EXPECT_EQ(id_by_version["1.0.4"], waited_for);
  const CommandRun logs = remote(server, token, "release logs " + id_by_version["1.0.4"] + " dev");
  EXPECT_NE(logs.output.find("deploy pkg:generic/shop@1.0.4 (1.0.4) from https://artifacts.example.com/shop-1.0.4.tgz"),
            std::string::npos)
      << logs.output;
  const CommandRun events = remote(server, token, "events " + id_by_version["1.0.4"] + " --json");
  ASSERT_EQ(events.exit_code, 0) << events.output;
  const json created = json::parse(events.output).front();
  EXPECT_EQ(created["type"], "ReleaseCreated");
  EXPECT_EQ(created["data"]["trigger_cdevent"]["id"], published_id) << created.dump(2);
  EXPECT_EQ(created["command_id"], published_id);

  // The dead letters, read back with kcat, name their reasons.
  const std::string dlq = shell_output(std::string(kKcat) + " -C -b " + b +
                                       " -t cascade.builds.dlq -J -e -q -c 2 -o beginning 2>/dev/null");
  std::map<std::string, json> by_reason;
  std::istringstream lines(dlq);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    const json record = json::parse(line);
    std::map<std::string, std::string> headers;
    const json& h = record["headers"];  // kcat -J: ["name", "value", "name", "value", ...]
    for (std::size_t i = 0; i + 1 < h.size(); i += 2) headers[h[i].get<std::string>()] = h[i + 1].get<std::string>();
    EXPECT_EQ(headers["cascade_original_topic"], "cascade.builds");
    EXPECT_FALSE(headers["cascade_original_offset"].empty());
    by_reason[headers["cascade_dlq_reason"]] = {{"detail", headers["cascade_dlq_detail"]},
                                                {"origin", headers["x-origin"]},
                                                {"key", record["key"]}};
  }
  ASSERT_EQ(by_reason.size(), 2u) << dlq;
  EXPECT_EQ(by_reason["malformed"]["origin"], "e2e");
  EXPECT_EQ(by_reason["malformed"]["key"], "junk");
  EXPECT_NE(by_reason["schema"]["detail"].get<std::string>().find("/context/type"), std::string::npos)
      << by_reason["schema"].dump();

  // The counts in /metrics.
  if (std::filesystem::exists("/usr/bin/curl")) {
    const std::string metrics =
        shell_output("/usr/bin/curl -s -H 'Authorization: Bearer " + token + "' " + server.url() + "/metrics");
    for (const char* line : {"cascade_ingress_records_total 7", "cascade_ingress_releases_created_total 3",
                             "cascade_ingress_redelivered_total 1",
                             "cascade_ingress_skipped_total{reason=\"branch_filtered\"} 1",
                             "cascade_ingress_dead_lettered_total{reason=\"malformed\"} 1",
                             "cascade_ingress_dead_lettered_total{reason=\"schema\"} 1"}) {
      EXPECT_NE(metrics.find(line), std::string::npos) << line << "\n" << metrics;
    }
  }
  // A build no pipeline takes (its branch is filtered out) creates nothing: --wait says so, exit 3.
  const CommandRun filtered = run("publish-build --brokers " + b +
                                  " --source /ci/shop --artifact pkg:generic/shop --version 1.0.5 --branch feature/y"
                                  " --wait --wait-timeout 1 --server " + server.url() + " --token " + token);
  EXPECT_EQ(filtered.exit_code, 3) << filtered.output;
  EXPECT_NE(filtered.output.find("no release created by CDEvent "), std::string::npos) << filtered.output;
  EXPECT_EQ(server.stop(SIGTERM, std::chrono::seconds(20)), std::optional<int>(0)) << server.output();
  EXPECT_EQ(broker.stop(), 0);
}

// Informal figure for issue #7 figure 5: publish → StageTriggered(dev)
// durable, with a connected producer, on this machine.
TEST_F(KafkaIngressE2eTest, PublishToDevTriggeredLatency) {
  DevKafka broker;
  ASSERT_FALSE(broker.bootstrap().empty());
  const std::string pipeline = dir_ / "shop.json";
  std::ofstream(pipeline) << R"({"name": "Shop", "artifact": {"source": "/ci/shop"}, "needs_artifact": "none",
    "stages": [{"name": "dev", "trigger": {"after_release": true}, "steps": [{"name": "deploy", "run": "true"}]}]})";
  ASSERT_EQ(run("pipeline apply " + pipeline + " --data " + data() + " --as alice").exit_code, 0);
  ServeProcess server({"--data", data(), "--kafka", broker.bootstrap()});
  ASSERT_TRUE(server.started()) << server.output();
  const std::string token = server.printed_token();
  testing::TestProducer producer(broker.bootstrap());
  constexpr int kSamples = 25;
  std::vector<double> latencies;
  for (int i = 0; i < kSamples; ++i) {
    const json cdevent = artifact_published("lat-" + std::to_string(i), "9.0." + std::to_string(i), "main");
    adapters::kafka::Record record = adapters::kafka::encode_cdevent(cdevent, adapters::kafka::CloudEventsMode::kBinary, "shop");
    const auto sent = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
    ASSERT_EQ(producer.send("cascade.builds", record), "");
    const json list = releases(server, token, static_cast<std::size_t>(i + 1));
    ASSERT_GE(list.size(), static_cast<std::size_t>(i + 1));
    const std::string id = "Shop-" + std::to_string(i + 1);
    ASSERT_EQ(dev_state(server, token, id), "Succeeded");
    const json events = json::parse(remote(server, token, "events " + id + " --json").output);
    for (const auto& e : events) {
      if (e["type"] == "StageTriggered" && e["data"]["stage"] == "dev") {
        latencies.push_back(static_cast<double>(e["recorded_at"].get<std::int64_t>() - sent));
      }
    }
  }
  ASSERT_EQ(latencies.size(), static_cast<std::size_t>(kSamples));
  std::sort(latencies.begin(), latencies.end());
  const double p50 = latencies[latencies.size() / 2];
  const double p90 = latencies[latencies.size() * 9 / 10];
  RecordProperty("publish_to_dev_triggered_p50_ms", std::to_string(p50));
  std::cout << "publish → StageTriggered(dev) durable over " << kSamples << " builds: p50 " << p50 << " ms, p90 "
            << p90 << " ms, max " << latencies.back() << " ms\n";
  EXPECT_EQ(server.stop(SIGTERM, std::chrono::seconds(20)), std::optional<int>(0));
}

}  // namespace
}  // namespace cascade
