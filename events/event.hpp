// Cascade's events: immutable, past-tense facts, and the envelope that carries them.
//
// Who and when live in the envelope (actor, recorded_at), not in each payload.
// Each payload type names itself (kType) and carries the version of its JSON
// shape (kSchemaVersion); a change of shape bumps that version.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

namespace cascade::events {

// Milliseconds since the Unix epoch, UTC.
using Timestamp = std::int64_t;
using Variables = std::map<std::string, std::string>;

struct Artifact {
  std::string version;
  std::string path;
  // When CI finished building it (0: unknown; lead time then starts at the
  // release's creation).
  Timestamp built_at = 0;
  // From CI (Kafka ingress): the artifact's package URL, e.g.
  // pkg:oci/shop@sha256%3A…, and where to download it. Empty when unknown;
  // empty fields are left out of the JSON, so older events keep their bytes.
  std::string id;
  std::string uri;
};

// The CDEvent that created a release (Kafka ingress). Its id is the create
// command's idempotency key.
struct CdEventTrigger {
  std::string id;
  std::string source;
  std::string type;  // e.g. dev.cdevents.artifact.published.0.3.0
};

// Stream pipeline-<name>.
struct PipelineDefined {
  static constexpr std::string_view kType = "PipelineDefined";
  static constexpr int kSchemaVersion = 1;
  std::string pipeline;
  std::int64_t version = 0;
  nlohmann::json definition;  // canonical form, see engine/pipeline.hpp
};

// Stream release-<id>. The definition snapshot keeps a release independent of
// later edits to its pipeline.
struct ReleaseCreated {
  static constexpr std::string_view kType = "ReleaseCreated";
  static constexpr int kSchemaVersion = 1;
  std::string release_id;
  std::string pipeline;
  std::int64_t pipeline_version = 0;
  nlohmann::json definition;
  std::string name;  // from the pipeline's release_name_format
  Artifact artifact;
  Variables variables;
  // Release-time secrets: name → digest in the secret store. Never the value.
  std::map<std::string, std::string> secret_variables;
  std::string trigger;  // "manual" or what created it
  std::string requested_by;
  // Set when a CI event created the release; absent from the JSON otherwise
  // (additive: schema version 1 still reads events written before it).
  std::optional<CdEventTrigger> trigger_cdevent;
};

struct StageTriggered {
  static constexpr std::string_view kType = "StageTriggered";
  static constexpr int kSchemaVersion = 1;
  std::string stage;
  std::string reason;  // "release created", "after test, qa", "manual deploy by alice"
  int attempt = 1;
  // Set when this attempt is an on_failure rollback (redeploy_last_good): the
  // release whose failure it undoes. A rollback that fails is not rolled back
  // again. Left out of the JSON when empty, so every other trigger, and
  // rollbacks recorded before this field existed, keep their bytes.
  std::string rollback_of = {};
};

struct ApprovalRequested {
  static constexpr std::string_view kType = "ApprovalRequested";
  static constexpr int kSchemaVersion = 1;
  std::string stage;
  std::string phase;  // "pre" | "post"
  std::vector<std::string> approvers;  // users or group names
  int required = 1;                    // approvals needed (resolved: never "all")
  std::string order = "any";           // "any" | "sequential"
  Timestamp deadline = 0;              // ApprovalTimedOut at this time
};

struct ApprovalGranted {
  static constexpr std::string_view kType = "ApprovalGranted";
  static constexpr int kSchemaVersion = 1;
  std::string stage;
  std::string phase;
  std::string approver;      // who the credential says acted
  std::string on_behalf_of;  // the approver entry (user or group) this approval counts for; empty for an override
  std::string comment;
  Timestamp defer_until = 0;  // pre-deployment: deploy no earlier than this (0: at once)
  // An administrator decided in place of the approvers: the approval is
  // complete whatever the policy asked for. Serialised only when true, so
  // events written before overrides existed keep their bytes and hashes.
  bool override = false;
};

struct ApprovalRejected {
  static constexpr std::string_view kType = "ApprovalRejected";
  static constexpr int kSchemaVersion = 1;
  std::string stage;
  std::string phase;
  std::string approver;
  std::string on_behalf_of;
  std::string comment;
  bool override = false;  // as ApprovalGranted::override
};

struct ApprovalTimedOut {
  static constexpr std::string_view kType = "ApprovalTimedOut";
  static constexpr int kSchemaVersion = 1;
  std::string stage;
  std::string phase;
  Timestamp deadline = 0;
};

// A pre-deployment approval not asked for, because the same approvers
// approved an earlier stage of the release (skip_if_approved_earlier).
struct ApprovalSkipped {
  static constexpr std::string_view kType = "ApprovalSkipped";
  static constexpr int kSchemaVersion = 1;
  std::string stage;
  std::string phase;
  std::string reason;
};

struct DeferralElapsed {
  static constexpr std::string_view kType = "DeferralElapsed";
  static constexpr int kSchemaVersion = 1;
  std::string stage;
  Timestamp defer_until = 0;
};

struct DeploymentStarted {
  static constexpr std::string_view kType = "DeploymentStarted";
  static constexpr int kSchemaVersion = 1;
  std::string stage;
  int attempt = 1;
};

struct StepStarted {
  static constexpr std::string_view kType = "StepStarted";
  static constexpr int kSchemaVersion = 1;
  std::string stage;
  int attempt = 1;
  int step_index = 0;
  std::string step;
  int try_number = 1;  // > 1 for a retry
};

struct StepSucceeded {
  static constexpr std::string_view kType = "StepSucceeded";
  static constexpr int kSchemaVersion = 1;
  std::string stage;
  int attempt = 1;
  int step_index = 0;
  std::string step;
  int exit_code = 0;
  std::int64_t duration_ms = 0;
  std::string log_digest;  // hex SHA-256 of the step's stored log lines
};

struct StepFailed {
  static constexpr std::string_view kType = "StepFailed";
  static constexpr int kSchemaVersion = 1;
  std::string stage;
  int attempt = 1;
  int step_index = 0;
  std::string step;
  int exit_code = 0;  // -1 when the step never exited on its own
  std::int64_t duration_ms = 0;
  std::string log_digest;
  std::string reason;  // "exit code 3", "timed out after 5 s"
  bool will_retry = false;  // another try follows
  bool continued = false;   // continue_on_error: the deployment goes on, partially succeeded
  // Set only for a step cut off by an interruption (the engine stopped while
  // it ran), whose log_digest is then empty: the hex SHA-256 of the
  // digest_bytes of every line stored for the step when the interruption was
  // recorded — all its tries, in order — and how many lines that was. Left
  // out of the JSON when stored_log_digest is empty, so every other failure,
  // and interruptions recorded before these fields existed, keep their bytes.
  std::string stored_log_digest;
  std::int64_t stored_log_lines = 0;
};

// A step not run: its condition did not hold.
struct StepSkipped {
  static constexpr std::string_view kType = "StepSkipped";
  static constexpr int kSchemaVersion = 1;
  std::string stage;
  int attempt = 1;
  int step_index = 0;
  std::string step;
  std::string reason;
};

struct DeploymentSucceeded {
  static constexpr std::string_view kType = "DeploymentSucceeded";
  static constexpr int kSchemaVersion = 1;
  std::string stage;
  int attempt = 1;
  bool partial = false;  // a continue_on_error step failed
};

struct DeploymentFailed {
  static constexpr std::string_view kType = "DeploymentFailed";
  static constexpr int kSchemaVersion = 1;
  std::string stage;
  int attempt = 1;
  std::string reason;
};

// A running deployment stopped by a person (or by abandoning the release):
// its process group is killed, its unfinished steps are canceled.
struct DeploymentCanceled {
  static constexpr std::string_view kType = "DeploymentCanceled";
  static constexpr int kSchemaVersion = 1;
  std::string stage;
  int attempt = 1;
  std::string reason;
};

// on_failure redeploy_last_good: the orchestrator's choice of the release to
// redeploy after attempt `attempt` of the stage failed, made once and recorded
// on the failed release before anything is redeployed, so that handling the
// failure again (a restart, a later event of the release) redeploys the same
// release or none — never a second one.
struct RollbackChosen {
  static constexpr std::string_view kType = "RollbackChosen";
  static constexpr int kSchemaVersion = 1;
  std::string stage;
  int attempt = 1;
  std::string rollback_to;  // the older release redeployed; empty: none
  std::string reason;       // why that one, or why none
};

// A stage that was waiting (to deploy, for an approval, for a deferral) and
// will not go on: canceled, superseded by a newer release, or abandoned.
struct StageCanceled {
  static constexpr std::string_view kType = "StageCanceled";
  static constexpr int kSchemaVersion = 1;
  std::string stage;
  int attempt = 1;
  std::string reason;
};

struct ReleaseAbandoned {
  static constexpr std::string_view kType = "ReleaseAbandoned";
  static constexpr int kSchemaVersion = 1;
  std::string reason;
};

using Event = std::variant<PipelineDefined, ReleaseCreated, StageTriggered, ApprovalRequested,
                           ApprovalGranted, ApprovalRejected, ApprovalTimedOut, ApprovalSkipped,
                           DeferralElapsed, DeploymentStarted, StepStarted, StepSucceeded, StepFailed,
                           StepSkipped, DeploymentSucceeded, DeploymentFailed, DeploymentCanceled,
                           RollbackChosen, StageCanceled, ReleaseAbandoned>;

// Payloads that belong to one stage (they have a `stage` member).
template <class Payload>
constexpr bool kIsStageEvent = !std::is_same_v<Payload, PipelineDefined> &&
                               !std::is_same_v<Payload, ReleaseCreated> &&
                               !std::is_same_v<Payload, ReleaseAbandoned>;

std::string_view type_name(const Event& event);
int schema_version(const Event& event);

// What a writer hands to EventLog::append. The log adds stream, version,
// position, prev_hash and hash.
struct NewEvent {
  std::string event_id;        // UUID; appending the same id twice stores it once
  Event data;
  Timestamp recorded_at = 0;
  std::string actor;           // the person or reactor on whose behalf it was written
  std::string command_id;      // idempotency key of the command that produced it
  std::string causation_id;    // the event or command that caused it
  std::string correlation_id;  // the release (or pipeline) it belongs to
};

// An event as stored. `position` is the log's global order and is not hashed:
// it says where the event sits, not what it says.
struct RecordedEvent {
  std::string event_id;
  std::string stream;
  std::int64_t version = 0;     // 1 for the first event of a stream
  std::uint64_t position = 0;   // 1 for the first event of the log
  Timestamp recorded_at = 0;
  std::string actor;
  std::string command_id;
  std::string causation_id;
  std::string correlation_id;
  Event data;
  std::string prev_hash;        // hash of the previous event of the stream; empty for version 1
  std::string hash;             // hex SHA-256 of the canonical bytes (see codec.hpp)
};

}  // namespace cascade::events
