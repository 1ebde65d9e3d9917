// The HTTP API over real HTTP: the server runs in-process on an ephemeral
// loopback port over a temporary data directory, with four users.
#include "tools/api_routes.hpp"
#include "tools/cli_support.hpp"
#include "tools/runtime.hpp"

#include "adapters/http/auth.hpp"
#include "adapters/http/server.hpp"
#include "tests/support/temp_dir.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
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

std::string url_encode(const std::string& text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

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
                                                                   {"admin", http::Role::kAdmin}};
    std::vector<http::UserRecord> records;
    for (const auto& [name, role] : users) {
      tokens_[name] = "token-of-" + name + "-0123456789abcdef";
      records.push_back({name, {role}, http::sha256_hex(tokens_[name])});
    }
    {
      std::ofstream out(dir_ / "users.json");
      out << http::render_users(records);
    }
    auto loaded = http::load_users_file(dir_ / "users.json");
    ASSERT_TRUE(loaded) << loaded.error().message;
    auto runtime = Runtime::open(dir_ / "data");
    ASSERT_TRUE(runtime) << runtime.error().message;
    runtime_ = std::move(runtime.value());
    hub_ = std::make_unique<EventHub>(runtime_->log());
    runtime_->add_observer(*hub_);
    metrics_ = std::make_shared<http::MetricsRegistry>();
    auto router = make_api_router(*runtime_, *hub_, metrics_, started_);
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
    const std::string path = dir_ / ("artifact-" + version);
    std::filesystem::create_directories(path);
    std::ofstream(path + "/index.html") << "<html><body><h1>SampleApp</h1><p>build " << version << "</p></body></html>\n";
    return path;
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

  // Reads events from a stream until `count` arrived (or 20 s passed).
  std::vector<SseEvent> read_stream(const std::string& last_event_id, std::size_t count) {
    std::vector<std::pair<std::string, std::string>> extra = {{"Accept", "text/event-stream"}};
    if (!last_event_id.empty()) extra.emplace_back("Last-Event-ID", last_event_id);
    int fd = connect_to(server_->port());
    EXPECT_GE(fd, 0);
    send_all(fd, request_text("GET", "/api/v1/stream", tokens_.at("viewer"), "", extra));
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
          if (line.rfind("id: ", 0) == 0) event.id = std::stoull(line.substr(4));
          if (line.rfind("event: ", 0) == 0) event.type = line.substr(7);
          if (line.rfind("data: ", 0) == 0) data += line.substr(6);
        }
        if (event.id == 0) continue;  // a comment
        event.data = json::parse(data, nullptr, false);
        events.push_back(std::move(event));
      }
      if (events.size() >= count) break;
    }
    ::close(fd);
    return events;
  }

  testing::TempDir dir_;
  std::map<std::string, std::string> tokens_;
  std::unique_ptr<Runtime> runtime_;
  std::unique_ptr<EventHub> hub_;
  std::atomic<bool> started_{false};
  std::shared_ptr<http::MetricsRegistry> metrics_;
  std::unique_ptr<http::HttpServer> server_;
};

TEST_F(ApiTest, ProbesArePublic) {
  EXPECT_EQ(call("GET", "/api/v1/healthz").status, 200);
  runtime_->settle();
  auto ready = call("GET", "/api/v1/readyz");
  EXPECT_EQ(ready.status, 200) << ready.body;
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
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
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

}  // namespace
}  // namespace cascade::tools
