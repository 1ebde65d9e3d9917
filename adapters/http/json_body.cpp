#include "adapters/http/json_body.hpp"

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

std::string position_text(std::string_view body, std::size_t offset) {
  offset = std::min(offset, body.size());
  std::size_t line = 1;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < offset; ++i) {
    if (body[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(offset - line_start + 1) + " (byte " +
         std::to_string(offset) + ")";
}

// nlohmann's message without its "[json.exception...] parse error at ...: "
// prefix, since the position is stated in our own terms.
std::string describe(const nlohmann::json::parse_error& e) {
  std::string text = e.what();
  auto colon = text.find(": ");
  if (text.rfind("[json.exception", 0) == 0 && colon != std::string::npos) text.erase(0, colon + 2);
  return text;
}

Error malformed(std::string message) {
  std::vector<Problem> details{{"body", message}};
  return make_error(ErrorCode::kInvalidArgument, std::move(message), std::move(details));
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  // Optimal string alignment: a swap of neighbours ("commnet") costs 1.
  const std::size_t n = a.size();
  const std::size_t m = b.size();
  std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
  for (std::size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= n; ++i) {
    for (std::size_t j = 1; j <= m; ++j) {
      std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
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
    // e.byte is 1-based: the index of the last character read, i.e. the one
    // that could not be parsed (size + 1 at the end of the input).
    std::size_t offset = e.byte == 0 ? 0 : e.byte - 1;
    if (body.empty()) return malformed("malformed JSON: the body is empty");
    return malformed("malformed JSON at " + position_text(body, offset) + ": " + describe(e));
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

std::optional<std::string> did_you_mean(std::string_view given, const std::vector<std::string_view>& candidates) {
  // A name this long is no typo of a field name, and the distance costs
  // len(given) x len(candidate).
  if (given.size() > kMaxEchoedName) return std::nullopt;
  const std::size_t threshold = std::max<std::size_t>(1, given.size() / 3);
  std::optional<std::string> best;
  std::size_t best_distance = threshold + 1;
  for (auto candidate : candidates) {
    std::size_t distance = edit_distance(given, candidate);
    if (distance < best_distance) {
      best_distance = distance;
      best = std::string(candidate);
    }
  }
  return best;
}

}  // namespace cascade::adapters::http
