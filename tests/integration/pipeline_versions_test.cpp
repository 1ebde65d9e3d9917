// Pipeline definitions: each version, the releases created from it, and the
// changes between two versions.
#include "tests/support/projections_harness.hpp"

#include <gtest/gtest.h>

namespace cascade::projections {
namespace {

constexpr const char* kVersion1 = R"({"name": "Shop", "variables": {"OLD": "x", "KEEP": "y"}, "stages": [
  {"name": "dev", "trigger": {"after_release": true}, "steps": [{"name": "deploy", "run": "deploy v1"}]},
  {"name": "prod", "trigger": {"after_stages": ["dev"]}, "steps": [{"name": "deploy", "run": "deploy"}]}]})";
// Adds stage qa, changes dev's deploy command, removes variable OLD.
constexpr const char* kVersion2 = R"({"name": "Shop", "variables": {"KEEP": "y"}, "stages": [
  {"name": "dev", "trigger": {"after_release": true}, "steps": [{"name": "deploy", "run": "deploy v2"}]},
  {"name": "qa", "trigger": {"after_stages": ["dev"]}, "steps": [{"name": "test", "run": "test"}]},
  {"name": "prod", "trigger": {"after_stages": ["dev"]}, "steps": [{"name": "deploy", "run": "deploy"}]}]})";

class PipelineVersionsTest : public testing::ProjectionsHarness {
 protected:
  void SetUp() override {
    ProjectionsHarness::SetUp();
    run();
  }
};

TEST_F(PipelineVersionsTest, EachVersionListsTheReleasesCreatedFromIt) {
  const events::Timestamp t0 = clock_.now();
  apply(kVersion1);
  create("Shop");
  create("Shop");
  clock_.advance(std::chrono::hours(1));
  apply(kVersion2);
  create("Shop");
  settle();

  auto versions = projections().pipelines().versions("Shop");
  ASSERT_TRUE(versions) << versions.error().message;
  ASSERT_EQ(versions.value().size(), 2u);
  const PipelineVersion& first = versions.value()[0];
  EXPECT_EQ(first.version, 1);
  EXPECT_EQ(first.defined_at, t0);
  EXPECT_EQ(first.actor, "alice");
  EXPECT_EQ(first.releases, (std::vector<std::string>{"Shop-1", "Shop-2"}));
  EXPECT_EQ(first.definition["stages"].size(), 2u);
  const PipelineVersion& second = versions.value()[1];
  EXPECT_EQ(second.version, 2);
  EXPECT_EQ(second.defined_at, t0 + kHourMs);
  EXPECT_EQ(second.releases, (std::vector<std::string>{"Shop-3"}));
  EXPECT_EQ(second.definition, engine::to_json(engine::parse_pipeline_text(kVersion2).value()));

  EXPECT_EQ(projections().pipelines().version("Shop", 2).value().releases, second.releases);
  auto missing = projections().pipelines().version("Shop", 3);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  auto unknown = projections().pipelines().versions("Sho");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
}

TEST_F(PipelineVersionsTest, LatestVersionsHoldsTheNewestVersionOfEachPipelineByName) {
  EXPECT_TRUE(projections().pipelines().latest_versions().value().empty());
  apply(kVersion1);
  apply(R"({"name": "Sh", "stages": [{"name": "dev", "trigger": {"after_release": true},
    "steps": [{"name": "d", "run": "d"}]}]})");  // a prefix of "Shop": sorts before it
  apply(kVersion2);
  settle();

  auto latest = projections().pipelines().latest_versions();
  ASSERT_TRUE(latest) << latest.error().message;
  ASSERT_EQ(latest.value().size(), 2u);
  EXPECT_EQ(latest.value()[0].pipeline, "Sh");
  EXPECT_EQ(latest.value()[0].version, 1);
  EXPECT_EQ(latest.value()[1].pipeline, "Shop");
  EXPECT_EQ(latest.value()[1].version, 2);
  EXPECT_EQ(latest.value()[1].definition, engine::to_json(engine::parse_pipeline_text(kVersion2).value()));
  EXPECT_TRUE(latest.value()[1].releases.empty());
}

TEST_F(PipelineVersionsTest, TheDiffOfTwoVersionsNamesEachChangeByItsPath) {
  apply(kVersion1);
  apply(kVersion2);
  settle();
  auto changes = projections().pipelines().diff("Shop", 1, 2);
  ASSERT_TRUE(changes) << changes.error().message;
  const nlohmann::json qa = nlohmann::json::parse(R"({"name": "qa",
    "trigger": {"after_stages": ["dev"], "on_partial_success": false}, "variables": {},
    "steps": [{"name": "test", "run": "test", "timeout_s": 3600, "env": {}, "continue_on_error": false,
               "retries": {"count": 0, "delay_s": 0}, "condition": "succeeded"}],
    "max_parallel": 0, "on_new_release": "queue_all"})");
  const std::vector<DefinitionChange> expected = {
      {"replace", "/stages/0/steps/0/run", "deploy v1", "deploy v2", "stages[dev].steps[deploy].run"},
      {"add", "/stages/1", nullptr, qa, "stages[qa]"},
      {"remove", "/variables/OLD", "x", nullptr, "variables.OLD"},
  };
  ASSERT_EQ(changes.value().size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(to_json(changes.value()[i]), to_json(expected[i])) << i;
  }
  // Backwards, the same changes undone.
  auto back = projections().pipelines().diff("Shop", 2, 1);
  ASSERT_TRUE(back);
  const std::vector<DefinitionChange> undone = {
      {"remove", "/stages/1", qa, nullptr, "stages[qa]"},
      {"replace", "/stages/0/steps/0/run", "deploy v2", "deploy v1", "stages[dev].steps[deploy].run"},
      {"add", "/variables/OLD", nullptr, "x", "variables.OLD"},
  };
  EXPECT_EQ(back.value(), undone);
  EXPECT_TRUE(projections().pipelines().diff("Shop", 2, 2).value().empty());
  EXPECT_EQ(projections().pipelines().diff("Shop", 1, 9).error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace cascade::projections
