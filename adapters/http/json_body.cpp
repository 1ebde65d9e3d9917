#include "adapters/http/json_body.hpp"

#include "events/json_text.hpp"

#include <algorithm>
#include <cstring>
#include <exception>

namespace cascade::adapters::http {

namespace {

// Deeper bodies are refused: no request of the API nests this far, and some
// nlohmann operations (dump, comparison) recurse once per level.
constexpr int kMaxDepth = 64;

struct TooDeep {};

// Unknown names are echoed in messages: a hostile one is cut short, and only
// the first few problems are itemised.
constexpr std::size_t kMaxEchoedName = 64;
constexpr std::size_t kMaxProblems = 20;

std::string echo(std::string_view name) {
  if (name.size() <= kMaxEchoedName) return std::string(name);
  return std::string(name.substr(0, kMaxEchoedName)) + "...";
}

std::string position_text(const events::TextPosition& position) {
  return "line " + std::to_string(position.line) + ", column " + std::to_string(position.column) + " (byte " +
         std::to_string(position.offset) + ")";
}

Error malformed(std::string message) {
  std::vector<Problem> details{{"body", message}};
  return make_error(ErrorCode::kInvalidArgument, std::move(message), std::move(details));
}

}  // namespace

Result<nlohmann::json> parse_json_body(std::string_view body) {
  try {
    nlohmann::json::parser_callback_t limit_depth = [](int depth, nlohmann::json::parse_event_t,
                                                       nlohmann::json&) -> bool {
      if (depth > kMaxDepth) throw TooDeep{};
      return true;
    };
    return nlohmann::json::parse(body.begin(), body.end(), limit_depth);
  } catch (const nlohmann::json::parse_error& e) {
    if (body.empty()) return malformed("malformed JSON: the body is empty");
    return malformed("malformed JSON at " + position_text(events::parse_error_position(body, e)) + ": " +
                     events::parse_error_explanation(e));
  } catch (const TooDeep&) {
    return malformed("malformed JSON: nested deeper than " + std::to_string(kMaxDepth) + " levels");
  } catch (const std::exception& e) {
    return malformed(std::string("malformed JSON: ") + e.what());
  }
}

Result<nlohmann::json> parse_json_object(std::string_view body, const std::vector<std::string_view>& allowed_fields) {
  CASCADE_TRY(value, parse_json_body(body));
  if (!value.is_object()) {
    return make_error(ErrorCode::kInvalidArgument, "the body must be a JSON object",
                      {{"body", "must be a JSON object"}});
  }
  CASCADE_TRY(check_fields(value, allowed_fields));
  return std::move(value);
}

Status check_fields(const nlohmann::json& object, const std::vector<std::string_view>& allowed_fields,
                    std::string_view path_prefix) {
  if (!object.is_object()) {
    std::string where = path_prefix.empty() ? "body" : std::string(path_prefix);
    return make_error(ErrorCode::kInvalidArgument, where + ": must be an object", {{where, "must be an object"}});
  }
  std::vector<Problem> problems;
  std::size_t unknown = 0;
  for (const auto& item : object.items()) {
    const std::string& key = item.key();
    if (std::find(allowed_fields.begin(), allowed_fields.end(), key) != allowed_fields.end()) continue;
    if (++unknown > kMaxProblems) continue;
    std::string message = "unknown field '" + echo(key) + "'";
    if (auto guess = did_you_mean(key, allowed_fields)) {
      message += " (did you mean '" + *guess + "'?)";
    } else if (!allowed_fields.empty()) {
      message += " (allowed: ";
      for (std::size_t i = 0; i < allowed_fields.size(); ++i) {
        if (i > 0) message += ", ";
        message += allowed_fields[i];
      }
      message += ")";
    }
    std::string path = path_prefix.empty() ? echo(key) : std::string(path_prefix) + "." + echo(key);
    problems.push_back({std::move(path), std::move(message)});
  }
  if (problems.empty()) return success();
  std::string message = problems.front().path + ": " + problems.front().message;
  if (unknown > 1) message += " (and " + std::to_string(unknown - 1) + " more)";
  return make_error(ErrorCode::kInvalidArgument, std::move(message), std::move(problems));
}

}  // namespace cascade::adapters::http
