// What the pieces of the pipeline code share (engine/pipeline_parser.cpp,
// pipeline_checks.cpp, pipeline_text.cpp, pipeline_canonical.cpp,
// pipeline.cpp): the words of the format, the paths and quoting of problems,
// names, and what the structural pass hands to the semantic checks. Private
// to engine/.
#pragma once

#include "engine/pipeline.hpp"
#include "engine/variable_names.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cascade::engine::pipeline_internal {

inline constexpr std::size_t kMaxNameLength = 64;

// The words of the enumerations, indexed by their enumerators.
inline constexpr std::array<std::string_view, 2> kApprovalOrders = {"any", "sequential"};
inline constexpr std::array<std::string_view, 2> kOnNewReleaseChoices = {"queue_all", "deploy_latest"};
inline constexpr std::array<std::string_view, 3> kArtifactNeedChoices = {"path", "uri", "none"};
inline constexpr std::array<std::string_view, 3> kStepConditions = {"succeeded", "failed", "always"};
// OnFailure::kNothing has no word: it is the absence of "on_failure".
inline constexpr std::array<std::string_view, 1> kOnFailureChoices = {"redeploy_last_good"};

inline std::string member_path(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

inline std::string element_path(const std::string& path, std::size_t index) {
  return path + "[" + std::to_string(index) + "]";
}

inline std::string single_quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

inline bool is_letter(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
inline bool is_digit(char c) { return c >= '0' && c <= '9'; }

// [A-Za-z0-9][A-Za-z0-9._-]{0,63}: safe in stream names, URLs and file names.
inline bool is_valid_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  if (!is_letter(name[0]) && !is_digit(name[0])) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return is_letter(c) || is_digit(c) || c == '.' || c == '_' || c == '-';
  });
}

// What the structural pass could read of one stage; the semantic pass works
// from these so that one broken stage does not hide the others' problems.
struct StageDraft {
  std::string path;                    // "stages[2]"
  std::optional<std::string> name;     // as written, when it is a string (valid or not)
  std::optional<StageTrigger> trigger;  // when the trigger had no problem at all
  bool steps_empty = false;            // "steps": [] (reported by the semantic pass)
  StageDefinition definition;
};

// "30d", "36h", "90m": the canonical text of a timeout (pipeline_parser.cpp,
// beside the parser of the same text).
std::string format_duration(std::int64_t milliseconds);

// The error for a definition with problems: "pipeline 'SampleApp' is invalid:
// 3 problems", naming the pipeline only when its name is valid.
Error invalid_pipeline(const nlohmann::json& document, std::vector<Problem> problems);

// The semantic pass (pipeline_checks.cpp): duplicate stages, references to
// unknown stages, cycles and the release-created entry point, over whatever
// the structural pass could read; appends to `problems`.
void check_stages(const std::vector<StageDraft>& drafts, std::vector<Problem>& problems);

}  // namespace cascade::engine::pipeline_internal
