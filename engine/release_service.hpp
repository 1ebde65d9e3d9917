// ReleaseService — the one path by which anything changes: load the release
// (from the cache, catching up from the log), decide, append with the
// expected version; on a lost race reload and decide again.
#pragma once

#include "engine/pipeline.hpp"
#include "engine/ports.hpp"
#include "engine/release.hpp"
#include "events/event_log.hpp"

#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace cascade::engine {

struct StoredPipeline {
  std::int64_t version = 0;
  PipelineDefinition definition;
};

struct NewRelease {
  std::string pipeline;
  events::Artifact artifact;
  events::Variables variables;
  std::map<std::string, std::string> secret_variables;  // name → value; stored in the secret store only
  std::string trigger = "manual";
};

// A release's name from its pipeline's release_name_format: $(rev:r) is the
// release number, $(build) the artifact version, $(date:yyyyMMdd) the
// creation date (UTC; pattern letters y, M, d).
std::string format_release_name(std::string_view format, std::int64_t number, std::string_view build, Timestamp at);

// Who asks, and the idempotency key of the request (empty: a fresh random key).
struct Invocation {
  std::string actor;
  std::string command_id;
  std::string causation_id;
};

// Thread-safe.
class ReleaseService {
 public:
  static constexpr int kMaxConflictRetries = 16;

  ReleaseService(events::EventLog& log, SecretStore& secrets, const Clock& clock);

  // Appends PipelineDefined with the next version, or nothing when the
  // canonical definition equals the latest one. Returns the version in force.
  // Secret variables go to the secret store; the log keeps their digests.
  Result<std::int64_t> apply_pipeline(const PipelineDefinition& definition, const std::string& actor);
  // kNotFound when the pipeline was never defined.
  Result<StoredPipeline> load_pipeline(const std::string& name);

  // Creates release <pipeline>-<n> from the latest pipeline version, n being
  // the next free number. Returns its id.
  Result<std::string> create_release(const NewRelease& request, const Invocation& invocation);

  // Decides and appends `command` for the release; returns the state after it.
  Result<ReleaseState> execute(const std::string& release_id, const Command& command,
                               const Invocation& invocation);

  // The release as of the log's current end. kNotFound for an unknown release.
  Result<ReleaseState> load(const std::string& release_id);

 private:
  Result<ReleaseState> catch_up(const std::string& release_id);
  // The next release number of `pipeline`, never handed out twice by this
  // service. A number whose create turns out to be a repeat (same
  // idempotency key) is left unused.
  Result<std::int64_t> reserve_release_number(const std::string& pipeline);
  std::vector<events::NewEvent> envelope(const std::string& stream, std::vector<events::Event> events,
                                         const CommandContext& context, const std::string& correlation_id) const;

  Status seal_secrets(VariableMap& variables);

  events::EventLog& log_;
  SecretStore& secrets_;
  const Clock& clock_;
  std::mutex mutex_;
  std::map<std::string, ReleaseState> cache_;
  std::mutex numbers_mutex_;
  std::map<std::string, std::int64_t> last_release_number_;  // guarded by numbers_mutex_
};

}  // namespace cascade::engine
