// The wait before trying a record again: exponential with full jitter
// (uniform in [0, min(cap, first·2^retry)]), so that servers that failed
// together — the same broker outage, the same engine hiccup — do not come
// back in lockstep. Header-only; not thread-safe (one per consumer thread).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>

namespace cascade::adapters::kafka {

class RetryBackoff {
 public:
  // `seed` is the random source: tests pass a fixed one, the ingress one
  // from std::random_device so that no two servers draw the same waits.
  RetryBackoff(std::chrono::milliseconds first, std::chrono::milliseconds cap, std::uint64_t seed)
      : first_(first), cap_(cap), random_(seed) {}

  // The largest wait before retry `retry` (0 for the first retry of a record).
  std::chrono::milliseconds ceiling(int retry) const {
    std::chrono::milliseconds ceiling = first_;
    for (int i = 0; i < retry && ceiling < cap_; ++i) ceiling *= 2;  // no overflow: stops at the cap
    return std::min(ceiling, cap_);
  }

  // A wait drawn uniformly from [0, ceiling(retry)].
  std::chrono::milliseconds wait_before(int retry) {
    std::uniform_int_distribution<std::chrono::milliseconds::rep> draw(0, ceiling(retry).count());
    return std::chrono::milliseconds(draw(random_));
  }

 private:
  const std::chrono::milliseconds first_;
  const std::chrono::milliseconds cap_;
  std::mt19937_64 random_;
};

}  // namespace cascade::adapters::kafka
