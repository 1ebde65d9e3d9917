// The wait before trying again (events/retry_backoff.hpp): exponential,
// capped, and fully jittered, so parties that failed together spread out. The
// Kafka ingress waits 50 ms · 2^n up to 2 s before retrying a record; the
// command service 0.2 ms · 2^n up to 10 ms after losing a race for a stream.
#include "events/retry_backoff.hpp"

#include "engine/release_service.hpp"

#include <gtest/gtest.h>

#include <set>
#include <vector>

namespace cascade::testing {
namespace {

using events::RetryBackoff;
using std::chrono::microseconds;
using std::chrono::milliseconds;

TEST(RetryBackoff, TheCeilingDoublesFromTheFirstWaitUpToTheCap) {
  const RetryBackoff backoff(milliseconds(50), milliseconds(2000), 1);
  const std::vector<long> expected = {50, 100, 200, 400, 800, 1600, 2000, 2000};
  for (std::size_t retry = 0; retry < expected.size(); ++retry) {
    EXPECT_EQ(backoff.ceiling(static_cast<int>(retry)), milliseconds(expected[retry])) << "retry " << retry;
  }
  // However long a record has been retried, the ceiling stays the cap (no overflow).
  EXPECT_EQ(backoff.ceiling(1'000'000), milliseconds(2000));
}

TEST(RetryBackoff, TheCommandServicesWaitsStaySmall) {
  const RetryBackoff backoff(engine::ReleaseService::kFirstConflictBackoff,
                             engine::ReleaseService::kMaxConflictBackoff, 1);
  const std::vector<long> expected = {200, 400, 800, 1600, 3200, 6400, 10'000, 10'000};
  for (std::size_t retry = 0; retry < expected.size(); ++retry) {
    EXPECT_EQ(backoff.ceiling(static_cast<int>(retry)), microseconds(expected[retry])) << "retry " << retry;
  }
}

TEST(RetryBackoff, EveryWaitIsWithinZeroAndItsCeiling) {
  RetryBackoff backoff(milliseconds(50), milliseconds(2000), 42);
  for (int round = 0; round < 200; ++round) {
    for (int retry = 0; retry < 12; ++retry) {
      const microseconds wait = backoff.wait_before(retry);
      EXPECT_GE(wait.count(), 0);
      EXPECT_LE(wait, backoff.ceiling(retry)) << "retry " << retry;
    }
  }
}

TEST(RetryBackoff, WaitsAreJitteredAcrossTheWholeRange) {
  RetryBackoff backoff(milliseconds(50), milliseconds(2000), 7);
  constexpr int kDraws = 1000;
  std::set<long> seen;
  long below_half = 0;
  for (int i = 0; i < kDraws; ++i) {
    const microseconds wait = backoff.wait_before(10);  // ceiling 2 s
    seen.insert(static_cast<long>(wait.count()));
    below_half += wait < milliseconds(1000) ? 1 : 0;
  }
  // Full jitter: many distinct values, about half of them in the lower half.
  EXPECT_GT(seen.size(), 300u);
  EXPECT_GT(below_half, kDraws * 4 / 10);
  EXPECT_LT(below_half, kDraws * 6 / 10);
}

TEST(RetryBackoff, TwoServersFailingTogetherDoNotRetryInLockstep) {
  // Seeded differently (callers seed from std::random_device).
  RetryBackoff first(milliseconds(50), milliseconds(2000), 1001);
  RetryBackoff second(milliseconds(50), milliseconds(2000), 2002);
  int equal = 0;
  for (int retry = 0; retry < 20; ++retry) equal += first.wait_before(retry) == second.wait_before(retry) ? 1 : 0;
  EXPECT_LT(equal, 3);
}

TEST(RetryBackoff, TheSameSeedDrawsTheSameSchedule) {
  RetryBackoff first(milliseconds(50), milliseconds(2000), 99);
  RetryBackoff second(milliseconds(50), milliseconds(2000), 99);
  for (int retry = 0; retry < 20; ++retry) EXPECT_EQ(first.wait_before(retry), second.wait_before(retry));
}

}  // namespace
}  // namespace cascade::testing
