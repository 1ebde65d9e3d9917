// "did you mean 'steps'?": the one suggestion rule for a misspelt name, used
// by the pipeline validator and the HTTP API's strict bodies alike.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cascade::events {

// The largest edit distance at which a candidate is still suggested.
inline constexpr std::size_t kMaxSuggestionDistance = 2;

// The candidate closest to `given` by optimal string alignment distance
// (insertions, deletions, substitutions and swaps of neighbours, each costing
// 1: "stpes" is one slip from "steps"), when it is a plausible typo: at most
// kMaxSuggestionDistance edits, and fewer edits than `given` has characters
// (so "x" or "id" never suggest an unrelated short name). The first of equally
// close candidates wins; nullopt when none is close enough. Candidates whose
// length differs from `given` by more than the limit are not compared, so a
// huge `given` costs nothing. Thread-safe; never throws but std::bad_alloc.
std::optional<std::string> did_you_mean(std::string_view given, const std::vector<std::string_view>& candidates);

}  // namespace cascade::events
