// The Kafka ingress's wait before trying a record again: exponential, capped,
// and fully jittered, so servers that failed together spread out.
#include "adapters/kafka/retry_backoff.hpp"

#include <gtest/gtest.h>

#include <set>
#include <vector>

namespace cascade::testing {
namespace {

using adapters::kafka::RetryBackoff;
using std::chrono::milliseconds;

TEST(KafkaRetryBackoff, TheCeilingDoublesFromTheFirstWaitUpToTheCap) {
  const RetryBackoff backoff(milliseconds(50), milliseconds(2000), 1);
  const std::vector<long> expected = {50, 100, 200, 400, 800, 1600, 2000, 2000};
  for (std::size_t retry = 0; retry < expected.size(); ++retry) {
    EXPECT_EQ(backoff.ceiling(static_cast<int>(retry)).count(), expected[retry]) << "retry " << retry;
  }
  // However long a record has been retried, the ceiling stays the cap (no overflow).
  EXPECT_EQ(backoff.ceiling(1'000'000).count(), 2000);
}

TEST(KafkaRetryBackoff, EveryWaitIsWithinZeroAndItsCeiling) {
  RetryBackoff backoff(milliseconds(50), milliseconds(2000), 42);
  for (int round = 0; round < 200; ++round) {
    for (int retry = 0; retry < 12; ++retry) {
      const milliseconds wait = backoff.wait_before(retry);
      EXPECT_GE(wait.count(), 0);
      EXPECT_LE(wait, backoff.ceiling(retry)) << "retry " << retry;
    }
  }
}

TEST(KafkaRetryBackoff, WaitsAreJitteredAcrossTheWholeRange) {
  RetryBackoff backoff(milliseconds(50), milliseconds(2000), 7);
  constexpr int kDraws = 1000;
  std::set<long> seen;
  long below_half = 0;
  for (int i = 0; i < kDraws; ++i) {
    const long wait = backoff.wait_before(10).count();  // ceiling 2000
    seen.insert(wait);
    below_half += wait < 1000 ? 1 : 0;
  }
  // Full jitter: many distinct values, about half of them in the lower half.
  EXPECT_GT(seen.size(), 300u);
  EXPECT_GT(below_half, kDraws * 4 / 10);
  EXPECT_LT(below_half, kDraws * 6 / 10);
}

TEST(KafkaRetryBackoff, TwoServersFailingTogetherDoNotRetryInLockstep) {
  // Two servers seeded differently (the ingress seeds from std::random_device).
  RetryBackoff first(milliseconds(50), milliseconds(2000), 1001);
  RetryBackoff second(milliseconds(50), milliseconds(2000), 2002);
  int equal = 0;
  for (int retry = 0; retry < 20; ++retry) equal += first.wait_before(retry) == second.wait_before(retry) ? 1 : 0;
  EXPECT_LT(equal, 3);
}

TEST(KafkaRetryBackoff, TheSameSeedDrawsTheSameSchedule) {
  RetryBackoff first(milliseconds(50), milliseconds(2000), 99);
  RetryBackoff second(milliseconds(50), milliseconds(2000), 99);
  for (int retry = 0; retry < 20; ++retry) EXPECT_EQ(first.wait_before(retry), second.wait_before(retry));
}

}  // namespace
}  // namespace cascade::testing
