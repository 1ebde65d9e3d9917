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

// The specification, written out independently of the transition table.
const std::map<StageState, std::map<std::string, StageState>>& legal_moves() {
  static const std::map<StageState, std::map<std::string, StageState>> kMoves = {
      {StageState::kNotStarted, {{"StageTriggered", StageState::kTriggered}}},
      {StageState::kTriggered,
       {{"ApprovalRequested", StageState::kAwaitingPreApproval}, {"DeploymentStarted", StageState::kDeploying}}},
      {StageState::kAwaitingPreApproval,
       {{"ApprovalGranted", StageState::kApproved}, {"ApprovalRejected", StageState::kRejected}}},
      {StageState::kApproved, {{"DeploymentStarted", StageState::kDeploying}}},
      {StageState::kDeploying,
       {{"StepStarted", StageState::kDeploying},
        {"StepSucceeded", StageState::kDeploying},
        {"StepFailed", StageState::kDeploying},
        {"DeploymentSucceeded", StageState::kSucceeded},
        {"DeploymentFailed", StageState::kFailed}}},
      {StageState::kSucceeded, {{"StageTriggered", StageState::kTriggered}}},
      {StageState::kFailed, {{"StageTriggered", StageState::kTriggered}}},
      {StageState::kRejected, {{"StageTriggered", StageState::kTriggered}}},
  };
  return kMoves;
}

// A history that leads to each state.
StageMachine machine_in(StageState state) {
  static const std::map<StageState, std::vector<std::string>> kPaths = {
      {StageState::kNotStarted, {}},
      {StageState::kTriggered, {"StageTriggered"}},
      {StageState::kAwaitingPreApproval, {"StageTriggered", "ApprovalRequested"}},
      {StageState::kApproved, {"StageTriggered", "ApprovalRequested", "ApprovalGranted"}},
      {StageState::kDeploying, {"StageTriggered", "DeploymentStarted"}},
      {StageState::kSucceeded, {"StageTriggered", "DeploymentStarted", "DeploymentSucceeded"}},
      {StageState::kFailed, {"StageTriggered", "DeploymentStarted", "DeploymentFailed"}},
      {StageState::kRejected, {"StageTriggered", "ApprovalRequested", "ApprovalRejected"}},
  };
  StageMachine machine;
  for (const std::string& type : kPaths.at(state)) EXPECT_TRUE(machine.accept(of_type(type))) << type;
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
  EXPECT_EQ(legal, 14);
  EXPECT_EQ(legal + refused, 8 * 12);
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
  ASSERT_TRUE(copy.accept(of_type("ApprovalGranted")));
  EXPECT_EQ(copy.state(), StageState::kApproved);
  EXPECT_EQ(original.state(), StageState::kAwaitingPreApproval);
  original = copy;
  EXPECT_EQ(original.state(), StageState::kApproved);
}

TEST(StageMachineTest, StatesAcceptingComeFromTheTable) {
  EXPECT_EQ(StageMachine::states_accepting("ApprovalGranted"),
            std::vector<StageState>{StageState::kAwaitingPreApproval});
  EXPECT_EQ(StageMachine::states_accepting("DeploymentStarted"),
            (std::vector<StageState>{StageState::kTriggered, StageState::kApproved}));
  EXPECT_EQ(StageMachine::states_accepting("StageTriggered").size(), 4u);
  EXPECT_TRUE(StageMachine::states_accepting("ReleaseCreated").empty());
}

}  // namespace
}  // namespace cascade::engine
