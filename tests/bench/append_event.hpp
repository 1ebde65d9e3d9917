// The event both benchmark programs append in figures 1, 6 and 7: a
// StageTriggered of a few hundred stored bytes, on `stream`, numbered `n`.
#pragma once

#include "events/codec.hpp"
#include "events/event.hpp"

#include <cstdint>
#include <string>

namespace cascade::bench {

inline constexpr std::int64_t kAppendEpochMs = 1'800'000'000'000;

inline events::NewEvent small_event(const std::string& stream, std::int64_t n) {
  events::NewEvent e;
  e.event_id = events::random_uuid();
  events::StageTriggered triggered;
  triggered.stage = "prod";
  triggered.reason = "after test, qa";
  triggered.attempt = static_cast<int>(n % 1000) + 1;
  e.data = triggered;
  e.recorded_at = kAppendEpochMs + n;
  e.actor = "orchestrator";
  e.command_id = events::random_uuid();
  e.causation_id = events::random_uuid();
  e.correlation_id = stream;
  return e;
}

}  // namespace cascade::bench
