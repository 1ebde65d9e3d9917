// Which builds start a release of a pipeline: glob matching of artifact
// sources and branch filters.
#include "engine/pipeline.hpp"

namespace cascade::engine {

bool glob_match(std::string_view pattern, std::string_view text) {
  // Backtracking over the last star only, as fnmatch does; '**' may also
  // consume '/', so it backtracks separately.
  std::size_t p = 0;
  std::size_t t = 0;
  std::size_t star_p = std::string_view::npos;
  std::size_t star_t = 0;
  bool star_crosses = false;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star_crosses = p + 1 < pattern.size() && pattern[p + 1] == '*';
      p += star_crosses ? 2 : 1;
      star_p = p;
      star_t = t;
    } else if (p < pattern.size() && (pattern[p] == text[t] || (pattern[p] == '?' && text[t] != '/'))) {
      ++p;
      ++t;
    } else if (star_p != std::string_view::npos && (star_crosses || text[star_t] != '/')) {
      p = star_p;
      t = ++star_t;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool ArtifactTrigger::matches_source(std::string_view candidate) const {
  return !candidate.empty() && glob_match(source, candidate);
}

bool ArtifactTrigger::matches_branch(std::string_view branch) const {
  bool has_include = false;
  bool included = false;
  for (const std::string& filter : branch_filters) {
    if (!filter.empty() && filter[0] == '!') {
      if (!branch.empty() && glob_match(std::string_view(filter).substr(1), branch)) return false;
    } else {
      has_include = true;
      if (!branch.empty() && glob_match(filter, branch)) included = true;
    }
  }
  return !has_include || included;
}

}  // namespace cascade::engine
