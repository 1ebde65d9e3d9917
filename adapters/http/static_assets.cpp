#include "adapters/http/static_assets.hpp"

namespace cascade::adapters::http {

namespace detail {
// Defined in the generated static_assets_data.cpp.
extern const StaticAsset kStaticAssets[];
extern const std::size_t kStaticAssetCount;
}  // namespace detail

const StaticAsset* find_static_asset(std::string_view path) {
  for (std::size_t i = 0; i < detail::kStaticAssetCount; ++i) {
    if (detail::kStaticAssets[i].path == path) return &detail::kStaticAssets[i];
  }
  return nullptr;
}

bool etag_matches(std::string_view if_none_match, std::string_view etag) {
  auto trim = [](std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
    return text;
  };
  if (trim(if_none_match) == "*") return true;
  while (!if_none_match.empty()) {
    const auto comma = if_none_match.find(',');
    std::string_view candidate = trim(if_none_match.substr(0, comma));
    if (candidate.substr(0, 2) == "W/") candidate.remove_prefix(2);
    if (candidate == etag) return true;
    if (comma == std::string_view::npos) break;
    if_none_match.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace cascade::adapters::http
