#include "events/json_text.hpp"

#include <algorithm>

namespace cascade::events {

TextPosition text_position(std::string_view text, std::size_t offset) {
  TextPosition position;
  position.offset = std::min(offset, text.size());
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < position.offset; ++i) {
    if (text[i] == '\n') {
      ++position.line;
      line_start = i + 1;
    }
  }
  position.column = position.offset - line_start + 1;
  return position;
}

TextPosition parse_error_position(std::string_view text, const nlohmann::json::parse_error& error) {
  // error.byte is 1-based and may point one past the end of the input.
  return text_position(text, error.byte == 0 ? 0 : error.byte - 1);
}

std::string parse_error_explanation(const nlohmann::json::parse_error& error) {
  const std::string what = error.what();
  const std::size_t prefix = what.find("parse error");
  const std::size_t colon = what.find(": ", prefix == std::string::npos ? 0 : prefix);
  return colon == std::string::npos ? what : what.substr(colon + 2);
}

}  // namespace cascade::events
