// Given / When / Then helpers for the release aggregate.
#pragma once

#include "engine/pipeline.hpp"
#include "engine/release.hpp"

#include <gtest/gtest.h>

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

class ReleaseHistory {
 public:
  explicit ReleaseHistory(const engine::PipelineDefinition& definition = fork_join_pipeline(),
                          const std::string& requester = "alice") {
    engine::CreateRelease create;
    create.release_id = definition.name + "-1";
    create.number = 1;
    create.name = "Release-1";
    create.pipeline_version = 1;
    create.definition = definition;
    create.artifact = {"1.0.0", "/artifacts/1.0.0", 0, "", ""};
    EXPECT_TRUE(when(create, requester));
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
  engine::ReleaseState state_;
  int commands_ = 0;
  events::Timestamp now_ = 1'800'000'000'000;
};

}  // namespace cascade::testing
