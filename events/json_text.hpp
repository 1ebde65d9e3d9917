// Where a JSON text broke, in the terms people use: shared by everything that
// reads JSON written by a person (pipeline definitions, HTTP request bodies).
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace cascade::events {

struct TextPosition {
  std::size_t offset = 0;  // 0-based byte offset
  std::size_t line = 1;    // 1-based
  std::size_t column = 1;  // 1-based, in bytes
};

// The position of the byte at `offset` in `text` (an offset past the end is
// taken as the end).
TextPosition text_position(std::string_view text, std::size_t offset);

// Where `error`, thrown while parsing `text`, points: the last byte the parser
// read, i.e. the last byte of the offending token (the end of the text when it
// ended too early).
TextPosition parse_error_position(std::string_view text, const nlohmann::json::parse_error& error);

// nlohmann's explanation without its "[json.exception.parse_error.101] parse
// error at line 3, column 5: " prefix, for callers that state the position
// in their own terms: "syntax error while parsing value - ...".
std::string parse_error_explanation(const nlohmann::json::parse_error& error);

}  // namespace cascade::events
