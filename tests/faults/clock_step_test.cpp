// The wall clock steps (an operator, NTP after a suspend): deadlines recorded
// in events keep their wall-clock times, nothing is lost or fired twice,
// delays between retries are measured on the monotonic clock, and a large
// step is logged. ManualClock::set() is a step; advance() is time passing.
#include "tests/support/engine_harness.hpp"

#include <gtest/gtest.h>

namespace cascade::testing {
namespace {

using engine::StageState;

constexpr const char* kApproval = R"({"name": "Gated",
  "stages": [{"name": "prod", "trigger": {"after_release": true},
    "pre_approval": {"approvers": ["carol"], "timeout": "1h"},
    "steps": [{"name": "deploy", "run": "deploy"}]}]})";

class ClockStepTest : public EngineHarness {
 protected:
  // Blocks until the release holds `n` events of type T, or 30 s.
  template <class T>
  bool await(const std::string& release_id, std::size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    std::uint64_t seen = 0;
    while (count<T>(release_id) < n) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      seen = store_->log().wait_for_events(seen, std::chrono::milliseconds(100));
    }
    return true;
  }
};

TEST_F(ClockStepTest, AStepBackKeepsTheDeadlineAtItsWallClockTimeAndFiresItOnce) {
  run();
  apply(kApproval);
  const std::string id = create("Gated");
  settle();
  ASSERT_EQ(state_of(id, "prod"), StageState::kAwaitingPreApproval);
  const events::Timestamp deadline = load(id).find_stage("prod")->approval.deadline;

  clock_.set(clock_.now() - 2 * 3600 * 1000);  // two hours back
  settle();
  clock_.set(deadline - 1000);                  // and up to a second before the deadline
  settle();
  EXPECT_EQ(state_of(id, "prod"), StageState::kAwaitingPreApproval) << "not before its time";
  EXPECT_EQ(count<events::ApprovalTimedOut>(id), 0u);

  clock_.advance(std::chrono::seconds(2));
  settle();
  EXPECT_EQ(state_of(id, "prod"), StageState::kRejected);
  EXPECT_EQ(count<events::ApprovalTimedOut>(id), 1u);
  EXPECT_GE(runtime_->engine().clock_steps(), 1u) << "the step back was seen and logged";
}

TEST_F(ClockStepTest, AForwardJumpFiresWhatFellDueOnceAndIsLogged) {
  run();
  apply(kApproval);
  const std::string id = create("Gated");
  settle();
  ASSERT_EQ(runtime_->engine().clock_steps(), 0u) << "time passing is not a step";
  clock_.advance(std::chrono::minutes(10));
  settle();
  ASSERT_EQ(runtime_->engine().clock_steps(), 0u);

  clock_.set(clock_.now() + 2LL * 24 * 3600 * 1000);  // two days ahead
  settle();
  EXPECT_EQ(state_of(id, "prod"), StageState::kRejected);
  EXPECT_EQ(count<events::ApprovalTimedOut>(id), 1u);
  EXPECT_EQ(runtime_->engine().clock_steps(), 1u);
}

TEST_F(ClockStepTest, ARetryDelayIsMeasuredOnTheMonotonicClockNotTheSteppedWallClock) {
  scripted_.fail("dev", "flaky", 1);
  run();
  apply(R"({"name": "Retried", "stages": [{"name": "dev", "trigger": {"after_release": true},
            "steps": [{"name": "flaky", "run": "flaky", "retries": {"count": 1, "delay_s": 60}}]}]})");
  const std::string id = create("Retried");
  ASSERT_TRUE(await<events::StepFailed>(id, 1)) << "the first try fails";

  // The wall clock goes back a day while the executor waits its 60 s. The
  // executor may start its wait just after the first StepFailed is visible,
  // so time passes in 61 s leaps until the retry has run: a few with a
  // monotonic delay, over 1,400 (at 100 ms each, far past the 30 s allowed)
  // if the delay waited for the wall clock to come back.
  clock_.set(clock_.now() - 24LL * 3600 * 1000);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  int leaps = 0;
  for (std::uint64_t seen = store_->log().head(); count<events::StepFailed>(id) < 2; ++leaps) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "no retry after " << leaps << " leaps of 61 s";
    clock_.advance(std::chrono::seconds(61));
    seen = store_->log().wait_for_events(seen, std::chrono::milliseconds(100));
  }
  settle();
  EXPECT_EQ(load(id).find_stage("dev")->steps[0].tries, 2);
}

}  // namespace
}  // namespace cascade::testing
