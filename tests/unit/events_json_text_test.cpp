// events/json_text.hpp: where a JSON text broke.
#include "events/json_text.hpp"

#include <gtest/gtest.h>

namespace cascade::events {
namespace {

struct Broken {
  TextPosition position;
  std::string explanation;
};

// Where parsing `text` fails, and why.
Broken broken(std::string_view text) {
  try {
    const nlohmann::json parsed = nlohmann::json::parse(text);
    ADD_FAILURE() << "parsed: " << parsed.dump();
  } catch (const nlohmann::json::parse_error& e) {
    return {parse_error_position(text, e), parse_error_explanation(e)};
  }
  return {};
}

TEST(JsonTextTest, PositionsAreOneBasedLinesAndColumns) {
  const TextPosition start = text_position("ab\ncd", 0);
  EXPECT_EQ(start.line, 1u);
  EXPECT_EQ(start.column, 1u);
  const TextPosition d = text_position("ab\ncd", 4);
  EXPECT_EQ(d.offset, 4u);
  EXPECT_EQ(d.line, 2u);
  EXPECT_EQ(d.column, 2u);
  EXPECT_EQ(text_position("ab", 99).offset, 2u);  // past the end: the end
}

TEST(JsonTextTest, ParseErrorsPointAtTheOffendingToken) {
  const std::string text = "{\n  \"a\": tru\n}";
  const Broken at = broken(text);
  EXPECT_EQ(at.position.line, 2u);
  EXPECT_EQ(text[at.position.offset], '\n');  // "tru" read up to the byte that ends it
  EXPECT_EQ(at.explanation.rfind("syntax error while parsing value", 0), 0u) << at.explanation;
  const std::string truncated = "[1, 2";
  EXPECT_EQ(broken(truncated).position.offset, truncated.size());
}

}  // namespace
}  // namespace cascade::events
