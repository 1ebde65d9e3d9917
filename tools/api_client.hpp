// The `cascade` command line's HTTP client for `cascade serve`: synchronous
// HTTP/1.1 over Boost.Beast (one connection per request), JSON in and out,
// the bearer token on every call, and the server's error documents turned
// back into the same Error the engine returns offline — so the CLI prints
// them, and exits, exactly as it does on a data directory.
#pragma once

#include "events/result.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace boost::asio::ssl {
class context;
}

namespace cascade::tools {

// One Server-Sent Event as received (see the text/event-stream format).
struct ServerEvent {
  std::string id;
  std::string type;  // "message" when the server named none
  std::string data;  // data lines joined with '\n'
};

// How a stream ended.
enum class StreamEnd {
  kStopped,   // the caller's callback returned false
  kClosed,    // the server ended the response
  kDeadline,  // the caller's deadline passed first
};

struct ApiClientOptions {
  // For an ordinary request, from connecting to the response's last byte.
  std::chrono::milliseconds request_timeout{60'000};
  // The longest silence a stream may keep; the server writes a keep-alive
  // comment on quiet event streams every 15 s, so this means it is gone.
  std::chrono::milliseconds stream_idle_timeout{60'000};
  // For https: the PEM file of the CAs the server's certificate must chain
  // to (empty: the system's trusted CAs).
  std::string ca_file;
};

// Not thread-safe: one client per thread (each call opens its own connection,
// so a stream and ordinary requests may be open at once on one thread's
// separate clients, or in sequence on one).
class ApiClient {
 public:
  using Clock = std::chrono::steady_clock;

  // `url` is "http://HOST[:PORT]" (port 80 by default) or
  // "https://HOST[:PORT]" (443), with an optional path prefix the API sits
  // under; kInvalidArgument naming the URL otherwise. Over https the server's
  // certificate must chain to options.ca_file (or the system's CAs) and name
  // HOST. `token` may be empty (calls then get the server's 401).
  static Result<ApiClient> create(const std::string& url, std::string token, ApiClientOptions options = {});

  // The URL as given, for messages.
  const std::string& url() const { return url_; }

  // `target` is the path and query under the URL, e.g. "/api/v1/releases?limit=5".
  // The parsed JSON body of a 2xx answer (null for an empty body); for any
  // other status the server's {"error": {code, message, details}} as an Error
  // with the same ErrorCode the engine used (unauthenticated → kPermissionDenied);
  // kUnavailable naming the URL when the server cannot be reached, with a hint
  // to start `cascade serve` or to use --data.
  Result<nlohmann::json> get(const std::string& target);
  Result<nlohmann::json> post(const std::string& target, const nlohmann::json& body,
                              const std::string& idempotency_key = "");
  Result<nlohmann::json> put(const std::string& target, const nlohmann::json& body);

  // GET `target` and hand its body to `on_data` piece by piece as it arrives
  // (chunked framing removed), until `on_data` returns false, the server ends
  // the response, or `deadline`. `on_start` (if set) first receives the
  // response's Content-Type and may stop at once by returning false. Errors
  // as get(); a stream silent for longer than stream_idle_timeout is
  // kUnavailable.
  Result<StreamEnd> stream(const std::string& target, const std::vector<std::pair<std::string, std::string>>& headers,
                           const std::function<bool(std::string_view content_type)>& on_start,
                           const std::function<bool(std::string_view data)>& on_data,
                           std::optional<Clock::time_point> deadline = std::nullopt);

  // Server-Sent Events from `target` (GET /api/v1/stream): each event to
  // `on_event` until it returns false, the server ends the stream, or
  // `deadline`. `last_event_id` resumes after that event. `on_open` (if set)
  // runs once the server accepted the stream — every later event reaches
  // `on_event` — and may stop at once by returning false.
  Result<StreamEnd> events(const std::string& target, const std::optional<std::string>& last_event_id,
                           const std::function<bool()>& on_open, const std::function<bool(const ServerEvent&)>& on_event,
                           std::optional<Clock::time_point> deadline = std::nullopt);

 private:
  ApiClient() = default;

  std::string url_;
  std::string host_;
  std::string port_;
  std::string prefix_;  // path prefix without a trailing '/'
  std::string token_;
  ApiClientOptions options_;
  std::shared_ptr<boost::asio::ssl::context> tls_;  // null for http
};

// Feeds text/event-stream bytes in and yields complete events.
class ServerEventParser {
 public:
  // Calls `on_event` for each event completed by `bytes`; stops early, and
  // returns false, when it does.
  bool feed(std::string_view bytes, const std::function<bool(const ServerEvent&)>& on_event);

 private:
  std::string pending_;  // an incomplete line
  ServerEvent event_;
  bool has_data_ = false;
};

// Percent-encodes a path segment or a query value (RFC 3986 unreserved kept).
std::string url_encode(std::string_view text);

}  // namespace cascade::tools
