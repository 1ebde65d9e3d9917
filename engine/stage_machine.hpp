// The state machine of one stage of one release.
//
// Its transition table (stage_machine.cpp) is the only place that says which
// stage transitions are legal. The release aggregate folds each stage's events
// through it (evolve) and asks a copy whether a candidate event would be
// accepted (decide). State ids of Boost.MSM are never persisted: states have
// stable names, and the events are what is stored.
#pragma once

#include "events/event.hpp"

#include <memory>
#include <string_view>
#include <vector>

namespace cascade::engine {

enum class StageState {
  kNotStarted,
  kTriggered,             // ready to deploy, no approval needed (may wait in the deployment queue)
  kAwaitingPreApproval,
  kDeferred,              // approved, to deploy at a later time
  kApproved,              // pre-deployment approval given, ready to deploy
  kDeploying,
  kAwaitingPostApproval,  // deployed; the stage's outcome waits for approval
  kSucceeded,
  kPartiallySucceeded,    // deployed, but a continue_on_error step failed
  kFailed,
  kRejected,              // an approval was rejected or timed out
  kCanceled,
};

// The stage waits for something (the queue, an approval, a time) and is not deploying.
bool is_waiting(StageState state);
// The stage's current attempt is over.
bool is_finished(StageState state);
// The current attempt's steps have all run: it is over, or waits for its
// post-deployment approval. Nothing writes its step logs any more.
bool is_deployment_over(StageState state);

std::string_view to_string(StageState state);

class StageMachine {
 public:
  StageMachine();
  ~StageMachine();
  StageMachine(const StageMachine& other);
  StageMachine& operator=(const StageMachine& other);
  StageMachine(StageMachine&&) noexcept;
  StageMachine& operator=(StageMachine&&) noexcept;

  // Feeds one event of this stage. Returns true when the transition table
  // accepts it in the current state (which then moves); false leaves the
  // machine as it was. Events that are not stage events are never accepted.
  bool accept(const events::Event& event);

  // Whether `event` would be accepted, without moving.
  bool would_accept(const events::Event& event) const;

  StageState state() const;

  // The states in which the table accepts events of `event_type` (a payload's
  // kType), in table order without repeats: "expected …" in refusals.
  static std::vector<StageState> states_accepting(std::string_view event_type);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cascade::engine
