// What the engine keeps in memory does not grow with every name it is sent:
// creates for pipelines that do not exist leave nothing behind.
#include "tests/support/engine_harness.hpp"

#include <gtest/gtest.h>

namespace cascade::testing {
namespace {

class BoundedMemoryTest : public EngineHarness {};

TEST_F(BoundedMemoryTest, CreatesForUnknownPipelinesLeaveNoStateBehind) {
  run();
  apply(R"({"name": "Known", "stages": [{"name": "dev", "trigger": {"after_release": true},
            "steps": [{"name": "s", "run": "deploy"}]}]})");
  create("Known");
  settle();
  const std::uint64_t before = store_->statistics().streams_known;
  for (int i = 0; i < 10000; ++i) {
    engine::NewRelease request;
    request.pipeline = "Mistyped-" + std::to_string(i);
    request.artifact = {"1.0.0", "/artifacts/1.0.0", 0, "", ""};
    auto refused = service().create_release(request, engine::Invocation{"dave", "", ""});
    ASSERT_FALSE(refused);
    ASSERT_EQ(refused.error().code, ErrorCode::kNotFound) << refused.error().message;
    ASSERT_FALSE(service().load("Mistyped-" + std::to_string(i) + "-1"));
  }
  EXPECT_EQ(store_->statistics().streams_known, before);
  EXPECT_EQ(create("Known", "1.0.1"), "Known-2") << "known names still work";
}

}  // namespace
}  // namespace cascade::testing
