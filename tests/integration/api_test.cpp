// The HTTP API over real HTTP: the server runs in-process on an ephemeral
// loopback port over a temporary data directory, with four users.
#include "tools/api_client.hpp"
#include "adapters/http/api/routes.hpp"
#include "tools/cli_support.hpp"
#include "adapters/metrics/engine_metrics.hpp"
#include "adapters/runtime/runtime.hpp"

#include "adapters/http/auth.hpp"
#include "adapters/http/server.hpp"
#include "engine/audit.hpp"
#include "projections/release_summary.hpp"
#include "tests/support/temp_dir.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <thread>
#include <set>

namespace cascade::tools {
namespace {

namespace http = adapters::http;
using nlohmann::json;

struct HttpResult {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  json json_body() const { return json::parse(body, nullptr, false); }
};

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

int connect_to(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void send_all(int fd, const std::string& data) {
  std::size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += static_cast<std::size_t>(n);
  }
}

// Reads what arrives within `timeout_ms` of quiet (or until EOF).
bool read_some(int fd, std::string& into, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return false;
  char buffer[8192];
  ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
  if (n <= 0) return false;
  into.append(buffer, static_cast<std::size_t>(n));
  return true;
}

std::string dechunk(const std::string& raw) {
  std::string out;
  std::size_t at = 0;
  for (;;) {
    auto line_end = raw.find("\r\n", at);
    if (line_end == std::string::npos) break;
    std::size_t size = std::stoul(raw.substr(at, line_end - at), nullptr, 16);
    if (size == 0 || line_end + 2 + size > raw.size()) break;
    out += raw.substr(line_end + 2, size);
    at = line_end + 2 + size + 2;
  }
  return out;
}

HttpResult parse_response(const std::string& raw) {
  HttpResult result;
  auto header_end = raw.find("\r\n\r\n");
  if (header_end == std::string::npos) return result;
  std::istringstream head(raw.substr(0, header_end));
  std::string line;
  std::getline(head, line);
  result.status = std::stoi(line.substr(9, 3));
  while (std::getline(head, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    result.headers[lower(line.substr(0, colon))] = value;
  }
  result.body = raw.substr(header_end + 4);
  if (lower(result.headers["transfer-encoding"]) == "chunked") result.body = dechunk(result.body);
  return result;
}

std::string request_text(const std::string& method, const std::string& target, const std::string& token,
                         const std::string& body, const std::vector<std::pair<std::string, std::string>>& extra) {
  std::string text = method + " " + target + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n";
  if (!token.empty()) text += "Authorization: Bearer " + token + "\r\n";
  for (const auto& [name, value] : extra) text += name + ": " + value + "\r\n";
  if (!body.empty() || method == "POST" || method == "PUT") {
    text += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  return text + "\r\n" + body;
}

// One event of a stream.
struct SseEvent {
  std::uint64_t id = 0;
  std::string raw_id;  // as sent (a step log's ids are "<step>:<line>")
  std::string type;
  json data;
};

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::vector<std::pair<std::string, http::Role>> users = {{"viewer", http::Role::kViewer},
                                                                   {"releaser", http::Role::kReleaser},
                                                                   {"approver", http::Role::kApprover},
                                                                   {"release-manager", http::Role::kApprover},
                                                                   {"admin", http::Role::kAdmin},
                                                                   {"oncall", http::Role::kApprover}};
    std::vector<http::UserRecord> records;
    for (const auto& [name, role] : users) {
      tokens_[name] = "token-of-" + name + "-0123456789abcdef";
      records.push_back({name, {role}, http::sha256_hex(tokens_[name])});
      if (name == "oncall") records.back().groups = {"ops"};  // a group of the users file, not of a pipeline
    }
    {
      std::ofstream out(dir_ / "users.json");
      out << http::render_users(records);
    }
    ::chmod((dir_ / "users.json").c_str(), 0600);  // users files are owner-only
    auto loaded = http::load_users_file(dir_ / "users.json");
    ASSERT_TRUE(loaded) << loaded.error().message;
    auto runtime = adapters::Runtime::open(dir_ / "data");
    ASSERT_TRUE(runtime) << runtime.error().message;
    runtime_ = std::move(runtime.value());
    hub_ = std::make_unique<http::api::EventHub>(runtime_->log());
    runtime_->add_observer(*hub_);
    metrics_ = std::make_shared<adapters::metrics::MetricsRegistry>();
    auto engine_metrics = adapters::metrics::EngineMetrics::create(runtime_->log(), *metrics_);
    ASSERT_TRUE(engine_metrics) << engine_metrics.error().message;
    engine_metrics_ = std::move(engine_metrics.value());
    runtime_->add_observer(*engine_metrics_);
    auto router = http::api::make_api_router(http::api::ApiContext::of(*runtime_, *hub_, metrics_, started_));
    ASSERT_TRUE(router) << router.error().message;
    runtime_->start();
    started_ = true;
    auto server = http::HttpServer::start(http::ServerOptions{}, std::move(router.value()),
                                          std::make_shared<const http::Authenticator>(std::move(loaded.value())),
                                          metrics_);
    ASSERT_TRUE(server) << server.error().message;
    server_ = std::move(server.value());
  }

  void TearDown() override {
    if (hub_) hub_->close_all();
    if (server_) server_->stop();
    if (runtime_) runtime_->stop();
  }

  HttpResult call(const std::string& method, const std::string& target, const std::string& user = "",
                  const std::string& body = "", const std::vector<std::pair<std::string, std::string>>& extra = {}) {
    int fd = connect_to(server_->port());
    EXPECT_GE(fd, 0);
    const std::string text = request_text(method, target, user.empty() ? "" : tokens_.at(user), body, extra);
    std::string raw;
    if (body.size() > (64 << 10)) {
      // A body the server refuses from its Content-Length: read the answer
      // before sending the body, which the server would not read.
      send_all(fd, text.substr(0, text.size() - body.size()));
      if (!read_some(fd, raw, 2'000)) send_all(fd, body);
    } else {
      send_all(fd, text);
    }
    while (read_some(fd, raw, 10'000)) {
    }
    ::close(fd);
    return parse_response(raw);
  }

  std::string sample_pipeline() {
    std::ifstream in(std::string(CASCADE_SOURCE_DIR) + "/tools/examples/sampleapp.json");
    std::stringstream text;
    text << in.rdbuf();
    json pipeline = json::parse(text.str());
    pipeline["variables"]["SITES_ROOT"] = dir_ / "sites";
    return pipeline.dump();
  }

  std::string make_artifact(const std::string& version) {
    const std::string path = dir_ / ("data/artifacts/artifact-" + version);  // inside the server's artifacts root
    std::filesystem::create_directories(path);
    std::ofstream(path + "/index.html") << "<html><body><h1>SampleApp</h1><p>build " << version << "</p></body></html>\n";
    return path;
  }

  // A release of the sample pipeline, run until it waits for prod's approval;
  // its id, or "" (with a test failure) when it could not be created.
  std::string settled_sample_release() {
    apply_sample();
    auto created = create_release("1.0.0");
    EXPECT_EQ(created.status, 201) << created.body;
    if (created.status != 201) return "";
    runtime_->settle();
    return created.json_body()["id"];
  }

  HttpResult create_release(const std::string& version, const std::string& key = "") {
    json body{{"pipeline", "SampleApp"}, {"artifact", {{"version", version}, {"path", make_artifact(version)}}}};
    std::vector<std::pair<std::string, std::string>> extra;
    if (!key.empty()) extra.emplace_back("Idempotency-Key", key);
    return call("POST", "/api/v1/releases", "releaser", body.dump(), extra);
  }

  void apply_sample() {
    auto applied = call("PUT", "/api/v1/pipelines/SampleApp", "admin", sample_pipeline());
    ASSERT_EQ(applied.status, 200) << applied.body;
  }

  // The events of the event stream at `target` (comments left out), read
  // until `enough(events)` holds or 20 s passed.
  std::vector<SseEvent> read_sse(const std::string& target, std::vector<std::pair<std::string, std::string>> extra,
                                 const std::function<bool(const std::vector<SseEvent>&)>& enough) {
    extra.emplace_back("Accept", "text/event-stream");
    int fd = connect_to(server_->port());
    EXPECT_GE(fd, 0);
    send_all(fd, request_text("GET", target, tokens_.at("viewer"), "", extra));
    std::string raw;
    std::vector<SseEvent> events;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      read_some(fd, raw, 200);
      auto header_end = raw.find("\r\n\r\n");
      if (header_end == std::string::npos) continue;
      const std::string text = dechunk(raw.substr(header_end + 4));
      events.clear();
      std::size_t at = 0;
      for (;;) {
        auto end = text.find("\n\n", at);
        if (end == std::string::npos) break;
        std::istringstream frame(text.substr(at, end - at));
        at = end + 2;
        SseEvent event;
        std::string line, data;
        while (std::getline(frame, line)) {
          if (line.rfind("id: ", 0) == 0) {
            event.raw_id = line.substr(4);
            event.id = std::stoull(event.raw_id);
          }
          if (line.rfind("event: ", 0) == 0) event.type = line.substr(7);
          if (line.rfind("data: ", 0) == 0) data += line.substr(6);
        }
        if (event.id == 0 && event.type.empty()) continue;  // a comment
        event.data = json::parse(data, nullptr, false);
        events.push_back(std::move(event));
      }
      if (enough(events)) break;
    }
    ::close(fd);
    return events;
  }

  // Events of GET /api/v1/stream until `count` arrived.
  std::vector<SseEvent> read_stream(const std::string& last_event_id, std::size_t count) {
    std::vector<std::pair<std::string, std::string>> extra;
    if (!last_event_id.empty()) extra.emplace_back("Last-Event-ID", last_event_id);
    return read_sse("/api/v1/stream", extra, [count](const std::vector<SseEvent>& events) { return events.size() >= count; });
  }

  // Frames of the stream at `target` until one of type `last`.
  std::vector<SseEvent> read_frames(const std::string& target, const std::string& last) {
    return read_sse(target, {}, [&last](const std::vector<SseEvent>& events) {
      return !events.empty() && events.back().type == last;
    });
  }

  testing::TempDir dir_;
  std::map<std::string, std::string> tokens_;
  std::unique_ptr<adapters::Runtime> runtime_;
  std::unique_ptr<http::api::EventHub> hub_;
  std::atomic<bool> started_{false};
  std::shared_ptr<adapters::metrics::MetricsRegistry> metrics_;
  std::unique_ptr<adapters::metrics::EngineMetrics> engine_metrics_;
  std::unique_ptr<http::HttpServer> server_;
};

TEST_F(ApiTest, ProbesArePublic) {
  EXPECT_EQ(call("GET", "/api/v1/healthz").status, 200);
  runtime_->settle();
  auto ready = call("GET", "/api/v1/readyz");
  EXPECT_EQ(ready.status, 200) << ready.body;
  // At the root too, where a probe written from the README looks.
  EXPECT_EQ(call("GET", "/healthz").status, 200);
  EXPECT_EQ(call("GET", "/readyz").status, 200);
}

// A quarantined release answers data_loss; the public probe counts it without
// saying which or why, the authenticated health view says both.
TEST_F(ApiTest, AQuarantinedReleaseAnswersDataLossAndOnlyAnOperatorSeesWhy) {
  ASSERT_EQ(call("PUT", "/api/v1/pipelines/Q", "admin", json{
      {"name", "Q"},
      {"stages", {{{"name", "dev"}, {"trigger", {{"after_release", true}}},
                   {"steps", {{{"name", "s"}, {"run", "true"}}}}}}}}.dump()).status, 200);
  auto created = call("POST", "/api/v1/releases", "releaser",
                      json{{"pipeline", "Q"}, {"artifact", {{"version", "1"}, {"path", make_artifact("q")}}}}.dump());
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string id = created.json_body()["id"];
  runtime_->settle();
  ASSERT_EQ(call("GET", "/api/v1/releases/" + id, "viewer").status, 200);

  runtime_->service().quarantine().add(engine::release_stream(id), "stream release-" + id + " version 3: content altered", 7);
  auto summary = call("GET", "/api/v1/releases/" + id, "viewer");
  EXPECT_EQ(summary.status, 500) << summary.body;
  EXPECT_EQ(summary.json_body()["error"]["code"], "data_loss") << summary.body;
  EXPECT_NE(summary.body.find("content altered"), std::string::npos) << summary.body;

  auto ready = call("GET", "/readyz");
  EXPECT_EQ(ready.status, 200) << "one bad release does not take the node out: " << ready.body;
  EXPECT_EQ(ready.json_body()["quarantined"], 1) << ready.body;
  EXPECT_EQ(ready.body.find(id), std::string::npos) << "the public probe names no release: " << ready.body;

  EXPECT_EQ(call("GET", "/api/v1/health").status, 401);
  auto health = call("GET", "/api/v1/health", "viewer");
  ASSERT_EQ(health.status, 200) << health.body;
  ASSERT_EQ(health.json_body()["quarantined"].size(), 1u) << health.body;
  EXPECT_EQ(health.json_body()["quarantined"][0]["stream"], engine::release_stream(id));
  EXPECT_EQ(health.json_body()["reactors"]["orchestrator"]["lag"], 0) << health.body;

  auto metrics = call("GET", "/metrics", "viewer");
  EXPECT_NE(metrics.body.find("cascade_quarantined_streams 1"), std::string::npos);
  EXPECT_NE(metrics.body.find("cascade_reactor_lag{reactor=\"orchestrator\"}"), std::string::npos);
}

// An Idempotency-Key names one user's one command: another user's key, or
// one shaped like the engine's own, never suppresses a command.
TEST_F(ApiTest, IdempotencyKeysAreScopedToTheCallerAndTheCommand) {
  ASSERT_EQ(call("PUT", "/api/v1/pipelines/Two", "admin", json{
      {"name", "Two"},
      {"stages", {{{"name", "dev"}, {"trigger", {{"after_release", true}}},
                   {"pre_approval", {{"approvers", {"approver", "release-manager"}}, {"required", "all"}}},
                   {"steps", {{{"name", "s"}, {"run", "true"}}}}}}}}.dump()).status, 200);
  auto created = call("POST", "/api/v1/releases", "releaser",
                      json{{"pipeline", "Two"}, {"artifact", {{"version", "1"}, {"path", make_artifact("two")}}}}.dump(),
                      {{"Idempotency-Key", "k"}});
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string id = created.json_body()["id"];
  runtime_->settle();
  const std::string approvals = "/api/v1/releases/" + id + "/stages/dev/approvals";
  const std::string approve = json{{"decision", "approve"}}.dump();
  // Both approvers send the same key (and the key the create used): both count.
  ASSERT_EQ(call("POST", approvals, "approver", approve, {{"Idempotency-Key", "k"}}).status, 200);
  auto second = call("POST", approvals, "release-manager", approve, {{"Idempotency-Key", "k"}});
  ASSERT_EQ(second.status, 200) << second.body;
  EXPECT_EQ(second.json_body()["stage"]["approvals"].size(), 2u) << second.body;
  // A key equal to one the engine derives cannot suppress the engine's reaction.
  runtime_->settle();
  auto summary = call("GET", "/api/v1/releases/" + id, "viewer");
  EXPECT_EQ(summary.json_body()["status"], "Succeeded") << summary.body;
  auto sneaky = call("POST", "/api/v1/releases", "releaser",
                     json{{"pipeline", "Two"}, {"artifact", {{"version", "2"}, {"path", make_artifact("two")}}}}.dump(),
                     {{"Idempotency-Key", "orchestrator/Two-2/dev/1"}});
  ASSERT_EQ(sneaky.status, 201) << sneaky.body;
  runtime_->settle();
  auto triggered = call("GET", "/api/v1/releases/" + sneaky.json_body()["id"].get<std::string>(), "viewer");
  EXPECT_EQ(triggered.json_body()["stages"][0]["status"], "AwaitingPreApproval") << triggered.body;
}

TEST_F(ApiTest, AnArtifactPathMustLieInsideTheArtifactsRoot) {
  apply_sample();
  std::filesystem::create_directories(dir_ / "elsewhere");
  std::filesystem::create_directories(dir_ / "data/artifacts");
  std::filesystem::create_symlink(dir_ / "elsewhere", dir_ / "data/artifacts/escape");
  for (const std::string& path : {std::string("/etc"), dir_ / "elsewhere", dir_ / "data/artifacts/../log",
                                  dir_ / "data/artifacts/escape", std::string("relative/path"), dir_ / "data/artifacts"}) {
    auto refused = call("POST", "/api/v1/releases", "releaser",
                        json{{"pipeline", "SampleApp"}, {"artifact", {{"version", "1"}, {"path", path}}}}.dump());
    EXPECT_EQ(refused.status, 400) << path << ": " << refused.body;
    EXPECT_EQ(refused.json_body()["error"]["details"][0]["path"], "artifact.path") << refused.body;
    EXPECT_NE(refused.body.find("artifacts root"), std::string::npos) << refused.body;
  }
  EXPECT_EQ(create_release("1.0.0").status, 201);  // make_artifact: inside <data>/artifacts
}

TEST_F(ApiTest, ReleaseThroughApprovalOverHttp) {
  apply_sample();
  auto created = create_release("1.0.0", "create-key-1");
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string id = created.json_body()["id"];
  EXPECT_EQ(id, "SampleApp-1");
  EXPECT_EQ(created.json_body()["name"], "SampleApp-1");
  // The same idempotency key creates no second release.
  auto again = create_release("1.0.0", "create-key-1");
  EXPECT_EQ(again.json_body()["id"], id) << again.body;

  runtime_->settle();
  auto summary = call("GET", "/api/v1/releases/" + id, "viewer");
  ASSERT_EQ(summary.status, 200) << summary.body;
  EXPECT_EQ(summary.json_body()["status"], "WaitingForApproval") << summary.body;

  const std::string approvals = "/api/v1/releases/" + id + "/stages/prod/approvals";
  const std::string approve = json{{"decision", "approve"}, {"comment", "ship it"}}.dump();
  EXPECT_EQ(call("POST", approvals, "", approve).status, 401);
  EXPECT_EQ(call("POST", approvals, "releaser", approve).status, 403);
  auto not_listed = call("POST", approvals, "approver", approve);
  EXPECT_EQ(not_listed.status, 403) << not_listed.body;
  EXPECT_EQ(not_listed.json_body()["error"]["code"], "permission_denied") << not_listed.body;
  EXPECT_NE(not_listed.json_body()["error"]["message"].get<std::string>().find("is not an approver of stage 'prod'"), std::string::npos)
      << not_listed.body;

  auto inbox = call("GET", "/api/v1/approvals", "release-manager");
  ASSERT_EQ(inbox.status, 200);
  EXPECT_EQ(inbox.json_body()["approvals"].size(), 1u) << inbox.body;

  auto approved = call("POST", approvals, "release-manager", approve, {{"Idempotency-Key", "approve-1"}});
  ASSERT_EQ(approved.status, 200) << approved.body;
  const json recorded = approved.json_body()["stage"]["approvals"];
  ASSERT_EQ(recorded.size(), 1u) << approved.body;
  EXPECT_EQ(recorded[0]["approver"], "release-manager");
  EXPECT_EQ(recorded[0]["decision"], "approved");
  // The same key again changes nothing; a second approval is illegal.
  EXPECT_EQ(call("POST", approvals, "release-manager", approve, {{"Idempotency-Key", "approve-1"}}).status, 200);
  runtime_->settle();
  auto twice = call("POST", approvals, "release-manager", approve);
  EXPECT_EQ(twice.status, 409) << twice.body;
  EXPECT_NE(twice.json_body()["error"]["message"].get<std::string>().find("prod"), std::string::npos) << twice.body;

  summary = call("GET", "/api/v1/releases/" + id, "viewer");
  EXPECT_EQ(summary.json_body()["status"], "Succeeded") << summary.body;
  EXPECT_FALSE(summary.json_body()["stages"][3]["approvals"][0].contains("override")) << summary.body;
  auto events = call("GET", "/api/v1/releases/" + id + "/events", "viewer");
  ASSERT_EQ(events.status, 200);
  EXPECT_GT(events.json_body()["events"].size(), 10u);
  auto logs = call("GET", "/api/v1/releases/" + id + "/stages/prod/logs", "viewer");
  ASSERT_EQ(logs.status, 200) << logs.body;
  EXPECT_FALSE(logs.json_body()["lines"].empty()) << logs.body;
  auto environments = call("GET", "/api/v1/environments?pipeline=SampleApp", "viewer");
  ASSERT_EQ(environments.status, 200);
  EXPECT_EQ(environments.json_body()["environments"].size(), 4u) << environments.body;
  auto delivery = call("GET", "/api/v1/metrics/delivery?pipeline=SampleApp", "viewer");
  EXPECT_EQ(delivery.status, 200) << delivery.body;
  auto metrics = call("GET", "/metrics", "viewer");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("cascade_http_requests_total"), std::string::npos);
  EXPECT_NE(metrics.body.find("cascade_projection_lag"), std::string::npos);
}

TEST_F(ApiTest, ErrorsOverHttp) {
  apply_sample();
  auto unknown = call("GET", "/api/v1/releases/SampleApp-99", "viewer");
  EXPECT_EQ(unknown.status, 404) << unknown.body;
  EXPECT_EQ(call("GET", "/api/v1/releases", "").status, 401);

  auto malformed = call("POST", "/api/v1/releases", "releaser", "{\n  \"pipeline\": \"SampleApp\",\n  oops\n}");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_NE(malformed.body.find("line 3"), std::string::npos) << malformed.body;
  EXPECT_NE(malformed.body.find("column"), std::string::npos) << malformed.body;

  auto unknown_field = call("POST", "/api/v1/releases", "releaser",
                            json{{"pipeline", "SampleApp"}, {"artifact", {{"version", "1"}, {"path", "/tmp"}}}, {"varibles", json::object()}}.dump());
  EXPECT_EQ(unknown_field.status, 400);
  EXPECT_NE(unknown_field.body.find("did you mean 'variables'"), std::string::npos) << unknown_field.body;

  auto too_large = call("POST", "/api/v1/releases", "releaser", std::string((1 << 20) + 10, ' '));
  EXPECT_EQ(too_large.status, 413);

  json invalid = json::parse(sample_pipeline());
  invalid["stages"][1]["trigger"]["after_stages"] = {"nope"};
  invalid["stages"][2]["steps"] = json::array();
  auto rejected = call("PUT", "/api/v1/pipelines/SampleApp", "admin", invalid.dump());
  EXPECT_EQ(rejected.status, 422) << rejected.body;
  EXPECT_GE(rejected.json_body()["error"]["details"].size(), 2u) << rejected.body;
  EXPECT_EQ(call("PUT", "/api/v1/pipelines/Other", "admin", sample_pipeline()).status, 400);
  EXPECT_EQ(call("PUT", "/api/v1/pipelines/SampleApp", "approver", sample_pipeline()).status, 403);

  auto versions = call("GET", "/api/v1/pipelines/SampleApp/versions", "viewer");
  ASSERT_EQ(versions.status, 200);
  EXPECT_EQ(versions.json_body()["versions"].size(), 1u) << versions.body;
  auto pipelines = call("GET", "/api/v1/pipelines", "viewer");
  ASSERT_EQ(pipelines.status, 200);
  EXPECT_EQ(pipelines.json_body()["pipelines"].size(), 1u) << pipelines.body;
  EXPECT_EQ(call("GET", "/api/v1/pipelines/SampleApp", "viewer").json_body()["version"], 1);
}

TEST_F(ApiTest, StreamDeliversAndResumesWithoutGaps) {
  apply_sample();
  runtime_->settle();
  auto first = read_stream("0", 1);  // the backlog: PipelineDefined
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].id, 1u);
  EXPECT_EQ(first[0].type, "PipelineDefined");

  ASSERT_EQ(create_release("2.0.0").status, 201);
  runtime_->settle();
  const std::uint64_t head = runtime_->log().head();
  // Resuming after the first event: everything from 2 to the head, once each.
  auto resumed = read_stream("1", head - 1);
  ASSERT_EQ(resumed.size(), head - 1);
  for (std::size_t i = 0; i < resumed.size(); ++i) EXPECT_EQ(resumed[i].id, i + 2);
  EXPECT_EQ(resumed[0].type, "ReleaseCreated");
  EXPECT_TRUE(resumed[0].data.is_object());
}

TEST_F(ApiTest, LiveStreamSeesNewEvents) {
  apply_sample();
  runtime_->settle();
  std::vector<SseEvent> live;
  std::thread reader([&] { live = read_stream(std::to_string(runtime_->log().head()), 3); });
  // Created once the stream is subscribed, so the events arrive live rather
  // than from the backlog.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (hub_->subscribers() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(hub_->subscribers(), 1u);
  ASSERT_EQ(create_release("3.0.0").status, 201);
  reader.join();
  ASSERT_GE(live.size(), 3u);
  EXPECT_EQ(live[0].type, "ReleaseCreated");
  std::set<std::uint64_t> ids;
  for (std::size_t i = 0; i < live.size(); ++i) {
    EXPECT_TRUE(ids.insert(live[i].id).second);
    if (i > 0) {
      EXPECT_EQ(live[i].id, live[i - 1].id + 1);
    }
  }
}

TEST_F(ApiTest, ReleasesArePaged) {
  apply_sample();
  for (int i = 0; i < 3; ++i) ASSERT_EQ(create_release("4.0." + std::to_string(i)).status, 201);
  runtime_->settle();
  auto page = call("GET", "/api/v1/releases?pipeline=SampleApp&limit=2", "viewer");
  ASSERT_EQ(page.status, 200) << page.body;
  json body = page.json_body();
  ASSERT_EQ(body["releases"].size(), 2u);
  EXPECT_EQ(body["releases"][0]["id"], "SampleApp-3");
  ASSERT_TRUE(body["next_cursor"].is_string());
  auto next = call("GET", "/api/v1/releases?pipeline=SampleApp&limit=2&cursor=" + url_encode(body["next_cursor"].get<std::string>()),
                   "viewer");
  ASSERT_EQ(next.status, 200) << next.body;
  ASSERT_EQ(next.json_body()["releases"].size(), 1u);
  EXPECT_EQ(next.json_body()["releases"][0]["id"], "SampleApp-1");
  EXPECT_TRUE(next.json_body()["next_cursor"].is_null());
  EXPECT_EQ(call("GET", "/api/v1/releases?limit=0", "viewer").status, 400);
}

// A pipeline for operator actions: dev deploys at once, `slow` only by hand
// and runs until canceled.
json operations_pipeline(const std::string& marker_dir) {
  return json{{"name", "Ops"},
              {"stages",
               {{{"name", "dev"}, {"trigger", {{"after_release", true}}}, {"steps", {{{"name", "deploy"}, {"run", "echo dev ok"}}}}},
                {{"name", "slow"},
                 {"trigger", {{"manual", true}}},
                 {"steps", {{{"name", "wait"}, {"run", "touch " + marker_dir + "/slow-started; exec sleep 60"}}}}}}}};
}

// Polls the release summary until `stage` is in `state` (or 20 s pass).
bool wait_for_stage(const std::function<HttpResult()>& fetch, const std::string& stage, const std::string& state) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    json summary = fetch().json_body();
    if (summary.is_object()) {
      for (const json& entry : summary["stages"]) {
        if (entry.value("name", "") == stage && entry.value("status", "") == state) return true;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

TEST_F(ApiTest, OperatorActionsOverHttp) {
  ASSERT_EQ(call("PUT", "/api/v1/pipelines/Ops", "admin", operations_pipeline(dir_.path()).dump()).status, 200);
  auto created = call("POST", "/api/v1/releases", "releaser",
                      json{{"pipeline", "Ops"}, {"artifact", {{"version", "1"}, {"path", make_artifact("ops-1")}}}}.dump());
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string release = "/api/v1/releases/" + created.json_body()["id"].get<std::string>();
  runtime_->settle();
  auto summary = [&] { return call("GET", release, "viewer"); };

  // Deploy the manual stage; viewers may not.
  EXPECT_EQ(call("POST", release + "/stages/slow/deploy", "viewer").status, 403);
  auto deploying = call("POST", release + "/stages/slow/deploy", "releaser");
  ASSERT_EQ(deploying.status, 200) << deploying.body;
  EXPECT_EQ(deploying.json_body()["stage"]["attempt"], 1) << deploying.body;
  ASSERT_TRUE(wait_for_stage(summary, "slow", "Deploying")) << summary().body;
  // A second deploy of a deploying stage is illegal and says why.
  auto twice = call("POST", release + "/stages/slow/deploy", "releaser");
  EXPECT_EQ(twice.status, 409) << twice.body;
  EXPECT_NE(twice.json_body()["error"]["message"].get<std::string>().find("slow"), std::string::npos) << twice.body;

  auto canceled = call("POST", release + "/stages/slow/cancel", "releaser", json{{"reason", "wrong build"}}.dump());
  ASSERT_EQ(canceled.status, 200) << canceled.body;
  runtime_->settle();
  EXPECT_TRUE(wait_for_stage(summary, "slow", "Canceled")) << summary().body;
  EXPECT_EQ(call("POST", release + "/stages/slow/cancel", "releaser", "{\"reasn\": 1}").status, 400);

  // Redeploy a stage that succeeded: a new attempt.
  auto redeployed = call("POST", release + "/stages/dev/redeploy", "releaser", json{{"reason", "config drift"}}.dump());
  ASSERT_EQ(redeployed.status, 200) << redeployed.body;
  EXPECT_EQ(redeployed.json_body()["stage"]["attempt"], 2) << redeployed.body;
  runtime_->settle();
  EXPECT_TRUE(wait_for_stage(summary, "dev", "Succeeded"));

  EXPECT_EQ(call("POST", release + "/abandon", "viewer").status, 403);
  auto abandoned = call("POST", release + "/abandon", "releaser", json{{"reason", "superseded"}}.dump());
  ASSERT_EQ(abandoned.status, 200) << abandoned.body;
  EXPECT_EQ(abandoned.json_body()["status"], "Abandoned") << abandoned.body;
  auto after = call("POST", release + "/stages/slow/deploy", "releaser");
  EXPECT_EQ(after.status, 409) << after.body;
  EXPECT_NE(after.json_body()["error"]["message"].get<std::string>().find("abandoned"), std::string::npos) << after.body;
  EXPECT_EQ(call("POST", "/api/v1/releases/Ops-9/abandon", "releaser").status, 404);

  runtime_->settle();
  auto metrics = call("GET", "/metrics", "viewer").body;
  EXPECT_NE(metrics.find("cascade_commands_total{command=\"deploy\",outcome=\"ok\"} 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("cascade_commands_total{command=\"deploy\",outcome=\"failed_precondition\"} 2\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("cascade_deployments_total{pipeline=\"Ops\",stage=\"slow\",outcome=\"canceled\"} 1\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("cascade_deployments_total{pipeline=\"Ops\",stage=\"dev\",outcome=\"succeeded\"} 2\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("cascade_step_duration_seconds_count{pipeline=\"Ops\",stage=\"dev\",outcome=\"succeeded\"} 2\n"),
            std::string::npos)
      << metrics;
}

TEST_F(ApiTest, AnAdminMayOverrideAnApprovalAndTheEventSaysSo) {
  apply_sample();
  auto created = create_release("6.0.0");
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string id = created.json_body()["id"];
  runtime_->settle();
  const std::string approvals = "/api/v1/releases/" + id + "/stages/prod/approvals";
  const std::string override_body = json{{"decision", "approve"}, {"override", true}, {"comment", "hotfix"}}.dump();
  // Only an administrator overrides, even an approver of the stage may not.
  auto refused = call("POST", approvals, "release-manager", override_body);
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_NE(refused.json_body()["error"]["message"].get<std::string>().find("admin role"), std::string::npos);
  EXPECT_EQ(call("POST", approvals, "admin", json{{"decision", "approve"}, {"override", "yes"}}.dump()).status, 400);
  // Without override an admin is no approver of prod.
  EXPECT_EQ(call("POST", approvals, "admin", json{{"decision", "approve"}}.dump()).status, 403);

  auto overridden = call("POST", approvals, "admin", override_body);
  ASSERT_EQ(overridden.status, 200) << overridden.body;
  const json recorded = overridden.json_body()["stage"]["approvals"];
  ASSERT_EQ(recorded.size(), 1u) << overridden.body;
  EXPECT_EQ(recorded[0]["approver"], "admin");
  EXPECT_EQ(recorded[0]["override"], true);
  runtime_->settle();
  auto events = call("GET", "/api/v1/releases/" + id + "/events", "viewer").json_body();
  bool found = false;
  for (const json& event : events["events"]) {
    if (event.value("type", "") != "ApprovalGranted") continue;
    found = true;
    EXPECT_EQ(event["actor"], "admin") << event;
    EXPECT_EQ(event["data"]["override"], true) << event;
  }
  EXPECT_TRUE(found) << events;
  EXPECT_EQ(call("GET", "/api/v1/releases/" + id, "viewer").json_body()["status"], "Succeeded");
  auto metrics = call("GET", "/metrics", "viewer").body;
  EXPECT_NE(metrics.find("cascade_commands_total{command=\"approve override\",outcome=\"ok\"} 1\n"), std::string::npos)
      << metrics;
}

TEST_F(ApiTest, LogsFollowARunningStepLiveAndEnd) {
  const std::string go = dir_ / "go";
  json pipeline{{"name", "Talk"},
                {"stages",
                 {{{"name", "dev"},
                   {"trigger", {{"after_release", true}}},
                   {"steps",
                    {{{"name", "talk"},
                      {"run", "echo first; while [ ! -e " + go + " ]; do sleep 0.02; done; echo second"}},
                     {{"name", "bye"}, {"run", "echo third"}}}}}}}};
  ASSERT_EQ(call("PUT", "/api/v1/pipelines/Talk", "admin", pipeline.dump()).status, 200);
  auto created = call("POST", "/api/v1/releases", "releaser",
                      json{{"pipeline", "Talk"}, {"artifact", {{"version", "1"}, {"path", make_artifact("talk")}}}}.dump());
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string release = "/api/v1/releases/" + created.json_body()["id"].get<std::string>();
  ASSERT_TRUE(wait_for_stage([&] { return call("GET", release, "viewer"); }, "dev", "Deploying"));
  EXPECT_EQ(call("GET", release + "/stages/dev/logs?follow=maybe", "viewer").status, 400);
  EXPECT_EQ(call("GET", release + "/stages/dev/logs?follow=true&attempt=2", "viewer").status, 404);

  // Follow while the step waits for `go`; create it once the stream is open.
  std::vector<SseEvent> frames;
  std::thread reader([&] { frames = read_frames(release + "/stages/dev/logs?follow=true", "end"); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (runtime_->log_follow().followers() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(runtime_->log_follow().followers(), 1u);
  std::ofstream(go) << "go\n";
  reader.join();
  std::vector<std::string> seen;
  for (const SseEvent& frame : frames) {
    seen.push_back(frame.type + ":" + frame.data.value("step", "") + ":" + frame.data.value("text", ""));
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"line:talk:first", "line:talk:second", "line:bye:third", "end::"}));
  EXPECT_EQ(runtime_->log_follow().followers(), 0u);

  // A finished attempt: its lines, then end at once.
  runtime_->settle();
  auto replayed = read_frames(release + "/stages/dev/logs?follow=true", "end");
  ASSERT_EQ(replayed.size(), 4u);
  EXPECT_EQ(replayed.back().type, "end");
  EXPECT_EQ(replayed.back().data["attempt"], 1);
}

// A long log is read a page at a time: `next` names a page's last line and
// the next page starts after it, across steps (a step without output
// included); a follower that reconnects with the id of the last line it got
// resumes after that line.
TEST_F(ApiTest, LogsComeInPagesAndAFollowResumesAfterItsLastEventId) {
  json pipeline{{"name", "Pages"},
                {"stages",
                 {{{"name", "dev"},
                   {"trigger", {{"after_release", true}}},
                   {"steps",
                    {{{"name", "a"}, {"run", "seq 1 25"}},
                     {{"name", "quiet"}, {"run", "true"}},
                     {{"name", "b"}, {"run", "seq 26 30"}}}}}}}};
  ASSERT_EQ(call("PUT", "/api/v1/pipelines/Pages", "admin", pipeline.dump()).status, 200);
  auto created = call("POST", "/api/v1/releases", "releaser",
                      json{{"pipeline", "Pages"}, {"artifact", {{"version", "1"}, {"path", make_artifact("pages")}}}}.dump());
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string logs = "/api/v1/releases/" + created.json_body()["id"].get<std::string>() + "/stages/dev/logs";
  runtime_->settle();

  std::vector<std::string> texts, nexts;
  std::string after;
  for (int page = 0; page < 10; ++page) {
    auto answer = call("GET", logs + "?limit=10" + (after.empty() ? "" : "&after=" + after), "viewer");
    ASSERT_EQ(answer.status, 200) << answer.body;
    const json body = answer.json_body();
    for (const json& line : body["lines"]) texts.push_back(line["text"]);
    if (!body.contains("next")) break;
    after = body["next"];
    nexts.push_back(after);
  }
  std::vector<std::string> expected;
  for (int n = 1; n <= 30; ++n) expected.push_back(std::to_string(n));
  EXPECT_EQ(texts, expected);
  EXPECT_EQ(nexts, (std::vector<std::string>{"0:9", "0:19", "2:4"}));
  EXPECT_EQ(call("GET", logs, "viewer").json_body()["lines"].size(), 30u) << "the default page holds them all";

  for (const char* bad : {"limit=0", "limit=10001", "limit=ten", "after=9", "after=a:b", "after=-1:2"}) {
    auto refused = call("GET", logs + "?" + std::string(bad), "viewer");
    EXPECT_EQ(refused.status, 400) << bad << ": " << refused.body;
  }

  auto resumed = read_sse(logs + "?follow=true", {{"Last-Event-ID", "0:22"}},
                          [](const std::vector<SseEvent>& events) { return !events.empty() && events.back().type == "end"; });
  std::vector<std::string> seen;
  for (const SseEvent& frame : resumed) {
    if (frame.type == "line") seen.push_back(frame.raw_id + "=" + frame.data.value("text", ""));
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"0:23=24", "0:24=25", "2:0=26", "2:1=27", "2:2=28", "2:3=29", "2:4=30"}));
}

// A step that prints bytes that are not UTF-8 neither fails nor breaks a
// follower: the bytes are replaced (U+FFFD) before anything stores or sends
// them, live and replayed alike.
TEST_F(ApiTest, InvalidUtf8FromAStepIsReplacedForFollowersAndReaders) {
  const std::string go = dir_ / "go-utf8";
  json pipeline{{"name", "Bytes"},
                {"stages",
                 {{{"name", "dev"},
                   {"trigger", {{"after_release", true}}},
                   {"steps",
                    {{{"name", "print"},
                      {"run", "printf 'bad \\377 byte\\n'; while [ ! -e " + go +
                                  " ]; do sleep 0.02; done; printf 'cut \\303'"}}}}}}}};
  ASSERT_EQ(call("PUT", "/api/v1/pipelines/Bytes", "admin", pipeline.dump()).status, 200);
  auto created = call("POST", "/api/v1/releases", "releaser",
                      json{{"pipeline", "Bytes"}, {"artifact", {{"version", "1"}, {"path", make_artifact("bytes")}}}}.dump());
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string release = "/api/v1/releases/" + created.json_body()["id"].get<std::string>();
  ASSERT_TRUE(wait_for_stage([&] { return call("GET", release, "viewer"); }, "dev", "Deploying"));

  std::vector<SseEvent> frames;
  std::thread reader([&] { frames = read_frames(release + "/stages/dev/logs?follow=true", "end"); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (runtime_->log_follow().followers() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(runtime_->log_follow().followers(), 1u);
  std::ofstream(go) << "go\n";
  reader.join();

  const std::string replacement = "\xEF\xBF\xBD";
  std::vector<std::string> followed;
  for (const SseEvent& frame : frames) followed.push_back(frame.type + ":" + frame.data.value("text", ""));
  EXPECT_EQ(followed, (std::vector<std::string>{"line:bad " + replacement + " byte", "line:cut " + replacement, "end:"}));
  runtime_->settle();
  EXPECT_TRUE(wait_for_stage([&] { return call("GET", release, "viewer"); }, "dev", "Succeeded"));
  auto logs = call("GET", release + "/stages/dev/logs", "viewer");
  ASSERT_EQ(logs.status, 200) << logs.body;
  ASSERT_EQ(logs.json_body()["lines"].size(), 2u) << logs.body;
  EXPECT_EQ(logs.json_body()["lines"][0]["text"], "bad " + replacement + " byte");
  EXPECT_EQ(logs.json_body()["lines"][1]["text"], "cut " + replacement);
}

TEST_F(ApiTest, AGroupOfTheUsersFileMayApproveForIt) {
  json pipeline = json::parse(sample_pipeline());
  pipeline["stages"][3]["pre_approval"]["approvers"] = {"ops"};  // no pipeline group of that name
  ASSERT_EQ(call("PUT", "/api/v1/pipelines/SampleApp", "admin", pipeline.dump()).status, 200);
  auto created = create_release("7.0.0");
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string id = created.json_body()["id"];
  runtime_->settle();
  auto inbox = call("GET", "/api/v1/approvals", "oncall");
  ASSERT_EQ(inbox.status, 200) << inbox.body;
  ASSERT_EQ(inbox.json_body()["approvals"].size(), 1u) << inbox.body;
  EXPECT_EQ(call("GET", "/api/v1/approvals", "approver").json_body()["approvals"].size(), 0u);
  const std::string approvals = "/api/v1/releases/" + id + "/stages/prod/approvals";
  EXPECT_EQ(call("POST", approvals, "approver", json{{"decision", "approve"}}.dump()).status, 403);
  auto approved = call("POST", approvals, "oncall", json{{"decision", "approve"}}.dump());
  ASSERT_EQ(approved.status, 200) << approved.body;
  EXPECT_EQ(approved.json_body()["stage"]["approvals"][0]["approver"], "oncall");
  EXPECT_EQ(approved.json_body()["stage"]["approvals"][0]["on_behalf_of"], "ops");
}

// An admin sees every pending approval (?all=true); anyone else is told
// which role that needs. 403s name the role, not the route.
TEST_F(ApiTest, AdminsSeeEveryPendingApprovalAndRefusalsNameTheRole) {
  json pipeline = json::parse(sample_pipeline());
  pipeline["stages"][3]["pre_approval"]["approvers"] = {"nobody-by-this-name"};
  ASSERT_EQ(call("PUT", "/api/v1/pipelines/SampleApp", "admin", pipeline.dump()).status, 200);
  auto created = create_release("8.0.0");
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string id = created.json_body()["id"];
  runtime_->settle();
  EXPECT_EQ(call("GET", "/api/v1/approvals", "admin").json_body()["approvals"].size(), 0u) << "nobody's inbox";
  auto all = call("GET", "/api/v1/approvals?all=true", "admin");
  ASSERT_EQ(all.status, 200) << all.body;
  ASSERT_EQ(all.json_body()["approvals"].size(), 1u) << all.body;
  EXPECT_EQ(all.json_body()["approvals"][0]["release"], id);
  EXPECT_EQ(all.json_body()["approvals"][0]["approvers"], json({"nobody-by-this-name"}));
  auto refused = call("GET", "/api/v1/approvals?all=true", "approver");
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_EQ(refused.json_body()["error"]["message"],
            "every pending approval: this needs the admin role (you have approver)");
  EXPECT_EQ(call("GET", "/api/v1/approvals?all=maybe", "admin").status, 400);
  EXPECT_EQ(call("GET", "/api/v1/approvals?all=false", "approver").status, 200);

  auto viewer = call("POST", "/api/v1/releases/" + id + "/abandon", "viewer", "{}");
  EXPECT_EQ(viewer.status, 403);
  EXPECT_EQ(viewer.json_body()["error"]["message"], "this needs the releaser role (you have viewer)");
  ASSERT_EQ(call("POST", "/api/v1/releases/" + id + "/abandon", "releaser", "{}").status, 200);
  runtime_->settle();
  auto summary = call("GET", "/api/v1/releases/" + id, "viewer").json_body();
  EXPECT_EQ(summary["abandoned_by"], "releaser") << summary.dump();
  EXPECT_EQ(summary["stages"][3]["approvals"][0]["decision"], "closed");
  EXPECT_EQ(summary["stages"][3]["approvals"][0]["approver"], "releaser");
  EXPECT_EQ(call("GET", "/api/v1/approvals?all=true", "admin").json_body()["approvals"].size(), 0u);
}

TEST_F(ApiTest, ReadinessWaitsForTheEngine) {
  started_ = false;
  auto not_ready = call("GET", "/api/v1/readyz");
  EXPECT_EQ(not_ready.status, 503) << not_ready.body;
  EXPECT_EQ(not_ready.json_body()["engine_started"], false) << not_ready.body;
  EXPECT_EQ(not_ready.json_body()["status"], "not ready");
  started_ = true;
  runtime_->settle();
  EXPECT_EQ(call("GET", "/api/v1/readyz").status, 200);
}

TEST_F(ApiTest, GroupInboxEnvironmentHistoryDiffAndDeliveryWindow) {
  json pipeline = json::parse(sample_pipeline());
  pipeline["groups"] = {{"managers", {"release-manager", "approver"}}};
  pipeline["stages"][3]["pre_approval"]["approvers"] = {"managers"};
  ASSERT_EQ(call("PUT", "/api/v1/pipelines/SampleApp", "admin", pipeline.dump()).status, 200);
  auto created = create_release("5.0.0");
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string id = created.json_body()["id"];
  runtime_->settle();

  auto group = call("GET", "/api/v1/approvals?group=managers", "viewer");
  ASSERT_EQ(group.status, 200) << group.body;
  ASSERT_EQ(group.json_body()["approvals"].size(), 1u) << group.body;
  EXPECT_EQ(group.json_body()["approvals"][0]["release"], id);
  auto member = call("GET", "/api/v1/approvals", "approver");
  EXPECT_EQ(member.json_body()["user"], "approver");
  EXPECT_EQ(member.json_body()["approvals"].size(), 1u) << member.body;
  EXPECT_EQ(call("GET", "/api/v1/approvals", "releaser").json_body()["approvals"].size(), 0u);
  EXPECT_EQ(call("GET", "/api/v1/approvals?group=", "viewer").status, 400);

  auto approved = call("POST", "/api/v1/releases/" + id + "/stages/prod/approvals", "approver",
                       json{{"decision", "approve"}}.dump());
  ASSERT_EQ(approved.status, 200) << approved.body;
  EXPECT_EQ(approved.json_body()["stage"]["approvals"][0]["on_behalf_of"], "managers");
  runtime_->settle();
  EXPECT_EQ(call("GET", "/api/v1/approvals?group=managers", "viewer").json_body()["approvals"].size(), 0u);

  auto prod = call("GET", "/api/v1/environments/SampleApp/prod?limit=5", "viewer");
  ASSERT_EQ(prod.status, 200) << prod.body;
  EXPECT_EQ(prod.json_body()["environment"]["current"]["release"], id) << prod.body;
  ASSERT_EQ(prod.json_body()["history"].size(), 1u) << prod.body;
  EXPECT_EQ(prod.json_body()["history"][0]["outcome"], "Succeeded") << prod.body;
  EXPECT_TRUE(prod.json_body()["next_cursor"].is_null());
  EXPECT_EQ(call("GET", "/api/v1/environments/SampleApp/nowhere", "viewer").status, 404);
  EXPECT_EQ(call("GET", "/api/v1/environments/SampleApp/prod?limit=x", "viewer").status, 400);

  pipeline["variables"]["SITES_ROOT"] = dir_ / "sites-v2";
  ASSERT_EQ(call("PUT", "/api/v1/pipelines/SampleApp", "admin", pipeline.dump()).status, 200);
  runtime_->settle();
  auto diff = call("GET", "/api/v1/pipelines/SampleApp/diff?from=1&to=2", "viewer");
  ASSERT_EQ(diff.status, 200) << diff.body;
  ASSERT_EQ(diff.json_body()["changes"].size(), 1u) << diff.body;
  EXPECT_EQ(diff.json_body()["changes"][0]["path"], "/variables/SITES_ROOT") << diff.body;
  EXPECT_EQ(call("GET", "/api/v1/pipelines/SampleApp/diff?from=1", "viewer").status, 400);
  EXPECT_EQ(call("GET", "/api/v1/pipelines/SampleApp/diff?from=1&to=9", "viewer").status, 404);

  auto window = call("GET", "/api/v1/metrics/delivery?pipeline=SampleApp&from=2020-01-01T00:00:00Z", "viewer");
  ASSERT_EQ(window.status, 200) << window.body;
  EXPECT_EQ(window.json_body()["from"], 1577836800000);
  bool prod_counted = false;
  const json window_body = window.json_body();
  for (const json& stage : window_body["stages"]) {
    if (stage["stage"] == "prod") prod_counted = stage["deployment_frequency"]["deployments"] == 1;
  }
  EXPECT_TRUE(prod_counted) << window.body;
  auto empty = call("GET", "/api/v1/metrics/delivery?pipeline=SampleApp&from=1000&to=2000", "viewer");
  ASSERT_EQ(empty.status, 200) << empty.body;
  const json empty_body = empty.json_body();
  for (const json& stage : empty_body["stages"]) EXPECT_EQ(stage["deployment_frequency"]["deployments"], 0) << empty.body;
  EXPECT_EQ(call("GET", "/api/v1/metrics/delivery?pipeline=SampleApp&from=2000&to=1000", "viewer").status, 400);
  EXPECT_EQ(call("GET", "/api/v1/metrics/delivery?pipeline=SampleApp&from=1000&days=3", "viewer").status, 400);
  EXPECT_EQ(call("GET", "/api/v1/metrics/delivery?pipeline=SampleApp&from=yesterday", "viewer").status, 400);
  auto weekly = call("GET", "/api/v1/metrics/delivery?pipeline=SampleApp&days=28&bucket=week", "viewer");
  ASSERT_EQ(weekly.status, 200) << weekly.body;
  for (const auto& stage : weekly.json_body()["stages"]) {
    ASSERT_GE(stage["series"].size(), 4u) << stage.dump();
    std::int64_t deployments = 0;
    for (const auto& week : stage["series"]) deployments += week["deployments"].get<std::int64_t>();
    EXPECT_EQ(deployments, stage["deployment_frequency"]["deployments"]) << stage.dump();
  }
  EXPECT_FALSE(call("GET", "/api/v1/metrics/delivery?pipeline=SampleApp", "viewer").json_body()["stages"][0].contains("series"));
  EXPECT_EQ(call("GET", "/api/v1/metrics/delivery?pipeline=SampleApp&bucket=month", "viewer").status, 400);

  auto metrics = call("GET", "/metrics", "viewer").body;
  EXPECT_NE(metrics.find("cascade_approval_wait_seconds_count{pipeline=\"SampleApp\",stage=\"prod\",decision=\"approved\"} 1\n"),
            std::string::npos)
      << metrics;
}

// The read-only audit commands over HTTP (`cascade why`, `replay`, `audit
// export`): a release waiting for prod's approval, read by a viewer.
TEST_F(ApiTest, WhyReplayAndAuditBundleOverHttp) {
  const std::string id = settled_sample_release();
  ASSERT_FALSE(id.empty());
  const std::string base = "/api/v1/releases/" + id;
  auto stream = runtime_->log().read(engine::release_stream(id));
  ASSERT_TRUE(stream) << stream.error().message;
  const engine::ReleaseState state = engine::fold(stream.value());

  // why: the explanation `cascade why` prints, with the stage's state.
  auto why = call("GET", base + "/why?stage=prod", "viewer");
  ASSERT_EQ(why.status, 200) << why.body;
  EXPECT_EQ(why.json_body()["release"], id);
  EXPECT_EQ(why.json_body()["stage"], "prod");
  EXPECT_EQ(why.json_body()["version"], state.version);
  EXPECT_EQ(why.json_body()["explanation"], engine::explain_stage(state, "prod")) << why.body;
  EXPECT_NE(why.json_body()["explanation"].get<std::string>().find("prod is waiting"), std::string::npos) << why.body;

  // replay: the whole timeline, then the release as of version 1.
  auto timeline = call("GET", base + "/replay", "viewer");
  ASSERT_EQ(timeline.status, 200) << timeline.body;
  ASSERT_EQ(timeline.json_body()["events"].size(), stream.value().size()) << timeline.body;
  EXPECT_EQ(timeline.json_body()["events"][0]["type"], "ReleaseCreated");
  EXPECT_FALSE(timeline.json_body()["events"][0]["details"].get<std::string>().empty());
  EXPECT_FALSE(timeline.json_body().contains("verification"));
  auto at_one = call("GET", base + "/replay?at=1", "viewer");
  ASSERT_EQ(at_one.status, 200) << at_one.body;
  const json at = at_one.json_body();
  EXPECT_EQ(at["at"]["version"], 1) << at_one.body;
  EXPECT_EQ(at["at"]["event"], "ReleaseCreated");
  EXPECT_EQ(at["at"]["last_version"], state.version);
  EXPECT_EQ(at["summary"], projections::summarize(engine::fold(stream.value(), 1))) << at_one.body;
  EXPECT_EQ(at["summary"]["version"], 1);

  // replay?verify=true: every check of `cascade replay --verify` holds.
  auto verified = call("GET", base + "/replay?verify=true", "viewer");
  ASSERT_EQ(verified.status, 200) << verified.body;
  EXPECT_EQ(verified.json_body()["verification"]["ok"], true) << verified.body;
  EXPECT_EQ(verified.json_body()["events"].size(), stream.value().size());

  // audit: a cascade-audit/1 bundle that `cascade audit verify` accepts
  // (engine::read_bundle + verify_bundle), exported by the caller.
  auto audit = call("GET", base + "/audit", "viewer");
  ASSERT_EQ(audit.status, 200) << audit.body;
  EXPECT_EQ(audit.headers["content-type"].rfind("application/json", 0), 0u) << audit.headers["content-type"];
  auto bundle = engine::read_bundle(audit.body);
  ASSERT_TRUE(bundle) << bundle.error().message;
  EXPECT_EQ(bundle.value().evidence.release_id, id);
  EXPECT_EQ(bundle.value().exported_by, "viewer");
  EXPECT_EQ(bundle.value().evidence.release.events.size(), stream.value().size());
  const engine::Verification checked = engine::verify_bundle(
      bundle.value(), [](const engine::ReleaseState& s) { return projections::summarize(s).dump(); });
  EXPECT_TRUE(checked.ok()) << engine::to_json(checked).dump(2);
}

TEST_F(ApiTest, AuditRoutesRefuseBadQueriesUnknownReleasesAndStrangers) {
  const std::string id = settled_sample_release();
  ASSERT_FALSE(id.empty());
  const std::string base = "/api/v1/releases/" + id;
  auto message = [](const HttpResult& result) { return result.json_body()["error"]["message"].get<std::string>(); };

  // A bad `at` is 400 with the words of `cascade replay --at`.
  auto nonsense = call("GET", base + "/replay?at=yesterday", "viewer");
  EXPECT_EQ(nonsense.status, 400) << nonsense.body;
  EXPECT_EQ(message(nonsense), engine::parse_travel_target("yesterday").error().message);
  auto beyond = call("GET", base + "/replay?at=999", "viewer");
  EXPECT_EQ(beyond.status, 400) << beyond.body;
  EXPECT_NE(message(beyond).find("--at 999 is beyond its last version"), std::string::npos) << beyond.body;
  auto before = call("GET", base + "/replay?at=2000-01-01T00:00Z", "viewer");
  EXPECT_EQ(before.status, 400) << before.body;
  EXPECT_NE(message(before).find("did not exist yet"), std::string::npos) << before.body;
  EXPECT_EQ(call("GET", base + "/replay?verify=maybe", "viewer").status, 400);

  // why needs a stage, and names a stage the release does not have.
  auto no_stage = call("GET", base + "/why", "viewer");
  EXPECT_EQ(no_stage.status, 400) << no_stage.body;
  EXPECT_EQ(message(no_stage).rfind("stage:", 0), 0u) << no_stage.body;
  auto misspelt = call("GET", base + "/why?stage=prdo", "viewer");
  EXPECT_EQ(misspelt.status, 404) << misspelt.body;
  EXPECT_NE(message(misspelt).find("has no stage 'prdo' (did you mean 'prod'?"), std::string::npos) << misspelt.body;

  for (const std::string route : {"/why?stage=prod", "/replay", "/replay?at=1", "/replay?verify=true", "/audit"}) {
    auto unknown = call("GET", "/api/v1/releases/SampleApp-99" + route, "viewer");
    EXPECT_EQ(unknown.status, 404) << route << ": " << unknown.body;
    EXPECT_EQ(call("GET", base + route, "").status, 401) << route;
  }
}

}  // namespace
}  // namespace cascade::tools
