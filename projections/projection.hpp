// What every read model shares: it is a Reactor that folds the log into its
// own column families of the projection database and writes its checkpoint
// in the same atomic write as the data, so its data is never ahead of or
// behind its checkpoint; it can be cleared and rebuilt from the log, also
// while the engine runs; its lag behind the log is observable.
#pragma once

#include "engine/reactor.hpp"
#include "engine/release.hpp"
#include "events/event_log.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cascade::projections {

class ProjectionStore;  // projection_store.hpp, private to projections/
class ProjectionWrite;

// The stage a stage event belongs to; empty for PipelineDefined,
// ReleaseCreated and ReleaseAbandoned.
std::string stage_of(const events::Event& event);

// How a deployment attempt ended. The read models store and serve it as
// "Succeeded", "PartiallySucceeded", "Failed", "Canceled".
enum class DeploymentOutcome { kSucceeded, kPartiallySucceeded, kFailed, kCanceled };
std::string_view to_string(DeploymentOutcome outcome);
// nullopt for any other text.
std::optional<DeploymentOutcome> parse_deployment_outcome(std::string_view text);

// The end of a deployment attempt, as the read models count it.
struct FinishedDeployment {
  DeploymentOutcome outcome = DeploymentOutcome::kSucceeded;
  std::string reason;   // why it failed or was canceled
  int attempt = 0;
};
// For DeploymentSucceeded, DeploymentFailed and DeploymentCanceled; nullopt
// for any other event (a waiting stage canceled never deployed).
std::optional<FinishedDeployment> finished_deployment(const events::Event& event);

// Release states folded with engine::evolve — the same fold as the engine's,
// never a second one — kept in memory so a read model does not re-read a
// release's stream per event. A miss (first sight, eviction, a retried
// batch) folds the stream's prefix from the log, so the cache only saves
// work and never changes an answer. Not thread-safe: the projection's
// runner thread uses it.
class ReleaseFolds {
 public:
  static constexpr std::size_t kCapacity = 1024;  // releases kept between batches

  explicit ReleaseFolds(events::EventLog& log, std::size_t capacity = kCapacity);
  ~ReleaseFolds();

  // For an event of a release stream, the release with `event` folded in;
  // nullptr for events of other streams. The pointer stays valid until
  // trim() or clear().
  Result<const engine::ReleaseState*> fold(const events::RecordedEvent& event);
  // Forgets the least recently used releases beyond the capacity.
  void trim();
  void clear();

 private:
  struct Cache;
  events::EventLog& log_;
  std::size_t capacity_;
  std::unique_ptr<Cache> cache_;
};

// A read model. Subclasses only say how a batch changes their data (apply)
// and answer queries; the base commits, checkpoints, clears and rebuilds.
//
// Thread-safety: the runner thread calls the Reactor methods; queries,
// checkpoint(), lag() and request_rebuild() may be called from any thread
// meanwhile. Every query reads one RocksDB snapshot, so one answer is
// consistent even while the projection writes.
class Projection : public engine::Reactor {
 public:
  ~Projection() override;

  std::string name() const final { return name_; }
  Result<std::uint64_t> resume_position() final { return checkpoint(); }
  Status handle(const std::vector<events::RecordedEvent>& batch) final;
  std::optional<std::uint64_t> rewind() final;
  // False from request_rebuild() until the runner has restarted the
  // projection from the beginning of the log.
  bool idle() const final { return rebuild_.load() == kNoRebuild; }

  // The log position the stored data reflects; 0 when there is none.
  Result<std::uint64_t> checkpoint() const;
  // How many events the projection is behind a log whose head is `head`.
  Result<std::uint64_t> lag(std::uint64_t head) const;
  // Read-your-writes: blocks until the checkpoint reaches `position` (the
  // data reflects every event up to it) or `timeout` passes; returns whether
  // it got there. Each commit wakes the waiters, so there is no polling. A
  // rebuild moves the checkpoint back: a waiter then waits for the rebuild
  // to get there again. Any thread; errors are the storage's.
  Result<bool> wait_for(std::uint64_t position, std::chrono::milliseconds timeout) const;
  // How many callers wait_for() holds now (tests hand off on it).
  std::size_t waiting() const;
  // Rebuilds the projection from the log while the engine keeps running: the
  // runner thread clears the data and the checkpoint in one atomic write and
  // restarts the projection from position 0; queries meanwhile see the data
  // as of the rebuild's progress. Takes effect once the projection runs.
  void request_rebuild();
  // Forgets every document and the checkpoint (in one atomic write).
  // REQUIRES: the projection is not running (the engine re-folds from
  // position 1 when next started); use request_rebuild() while it runs.
  Status clear();

  // The format of the documents this build writes: a subclass raises it
  // when the same events give different documents, e.g. a new field that
  // old events fill too. Stored data of another format would differ from a
  // fresh fold (and fail `replay --verify`), so adopt_format() clears it and
  // the projection rebuilds from the log when it next runs.
  virtual int format() const { return 1; }
  // REQUIRES: the projection is not running. Called when a store is opened.
  Status adopt_format();

  // The column families it owns.
  const std::vector<std::string>& families() const { return families_; }

  struct StoredEntry {
    std::string family;
    std::string key;
    std::string value;
    bool operator==(const StoredEntry& other) const {
      return family == other.family && key == other.key && value == other.value;
    }
  };
  // Everything it stores, family by family in key order, as of one
  // snapshot: what a rebuild must reproduce byte for byte.
  Result<std::vector<StoredEntry>> contents() const;

 protected:
  // REQUIRES: `store` was opened with every family in `families` (and any
  // family the projection reads from another read model).
  Projection(std::string name, std::vector<std::string> families, std::shared_ptr<ProjectionStore> store,
             events::EventLog& log);

  // Adds what `batch` changes to `write`; the base adds the checkpoint and
  // commits. On error nothing is written and the runner retries the batch,
  // so apply must compute the same writes again from the stored data.
  virtual Status apply(const std::vector<events::RecordedEvent>& batch, ProjectionWrite& write) = 0;

  ProjectionStore& store() const { return *store_; }
  events::EventLog& log() const { return log_; }
  // The release of `event` with the event folded in (see ReleaseFolds).
  Result<const engine::ReleaseState*> fold(const events::RecordedEvent& event) { return folds_.fold(event); }

 private:
  enum RebuildState { kNoRebuild, kRebuildRequested, kRewound };

  std::string name_;
  std::vector<std::string> families_;
  std::shared_ptr<ProjectionStore> store_;
  events::EventLog& log_;
  ReleaseFolds folds_;
  std::atomic<int> rebuild_{kNoRebuild};
  // wait_for: notified after each commit, under commit_mutex_ so that a
  // waiter between reading the checkpoint and waiting cannot miss it.
  mutable std::mutex commit_mutex_;
  mutable std::condition_variable committed_;
  mutable std::size_t waiting_ = 0;  // guarded by commit_mutex_
};

}  // namespace cascade::projections
