// Joining words for messages: "a, b, c", "a or b".
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace cascade::events {

// `items` with `separator` between each two; "" for none.
inline std::string join(const std::vector<std::string>& items, std::string_view separator = ", ") {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

}  // namespace cascade::events
