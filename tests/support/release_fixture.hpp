// Given / When / Then helpers for the release aggregate.
//
//   ReleaseHistory release(pipeline, "alice");            // given: the release was created
//   release.given(StageTriggered{"dev", "r", 1}, ...);    // given: these events happened
//   auto events = release.when(StartDeployment{"dev"}, "executor");
//   // then: the events decide produced, or its error code (and message)
//
// Given events are folded with the engine's own evolve; one that the stage
// machine would not accept in the state reached so far fails the test, so a
// history cannot silently be something other than what it says.
#pragma once

#include "engine/pipeline.hpp"
#include "engine/release.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace cascade::testing {

// dev → (test ‖ qa) → prod with a pre-deployment approval by release-manager;
// each stage has two steps.
inline const char* kForkJoinPipeline = R"({
  "name": "SampleApp",
  "stages": [
    {"name": "dev",  "trigger": {"after_release": true},
     "steps": [{"name": "deploy", "run": "true"}, {"name": "smoke", "run": "true"}]},
    {"name": "test", "trigger": {"after_stages": ["dev"]},
     "steps": [{"name": "deploy", "run": "true"}, {"name": "smoke", "run": "true"}]},
    {"name": "qa",   "trigger": {"after_stages": ["dev"]},
     "steps": [{"name": "deploy", "run": "true"}, {"name": "smoke", "run": "true"}]},
    {"name": "prod", "trigger": {"after_stages": ["test", "qa"]},
     "pre_approval": {"approvers": ["release-manager"]},
     "steps": [{"name": "deploy", "run": "true"}, {"name": "smoke", "run": "true"}]}
  ]
})";

inline engine::PipelineDefinition fork_join_pipeline() {
  auto parsed = engine::parse_pipeline_text(kForkJoinPipeline);
  EXPECT_TRUE(parsed) << parsed.error().message;
  return parsed.value();
}

// Release 1 of `definition`, version 1.0.0, requested by `requester`: the
// event CreateRelease yields for it.
inline events::ReleaseCreated release_created(const engine::PipelineDefinition& definition,
                                              const std::string& requester = "alice") {
  events::ReleaseCreated created;
  created.release_id = definition.name + "-1";
  created.pipeline = definition.name;
  created.pipeline_version = 1;
  created.definition = engine::to_json(definition);
  created.name = "Release-1";
  created.artifact = {"1.0.0", "/artifacts/1.0.0", 0, "", ""};
  created.trigger = "manual";
  created.requested_by = requester;
  return created;
}

// The events of one deployment of `stage` whose steps (named in order) all
// succeed: DeploymentStarted, StepStarted and StepSucceeded for each step,
// DeploymentSucceeded. The trigger (and any approval) comes before it.
inline std::vector<events::Event> deployment_succeeded(const std::string& stage,
                                                       const std::vector<std::string>& steps = {"deploy", "smoke"},
                                                       int attempt = 1) {
  std::vector<events::Event> out{events::DeploymentStarted{stage, attempt}};
  for (int i = 0; i < static_cast<int>(steps.size()); ++i) {
    out.push_back(events::StepStarted{stage, attempt, i, steps[static_cast<std::size_t>(i)], 1});
    out.push_back(events::StepSucceeded{stage, attempt, i, steps[static_cast<std::size_t>(i)], 0, 100, ""});
  }
  out.push_back(events::DeploymentSucceeded{stage, attempt, false});
  return out;
}

// The fork-join pipeline's history up to prod's approval: dev, then test and
// qa, succeeded; prod was triggered and asks release-manager to approve it.
inline std::vector<events::Event> prod_awaiting_approval(events::Timestamp deadline = 1'900'000'000'000) {
  std::vector<events::Event> out;
  for (const char* stage : {"dev", "test", "qa"}) {
    out.push_back(events::StageTriggered{stage, "r", 1});
    for (events::Event& event : deployment_succeeded(stage)) out.push_back(std::move(event));
  }
  out.push_back(events::StageTriggered{"prod", "after test, qa succeeded", 1});
  out.push_back(events::ApprovalRequested{"prod", "pre", {"release-manager"}, 1, "any", deadline});
  return out;
}

// Folds one given event into `state` with the engine's evolve, refusing (with
// kFailedPrecondition naming the event, its stage and the stage's state) a
// stage event the stage machine would not accept, and (kNotFound) one for a
// stage the release does not have: evolve would silently drop either.
inline Status fold_given(engine::ReleaseState& state, const events::RecordedEvent& event) {
  const std::string type(events::type_name(event.data));
  const std::string* stage_name = std::visit(
      [](const auto& payload) -> const std::string* {
        if constexpr (events::kIsStageEvent<std::decay_t<decltype(payload)>>) {
          return &payload.stage;
        } else {
          return nullptr;
        }
      },
      event.data);
  if (!std::holds_alternative<events::ReleaseCreated>(event.data) && !state.exists()) {
    return make_error(ErrorCode::kFailedPrecondition, type + " before ReleaseCreated: a history starts with the release");
  }
  if (stage_name != nullptr) {
    const engine::StageRecord* stage = state.find_stage(*stage_name);
    if (stage == nullptr) {
      return make_error(ErrorCode::kNotFound, type + " names stage '" + *stage_name + "', which release " + state.id +
                                                  " does not have");
    }
    if (!stage->machine.would_accept(event.data)) {
      return make_error(ErrorCode::kFailedPrecondition, type + " of stage '" + *stage_name + "' cannot happen: stage is " +
                                                            std::string(engine::to_string(stage->state())));
    }
  }
  engine::evolve(state, event);
  return success();
}

class ReleaseHistory {
 public:
  // Given: release 1 of `definition` was created by `requester`.
  explicit ReleaseHistory(const engine::PipelineDefinition& definition = fork_join_pipeline(),
                          const std::string& requester = "alice") {
    given(release_created(definition, requester));
  }

  // Given: these events happened, in order, each a second after the last,
  // recorded for actor "given". Takes events and vectors of events.
  template <class... Events>
  ReleaseHistory& given(const Events&... events) {
    (append(events), ...);
    return *this;
  }

  // Decides `command` on the current state and folds the events it yields.
  Result<std::vector<events::Event>> when(const engine::Command& command, const std::string& actor,
                                          const std::string& command_id = "") {
    engine::CommandContext context;
    context.command_id = command_id.empty() ? "cmd-" + std::to_string(++commands_) : command_id;
    context.actor = actor;
    context.now = now_ += 1000;
    return decide_at(command, actor, context);
  }

  Result<std::vector<events::Event>> decide_at(const engine::Command& command, const std::string& actor,
                                               engine::CommandContext context) {
    auto decided = engine::decide(state_, command, context);
    if (decided) {
      for (const events::Event& e : decided.value()) {
        events::RecordedEvent recorded;
        recorded.version = state_.version + 1;
        recorded.recorded_at = context.now;
        recorded.actor = actor;
        recorded.command_id = context.command_id;
        recorded.data = e;
        engine::evolve(state_, recorded);
      }
    }
    return decided;
  }

  // Runs a stage's whole deployment through the executor's commands.
  void deploy(const std::string& stage, bool last_step_succeeds = true) {
    const int attempt = state_.find_stage(stage)->attempt;
    ASSERT_TRUE(when(engine::StartDeployment{stage}, "executor"));
    for (int i = 0; i < 2; ++i) {
      ASSERT_TRUE(when(engine::RecordStepStarted{stage, attempt, i}, "executor"));
      engine::RecordStepFinished finished;
      finished.stage = stage;
      finished.attempt = attempt;
      finished.step_index = i;
      finished.succeeded = i == 0 || last_step_succeeds;
      finished.exit_code = finished.succeeded ? 0 : 3;
      finished.reason = finished.succeeded ? "" : "exit code 3";
      ASSERT_TRUE(when(finished, "executor"));
    }
    ASSERT_TRUE(when(engine::FinishDeployment{stage, attempt}, "executor"));
  }

  // dev, then test and qa, succeed; prod is triggered and awaits approval.
  void advance_to_prod_approval() {
    ASSERT_TRUE(when(engine::TriggerStage{"dev", "release created"}, "orchestrator"));
    deploy("dev");
    for (const char* stage : {"test", "qa"}) {
      ASSERT_TRUE(when(engine::TriggerStage{stage, "after dev succeeded"}, "orchestrator"));
      deploy(stage);
    }
    ASSERT_TRUE(when(engine::TriggerStage{"prod", "after test, qa succeeded"}, "orchestrator"));
  }

  const engine::ReleaseState& state() const { return state_; }
  events::Timestamp now() const { return now_; }
  void advance(std::int64_t ms) { now_ += ms; }
  engine::StageState stage(const std::string& name) const { return state_.find_stage(name)->state(); }

 private:
  void append(const std::vector<events::Event>& events) {
    for (const events::Event& event : events) append(event);
  }
  void append(const events::Event& event) {
    events::RecordedEvent recorded;
    recorded.version = state_.version + 1;
    recorded.recorded_at = now_ += 1000;
    recorded.actor = "given";
    recorded.data = event;
    auto folded = fold_given(state_, recorded);
    EXPECT_TRUE(folded) << "given event " << recorded.version << ": " << folded.error().message;
  }

  engine::ReleaseState state_;
  int commands_ = 0;
  events::Timestamp now_ = 1'800'000'000'000;
};

}  // namespace cascade::testing
