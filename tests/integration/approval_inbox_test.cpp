// The approvals inbox: per person and per group, soonest deadline first;
// items vanish when their approval is given, rejected, timed out or canceled.
#include "tests/support/projections_harness.hpp"

#include <gtest/gtest.h>

namespace cascade::projections {
namespace {

// Both people of release-managers and carol must approve prod, within 2 days.
constexpr const char* kShop = R"({"name": "Shop", "groups": {"release-managers": ["alice", "bob"]},
  "stages": [{"name": "dev", "trigger": {"after_release": true}, "steps": [{"name": "d", "run": "d"}]},
    {"name": "prod", "trigger": {"after_stages": ["dev"]},
     "pre_approval": {"approvers": ["release-managers", "carol"], "required": "all", "timeout": "2d"},
     "steps": [{"name": "d", "run": "d"}]}]})";
// carol before, release-managers after the deployment; a shorter deadline.
constexpr const char* kOps = R"({"name": "Ops", "groups": {"release-managers": ["alice", "bob"]},
  "stages": [{"name": "apply", "trigger": {"after_release": true},
    "pre_approval": {"approvers": ["carol"], "timeout": "1d"},
    "post_approval": {"approvers": ["release-managers"], "timeout": "3d"},
    "steps": [{"name": "a", "run": "a"}]}]})";

class ApprovalInboxTest : public testing::ProjectionsHarness {
 protected:
  void SetUp() override {
    ProjectionsHarness::SetUp();
    run();
    apply(kShop);
    apply(kOps);
  }
  std::vector<nlohmann::json> inbox(const std::string& user) {
    auto items = projections().approvals().inbox(user);
    EXPECT_TRUE(items) << items.error().message;
    return items ? items.value() : std::vector<nlohmann::json>{};
  }
  std::vector<nlohmann::json> group(const std::string& name) {
    auto items = projections().approvals().group_inbox(name);
    EXPECT_TRUE(items) << items.error().message;
    return items ? items.value() : std::vector<nlohmann::json>{};
  }
  static std::vector<std::string> stages(const std::vector<nlohmann::json>& items) {
    std::vector<std::string> out;
    for (const auto& item : items) {
      out.push_back(item["release"].get<std::string>() + "/" + item["stage"].get<std::string>() + "/" +
                    item["phase"].get<std::string>());
    }
    return out;
  }
  using Stages = std::vector<std::string>;
};

TEST_F(ApprovalInboxTest, PendingApprovalsAreListedPerPersonAndPerGroupSoonestDeadlineFirst) {
  const events::Timestamp t0 = clock_.now();
  create("Shop");
  settle();
  clock_.advance(std::chrono::hours(1));
  create("Ops");  // created later, but due sooner
  settle();

  const auto carol = inbox("carol");
  EXPECT_EQ(stages(carol), (Stages{"Ops-1/apply/pre", "Shop-1/prod/pre"}));
  ASSERT_EQ(carol.size(), 2u);
  EXPECT_EQ(carol[1], (nlohmann::json{{"release", "Shop-1"},
                                      {"release_name", "Release-1"},
                                      {"pipeline", "Shop"},
                                      {"stage", "prod"},
                                      {"phase", "pre"},
                                      {"approvers", {"release-managers", "carol"}},
                                      {"required", 2},
                                      {"approved", 0},
                                      {"approved_by", nlohmann::json::array()},
                                      {"order", "any"},
                                      {"deadline", t0 + 2 * kDayMs},
                                      {"requested_at", t0},
                                      {"via", {"carol"}}}));
  EXPECT_EQ(carol[0]["deadline"], t0 + kHourMs + kDayMs);
  EXPECT_EQ(stages(inbox("alice")), (Stages{"Shop-1/prod/pre"}));
  EXPECT_EQ(inbox("alice")[0]["via"], nlohmann::json({"release-managers"}));
  EXPECT_EQ(stages(inbox("bob")), (Stages{"Shop-1/prod/pre"}));
  EXPECT_EQ(stages(group("release-managers")), (Stages{"Shop-1/prod/pre"}));
  EXPECT_TRUE(inbox("dave").empty());
  EXPECT_TRUE(inbox("release-managers").empty()) << "a group is not a person";
  // A credential naming the group sees its items once beside the person's own.
  auto merged = projections().approvals().inbox_of("carol", {"release-managers"});
  ASSERT_TRUE(merged) << merged.error().message;
  EXPECT_EQ(stages(merged.value()), (Stages{"Ops-1/apply/pre", "Shop-1/prod/pre"}));
  EXPECT_EQ(stages(projections().approvals().inbox_of("dave", {"release-managers"}).value()),
            (Stages{"Shop-1/prod/pre"}));

  // alice approves for the group: the group entry is done, carol's is not.
  approve("Shop-1", "prod", "alice");
  settle();
  EXPECT_TRUE(inbox("alice").empty());
  EXPECT_TRUE(inbox("bob").empty());
  EXPECT_TRUE(group("release-managers").empty());
  ASSERT_EQ(stages(inbox("carol")), (Stages{"Ops-1/apply/pre", "Shop-1/prod/pre"}));
  EXPECT_EQ(inbox("carol")[1]["approved"], 1);
  EXPECT_EQ(inbox("carol")[1]["approved_by"], nlohmann::json({"alice"}));

  // Ops deploys after carol's approval, then waits for the group's.
  approve("Ops-1", "apply", "carol");
  settle();
  EXPECT_EQ(stages(group("release-managers")), (Stages{"Ops-1/apply/post"}));
  EXPECT_EQ(stages(inbox("bob")), (Stages{"Ops-1/apply/post"}));
  EXPECT_EQ(stages(inbox("carol")), (Stages{"Shop-1/prod/pre"}));

  approve("Shop-1", "prod", "carol");
  approve("Ops-1", "apply", "bob");
  settle();
  for (const char* user : {"alice", "bob", "carol"}) EXPECT_TRUE(inbox(user).empty()) << user;
  EXPECT_TRUE(group("release-managers").empty());
}

TEST_F(ApprovalInboxTest, ItemsVanishWhenRejectedCanceledOrTimedOut) {
  create("Shop");
  create("Shop");
  create("Shop");
  settle();
  EXPECT_EQ(stages(inbox("carol")), (Stages{"Shop-1/prod/pre", "Shop-2/prod/pre", "Shop-3/prod/pre"}));

  reject("Shop-1", "prod", "bob");
  cancel("Shop-2", "prod", "carol");
  settle();
  for (const char* user : {"alice", "bob", "carol"}) EXPECT_EQ(stages(inbox(user)), (Stages{"Shop-3/prod/pre"})) << user;
  EXPECT_EQ(stages(group("release-managers")), (Stages{"Shop-3/prod/pre"}));

  clock_.advance(std::chrono::hours(48));
  settle();
  ASSERT_EQ(state_of("Shop-3", "prod"), engine::StageState::kRejected) << "timed out";
  for (const char* user : {"alice", "bob", "carol"}) EXPECT_TRUE(inbox(user).empty()) << user;
  EXPECT_TRUE(group("release-managers").empty());
}

// An admin's view: every pending approval once, also one that waits for
// nobody who exists (a misspelt approver), without the per-reader `via`.
TEST_F(ApprovalInboxTest, AllPendingListsEveryApprovalOnceWhoeverItWaitsFor) {
  apply(R"({"name": "Lost", "stages": [{"name": "go", "trigger": {"after_release": true},
    "pre_approval": {"approvers": ["nobody-by-this-name"], "timeout": "3d"}, "steps": [{"name": "g", "run": "g"}]}]})");
  create("Shop");
  create("Ops");
  create("Lost");
  settle();
  auto all = projections().approvals().all_pending();
  ASSERT_TRUE(all) << all.error().message;
  EXPECT_EQ(stages(all.value()), (Stages{"Ops-1/apply/pre", "Shop-1/prod/pre", "Lost-1/go/pre"}));
  for (const auto& item : all.value()) EXPECT_FALSE(item.contains("via")) << item.dump();
  EXPECT_EQ(all.value()[2]["approvers"], nlohmann::json({"nobody-by-this-name"}));
  EXPECT_EQ(stages(projections().approvals().all_pending(1).value()), (Stages{"Ops-1/apply/pre"}));

  approve("Ops-1", "apply", "carol");  // now awaits the group after deployment
  cancel("Lost-1", "go", "admin");
  settle();
  EXPECT_EQ(stages(projections().approvals().all_pending().value()), (Stages{"Shop-1/prod/pre", "Ops-1/apply/post"}));
}

}  // namespace
}  // namespace cascade::projections
