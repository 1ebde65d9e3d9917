// What the release aggregate's two halves share: release.cpp (the state,
// evolve) and decide.cpp. Private to engine/.
#pragma once

#include "engine/release.hpp"

namespace cascade::engine::release_internal {

// A failed step that fails its stage: not continued on error, no retry to come.
inline bool hard_failure(const StepRecord& step) {
  return step.status == StepStatus::kFailed && !step.continued && !step.will_retry;
}

// A step that will not change any more.
inline bool step_done(const StepRecord& step) {
  return step.status != StepStatus::kPending && step.status != StepStatus::kRunning && !step.will_retry;
}

}  // namespace cascade::engine::release_internal
