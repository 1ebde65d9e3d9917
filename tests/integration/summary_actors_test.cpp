// Views say who: the release summary carries the actor of every approval
// closing (cancel, abandon, supersede, timeout), of every cancel and abandon,
// and every override; the CLI's summary table prints them.
#include "engine/scheduler.hpp"
#include "tests/support/projections_harness.hpp"
#include "tools/format.hpp"

#include <gtest/gtest.h>

#include <sstream>

namespace cascade::projections {
namespace {

// carol approves prod, within a day.
constexpr const char* kShop = R"({"name": "Shop",
  "stages": [{"name": "dev", "trigger": {"after_release": true}, "steps": [{"name": "d", "run": "d"}]},
    {"name": "prod", "trigger": {"after_stages": ["dev"]},
     "pre_approval": {"approvers": ["carol"], "timeout": "1d"},
     "steps": [{"name": "d", "run": "d"}]}]})";

class SummaryActorsTest : public testing::ProjectionsHarness {
 protected:
  void SetUp() override {
    ProjectionsHarness::SetUp();
    run();
    apply(kShop);
  }
  nlohmann::json summary(const std::string& release) {
    auto text = projections().summaries().summary(release);
    EXPECT_TRUE(text) << text.error().message;
    return text ? nlohmann::json::parse(text.value()) : nlohmann::json::object();
  }
  static nlohmann::json prod(const nlohmann::json& summary) { return summary["stages"][1]; }
  static std::string table(const nlohmann::json& summary) {
    std::ostringstream out;
    tools::print_summary(out, summary);
    return out.str();
  }
};

TEST_F(SummaryActorsTest, ACanceledApprovalIsClosedByWhoeverCanceled) {
  create("Shop");
  settle();
  cancel("Shop-1", "prod", "dave");
  settle();
  const nlohmann::json s = summary("Shop-1");
  ASSERT_EQ(prod(s)["approvals"].size(), 1u);
  EXPECT_EQ(prod(s)["approvals"][0]["decision"], "closed");
  EXPECT_EQ(prod(s)["approvals"][0]["approver"], "dave");
  EXPECT_EQ(prod(s)["canceled_by"], "dave");
  // The reason given ("not now") does not say who: the table adds it.
  const std::string text = table(s);
  EXPECT_NE(text.find("closed by dave; not now (by dave)"), std::string::npos) << text;
  EXPECT_EQ(text.find("closed by ;"), std::string::npos) << text;
}

TEST_F(SummaryActorsTest, AnAbandonedReleaseNamesWhoAbandonedIt) {
  create("Shop");
  settle();
  act("Shop-1", engine::AbandonRelease{"wrong build"}, "erin");
  settle();
  const nlohmann::json s = summary("Shop-1");
  EXPECT_EQ(s["abandoned_by"], "erin");
  EXPECT_EQ(prod(s)["approvals"][0]["approver"], "erin");
  EXPECT_EQ(prod(s)["canceled_by"], "erin");
  EXPECT_FALSE(s["stages"][0].contains("canceled_by")) << "dev had finished: nobody canceled it";
  const std::string text = table(s);
  EXPECT_NE(text.find("abandoned by erin: wrong build"), std::string::npos) << text;
  EXPECT_NE(text.find("closed by erin"), std::string::npos) << text;
}

TEST_F(SummaryActorsTest, ATimedOutApprovalNamesTheScheduler) {
  create("Shop");
  settle();
  clock_.advance(std::chrono::hours(25));
  settle();
  const nlohmann::json s = summary("Shop-1");
  ASSERT_EQ(prod(s)["approvals"].size(), 1u);
  EXPECT_EQ(prod(s)["approvals"][0]["decision"], "timed out");
  EXPECT_EQ(prod(s)["approvals"][0]["approver"], engine::Scheduler::kActor);
  EXPECT_NE(table(s).find(std::string("timed out by ") + engine::Scheduler::kActor), std::string::npos) << table(s);
}

TEST_F(SummaryActorsTest, AnOverrideShowsAsOneWithWhoDidIt) {
  create("Shop");
  settle();
  act("Shop-1", engine::ApproveStage{"prod", "hotfix", 0, true}, "admin");
  settle();
  const nlohmann::json s = summary("Shop-1");
  EXPECT_EQ(prod(s)["approvals"][0]["approver"], "admin");
  EXPECT_EQ(prod(s)["approvals"][0]["override"], true);
  EXPECT_FALSE(prod(s).contains("canceled_by"));
  EXPECT_NE(table(s).find("approved by admin (admin override)"), std::string::npos) << table(s);
  EXPECT_EQ(tools::approval_text(prod(s)["approvals"][0]), "approved by admin (admin override)");
}

}  // namespace
}  // namespace cascade::projections
