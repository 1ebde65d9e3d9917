// Pipeline definitions: the JSON format a team writes (README "Pipeline
// format"), its validation, and its canonical form.
#pragma once

#include "events/event.hpp"
#include "events/result.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cascade::engine {

using events::Timestamp;

// A variable's value, or — for a secret — only the digest under which the
// secret store keeps it. A definition read from a user's file holds secret
// values in `value`; ReleaseService moves them into the secret store and
// clears `value` before anything is written to the log.
struct VariableValue {
  std::string value;
  bool secret = false;
  std::string secret_digest;  // set once the value is in the secret store
  bool settable = false;      // a release may set it ("Settable at release time")
};
bool operator==(const VariableValue& a, const VariableValue& b);
using VariableMap = std::map<std::string, VariableValue>;

enum class TriggerKind { kAfterRelease, kAfterStages, kManual };

struct StageTrigger {
  TriggerKind kind = TriggerKind::kAfterRelease;
  std::vector<std::string> after_stages;  // kAfterStages: every one must have succeeded (the join)
  bool on_partial_success = false;        // a PartiallySucceeded upstream counts as succeeded
};

enum class ApprovalOrder { kAny, kSequential };
// "any" | "sequential", as in the pipeline format and the events.
std::string_view to_string(ApprovalOrder order);
// nullopt for anything but "any" and "sequential".
std::optional<ApprovalOrder> parse_approval_order(std::string_view text);

struct ApprovalPolicy {
  static constexpr std::int64_t kDefaultTimeoutMs = 30LL * 24 * 3600 * 1000;
  static constexpr std::int64_t kMaxTimeoutMs = 365LL * 24 * 3600 * 1000;
  // Users, or names of the pipeline's groups (any member acts for the group).
  std::vector<std::string> approvers;
  // How many of `approvers` must approve; 0 means all of them ("all").
  int required = 1;
  ApprovalOrder order = ApprovalOrder::kAny;
  std::int64_t timeout_ms = kDefaultTimeoutMs;
  bool requester_cannot_approve = false;
  bool skip_if_approved_earlier = false;  // pre-deployment only

  // The number of approvals needed, resolving "all".
  int required_count() const { return required == 0 ? static_cast<int>(approvers.size()) : required; }
};

enum class StepCondition { kSucceeded, kFailed, kAlways };

struct StepDefinition {
  static constexpr int kDefaultTimeoutSeconds = 3600;
  std::string name;
  std::string run;  // a shell command, run by /bin/sh -c, after $(name) expansion
  int timeout_s = kDefaultTimeoutSeconds;
  std::map<std::string, std::string> env;
  bool continue_on_error = false;  // a failure makes the stage PartiallySucceeded instead of Failed
  int retries = 0;                 // further tries after a failure
  int retry_delay_s = 0;
  StepCondition condition = StepCondition::kSucceeded;
};

enum class OnNewRelease { kQueueAll, kDeployLatest };
// What every release of a pipeline must carry for its steps, checked when the
// release is created: kPath (the default) an absolute path that exists on the
// server (CASCADE_ARTIFACT_PATH; from a request, or a CI build's file:// URI);
// kUri a path or a URI the steps download (CASCADE_ARTIFACT_URI); kNone
// nothing, for steps that need no artifact (infrastructure jobs). An empty
// path must never reach a step that copies `$(CASCADE_ARTIFACT_PATH)/.`.
enum class ArtifactNeed { kPath, kUri, kNone };
enum class OnFailure { kNothing, kRedeployLastGood };

struct StageDefinition {
  std::string name;
  StageTrigger trigger;
  std::optional<ApprovalPolicy> pre_approval;
  std::optional<ApprovalPolicy> post_approval;
  std::vector<StepDefinition> steps;
  VariableMap variables;
  int max_parallel = 0;  // deployments of this stage across releases at once; 0: unlimited
  OnNewRelease on_new_release = OnNewRelease::kQueueAll;
  OnFailure on_failure = OnFailure::kNothing;
};

// Continuous deployment from CI: which build announcements (CDEvents arriving
// through the Kafka ingress) create a release of the pipeline.
//
// Patterns are globs: '*' matches any run of characters within one
// '/'-separated segment, '**' any run across segments, '?' one character
// other than '/'; everything else matches itself.
struct ArtifactTrigger {
  // Matched against the CDEvent's context.source, its subject.source, and the
  // artifact's package URL without version and qualifiers ("pkg:oci/shop").
  std::string source;
  // "main", "release/*", "!release/old*": a leading '!' excludes. A branch
  // passes when no exclude matches it and, if there are includes, one of them
  // matches. No filters: every branch, and builds that name no branch.
  std::vector<std::string> branch_filters;

  bool matches_source(std::string_view candidate) const;
  // `branch` is empty when the event names none: it then passes only when
  // there are no include filters.
  bool matches_branch(std::string_view branch) const;
};

// The glob of ArtifactTrigger ('*' within a '/'-segment, '**' across, '?').
bool glob_match(std::string_view pattern, std::string_view text);

struct PipelineDefinition {
  static constexpr const char* kDefaultReleaseNameFormat = "Release-$(rev:r)";
  std::string name;
  std::string description;
  std::string release_name_format = kDefaultReleaseNameFormat;
  VariableMap variables;
  std::map<std::string, std::vector<std::string>> groups;  // group name → members
  std::vector<StageDefinition> stages;
  std::optional<ArtifactTrigger> artifact;  // absent: releases are created by hand or API only
  ArtifactNeed needs_artifact = ArtifactNeed::kPath;

  // nullptr when there is no such stage.
  const StageDefinition* find_stage(std::string_view stage) const;
  // Whether `user` may act for approver entry `entry` (the user, or a member of the group).
  bool acts_for(std::string_view user, std::string_view entry) const;
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
// canonical JSON, which is what PipelineDefined stores and compares. Secret
// variables are written as {"secret": true, "digest": …} and never with their
// value. REQUIRES: every secret has its digest set (ReleaseService does this).
nlohmann::json to_json(const PipelineDefinition& definition);

// The approver entries nobody could act for, one Problem each with its path
// ("stages[3].pre_approval.approvers[1]"): an entry is reachable when
// `known(entry)` (a user or group the server knows), or when it names one of
// the pipeline's groups with a member `known` knows. A stage waiting on an
// unreachable entry would wait in nobody's inbox until its timeout.
std::vector<Problem> unreachable_approvers(const PipelineDefinition& definition,
                                           const std::function<bool(std::string_view)>& known);

}  // namespace cascade::engine
