// Reading a request: query parameters, body fields (every problem found,
// each with its path, in one kInvalidArgument), who acts, and counting a
// command's outcome. Shared by the route files.
#pragma once

#include "adapters/http/request.hpp"
#include "adapters/metrics/metrics.hpp"
#include "engine/release_service.hpp"
#include "events/event.hpp"
#include "events/result.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace cascade::adapters::http::api {

inline const std::string kJsonContentType = "application/json";

// kInvalidArgument with `details`.
Error invalid(std::string message, std::vector<Problem> details = {});
// Who acts (the authenticated user and their groups) and the request's
// Idempotency-Key.
engine::Invocation invocation(const Request& request);
// A non-negative integer of at most 9 digits, named `name` in the error.
Result<std::size_t> parse_size(const std::string& name, const std::string& text);
// A pipeline version from the query: ?from=3; required.
Result<std::int64_t> required_version(const Request& request, const std::string& name);
// A time from the query: RFC 3339 UTC or milliseconds since the epoch.
Result<events::Timestamp> query_time(const std::string& name, const std::string& text);
// Reads an optional string field; a problem when present but not a string
// (or, when `required`, missing or empty).
std::string string_field(const nlohmann::json& object, const std::string& field, const std::string& path,
                         std::vector<Problem>& problems, bool required = false);
// An optional object of strings.
std::map<std::string, std::string> string_map(const nlohmann::json& object, const std::string& field,
                                              std::vector<Problem>& problems);
// kInvalidArgument naming the first problem (and how many more) with all of
// them as details; success when there are none.
Status check_problems(std::vector<Problem> problems);
// The body as an object with `allowed` fields; an empty body is {}.
Result<nlohmann::json> optional_object(const Request& request, const std::vector<std::string_view>& allowed);
// Now on the system clock, ms since the epoch (default query windows).
events::Timestamp now_ms();

// Counts a command's outcome ("ok" or the error code) in
// cascade_commands_total{command,outcome}, when the server keeps metrics.
template <class T>
Result<T> counted(metrics::CounterFamily* commands, std::string_view command, Result<T> result) {
  if (commands != nullptr) {
    commands->with({std::string(command), result ? std::string("ok") : std::string(to_string(result.error().code))}).inc();
  }
  return result;
}

}  // namespace cascade::adapters::http::api
