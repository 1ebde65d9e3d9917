// The wait before trying again after a transient failure or a lost race:
// exponential with full jitter (uniform in [0, min(cap, first·2^retry)]), so
// that parties that failed together — servers after the same broker outage,
// writers that lost the same race for a stream — do not come back in
// lockstep. Used by the Kafka ingress (a record the engine refused) and by
// ReleaseService (an append that lost an optimistic-concurrency race).
// Header-only; not thread-safe (one per thread).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>

namespace cascade::events {

class RetryBackoff {
 public:
  using Duration = std::chrono::microseconds;

  // `seed` is the random source: tests pass a fixed one, callers one from
  // std::random_device so that no two servers (or threads) draw the same waits.
  RetryBackoff(Duration first, Duration cap, std::uint64_t seed) : first_(first), cap_(cap), random_(seed) {}

  // The largest wait before retry `retry` (0 for the first retry).
  Duration ceiling(int retry) const {
    Duration ceiling = first_;
    for (int i = 0; i < retry && ceiling < cap_; ++i) ceiling *= 2;  // no overflow: stops at the cap
    return std::min(ceiling, cap_);
  }

  // A wait drawn uniformly from [0, ceiling(retry)].
  Duration wait_before(int retry) {
    std::uniform_int_distribution<Duration::rep> draw(0, ceiling(retry).count());
    return Duration(draw(random_));
  }

 private:
  const Duration first_;
  const Duration cap_;
  std::mt19937_64 random_;
};

}  // namespace cascade::events
