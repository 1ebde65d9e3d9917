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
#include <variant>
#include <vector>

namespace cascade::events {

// Milliseconds since the Unix epoch, UTC.
using Timestamp = std::int64_t;
using Variables = std::map<std::string, std::string>;

struct Artifact {
  std::string version;
  std::string path;
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
  Artifact artifact;
  Variables variables;
  std::string trigger;  // "manual" or what created it
  std::string requested_by;
};

struct StageTriggered {
  static constexpr std::string_view kType = "StageTriggered";
  static constexpr int kSchemaVersion = 1;
  std::string stage;
  std::string reason;  // "release created", "after test, qa", "manual deploy by alice"
  int attempt = 1;
};

struct ApprovalRequested {
  static constexpr std::string_view kType = "ApprovalRequested";
  static constexpr int kSchemaVersion = 1;
  std::string stage;
  std::string phase;  // "pre"
  std::vector<std::string> approvers;
  int required = 1;
};

struct ApprovalGranted {
  static constexpr std::string_view kType = "ApprovalGranted";
  static constexpr int kSchemaVersion = 1;
  std::string stage;
  std::string phase;
  std::string approver;
  std::string comment;
};

struct ApprovalRejected {
  static constexpr std::string_view kType = "ApprovalRejected";
  static constexpr int kSchemaVersion = 1;
  std::string stage;
  std::string phase;
  std::string approver;
  std::string comment;
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
};

struct DeploymentSucceeded {
  static constexpr std::string_view kType = "DeploymentSucceeded";
  static constexpr int kSchemaVersion = 1;
  std::string stage;
  int attempt = 1;
};

struct DeploymentFailed {
  static constexpr std::string_view kType = "DeploymentFailed";
  static constexpr int kSchemaVersion = 1;
  std::string stage;
  int attempt = 1;
  std::string reason;
};

using Event = std::variant<PipelineDefined, ReleaseCreated, StageTriggered, ApprovalRequested,
                           ApprovalGranted, ApprovalRejected, DeploymentStarted, StepStarted,
                           StepSucceeded, StepFailed, DeploymentSucceeded, DeploymentFailed>;

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
