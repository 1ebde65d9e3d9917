// ReleaseService — the one path by which anything changes: load the release
// (from the cache, catching up from the log), decide, append with the
// expected version; on a lost race reload and decide again.
#pragma once

#include "engine/pipeline.hpp"
#include "engine/ports.hpp"
#include "engine/quarantine.hpp"
#include "engine/release.hpp"
#include "events/event_log.hpp"

#include <chrono>
#include <cstddef>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

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
  std::optional<events::CdEventTrigger> trigger_cdevent;  // set by the Kafka ingress
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
  std::vector<std::string> actor_groups = {};  // see CommandContext::actor_groups
};

// Thread-safe.
//
// Caches folded releases, at most `cache_capacity` of them (least recently
// used out first; each costs its definition snapshot plus its stages'
// history, typically a few KiB), and the latest definition of each pipeline
// it has loaded. A cached release is used as is while the log's version of
// its stream equals the cached one; otherwise only the newer events are read
// and folded on top; after its own append the service folds the events it
// wrote without reading them back. The cache changes speed, never answers:
// an evicted release is folded again from the log.
class ReleaseService {
 public:
  // An append that loses an optimistic-concurrency race (kAborted: the
  // stream moved) is decided again on the reloaded state, at most
  // kMaxConflictRetries times in all. The second try follows at once (one
  // lost race is the common case and the reload is what it needs); before
  // try n > 2 the thread sleeps a wait drawn uniformly from
  // [0, min(kMaxConflictBackoff, kFirstConflictBackoff·2^(n-3))] on the steady
  // clock (events::RetryBackoff, one generator per thread seeded from
  // std::random_device), so writers racing for one stream spread out instead
  // of colliding again in lockstep. At most ~93 ms of waiting in all.
  static constexpr int kMaxConflictRetries = 16;
  static constexpr std::chrono::microseconds kFirstConflictBackoff{200};
  static constexpr std::chrono::microseconds kMaxConflictBackoff{10'000};
  static constexpr std::size_t kDefaultCacheCapacity = 4096;

  ReleaseService(events::EventLog& log, SecretStore& secrets, const Clock& clock,
                 std::size_t cache_capacity = kDefaultCacheCapacity);

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

  // The releases whose history failed verification or decoding: load and
  // execute answer kDataLoss for them at once, with the reason first found.
  Quarantine& quarantine() { return quarantine_; }
  const Quarantine& quarantine() const { return quarantine_; }

 private:
  using StatePtr = std::shared_ptr<const ReleaseState>;
  // The release folded up to the stream's current version (an empty state,
  // version 0, for an unknown release); cached.
  Result<StatePtr> catch_up(const std::string& release_id);
  StatePtr cached(const std::string& release_id);
  // `before` with `events` folded on top as the log will record them, ahead
  // of appending them (each payload is moved out and back). Used only once
  // the append succeeds, so a release's own appends never need reading back.
  static std::shared_ptr<ReleaseState> fold_ahead(const ReleaseState& before, const std::string& stream,
                                                  std::vector<events::NewEvent>& events);
  // The fold of a successful append, completed with the hash the log gave
  // its last event, cached and returned.
  StatePtr remember_appended(const std::string& release_id, std::shared_ptr<ReleaseState> folded,
                             const events::AppendResult& result);
  void remember(const std::string& release_id, StatePtr state);
  // The next release number of `pipeline`, never handed out twice by this
  // service. A number whose create turns out to be a repeat (same
  // idempotency key) is left unused.
  Result<std::int64_t> reserve_release_number(const std::string& pipeline);
  std::vector<events::NewEvent> envelope(const std::string& stream, std::vector<events::Event> events,
                                         const CommandContext& context, const std::string& correlation_id) const;

  // `scope` names where the variables are declared ("pipeline/<name>" or
  // "pipeline/<name>/stage/<stage>"); see SecretStore::put.
  Status seal_secrets(const std::string& scope, VariableMap& variables);

  events::EventLog& log_;
  SecretStore& secrets_;
  const Clock& clock_;
  Quarantine quarantine_;
  const std::size_t cache_capacity_;
  std::mutex mutex_;  // guards the cache
  struct CacheEntry {
    StatePtr state;
    std::list<std::string>::iterator recency;  // its place in recency_
  };
  std::unordered_map<std::string, CacheEntry> cache_;
  std::list<std::string> recency_;  // release ids, most recently used first
  std::map<std::string, std::shared_ptr<const StoredPipeline>> pipelines_;  // latest loaded; guarded by mutex_
  std::mutex numbers_mutex_;
  std::map<std::string, std::int64_t> last_release_number_;  // guarded by numbers_mutex_
};

}  // namespace cascade::engine
