// Pipeline definitions: the JSON format a team writes (README "Pipeline
// format"), its validation, and its canonical form.
#pragma once

#include "events/event.hpp"
#include "events/result.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cascade::engine {

using events::Variables;

enum class TriggerKind { kAfterRelease, kAfterStages, kManual };

struct StageTrigger {
  TriggerKind kind = TriggerKind::kAfterRelease;
  std::vector<std::string> after_stages;  // kAfterStages: every one must have succeeded (the join)
};

struct ApprovalPolicy {
  std::vector<std::string> approvers;
};

struct StepDefinition {
  static constexpr int kDefaultTimeoutSeconds = 3600;
  std::string name;
  std::string run;  // a shell command, run by /bin/sh -c
  int timeout_s = kDefaultTimeoutSeconds;
  Variables env;
};

struct StageDefinition {
  std::string name;
  StageTrigger trigger;
  std::optional<ApprovalPolicy> pre_approval;
  std::vector<StepDefinition> steps;
  Variables variables;
};

struct PipelineDefinition {
  std::string name;
  std::string description;
  Variables variables;
  std::vector<StageDefinition> stages;

  // nullptr when there is no such stage.
  const StageDefinition* find_stage(std::string_view stage) const;
};

// Parses and validates a definition, reporting every problem at once: the
// error is kInvalidArgument with one Problem per finding, each with its path
// ("stages[2].trigger.after_stages[0]"): unknown fields, wrong types, missing
// fields, bad names, duplicate stages, unknown stages in after_stages, cycles
// (named "prod → qa → prod"), stages without steps, and a pipeline in which no
// stage is triggered by release creation.
Result<PipelineDefinition> parse_pipeline(const nlohmann::json& document);
// The same from text; malformed JSON is kInvalidArgument naming line and column.
Result<PipelineDefinition> parse_pipeline_text(std::string_view text);

// The canonical form: every field explicit (defaults filled in), stages in
// their written order. Two definitions with the same meaning have the same
// canonical JSON, which is what PipelineDefined stores and compares.
nlohmann::json to_json(const PipelineDefinition& definition);

}  // namespace cascade::engine
