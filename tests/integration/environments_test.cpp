// Environments: what is deployed on each stage now, and each stage's
// deployment history, through deploys, a failure and its rollback.
#include "tests/support/projections_harness.hpp"

#include <gtest/gtest.h>

namespace cascade::projections {
namespace {

// Listed in definition order, which is not the alphabetical one.
constexpr const char* kApi = R"json({"name": "Api", "stages": [
  {"name": "staging", "trigger": {"after_release": true},
   "steps": [{"name": "deploy", "run": "deploy $(CASCADE_ARTIFACT_VERSION)"}]},
  {"name": "prod", "trigger": {"after_stages": ["staging"]}, "on_failure": "redeploy_last_good",
   "steps": [{"name": "deploy", "run": "deploy $(CASCADE_ARTIFACT_VERSION)"}]}]})json";

class EnvironmentsTest : public testing::ProjectionsHarness {
 protected:
  void SetUp() override {
    ProjectionsHarness::SetUp();
    run();
    apply(kApi);
  }
  EnvironmentProjection& environments() { return projections().environments(); }
};

TEST_F(EnvironmentsTest, DeployFailAndRollbackLeaveTheLastGoodReleaseCurrentAndTheWholeHistory) {
  const events::Timestamp t0 = clock_.now();
  scripted_.fail("prod", "deploy 2.0.0", 1);
  create("Api", "1.0.0");
  settle();
  clock_.advance(std::chrono::hours(1));
  create("Api", "2.0.0");  // prod fails; Api-1 is redeployed there
  settle();
  const events::Timestamp t1 = t0 + kHourMs;

  auto listed = environments().environments("Api");
  ASSERT_TRUE(listed) << listed.error().message;
  ASSERT_EQ(listed.value().size(), 2u);
  const nlohmann::json& staging = listed.value()[0];
  const nlohmann::json& prod = listed.value()[1];
  EXPECT_EQ(staging["stage"], "staging");
  EXPECT_EQ(staging["current"], (nlohmann::json{{"release", "Api-2"},
                                                {"release_name", "Release-2"},
                                                {"artifact_version", "2.0.0"},
                                                {"deployed_at", t1},
                                                {"trigger_reason", "release created"},
                                                {"attempt", 1},
                                                {"status", "Succeeded"}}));
  EXPECT_EQ(prod["stage"], "prod");
  EXPECT_EQ(prod["current"], (nlohmann::json{{"release", "Api-1"},
                                             {"release_name", "Release-1"},
                                             {"artifact_version", "1.0.0"},
                                             {"deployed_at", t1},
                                             {"trigger_reason", "auto-redeploy: Api-2 failed at prod"},
                                             {"attempt", 2},
                                             {"status", "Succeeded"}}))
      << "the rollback is what runs in prod";
  EXPECT_EQ(prod["last"]["release"], "Api-1");

  auto history = environments().history("Api", "prod");
  ASSERT_TRUE(history) << history.error().message;
  const auto& deployments = history.value().deployments;
  ASSERT_EQ(deployments.size(), 3u);
  EXPECT_FALSE(history.value().next_cursor);
  EXPECT_EQ(deployments[0], (nlohmann::json{{"release", "Api-1"},
                                            {"release_name", "Release-1"},
                                            {"artifact_version", "1.0.0"},
                                            {"attempt", 2},
                                            {"outcome", "Succeeded"},
                                            {"trigger_reason", "auto-redeploy: Api-2 failed at prod"},
                                            {"started_at", t1},
                                            {"finished_at", t1},
                                            {"reason", ""}}));
  EXPECT_EQ(deployments[1]["release"], "Api-2");
  EXPECT_EQ(deployments[1]["outcome"], "Failed");
  EXPECT_EQ(deployments[1]["reason"], "step 'deploy' failed: exit code 1");
  EXPECT_EQ(deployments[1]["trigger_reason"], "after staging succeeded");
  EXPECT_EQ(deployments[2]["release"], "Api-1");
  EXPECT_EQ(deployments[2]["attempt"], 1);
  EXPECT_EQ(deployments[2]["finished_at"], t0);

  // A newer good release replaces the rollback; history pages newest first.
  clock_.advance(std::chrono::hours(1));
  create("Api", "3.0.0");
  settle();
  EXPECT_EQ(environments().environment("Api", "prod").value()["current"]["release"], "Api-3");
  auto first = environments().history("Api", "prod", 2);
  ASSERT_TRUE(first);
  EXPECT_EQ(ids(first.value().deployments), (std::vector<std::string>{"Api-3", "Api-1"}));
  ASSERT_TRUE(first.value().next_cursor);
  auto second = environments().history("Api", "prod", 2, *first.value().next_cursor);
  ASSERT_TRUE(second);
  EXPECT_EQ(ids(second.value().deployments), (std::vector<std::string>{"Api-2", "Api-1"}));
  EXPECT_EQ(second.value().deployments[1]["attempt"], 1);
  EXPECT_FALSE(second.value().next_cursor);
}

TEST_F(EnvironmentsTest, APartialSuccessIsDeployedAndAStageNeverDeployedIsNotFound) {
  apply(R"({"name": "Web", "stages": [{"name": "dev", "trigger": {"after_release": true},
    "steps": [{"name": "lint", "run": "lint", "continue_on_error": true}, {"name": "deploy", "run": "deploy"}]},
    {"name": "prod", "trigger": {"manual": true}, "steps": [{"name": "deploy", "run": "deploy"}]}]})");
  scripted_.fail("dev", "lint", 3);
  create("Web", "1.0.0");
  settle();
  auto dev = environments().environment("Web", "dev");
  ASSERT_TRUE(dev) << dev.error().message;
  EXPECT_EQ(dev.value()["current"]["status"], "PartiallySucceeded");
  EXPECT_EQ(dev.value()["last"]["outcome"], "PartiallySucceeded");
  auto prod = environments().environment("Web", "prod");
  ASSERT_FALSE(prod);
  EXPECT_EQ(prod.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(environments().environments("Web").value().size(), 1u);
  EXPECT_EQ(environments().environments("").value().size(), 1u) << "Api deployed nothing yet";
  auto bad = environments().history("Web", "dev", 0);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace cascade::projections
