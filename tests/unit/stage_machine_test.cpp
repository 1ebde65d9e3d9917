#include "engine/stage_machine.hpp"

#include "tests/support/sample_events.hpp"

#include "events/codec.hpp"

#include <gtest/gtest.h>

#include <map>

namespace cascade::engine {
namespace {

using events::Event;

Event of_type(std::string_view type) {
  for (const Event& e : testing::one_of_each_event()) {
    if (events::type_name(e) == type) return e;
  }
  ADD_FAILURE() << "no sample of " << type;
  return {};
}

// The specification, written out independently of the transition table,
// for events whose guards hold in the sample (one approval needed, granted
// with a deferral; a partial deployment).
const std::map<StageState, std::map<std::string, StageState>>& legal_moves() {
  using S = StageState;
  static const std::map<StageState, std::map<std::string, StageState>> kMoves = {
      {S::kNotStarted, {{"StageTriggered", S::kTriggered}}},
      {S::kTriggered,
       {{"ApprovalRequested", S::kAwaitingPreApproval},  // the sample is "pre"
        {"ApprovalSkipped", S::kApproved},
        {"DeploymentStarted", S::kDeploying},
        {"StageCanceled", S::kCanceled}}},
      {S::kAwaitingPreApproval,
       {{"ApprovalGranted", S::kDeferred},  // the sample grant defers
        {"ApprovalRejected", S::kRejected},
        {"ApprovalTimedOut", S::kRejected},
        {"StageCanceled", S::kCanceled}}},
      {S::kDeferred, {{"DeferralElapsed", S::kApproved}, {"StageCanceled", S::kCanceled}}},
      {S::kApproved, {{"DeploymentStarted", S::kDeploying}, {"StageCanceled", S::kCanceled}}},
      {S::kDeploying,
       {{"StepStarted", S::kDeploying},
        {"StepSucceeded", S::kDeploying},
        {"StepFailed", S::kDeploying},
        {"StepSkipped", S::kDeploying},
        {"DeploymentSucceeded", S::kPartiallySucceeded},  // the sample is partial
        {"DeploymentFailed", S::kFailed},
        {"DeploymentCanceled", S::kCanceled}}},
      {S::kAwaitingPostApproval,
       {{"ApprovalGranted", S::kPartiallySucceeded},
        {"ApprovalRejected", S::kRejected},
        {"ApprovalTimedOut", S::kRejected},
        {"StageCanceled", S::kCanceled}}},
      {S::kSucceeded, {{"StageTriggered", S::kTriggered}}},  // the sample request is "pre": no post approval
      {S::kPartiallySucceeded, {{"StageTriggered", S::kTriggered}}},
      {S::kFailed, {{"StageTriggered", S::kTriggered}, {"RollbackChosen", S::kFailed}}},
      {S::kRejected, {{"StageTriggered", S::kTriggered}}},
      {S::kCanceled, {{"StageTriggered", S::kTriggered}}},
  };
  return kMoves;
}

events::Event post_request() {
  auto e = std::get<events::ApprovalRequested>(of_type("ApprovalRequested"));
  e.phase = "post";
  return e;
}

events::Event whole_success() {
  auto e = std::get<events::DeploymentSucceeded>(of_type("DeploymentSucceeded"));
  e.partial = false;
  return e;
}

events::Event grant(std::int64_t defer_until = 0) {
  auto e = std::get<events::ApprovalGranted>(of_type("ApprovalGranted"));
  e.defer_until = defer_until;
  return e;
}

events::Event request(int required) {
  auto e = std::get<events::ApprovalRequested>(of_type("ApprovalRequested"));
  e.required = required;
  return e;
}

// A history that leads to each state.
StageMachine machine_in(StageState state) {
  using S = StageState;
  static const std::map<StageState, std::vector<std::string>> kPaths = {
      {S::kNotStarted, {}},
      {S::kTriggered, {"StageTriggered"}},
      {S::kAwaitingPreApproval, {"StageTriggered", "ApprovalRequested"}},
      {S::kDeferred, {"StageTriggered", "ApprovalRequested", "ApprovalGranted"}},
      {S::kApproved, {"StageTriggered", "ApprovalSkipped"}},
      {S::kDeploying, {"StageTriggered", "DeploymentStarted"}},
      {S::kAwaitingPostApproval, {"StageTriggered", "DeploymentStarted", "DeploymentSucceeded", "post"}},
      {S::kSucceeded, {"StageTriggered", "DeploymentStarted", "whole"}},
      {S::kPartiallySucceeded, {"StageTriggered", "DeploymentStarted", "DeploymentSucceeded"}},
      {S::kFailed, {"StageTriggered", "DeploymentStarted", "DeploymentFailed"}},
      {S::kRejected, {"StageTriggered", "ApprovalRequested", "ApprovalRejected"}},
      {S::kCanceled, {"StageTriggered", "StageCanceled"}},
  };
  StageMachine machine;
  for (const std::string& step : kPaths.at(state)) {
    const events::Event e = step == "post" ? post_request() : step == "whole" ? whole_success() : of_type(step);
    EXPECT_TRUE(machine.accept(e)) << step;
  }
  EXPECT_EQ(machine.state(), state);
  return machine;
}

TEST(StageMachineTest, StartsNotStarted) { EXPECT_EQ(StageMachine().state(), StageState::kNotStarted); }

TEST(StageMachineTest, EveryStateAndEventPairIsLegalExactlyAsSpecified) {
  int legal = 0, refused = 0;
  for (const auto& [state, moves] : legal_moves()) {
    for (const Event& event : testing::one_of_each_event()) {
      const std::string type(events::type_name(event));
      StageMachine machine = machine_in(state);
      const auto move = moves.find(type);
      const bool accepted = machine.accept(event);
      if (move != moves.end()) {
        EXPECT_TRUE(accepted) << to_string(state) << " + " << type;
        EXPECT_EQ(machine.state(), move->second) << to_string(state) << " + " << type;
        ++legal;
      } else {
        EXPECT_FALSE(accepted) << to_string(state) << " + " << type << " should be refused";
        EXPECT_EQ(machine.state(), state) << "a refusal leaves the state as it was";
        ++refused;
      }
    }
  }
  EXPECT_EQ(legal, 30);
  EXPECT_EQ(legal + refused, 12 * 20);
}

TEST(StageMachineTest, AFailedAttemptTakesOneRollbackChoiceAndTheNextAttemptAnother) {
  StageMachine machine = machine_in(StageState::kFailed);
  ASSERT_TRUE(machine.accept(of_type("RollbackChosen")));
  EXPECT_EQ(machine.state(), StageState::kFailed);
  EXPECT_FALSE(machine.would_accept(of_type("RollbackChosen"))) << "one choice per failed attempt";
  ASSERT_TRUE(machine.accept(of_type("StageTriggered")));
  ASSERT_TRUE(machine.accept(of_type("DeploymentStarted")));
  ASSERT_TRUE(machine.accept(of_type("DeploymentFailed")));
  EXPECT_TRUE(machine.accept(of_type("RollbackChosen"))) << "the next failed attempt chooses again";
}

TEST(StageMachineTest, ApprovalCompletesOnlyWithTheRequiredNumberOfGrants) {
  StageMachine machine = machine_in(StageState::kTriggered);
  ASSERT_TRUE(machine.accept(request(3)));
  ASSERT_TRUE(machine.accept(grant()));
  ASSERT_TRUE(machine.accept(grant()));
  EXPECT_EQ(machine.state(), StageState::kAwaitingPreApproval) << "2 of 3";
  ASSERT_TRUE(machine.accept(grant()));
  EXPECT_EQ(machine.state(), StageState::kApproved) << "3 of 3, no deferral";
}

TEST(StageMachineTest, AnEarlierGrantsDeferralDefersTheCompletedApproval) {
  StageMachine machine = machine_in(StageState::kTriggered);
  ASSERT_TRUE(machine.accept(request(2)));
  ASSERT_TRUE(machine.accept(grant(1'800'000'100'000)));
  ASSERT_TRUE(machine.accept(grant()));
  EXPECT_EQ(machine.state(), StageState::kDeferred);
}

TEST(StageMachineTest, PostApprovalKeepsTheDeploymentsOutcome) {
  StageMachine whole = machine_in(StageState::kTriggered);
  ASSERT_TRUE(whole.accept(of_type("DeploymentStarted")));
  ASSERT_TRUE(whole.accept(whole_success()));
  ASSERT_TRUE(whole.accept(post_request()));
  EXPECT_EQ(whole.state(), StageState::kAwaitingPostApproval);
  ASSERT_TRUE(whole.accept(grant()));
  EXPECT_EQ(whole.state(), StageState::kSucceeded);
  StageMachine partial = machine_in(StageState::kAwaitingPostApproval);
  ASSERT_TRUE(partial.accept(grant()));
  EXPECT_EQ(partial.state(), StageState::kPartiallySucceeded);
}

TEST(StageMachineTest, RequestsAreTakenOnlyInTheirPhase) {
  StageMachine triggered = machine_in(StageState::kTriggered);
  EXPECT_FALSE(triggered.accept(post_request())) << "no post-deployment approval before deploying";
  StageMachine succeeded = machine_in(StageState::kSucceeded);
  EXPECT_FALSE(succeeded.accept(of_type("ApprovalRequested"))) << "no pre-deployment approval after deploying";
  EXPECT_TRUE(succeeded.accept(post_request()));
}

TEST(StageMachineTest, WaitingAndFinishedStatesAreNamed) {
  EXPECT_TRUE(is_waiting(StageState::kDeferred));
  EXPECT_FALSE(is_waiting(StageState::kDeploying));
  EXPECT_TRUE(is_finished(StageState::kCanceled));
  EXPECT_FALSE(is_finished(StageState::kAwaitingPostApproval));
  EXPECT_TRUE(is_deployment_over(StageState::kAwaitingPostApproval)) << "every step has run";
  EXPECT_TRUE(is_deployment_over(StageState::kFailed));
  EXPECT_FALSE(is_deployment_over(StageState::kDeploying));
  EXPECT_FALSE(is_deployment_over(StageState::kAwaitingPreApproval));
}

TEST(StageMachineTest, WouldAcceptDoesNotMove) {
  StageMachine machine = machine_in(StageState::kTriggered);
  EXPECT_TRUE(machine.would_accept(of_type("DeploymentStarted")));
  EXPECT_FALSE(machine.would_accept(of_type("ApprovalGranted")));
  EXPECT_EQ(machine.state(), StageState::kTriggered);
}

TEST(StageMachineTest, CopiesAreIndependent) {
  StageMachine original = machine_in(StageState::kAwaitingPreApproval);
  StageMachine copy = original;
  ASSERT_TRUE(copy.accept(grant()));
  EXPECT_EQ(copy.state(), StageState::kApproved);
  EXPECT_EQ(original.state(), StageState::kAwaitingPreApproval);
  original = copy;
  EXPECT_EQ(original.state(), StageState::kApproved);
}

TEST(StageMachineTest, StatesAcceptingComeFromTheTable) {
  EXPECT_EQ(StageMachine::states_accepting("ApprovalGranted"),
            (std::vector<StageState>{StageState::kAwaitingPreApproval, StageState::kAwaitingPostApproval}));
  EXPECT_EQ(StageMachine::states_accepting("DeploymentStarted"),
            (std::vector<StageState>{StageState::kTriggered, StageState::kApproved}));
  EXPECT_EQ(StageMachine::states_accepting("StageTriggered").size(), 6u);
  EXPECT_TRUE(StageMachine::states_accepting("ReleaseCreated").empty());
}

}  // namespace
}  // namespace cascade::engine
