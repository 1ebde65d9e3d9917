// A restart does not re-read the log from the oldest thing still waiting: the
// executor and the scheduler resume after the last event they handled and
// rebuild their queues and timers from the releases saved as open with their
// checkpoint. Before, a 30-day approval held both checkpoints back 30 days.
#include "tests/support/engine_harness.hpp"

#include <gtest/gtest.h>

namespace cascade::testing {
namespace {

using engine::ApproveStage;
using engine::Invocation;
using engine::StageState;

// prod waits up to 30 days for carol; one prod deployment at a time, in
// release order, so a second release queues behind the first.
constexpr const char* kGated = R"({"name": "Gated",
  "stages": [{"name": "prod", "trigger": {"after_release": true}, "max_parallel": 1,
    "pre_approval": {"approvers": ["carol"], "timeout": "30d"},
    "steps": [{"name": "deploy", "run": "deploy"}]}]})";
constexpr const char* kBusy = R"({"name": "Busy",
  "stages": [{"name": "dev", "trigger": {"after_release": true}, "steps": [{"name": "deploy", "run": "deploy"}]}]})";

class FastRestartTest : public EngineHarness {
 protected:
  std::uint64_t checkpoint(const std::string& reactor) {
    auto position = store_->checkpoints().load(reactor);
    EXPECT_TRUE(position) << position.error().message;
    return position ? position.value() : 0;
  }
  std::set<std::string> open(const std::string& reactor) {
    auto open = store_->checkpoints().load_open(reactor);
    EXPECT_TRUE(open) << open.error().message;
    std::set<std::string> ids;
    if (open) {
      for (const auto& [id, position] : open.value()) ids.insert(id);
    }
    return ids;
  }
};

TEST_F(FastRestartTest, CheckpointsPassAPendingApprovalAndARestartStillKeepsItsQueueAndDeadline) {
  run();
  apply(kGated);
  apply(kBusy);
  const std::string first = create("Gated", "1.0.0");
  const std::string second = create("Gated", "1.0.1");
  settle();
  ASSERT_EQ(state_of(first, "prod"), StageState::kAwaitingPreApproval);
  const std::uint64_t after_gated = store_->log().head();
  for (int i = 0; i < 200; ++i) create("Busy", "2.0." + std::to_string(i));
  settle();
  const std::uint64_t head = store_->log().head();
  ASSERT_GT(head, after_gated + 1000);

  // Nothing holds the checkpoints back: a restart reads no event twice.
  EXPECT_EQ(checkpoint("executor"), head);
  EXPECT_EQ(checkpoint("scheduler"), head);
  const std::set<std::string> gated{first, second};
  EXPECT_EQ(open("executor"), gated) << "the queued prod stages, and none of the finished Busy releases";
  EXPECT_EQ(open("scheduler"), gated) << "each has an approval deadline";

  start();  // a fresh runtime over the same store
  settle();
  EXPECT_EQ(state_of(first, "prod"), StageState::kAwaitingPreApproval);

  // The queue was rebuilt: approving the second release first does not
  // deploy it ahead of the first (release order, max_parallel 1).
  ASSERT_TRUE(service().execute(second, ApproveStage{"prod", "", 0}, Invocation{"carol", "", ""}));
  settle();
  EXPECT_EQ(state_of(second, "prod"), StageState::kApproved);
  EXPECT_EQ(open("scheduler"), std::set<std::string>{first}) << "the second has no deadline any more";

  // The deadline was rebuilt: 30 days later the first times out, once,
  // and the second deploys.
  clock_.advance(std::chrono::hours(24 * 30) + std::chrono::minutes(1));
  settle();
  EXPECT_EQ(state_of(first, "prod"), StageState::kRejected);
  EXPECT_EQ(count<events::ApprovalTimedOut>(first), 1u);
  EXPECT_EQ(state_of(second, "prod"), StageState::kSucceeded);
  EXPECT_TRUE(open("executor").empty());
  EXPECT_TRUE(open("scheduler").empty());
}

TEST_F(FastRestartTest, AReleaseStillQueuedAtTheCheckpointIsRebuiltEvenWhenNoLaterEventNamesIt) {
  run();
  apply(kGated);
  const std::string first = create("Gated", "1.0.0");
  const std::string second = create("Gated", "1.0.1");
  settle();
  ASSERT_TRUE(service().execute(second, ApproveStage{"prod", "", 0}, Invocation{"carol", "", ""}));
  settle();
  ASSERT_EQ(state_of(second, "prod"), StageState::kApproved) << "queued behind the first";

  start();
  // Only the first release gets an event after the restart; the second,
  // queued, must start from the rebuilt queue when the first is done.
  ASSERT_TRUE(service().execute(first, ApproveStage{"prod", "", 0}, Invocation{"carol", "", ""}));
  settle();
  EXPECT_EQ(state_of(first, "prod"), StageState::kSucceeded);
  EXPECT_EQ(state_of(second, "prod"), StageState::kSucceeded);
}

}  // namespace
}  // namespace cascade::testing
