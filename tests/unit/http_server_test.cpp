// The HTTP server over real loopback connections on an ephemeral port.
//
// No test sleeps for correctness: handlers that must be "in flight" block on a
// Gate the test opens, and the test waits for them to have entered it.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <future>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "adapters/http/errors.hpp"
#include "adapters/http/json_body.hpp"
#include "adapters/http/server.hpp"
#include "adapters/http/sse_stream.hpp"

namespace cascade::adapters::http {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

constexpr auto kPatience = 10s;  // an upper bound on waits that should end at once

// Handlers block here until the test opens it; the test can wait until a
// number of handlers have entered.
class Gate {
 public:
  void enter() {
    std::unique_lock lock(mutex_);
    ++entered_;
    changed_.notify_all();
    changed_.wait(lock, [&] { return open_; });
  }
  bool wait_entered(int count) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, kPatience, [&] { return entered_ >= count; });
  }
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int entered_ = 0;
  bool open_ = false;
};

struct Reply {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  bool keep_alive = true;
  nlohmann::json json() const { return nlohmann::json::parse(body); }
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
  std::string error_code() const { return json()["error"]["code"]; }
  std::string error_message() const { return json()["error"]["message"]; }
};

// A plain HTTP/1.1 client on one keep-alive connection.
class Client {
 public:
  explicit Client(std::uint16_t port) : socket_(ioc_) { socket_.connect({net::ip::make_address("127.0.0.1"), port}); }
  // From another loopback address (127.0.0.0/8 is all local on Linux), so a
  // test can be two clients to the per-client connection cap.
  Client(std::uint16_t port, const std::string& from) : socket_(ioc_) {
    socket_.open(tcp::v4());
    socket_.bind({net::ip::make_address(from), 0});
    socket_.connect({net::ip::make_address("127.0.0.1"), port});
  }

  void send_raw(std::string_view bytes) { net::write(socket_, net::buffer(bytes.data(), bytes.size())); }

  void send(const std::string& method, const std::string& target, const std::string& token = "",
            const std::string& body = "", const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    bhttp::request<bhttp::string_body> request{bhttp::string_to_verb(method), target, 11};
    if (request.method() == bhttp::verb::unknown) request.method_string(method);
    request.set(bhttp::field::host, "localhost");
    if (!token.empty()) request.set(bhttp::field::authorization, "Bearer " + token);
    for (const auto& [name, value] : headers) request.set(name, value);
    request.body() = body;
    request.prepare_payload();
    bhttp::write(socket_, request);
  }

  Reply read() {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64 << 20);
    bhttp::read(socket_, buffer_, parser);
    const auto& message = parser.get();
    Reply reply;
    reply.status = static_cast<int>(message.result_int());
    for (const auto& field : message) {
      std::string name(field.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      reply.headers[name] = std::string(field.value());
    }
    reply.body = message.body();
    reply.keep_alive = message.keep_alive();
    return reply;
  }

  Reply request(const std::string& method, const std::string& target, const std::string& token = "",
                const std::string& body = "", const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    send(method, target, token, body, headers);
    return read();
  }

  // True when the server closed the connection: reading hits the end (or a
  // reset) without any more response bytes.
  bool closed_by_server() {
    beast::error_code ec;
    if (buffer_.size() > 0) return false;
    char byte;
    socket_.read_some(net::buffer(&byte, 1), ec);
    return ec == net::error::eof || ec == net::error::connection_reset;
  }

  // Reads raw bytes until `predicate(all bytes so far)` holds or the
  // connection ends; returns everything read.
  template <class Predicate>
  std::string read_raw_until(Predicate predicate) {
    std::string raw(static_cast<const char*>(buffer_.data().data()), buffer_.size());
    buffer_.consume(buffer_.size());
    char chunk[4096];
    while (!predicate(raw)) {
      beast::error_code ec;
      std::size_t n = socket_.read_some(net::buffer(chunk), ec);
      if (ec) break;
      raw.append(chunk, n);
    }
    return raw;
  }

  void close() {
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

 private:
  net::io_context ioc_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
};

// The body of a chunked response (after the header), as far as it has arrived.
struct Dechunked {
  std::string body;
  bool complete = false;  // the last (zero) chunk arrived
};
Dechunked dechunk(const std::string& raw) {
  Dechunked out;
  auto pos = raw.find("\r\n\r\n");
  if (pos == std::string::npos) return out;
  pos += 4;
  while (true) {
    auto line_end = raw.find("\r\n", pos);
    if (line_end == std::string::npos) return out;
    std::size_t size = std::stoul(raw.substr(pos, line_end - pos), nullptr, 16);
    if (size == 0) {
      out.complete = true;
      return out;
    }
    if (raw.size() < line_end + 2 + size + 2) return out;
    out.body += raw.substr(line_end + 2, size);
    pos = line_end + 2 + size + 2;
  }
}

const std::map<std::string, ErrorCode> kCodes = {
    {"invalid_argument", ErrorCode::kInvalidArgument},
    {"not_found", ErrorCode::kNotFound},
    {"already_exists", ErrorCode::kAlreadyExists},
    {"failed_precondition", ErrorCode::kFailedPrecondition},
    {"permission_denied", ErrorCode::kPermissionDenied},
    {"aborted", ErrorCode::kAborted},
    {"unavailable", ErrorCode::kUnavailable},
    {"data_loss", ErrorCode::kDataLoss},
    {"internal", ErrorCode::kInternal},
};

class HttpServerTest : public ::testing::Test {
 protected:
  static constexpr const char* kViewer = "viewer-token";
  static constexpr const char* kReleaser = "releaser-token";
  static constexpr const char* kApprover = "approver-token";
  static constexpr const char* kAdmin = "admin-token";

  void SetUp() override {
    options_.read_timeout = 5s;
    options_.idle_timeout = 5s;
  }

  void TearDown() override {
    gate_.open();
    server_.reset();
  }

  Router make_router() {
    Router router;
    auto ok = [](const Status& status) { EXPECT_TRUE(status) << status.error().message; };
    ok(router.add_public("GET", "/healthz", [](const Request&) -> Result<Response> {
      return Response::json({{"status", "ok"}});
    }));
    ok(router.add("GET", "/api/v1/whoami", Role::kViewer, [](const Request& request) -> Result<Response> {
      return Response::json({{"user", request.user->name}});
    }));
    ok(router.add("GET", "/api/v1/echo/{id}", Role::kViewer, [](const Request& request) -> Result<Response> {
      nlohmann::json query = nlohmann::json::object();
      for (const auto& [name, value] : request.query.items()) query[name] = value;
      return Response::json({{"id", request.param("id")}, {"route", request.route}, {"query", query}});
    }));
    ok(router.add("POST", "/api/v1/bytes", Role::kViewer, [](const Request& request) -> Result<Response> {
      return Response::json({{"bytes", request.body.size()}});
    }));
    ok(router.add("POST", "/api/v1/releases", Role::kReleaser, [](const Request& request) -> Result<Response> {
      CASCADE_TRY(body, parse_json_object(request.body, {"pipeline", "artifact"}));
      return Response::json({{"pipeline", body.value("pipeline", "")}, {"requested_by", request.user->name}}, 201);
    }));
    ok(router.add("POST", "/api/v1/releases/{id}/stages/{stage}/approvals", Role::kApprover,
                  [](const Request& request) -> Result<Response> {
                    auto body = parse_json_object(request.body, {"comment"});
                    if (!body) return error_response(body.error(), InvalidArgumentAs::kUnprocessableEntity);
                    return Response::json({{"release", request.param("id")},
                                           {"stage", request.param("stage")},
                                           {"approver", request.user->name},
                                           {"comment", body.value().value("comment", "")}});
                  }));
    ok(router.add("DELETE", "/api/v1/pipelines/{name}", Role::kAdmin,
                  [](const Request&) -> Result<Response> { return Response::no_content(); }));
    ok(router.add("GET", "/api/v1/errors/{code}", Role::kViewer, [](const Request& request) -> Result<Response> {
      return make_error(kCodes.at(request.param("code")), "failed on purpose", {{"field", "why"}});
    }));
    ok(router.add("GET", "/api/v1/throw", Role::kViewer,
                  [](const Request&) -> Result<Response> { throw std::runtime_error("handler blew up"); }));
    ok(router.add("GET", "/api/v1/throw-int", Role::kViewer, [](const Request&) -> Result<Response> { throw 42; }));
    ok(router.add("GET", "/api/v1/bad-header", Role::kViewer, [](const Request&) -> Result<Response> {
      Response response = Response::text("x");
      response.headers.emplace_back("X-Injected", "a\r\nSet-Cookie: evil=1");
      return response;
    }));
    ok(router.add("GET", "/api/v1/bad-status", Role::kViewer,
                  [](const Request&) -> Result<Response> { return Response::text("x", "text/plain", 1000); }));
    ok(router.add("GET", "/api/v1/block", Role::kViewer, [this](const Request&) -> Result<Response> {
      gate_.enter();
      return Response::json({{"done", true}});
    }));
    // A quick path that answers "ready" on the I/O thread, declines "slow"
    // (the worker answers), and throws for "broken" (the worker answers too).
    ok(router.add_with_quick_path(
        "GET", "/api/v1/quick/{key}", Role::kViewer,
        [](const Request& request) -> std::optional<Result<Response>> {
          if (request.param("key") == "broken") throw std::runtime_error("quick path blew up");
          if (request.param("key") != "ready") return std::nullopt;
          return Result<Response>(Response::json({{"answered_by", "quick path"}}));
        },
        [](const Request&) -> Result<Response> { return Response::json({{"answered_by", "worker"}}); }));
    ok(router.add("GET", "/api/v1/paged", Role::kViewer, [](const Request&) -> Result<Response> {
      // 2,000 frames through a 4 KiB backlog: only paging gets them all out.
      auto stream = SseStream::create(4096);
      std::weak_ptr<SseStream> weak = stream;
      stream->page_from([weak, next = 1]() mutable {
        auto stream = weak.lock();
        if (!stream) return false;
        while (next <= 2000 && stream->backlog_bytes() < stream->page_budget_bytes()) {
          if (!stream->send(std::to_string(next), "n", std::string(40, 'x'))) return false;
          ++next;
        }
        if (next <= 2000) return true;
        stream->close();
        return false;
      });
      return Response::event_stream(stream);
    }));
    ok(router.add("GET", "/api/v1/events", Role::kViewer, [this](const Request& request) -> Result<Response> {
      auto stream = SseStream::create();
      if (auto last = request.last_event_id()) {
        // Catch-up before the live frames: the replay goes out first.
        stream->send(std::to_string(std::stoi(std::string(*last)) + 1), "replayed", "after " + std::string(*last));
      }
      stream->on_close([this] {
        std::lock_guard lock(stream_mutex_);
        stream_closed_ = true;
        stream_changed_.notify_all();
      });
      {
        std::lock_guard lock(stream_mutex_);
        stream_ = stream;
        last_event_id_ = std::string(request.last_event_id().value_or("(none)"));
        stream_changed_.notify_all();
      }
      return Response::event_stream(stream);
    }));
    ok(router.add("GET", "/metrics", Role::kViewer, [this](const Request&) -> Result<Response> {
      return Response::text(server_->metrics().render(), metrics::kMetricsContentType);
    }));
    return router;
  }

  void start() {
    std::vector<UserRecord> users = {{"vera", {Role::kViewer}, sha256_hex(kViewer)},
                                     {"rita", {Role::kReleaser}, sha256_hex(kReleaser)},
                                     {"bob", {Role::kApprover}, sha256_hex(kApprover)},
                                     {"ada", {Role::kAdmin}, sha256_hex(kAdmin)}};
    options_.log = [this](std::string_view line) {
      std::lock_guard lock(log_mutex_);
      log_.emplace_back(line);
    };
    auto server = HttpServer::start(options_, make_router(), std::make_shared<Authenticator>(users));
    ASSERT_TRUE(server) << server.error().message;
    server_ = std::move(server).value();
    ASSERT_NE(server_->port(), 0);
  }

  std::shared_ptr<SseStream> wait_for_stream() {
    std::unique_lock lock(stream_mutex_);
    stream_changed_.wait_for(lock, kPatience, [&] { return stream_ != nullptr; });
    return stream_;
  }
  std::string last_event_id() {
    std::lock_guard lock(stream_mutex_);
    return last_event_id_;
  }
  std::shared_ptr<SseStream> current_stream() {
    std::lock_guard lock(stream_mutex_);
    return stream_;
  }
  bool wait_for_stream_closed() {
    std::unique_lock lock(stream_mutex_);
    return stream_changed_.wait_for(lock, kPatience, [&] { return stream_closed_; });
  }
  std::vector<std::string> log() {
    std::lock_guard lock(log_mutex_);
    return log_;
  }

  ServerOptions options_;
  Gate gate_;
  std::unique_ptr<HttpServer> server_;

  std::mutex stream_mutex_;
  std::condition_variable stream_changed_;
  std::shared_ptr<SseStream> stream_;
  std::string last_event_id_;
  bool stream_closed_ = false;

  std::mutex log_mutex_;
  std::vector<std::string> log_;
};

TEST_F(HttpServerTest, ServesHealthProbesWithoutAToken) {
  start();
  Client client(server_->port());
  auto reply = client.request("GET", "/healthz");
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.header("content-type"), "application/json");
  EXPECT_EQ(reply.json(), (nlohmann::json{{"status", "ok"}}));
  EXPECT_TRUE(reply.keep_alive);
  // Same connection, again: keep-alive.
  EXPECT_EQ(client.request("GET", "/healthz").status, 200);
}

TEST_F(HttpServerTest, AuthenticatesAndAuthorises) {
  start();
  Client client(server_->port());

  auto missing = client.request("GET", "/api/v1/whoami");
  EXPECT_EQ(missing.status, 401);
  EXPECT_EQ(missing.header("www-authenticate"), "Bearer realm=\"cascade\"");
  EXPECT_EQ(missing.error_code(), "unauthenticated");

  auto wrong = client.request("GET", "/api/v1/whoami", "not-a-token");
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(wrong.header("www-authenticate"), "Bearer realm=\"cascade\", error=\"invalid_token\"");
  EXPECT_EQ(wrong.error_message(), "invalid token");

  auto basic = client.request("GET", "/api/v1/whoami", "", "", {{"Authorization", "Basic dmVyYTp4"}});
  EXPECT_EQ(basic.status, 401);

  auto viewer = client.request("GET", "/api/v1/whoami", kViewer);
  EXPECT_EQ(viewer.status, 200);
  EXPECT_EQ(viewer.json()["user"], "vera");

  // A refused request with a body is answered before the body is read, and
  // its connection closed (the unread body cannot be told from the next request).
  Client refused(server_->port());
  auto too_low = refused.request("POST", "/api/v1/releases/SampleApp-3/stages/prod/approvals", kReleaser,
                                 R"({"comment": "ship it"})");
  EXPECT_EQ(too_low.status, 403);
  EXPECT_FALSE(too_low.keep_alive);
  EXPECT_EQ(too_low.error_code(), "permission_denied");
  EXPECT_EQ(too_low.error_message(),
            "this needs the approver role (you have releaser)");

  auto approver = client.request("POST", "/api/v1/releases/SampleApp-3/stages/prod/approvals", kApprover,
                                 R"({"comment": "ship it"})");
  EXPECT_EQ(approver.status, 200);
  // The approver is whoever the credential says.
  EXPECT_EQ(
      approver.json(),
      (nlohmann::json{{"release", "SampleApp-3"}, {"stage", "prod"}, {"approver", "bob"}, {"comment", "ship it"}}));

  // Higher roles include lower ones.
  EXPECT_EQ(client.request("POST", "/api/v1/releases", kApprover, R"({"pipeline": "SampleApp"})").status, 201);
  EXPECT_EQ(client.request("POST", "/api/v1/releases", kAdmin, R"({"pipeline": "SampleApp"})").json()["requested_by"],
            "ada");
  EXPECT_EQ(Client(server_->port()).request("POST", "/api/v1/releases", kViewer, R"({"pipeline": "SampleApp"})").status,
            403);
  EXPECT_EQ(client.request("DELETE", "/api/v1/pipelines/SampleApp", kApprover).status, 403);
  EXPECT_EQ(client.request("DELETE", "/api/v1/pipelines/SampleApp", kAdmin).status, 204);

  // The connection remembers its last credential; any other is checked
  // afresh: one character changed, the same length, is refused.
  std::string forged = kAdmin;
  forged.back() = forged.back() == 'x' ? 'y' : 'x';
  EXPECT_EQ(client.request("GET", "/api/v1/whoami", forged).status, 401);
  EXPECT_EQ(client.request("GET", "/api/v1/whoami").status, 401) << "no credential after a good one";
  EXPECT_EQ(client.request("GET", "/api/v1/whoami", kViewer).json()["user"], "vera");
  EXPECT_EQ(client.request("GET", "/api/v1/whoami", kViewer).json()["user"], "vera");
  EXPECT_EQ(client.request("DELETE", "/api/v1/pipelines/SampleApp", kViewer).status, 403);
}

TEST_F(HttpServerTest, UnknownPathIs404AndWrongMethodIs405WithAllow) {
  start();
  Client client(server_->port());
  auto not_found = client.request("GET", "/api/v1/nothing", kViewer);
  EXPECT_EQ(not_found.status, 404);
  EXPECT_EQ(not_found.json(), nlohmann::json::parse(R"({"error": {"code": "not_found",
      "message": "no route for GET /api/v1/nothing", "details": []}})"));
  // 404 before authentication: no token needed to learn that a path does not exist.
  EXPECT_EQ(client.request("GET", "/nothing").status, 404);

  auto wrong_method = client.request("PUT", "/api/v1/releases", kViewer);
  EXPECT_EQ(wrong_method.status, 405);
  EXPECT_EQ(wrong_method.header("allow"), "POST");
  EXPECT_EQ(wrong_method.error_code(), "method_not_allowed");

  auto custom_method = client.request("BREW", "/healthz");
  EXPECT_EQ(custom_method.status, 405);
  EXPECT_EQ(custom_method.header("allow"), "GET");
}

TEST_F(HttpServerTest, PassesDecodedParametersAndQuery) {
  start();
  Client client(server_->port());
  auto reply = client.request("GET", "/api/v1/echo/Sample%20App-3?state=open&q=a+b%26c&flag", kViewer);
  ASSERT_EQ(reply.status, 200);
  EXPECT_EQ(reply.json(), nlohmann::json::parse(R"({"id": "Sample App-3", "route": "/api/v1/echo/{id}",
      "query": {"state": "open", "q": "a b&c", "flag": ""}})"));

  auto bad_query = client.request("GET", "/api/v1/echo/x?a=%zz", kViewer);
  EXPECT_EQ(bad_query.status, 400);
  EXPECT_EQ(bad_query.error_code(), "invalid_argument");
  auto bad_path = client.request("GET", "/api/v1/echo/%zz", kViewer);
  EXPECT_EQ(bad_path.status, 400);
  EXPECT_EQ(bad_path.error_code(), "bad_request");
}

TEST_F(HttpServerTest, EveryErrorCodeBecomesItsStatusAndTheCommonShape) {
  start();
  Client client(server_->port());
  const std::map<std::string, int> statuses = {
      {"invalid_argument", 400},    {"not_found", 404},         {"already_exists", 409},
      {"failed_precondition", 409}, {"permission_denied", 403}, {"aborted", 409},
      {"unavailable", 503},         {"data_loss", 500},         {"internal", 500}};
  for (const auto& [code, status] : statuses) {
    auto reply = client.request("GET", "/api/v1/errors/" + code, kViewer);
    EXPECT_EQ(reply.status, status) << code;
    EXPECT_EQ(reply.header("content-type"), "application/json") << code;
    EXPECT_EQ(reply.json(), nlohmann::json::parse(R"({"error": {"code": ")" + code +
                                                  R"(", "message": "failed on purpose",
                                                  "details": [{"path": "field", "message": "why"}]}})"))
        << code;
  }
}

TEST_F(HttpServerTest, MalformedJsonIs400WithLineAndColumn) {
  start();
  Client client(server_->port());
  // A missing comma: the parser fails at the end of the next token, "artifact".
  auto reply =
      client.request("POST", "/api/v1/releases", kReleaser, "{\n  \"pipeline\": \"SampleApp\"\n  \"artifact\": 1}");
  EXPECT_EQ(reply.status, 400);
  EXPECT_EQ(reply.error_code(), "invalid_argument");
  EXPECT_EQ(reply.error_message().rfind("malformed JSON at line 3, column 12 (byte 39): ", 0), 0u)
      << reply.error_message();
}

TEST_F(HttpServerTest, UnknownFieldIsRejectedWithDidYouMean) {
  start();
  Client client(server_->port());
  // This handler reports validation errors as 422.
  auto approval = client.request("POST", "/api/v1/releases/SampleApp-3/stages/prod/approvals", kApprover,
                                 R"({"commnt": "ship it"})");
  EXPECT_EQ(approval.status, 422);
  EXPECT_EQ(approval.json()["error"]["details"],
            nlohmann::json::parse(
                R"js([{"path": "commnt", "message": "unknown field 'commnt' (did you mean 'comment'?)"}])js"));
  // This one keeps the default 400.
  auto release = client.request("POST", "/api/v1/releases", kReleaser, R"({"pipline": "SampleApp"})");
  EXPECT_EQ(release.status, 400);
  EXPECT_EQ(release.error_message(), "pipline: unknown field 'pipline' (did you mean 'pipeline'?)");
}

TEST_F(HttpServerTest, BodyOverTheLimitIs413AndTheServerServesOn) {
  start();
  {
    Client client(server_->port());
    auto exact = client.request("POST", "/api/v1/bytes", kViewer, std::string(1 << 20, 'x'));
    EXPECT_EQ(exact.status, 200);
    EXPECT_EQ(exact.json()["bytes"], 1 << 20);
  }
  {
    Client client(server_->port());
    auto too_big = client.request("POST", "/api/v1/bytes", kViewer, std::string((1 << 20) + 1, 'x'));
    EXPECT_EQ(too_big.status, 413);
    EXPECT_EQ(too_big.error_code(), "payload_too_large");
    EXPECT_FALSE(too_big.keep_alive);
    EXPECT_TRUE(client.closed_by_server());
  }
  {
    // A chunked body is counted as it arrives.
    Client client(server_->port());
    client.send_raw(
        "POST /api/v1/bytes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer viewer-token\r\n"
        "Transfer-Encoding: chunked\r\n\r\n");
    const std::string chunk(64 << 10, 'y');
    char size_line[32];
    std::snprintf(size_line, sizeof size_line, "%zx\r\n", chunk.size());
    for (int i = 0; i < 17; ++i) client.send_raw(std::string(size_line) + chunk + "\r\n");
    EXPECT_EQ(client.read().status, 413);
  }
  Client next(server_->port());
  EXPECT_EQ(next.request("GET", "/api/v1/whoami", kViewer).status, 200);
}

TEST_F(HttpServerTest, OversizedHeadersAre431) {
  options_.max_header_bytes = 4096;
  start();
  Client client(server_->port());
  auto reply = client.request("GET", "/api/v1/whoami", kViewer, "", {{"X-Padding", std::string(5000, 'p')}});
  EXPECT_EQ(reply.status, 431);
  EXPECT_EQ(reply.error_code(), "headers_too_large");
  EXPECT_TRUE(client.closed_by_server());

  Client next(server_->port());
  EXPECT_EQ(next.request("GET", "/api/v1/whoami", kViewer, "", {{"X-Padding", std::string(3000, 'p')}}).status, 200);
}

TEST_F(HttpServerTest, MalformedRequestsAre400AndClosed) {
  start();
  Client client(server_->port());
  client.send_raw("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n");
  auto reply = client.read();
  EXPECT_EQ(reply.status, 400);
  EXPECT_EQ(reply.error_code(), "bad_request");
  EXPECT_TRUE(client.closed_by_server());

  Client garbage(server_->port());
  garbage.send_raw("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n");
  EXPECT_EQ(garbage.read().status, 400);
}

TEST_F(HttpServerTest, ASlowClientIsDroppedWhileOthersAreServed) {
  options_.read_timeout = 300ms;
  start();
  Client slow(server_->port());
  const auto started = std::chrono::steady_clock::now();
  slow.send_raw(
      "POST /api/v1/bytes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer viewer-token\r\nContent-Length: 100\r\n\r\n"
      "only part of the body");

  Client other(server_->port());
  EXPECT_EQ(other.request("GET", "/healthz").status, 200);
  EXPECT_EQ(other.request("GET", "/api/v1/whoami", kViewer).status, 200);

  EXPECT_TRUE(slow.closed_by_server());
  const auto waited = std::chrono::steady_clock::now() - started;
  EXPECT_GE(waited, 300ms);
  EXPECT_LT(waited, kPatience);
  EXPECT_EQ(other.request("GET", "/healthz").status, 200);
}

TEST_F(HttpServerTest, AnIdleKeepAliveConnectionIsClosed) {
  options_.idle_timeout = 200ms;
  start();
  Client client(server_->port());
  EXPECT_EQ(client.request("GET", "/healthz").status, 200);
  EXPECT_TRUE(client.closed_by_server());
}

TEST_F(HttpServerTest, TooManyConcurrentRequestsAre429) {
  options_.worker_threads = 2;
  options_.max_concurrent_requests = 2;
  start();
  Client first(server_->port());
  Client second(server_->port());
  first.send("GET", "/api/v1/block", kViewer);
  second.send("GET", "/api/v1/block", kViewer);
  ASSERT_TRUE(gate_.wait_entered(2));

  Client third(server_->port());
  auto refused = third.request("GET", "/api/v1/whoami", kViewer);
  EXPECT_EQ(refused.status, 429);
  EXPECT_EQ(refused.header("retry-after"), "1");
  EXPECT_EQ(refused.error_code(), "too_many_requests");
  // Health probes are not held back by busy workers.
  EXPECT_EQ(third.request("GET", "/healthz").status, 200);

  gate_.open();
  EXPECT_EQ(first.read().status, 200);
  EXPECT_EQ(second.read().status, 200);
  EXPECT_EQ(third.request("GET", "/api/v1/whoami", kViewer).status, 200);
}

TEST_F(HttpServerTest, AQuickPathAnswersOnTheIoThreadAndElseTheWorkerDoes) {
  options_.worker_threads = 1;
  start();
  Client busy(server_->port());
  busy.send("GET", "/api/v1/block", kViewer);
  ASSERT_TRUE(gate_.wait_entered(1));
  // The only worker is blocked: the quick path still answers...
  Client client(server_->port());
  auto quick = client.request("GET", "/api/v1/quick/ready", kViewer);
  EXPECT_EQ(quick.status, 200);
  EXPECT_EQ(quick.json()["answered_by"], "quick path");
  // ...after authentication and authorisation, like any route.
  EXPECT_EQ(client.request("GET", "/api/v1/quick/ready").status, 401);
  gate_.open();
  EXPECT_EQ(busy.read().status, 200);
  // Declined or thrown: the worker answers.
  EXPECT_EQ(client.request("GET", "/api/v1/quick/slow", kViewer).json()["answered_by"], "worker");
  EXPECT_EQ(client.request("GET", "/api/v1/quick/broken", kViewer).json()["answered_by"], "worker");
}

TEST_F(HttpServerTest, AThrowingHandlerIs500AndTheServerLivesOn) {
  start();
  Client client(server_->port());
  auto thrown = client.request("GET", "/api/v1/throw", kViewer);
  EXPECT_EQ(thrown.status, 500);
  EXPECT_EQ(thrown.json(), nlohmann::json::parse(R"({"error": {"code": "internal", "message": "internal error",
      "details": []}})"));
  EXPECT_EQ(client.request("GET", "/api/v1/throw-int", kViewer).status, 500);
  auto injected = client.request("GET", "/api/v1/bad-header", kViewer);
  EXPECT_EQ(injected.status, 500);
  EXPECT_EQ(injected.header("set-cookie"), "");
  EXPECT_EQ(client.request("GET", "/api/v1/bad-status", kViewer).status, 500);
  EXPECT_EQ(client.request("GET", "/api/v1/whoami", kViewer).status, 200);

  auto lines = log();
  ASSERT_GE(lines.size(), 4u);
  EXPECT_EQ(lines[0], "http: handler for GET /api/v1/throw threw: handler blew up");
  for (const auto& line : lines) EXPECT_EQ(line.find(kViewer), std::string::npos) << line;
}

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  start();
  Client client(server_->port());
  client.send_raw(
      "GET /api/v1/echo/one HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer viewer-token\r\n\r\n"
      "GET /api/v1/echo/two HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer viewer-token\r\n\r\n");
  EXPECT_EQ(client.read().json()["id"], "one");
  EXPECT_EQ(client.read().json()["id"], "two");
}

TEST_F(HttpServerTest, AnswersExpect100Continue) {
  start();
  Client client(server_->port());
  client.send_raw(
      "POST /api/v1/bytes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer viewer-token\r\n"
      "Content-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  auto interim = client.read();
  EXPECT_EQ(interim.status, 100);
  client.send_raw("hello");
  auto reply = client.read();
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.json()["bytes"], 5);
}

TEST_F(HttpServerTest, Http10ClientsGetTheirConnectionClosed) {
  start();
  Client client(server_->port());
  client.send_raw("GET /healthz HTTP/1.0\r\n\r\n");
  auto reply = client.read();
  EXPECT_EQ(reply.status, 200);
  EXPECT_TRUE(client.closed_by_server());
}

TEST_F(HttpServerTest, ManyClientsAtOnce) {
  options_.io_threads = 2;
  options_.worker_threads = 4;
  start();
  constexpr int kClients = 8;
  constexpr int kRequests = 50;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      Client client(server_->port());
      for (int i = 0; i < kRequests; ++i) {
        auto reply = client.request("GET", "/api/v1/echo/c" + std::to_string(c) + "?i=" + std::to_string(i), kViewer);
        if (reply.status == 200 && reply.json()["query"]["i"] == std::to_string(i)) ++ok;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(ok.load(), kClients * kRequests);
}

TEST_F(HttpServerTest, EventStreamDeliversFramesSentAfterTheClientConnected) {
  start();
  Client client(server_->port());
  client.send("GET", "/api/v1/events", kViewer, "", {{"Last-Event-ID", "41"}});
  auto stream = wait_for_stream();
  ASSERT_NE(stream, nullptr);
  EXPECT_EQ(last_event_id(), "41");

  // The header and the replayed frame arrive first.
  auto raw =
      client.read_raw_until([](const std::string& r) { return dechunk(r).body.find("after 41") != std::string::npos; });
  EXPECT_EQ(raw.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << raw;
  EXPECT_NE(raw.find("Content-Type: text/event-stream"), std::string::npos) << raw;
  EXPECT_NE(raw.find("Transfer-Encoding: chunked"), std::string::npos) << raw;
  EXPECT_EQ(dechunk(raw).body, "id: 42\nevent: replayed\ndata: after 41\n\n");

  // Frames sent from another thread, after the client connected.
  std::thread producer([stream] {
    EXPECT_TRUE(stream->send("43", "stage", "{\"stage\": \"prod\",\n\"state\": \"Deploying\"}"));
    EXPECT_TRUE(stream->send("", "", "no id"));
    EXPECT_TRUE(stream->send_comment("just a comment"));
  });
  producer.join();
  const std::string expected =
      "id: 42\nevent: replayed\ndata: after 41\n\n"
      "id: 43\nevent: stage\ndata: {\"stage\": \"prod\",\ndata: \"state\": \"Deploying\"}\n\n"
      "data: no id\n\n"
      ": just a comment\n\n";
  raw += client.read_raw_until([&](const std::string& r) { return dechunk(raw + r).body.size() >= expected.size(); });
  EXPECT_EQ(dechunk(raw).body, expected);

  // The producer ends the stream: the response ends and the callback runs.
  stream->close();
  EXPECT_FALSE(stream->send("44", "late", "x"));
  raw += client.read_raw_until([&](const std::string& r) { return dechunk(raw + r).complete; });
  EXPECT_TRUE(dechunk(raw).complete);
  EXPECT_TRUE(wait_for_stream_closed());
  EXPECT_TRUE(client.closed_by_server());
}

TEST(SseStreamTest, TheBacklogIsBoundedFromTheFirstFrame) {
  // Before the server writes it as after: a producer that queues without
  // limit (a replay sent whole) gets the stream closed, not the memory.
  auto stream = SseStream::create(1024);
  int accepted = 0;
  while (accepted < 100 && stream->send(std::to_string(accepted), "e", std::string(100, 'x'))) ++accepted;
  EXPECT_LT(accepted, 10);
  EXPECT_TRUE(stream->closed());
  EXPECT_LE(stream->backlog_bytes(), 1024u);
  // A single frame larger than the bound still goes out when nothing waits.
  auto big = SseStream::create(1024);
  EXPECT_TRUE(big->send("1", "e", std::string(4096, 'x')));
}

TEST_F(HttpServerTest, APagedEventStreamDeliversEveryFrameInOrderThroughASmallBacklog) {
  start();
  Client client(server_->port());
  client.send("GET", "/api/v1/paged", kViewer);
  auto raw = client.read_raw_until([](const std::string& r) { return dechunk(r).complete; });
  const std::string body = dechunk(raw).body;
  std::size_t at = 0;
  int expected = 1;
  for (std::size_t id = body.find("id: "); id != std::string::npos; id = body.find("id: ", at)) {
    at = body.find('\n', id);
    ASSERT_EQ(body.substr(id + 4, at - id - 4), std::to_string(expected)) << "frame out of order";
    ++expected;
  }
  EXPECT_EQ(expected, 2001);
}

TEST_F(HttpServerTest, EventStreamEndsWhenTheClientGoesAway) {
  start();
  Client client(server_->port());
  client.send("GET", "/api/v1/events", kViewer);
  auto stream = wait_for_stream();
  ASSERT_NE(stream, nullptr);
  EXPECT_EQ(last_event_id(), "(none)");
  EXPECT_TRUE(stream->send("1", "hello", "world"));
  client.read_raw_until([](const std::string& r) { return dechunk(r).body.find("world") != std::string::npos; });
  client.close();
  EXPECT_TRUE(wait_for_stream_closed());
  EXPECT_TRUE(stream->closed());
  EXPECT_FALSE(stream->send("2", "hello", "again"));
  // The server still serves.
  Client next(server_->port());
  EXPECT_EQ(next.request("GET", "/healthz").status, 200);
}

TEST_F(HttpServerTest, QuietEventStreamsGetKeepAliveComments) {
  options_.sse_keepalive_interval = 50ms;
  start();
  Client client(server_->port());
  client.send("GET", "/api/v1/events", kViewer);
  ASSERT_NE(wait_for_stream(), nullptr);
  auto raw = client.read_raw_until(
      [](const std::string& r) { return dechunk(r).body.find(": keep-alive\n\n") != std::string::npos; });
  EXPECT_NE(dechunk(raw).body.find(": keep-alive\n\n"), std::string::npos);
}

TEST_F(HttpServerTest, EventStreamsBeyondTheLimitAre429) {
  options_.max_streams = 1;
  start();
  Client first(server_->port());
  first.send("GET", "/api/v1/events", kViewer);
  auto stream = wait_for_stream();
  ASSERT_NE(stream, nullptr);
  // The header has been written, so the stream holds its slot.
  first.read_raw_until([](const std::string& r) { return r.find("\r\n\r\n") != std::string::npos; });

  Client second(server_->port());
  auto refused = second.request("GET", "/api/v1/events", kViewer);
  EXPECT_EQ(refused.status, 429);
  EXPECT_EQ(refused.header("retry-after"), "1");
  auto refused_stream = current_stream();
  ASSERT_NE(refused_stream, stream);
  EXPECT_TRUE(refused_stream->closed());  // the refused stream was ended, so its producer lets go
  EXPECT_FALSE(stream->closed());
}

TEST_F(HttpServerTest, StopEndsEventStreams) {
  start();
  Client client(server_->port());
  client.send("GET", "/api/v1/events", kViewer);
  auto stream = wait_for_stream();
  ASSERT_NE(stream, nullptr);
  EXPECT_TRUE(stream->send("1", "e", "before stop"));
  auto raw = client.read_raw_until(
      [](const std::string& r) { return dechunk(r).body.find("before stop") != std::string::npos; });
  server_->stop();
  EXPECT_TRUE(wait_for_stream_closed());
  EXPECT_FALSE(stream->send("2", "e", "after stop"));
  raw += client.read_raw_until([](const std::string&) { return false; });  // to the end
  EXPECT_TRUE(dechunk(raw).complete) << raw;
  EXPECT_EQ(dechunk(raw).body, "id: 1\nevent: e\ndata: before stop\n\n");
  EXPECT_TRUE(client.closed_by_server());
}

TEST_F(HttpServerTest, GracefulStopFinishesTheRequestInFlight) {
  options_.stop_grace = 30s;
  start();
  const auto port = server_->port();
  Client busy(port);
  busy.send("GET", "/api/v1/block", kViewer);
  ASSERT_TRUE(gate_.wait_entered(1));
  Client idle(port);
  EXPECT_EQ(idle.request("GET", "/healthz").status, 200);

  auto stopped = std::async(std::launch::async, [&] { server_->stop(); });
  // New connections are refused once stop() has begun…
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  bool refused = false;
  while (!refused && std::chrono::steady_clock::now() < deadline) {
    net::io_context ioc;
    tcp::socket socket(ioc);
    beast::error_code ec;
    socket.connect({net::ip::make_address("127.0.0.1"), port}, ec);
    refused = ec == net::error::connection_refused;
    std::this_thread::yield();
  }
  EXPECT_TRUE(refused);
  // …idle keep-alive connections are closed…
  EXPECT_TRUE(idle.closed_by_server());
  // …and the request in flight still gets its response.
  EXPECT_EQ(stopped.wait_for(0s), std::future_status::timeout);
  gate_.open();
  auto reply = busy.read();
  EXPECT_EQ(reply.status, 200);
  EXPECT_FALSE(reply.keep_alive);
  EXPECT_EQ(stopped.wait_for(kPatience), std::future_status::ready);
  EXPECT_TRUE(busy.closed_by_server());
}

TEST_F(HttpServerTest, StopIsBoundedWhenAClientDoesNotRead) {
  options_.stop_grace = 100ms;
  start();
  Client client(server_->port());
  // A half-sent request is not in flight: stop() drops it at once.
  client.send_raw("GET /healthz HTTP/1.1\r\n");
  const auto started = std::chrono::steady_clock::now();
  server_->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - started, kPatience);
  EXPECT_TRUE(client.closed_by_server());
  server_->stop();  // idempotent
}

TEST_F(HttpServerTest, RecordsRequestMetrics) {
  start();
  Client client(server_->port());
  EXPECT_EQ(client.request("GET", "/healthz").status, 200);
  EXPECT_EQ(client.request("GET", "/healthz").status, 200);
  EXPECT_EQ(client.request("GET", "/nope").status, 404);
  EXPECT_EQ(client.request("GET", "/api/v1/echo/x", kViewer).status, 200);
  EXPECT_EQ(client.request("BREW", "/healthz").status, 405);
  // The same connection: the earlier requests' metrics are recorded before
  // this request is read.
  auto metrics = client.request("GET", "/metrics", kViewer);
  ASSERT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.header("content-type"), metrics::kMetricsContentType);
  const std::string& text = metrics.body;
  EXPECT_NE(text.find("# TYPE cascade_http_requests_total counter\n"), std::string::npos) << text;
  EXPECT_NE(text.find("cascade_http_requests_total{route=\"/healthz\",method=\"GET\",code=\"200\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("cascade_http_requests_total{route=\"unmatched\",method=\"GET\",code=\"404\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("cascade_http_requests_total{route=\"/api/v1/echo/{id}\",method=\"GET\",code=\"200\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("cascade_http_requests_total{route=\"unmatched\",method=\"other\",code=\"405\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE cascade_http_request_duration_seconds histogram\n"), std::string::npos) << text;
  EXPECT_NE(text.find("cascade_http_request_duration_seconds_count{route=\"/healthz\",method=\"GET\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(
      text.find("cascade_http_request_duration_seconds_bucket{route=\"/healthz\",method=\"GET\",le=\"+Inf\"} 2\n"),
      std::string::npos)
      << text;
}

TEST(HttpServerStartTest, ReportsBadAddressesAndBusyPorts) {
  Router router;
  ServerOptions options;
  options.address = "not-an-address";
  auto bad = HttpServer::start(options, router, nullptr);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);

  ServerOptions first_options;
  auto first = HttpServer::start(first_options, router, nullptr);
  ASSERT_TRUE(first);
  ServerOptions busy;
  busy.port = first.value()->port();
  auto second = HttpServer::start(busy, router, nullptr);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, ErrorCode::kUnavailable);

  ServerOptions zero_threads;
  zero_threads.worker_threads = 0;
  EXPECT_EQ(HttpServer::start(zero_threads, router, nullptr).error().code, ErrorCode::kInvalidArgument);
}

TEST(HttpServerStartTest, WithoutAnAuthenticatorProtectedRoutesAre401) {
  Router router;
  ASSERT_TRUE(
      router.add("GET", "/x", Role::kViewer, [](const Request&) -> Result<Response> { return Response::text("x"); }));
  auto server = HttpServer::start(ServerOptions{}, std::move(router), nullptr);
  ASSERT_TRUE(server);
  Client client(server.value()->port());
  auto reply = client.request("GET", "/x", "anything");
  EXPECT_EQ(reply.status, 401);
  EXPECT_EQ(reply.error_message(), "authentication is not configured");
}

TEST_F(HttpServerTest, TheCredentialIsCheckedBeforeContinueAndBeforeTheBody) {
  start();
  for (const char* authorization : {"", "Authorization: Bearer wrong-token\r\n", "Authorization: Bearer viewer-token\r\n"}) {
    Client client(server_->port());
    // A releaser's route; a body announced but never sent.
    client.send_raw(std::string("POST /api/v1/releases HTTP/1.1\r\nHost: x\r\n") + authorization +
                    "Content-Length: 1000000\r\nExpect: 100-continue\r\n\r\n");
    const auto reply = client.read();  // answered at once: no 100, no wait for the body
    EXPECT_EQ(reply.status, std::string(authorization).empty() || std::string(authorization).find("wrong") != std::string::npos ? 401 : 403)
        << authorization;
    EXPECT_TRUE(client.closed_by_server());
  }
  Client client(server_->port());
  client.send_raw("POST /api/v1/bytes HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n");
  EXPECT_EQ(client.read().status, 401);  // without Expect too: the body is never read
}

TEST_F(HttpServerTest, TransferEncodingOtherThanChunkedIs400) {
  start();
  for (const char* encoding : {"gzip", "gzip, chunked", "identity", "chunked, gzip"}) {
    Client client(server_->port());
    client.send_raw(std::string("POST /api/v1/bytes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer viewer-token\r\n"
                                "Transfer-Encoding: ") + encoding + "\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    const auto reply = client.read();
    EXPECT_EQ(reply.status, 400) << encoding;
    EXPECT_TRUE(client.closed_by_server()) << encoding;
  }
  Client chunked(server_->port());
  chunked.send_raw("POST /api/v1/bytes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer viewer-token\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
  const auto reply = chunked.read();
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.json()["bytes"], 5);
}

// True when the server closed the connection without answering a request on it.
bool refused_at_accept(Client& client) {
  try {
    client.send_raw("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  } catch (const std::exception&) {
    return true;  // reset before the request could be written
  }
  return client.closed_by_server();
}

TEST_F(HttpServerTest, ConnectionsAreCappedPerClientAndInAll) {
  options_.max_connections_per_client = 3;
  start();
  std::vector<std::unique_ptr<Client>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(std::make_unique<Client>(server_->port()));
    EXPECT_EQ(held.back()->request("GET", "/healthz").status, 200);
  }
  Client fourth(server_->port());  // the TCP handshake completes; the server closes it
  EXPECT_TRUE(refused_at_accept(fourth));
  const auto metrics = held.front()->request("GET", "/metrics", kViewer);
  EXPECT_NE(metrics.body.find("cascade_http_connections_refused_total{reason=\"client\"} "), std::string::npos)
      << metrics.body;
}

TEST_F(HttpServerTest, TheServerWideConnectionCapHolds) {
  options_.max_connections = 2;
  start();
  Client first(server_->port());
  Client second(server_->port());
  EXPECT_EQ(first.request("GET", "/healthz").status, 200);
  EXPECT_EQ(second.request("GET", "/healthz").status, 200);
  Client third(server_->port());
  EXPECT_TRUE(refused_at_accept(third));
}

// Slowloris with credentials: an address that opens many connections and
// dribbles a body into each takes no more than its share of connections,
// each for no longer than the request timeout, and another address is served
// throughout.
TEST_F(HttpServerTest, ASlowBodyFloodFromOneAddressLeavesOtherClientsServed) {
  options_.read_timeout = 500ms;
  options_.max_connections_per_client = 16;
  start();
  constexpr int kFlood = 48;
  std::vector<std::unique_ptr<Client>> flood;
  for (int i = 0; i < kFlood; ++i) {
    flood.push_back(std::make_unique<Client>(server_->port(), "127.0.0.2"));
    try {
      flood.back()->send_raw(
          "POST /api/v1/bytes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer viewer-token\r\n"
          "Content-Length: 100000\r\n\r\nthe first bytes of a body that never ends");
    } catch (const std::exception&) {
      // Refused at accept: the reset can come before the write.
    }
  }

  Client other(server_->port());
  EXPECT_EQ(other.request("GET", "/healthz").status, 200);
  EXPECT_EQ(other.request("GET", "/api/v1/whoami", kViewer).status, 200);
  EXPECT_EQ(other.request("POST", "/api/v1/bytes", kViewer, std::string(1000, 'x')).status, 200);

  // Every flood connection ends: refused at accept, or cut at the timeout.
  for (auto& client : flood) EXPECT_TRUE(client->closed_by_server());
  const auto metrics = other.request("GET", "/metrics", kViewer);
  const std::string refused = "cascade_http_connections_refused_total{reason=\"client\"} ";
  const auto at = metrics.body.find(refused);
  ASSERT_NE(at, std::string::npos) << metrics.body;
  EXPECT_EQ(std::stod(metrics.body.substr(at + refused.size())), kFlood - 16) << metrics.body;
  EXPECT_EQ(other.request("GET", "/healthz").status, 200);
}

}  // namespace
}  // namespace cascade::adapters::http
