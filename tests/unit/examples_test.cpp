// Every pipeline in tools/examples is valid: the README points people at them.
#include "engine/pipeline.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace cascade::engine {
namespace {

TEST(ExamplesTest, EveryExamplePipelineIsValid) {
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(CASCADE_SOURCE_DIR) + "/tools/examples")) {
    if (entry.path().extension() != ".json") continue;
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    auto parsed = parse_pipeline_text(text.str());
    std::string problems;
    if (!parsed) {
      for (const Problem& p : parsed.error().details) problems += "\n  " + p.path + ": " + p.message;
    }
    EXPECT_TRUE(parsed) << entry.path() << problems;
    ++checked;
  }
  EXPECT_GE(checked, 2);
}

}  // namespace
}  // namespace cascade::engine
