#include "adapters/http/api/fields.hpp"

#include "adapters/http/api/event_json.hpp"
#include "adapters/http/json_body.hpp"

#include <chrono>

namespace cascade::adapters::http::api {

using nlohmann::json;

Error invalid(std::string message, std::vector<Problem> details) {
  return make_error(ErrorCode::kInvalidArgument, std::move(message), std::move(details));
}

engine::Invocation invocation(const Request& request) {
  const std::string user = request.user ? request.user->name : std::string();
  std::string key;
  if (auto header = request.header("Idempotency-Key")) {
    // Scoped to the caller and the command: another user's key, or a key
    // the engine's reactors use (orchestrator/…, executor/…), can never name
    // this command and so never suppress it.
    key = "api/" + user + "/" + request.method + " " + request.route + "/" + std::string(*header);
  }
  if (!request.user) return engine::Invocation{"", key, ""};
  return engine::Invocation{user, key, "", request.user->groups};
}

Result<std::size_t> parse_size(const std::string& name, const std::string& text) {
  std::size_t value = 0;
  if (text.empty() || text.size() > 9) return invalid(name + ": expected a positive integer, got '" + text + "'");
  for (char c : text) {
    if (c < '0' || c > '9') return invalid(name + ": expected a positive integer, got '" + text + "'");
    value = value * 10 + static_cast<std::size_t>(c - '0');
  }
  return value;
}

// A pipeline version from the query: ?from=3.
Result<std::int64_t> required_version(const Request& request, const std::string& name) {
  auto text = request.query.get(name);
  if (!text) return invalid(name + ": required", {{name, "required"}});
  CASCADE_TRY(value, parse_size(name, *text));
  return static_cast<std::int64_t>(value);
}

// A time from the query: RFC 3339 UTC or milliseconds since the epoch.
Result<events::Timestamp> query_time(const std::string& name, const std::string& text) {
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos && text.size() <= 15) {
    return static_cast<events::Timestamp>(std::stoll(text));
  }
  auto at = parse_utc_time(text);
  if (!at) return invalid(name + ": " + at.error().message, {{name, at.error().message}});
  return at.value();
}

// Reads an optional string field; a problem when present but not a string.
std::string string_field(const nlohmann::json& object, const std::string& field, const std::string& path,
                         std::vector<Problem>& problems, bool required) {
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) {
    if (required) problems.push_back({path, "required"});
    return "";
  }
  if (!it->is_string()) {
    problems.push_back({path, "must be a string"});
    return "";
  }
  if (required && it->get<std::string>().empty()) problems.push_back({path, "must not be empty"});
  return it->get<std::string>();
}

std::map<std::string, std::string> string_map(const nlohmann::json& object, const std::string& field,
                                              std::vector<Problem>& problems) {
  std::map<std::string, std::string> out;
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return out;
  if (!it->is_object()) {
    problems.push_back({field, "must be an object of strings"});
    return out;
  }
  for (const auto& item : it->items()) {
    if (!item.value().is_string()) {
      problems.push_back({field + "." + item.key(), "must be a string"});
      continue;
    }
    out[item.key()] = item.value().get<std::string>();
  }
  return out;
}

Status check_problems(std::vector<Problem> problems) {
  if (problems.empty()) return outcome::success();
  std::string message = problems.front().path + ": " + problems.front().message;
  if (problems.size() > 1) message += " (and " + std::to_string(problems.size() - 1) + " more)";
  return invalid(std::move(message), std::move(problems));
}

// The body as an object with `allowed` fields; an empty body is {}.
Result<nlohmann::json> optional_object(const Request& request, const std::vector<std::string_view>& allowed) {
  if (request.body.find_first_not_of(" \t\r\n") == std::string::npos) return nlohmann::json::object();
  return http::parse_json_object(request.body, allowed);
}

events::Timestamp now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace cascade::adapters::http::api
