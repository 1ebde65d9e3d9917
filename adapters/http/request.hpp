// What a route handler sees and returns. Plain values: no Beast types, so the
// code that wires routes does not compile Beast.
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "adapters/http/auth.hpp"
#include "events/result.hpp"

namespace cascade::adapters::http {

class SseStream;

// Header fields in the order received; names compare case-insensitively.
class Headers {
 public:
  void add(std::string name, std::string value);
  // The first field called `name`, or nullopt. The view lives as long as this.
  std::optional<std::string_view> get(std::string_view name) const;
  const std::vector<std::pair<std::string, std::string>>& fields() const { return fields_; }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

// A decoded query string: "?a=1&b=x%20y&a=2" → a=1, b="x y", a=2 (in order).
class QueryParams {
 public:
  // The first value of `name`, or nullopt.
  std::optional<std::string> get(std::string_view name) const;
  // Every value of `name`, in order.
  std::vector<std::string> all(std::string_view name) const;
  bool has(std::string_view name) const { return get(name).has_value(); }
  const std::vector<std::pair<std::string, std::string>>& items() const { return items_; }
  void add(std::string name, std::string value) { items_.emplace_back(std::move(name), std::move(value)); }

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

// Decodes %XX escapes. With `plus_is_space` (query strings, as HTML forms
// encode them) '+' becomes ' '. kInvalidArgument for a '%' not followed by two
// hex digits, and for an escaped NUL (%00), which no identifier may hold.
Result<std::string> percent_decode(std::string_view text, bool plus_is_space);

// Parses the part of a request-target after '?' (without the '?'). Pairs are
// separated by '&'; a pair without '=' has the value ""; empty pairs are
// skipped; names and values are percent-decoded with '+' as space.
Result<QueryParams> parse_query(std::string_view raw);

// One HTTP request, as a handler receives it.
struct Request {
  std::string method;  // as sent, e.g. "GET"
  std::string target;  // the raw request-target, e.g. "/api/v1/releases?state=open"
  std::string path;    // the raw path part of target (still percent-encoded)
  QueryParams query;   // decoded
  // The route's parameters, decoded: pattern "/releases/{id}" and path
  // "/releases/SampleApp-3" give {"id": "SampleApp-3"}.
  std::map<std::string, std::string, std::less<>> params;
  std::string route;  // the pattern of the matched route
  Headers headers;
  std::string body;
  // The caller, for every route that needs a role (all but the public ones).
  // This — never a field of the body — is who performs the action.
  std::optional<User> user;
  // The users the caller was authenticated among (who exists, which groups);
  // null on public routes.
  std::shared_ptr<const Authenticator> directory;

  // The value of the route parameter `name`, or "" when the route has none.
  const std::string& param(std::string_view name) const;
  std::optional<std::string_view> header(std::string_view name) const { return headers.get(name); }
  // The Last-Event-ID header an EventSource sends when it reconnects.
  std::optional<std::string_view> last_event_id() const { return headers.get("Last-Event-ID"); }
};

// What a handler returns. Either a complete response (status, headers, body),
// or — when `stream` is set — a Server-Sent Events stream: the server sends
// 200 with Content-Type text/event-stream and then whatever is sent on the
// stream until it ends (status, body and content_type are then ignored).
struct Response {
  int status = 200;  // 100..599; anything else is answered with 500
  std::string content_type = "application/json";
  std::string body;
  // Extra header fields. Names and values must not hold CR, LF or NUL (a
  // response that does is replaced by a 500, so no handler can split it).
  std::vector<std::pair<std::string, std::string>> headers;
  std::shared_ptr<SseStream> stream;

  // `value` serialised as the body, application/json.
  static Response json(const nlohmann::json& value, int status = 200);
  static Response text(std::string body, std::string content_type = "text/plain; charset=utf-8", int status = 200);
  static Response no_content();
  static Response event_stream(std::shared_ptr<SseStream> stream);
};

}  // namespace cascade::adapters::http
