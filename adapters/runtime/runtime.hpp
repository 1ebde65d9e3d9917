// The composition root: one data directory wired into a running
// ReleaseEngine — the RocksDB store, the step runner, the step-log follow
// hub and the read models (projections/). The ports come from
// RuntimeOptions (LevelDB's Options::env): `cascade serve`, `cascade demo`,
// every CLI command that opens a data directory and the test harness open
// the engine through here alone.
//
// Data directory layout: log/ (events, checkpoints, step logs, secrets and
// secret.key), projections/, run/ (the running deployments' lock files),
// work/<release>/<stage>/<attempt>/ (steps' working directories). The data
// dir is mode 0700, or 0711 with a step user (who may traverse it to reach
// work/ but not list it); log/, projections/ and run/ are 0700, so a step running as the step user cannot read or
// write the engine's own data. open() sets these modes on a data dir that
// has others and says so in mode_changes().
#pragma once

#include "adapters/process/process_step_runner.hpp"
#include "adapters/rocksdb/store.hpp"
#include "engine/release_engine.hpp"
#include "projections/projection_set.hpp"
#include "adapters/runtime/log_follow.hpp"

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace cascade::adapters {

// What a runtime is opened with. Every pointer is borrowed: what it points to
// must outlive the runtime. Null means the default named at each.
struct RuntimeOptions {
  // The engine's time; null: the system clock.
  const engine::Clock* clock = nullptr;
  // Runs the deployment steps; null: each step as a process
  // (adapters/process), timed by `clock`.
  engine::StepRunner* runner = nullptr;
  // The environment every step starts from; nullopt: PATH, HOME, LANG,
  // LC_ALL, TMPDIR and USER of this process, nothing else (no tokens or
  // credentials leak into steps).
  std::optional<std::map<std::string, std::string>> base_env;
  // The event log's store, already open (tests keep one across restarts);
  // null: <data>/log, opened here and closed with the runtime.
  RocksStore* store = nullptr;
  // The most output one step may write before it is killed and fails.
  std::uint64_t max_step_output_bytes = engine::ExecutorOptions{}.max_step_output_bytes;
  // Who the default runner runs steps as; nullopt: the user running the
  // engine (`cascade serve --step-user`).
  std::optional<StepIdentity> step_user;
};

// Thread-safety: open, add_observer, start and stop from one thread; the
// accessors' objects are thread-safe as each documents.
class Runtime {
 public:
  // Opens (creating) `data_dir`. kUnavailable when another process holds it
  // (a running server); kStoreCorrupt, naming the directory, RocksDB's reason
  // and what to do, when the log's or the projections' database files are
  // damaged; the storage's errors otherwise. The engine is built but runs
  // only after start().
  static Result<std::unique_ptr<Runtime>> open(const std::string& data_dir, RuntimeOptions options = {});
  ~Runtime();  // stops

  events::EventLog& log() { return store_->log(); }
  RocksStore& store() { return *store_; }
  engine::StepLogStore& step_logs() { return store_->step_logs(); }
  engine::ReleaseService& service() { return engine_->service(); }
  projections::ReleaseSummaryProjection& summaries() { return projections_->summaries(); }
  projections::ProjectionSet& projections() { return *projections_; }
  LogFollowHub& log_follow() { return *log_follow_; }
  const engine::Clock& clock() const { return *clock_; }
  const std::string& data_dir() const { return data_dir_; }
  // The directories whose modes open() changed, e.g. "<data>/log: 0755 -> 0700".
  const std::vector<std::string>& mode_changes() const { return mode_changes_; }

  // REQUIRES: before start(); `reactor` outlives the runtime. An observer
  // that prints, an event hub, a Kafka edge.
  void add_observer(engine::Reactor& reactor) { engine_->add(reactor); }
  void start() { engine_->start(); }
  // Runs until every reactor has handled every event and no step runs: the
  // release is done or waits for a person.
  void settle();
  // settle() for at most `timeout`; whether it settled.
  bool settle(std::chrono::milliseconds timeout) { return engine_->settle(timeout); }
  std::string last_error() const { return engine_->last_error(); }
  const engine::ReleaseEngine& engine() const { return *engine_; }
  // Stops the reactors and the deployments they run; the stores stay open.
  void stop();

 private:
  Runtime() = default;

  std::string data_dir_;
  std::vector<std::string> mode_changes_;
  engine::SystemClock system_clock_;
  const engine::Clock* clock_ = nullptr;  // options' or system_clock_
  std::unique_ptr<RocksStore> owned_store_;
  RocksStore* store_ = nullptr;  // options' or owned_store_
  std::unique_ptr<ProcessStepRunner> process_runner_;
  std::unique_ptr<projections::ProjectionSet> projections_;
  std::unique_ptr<LogFollowHub> log_follow_;
  std::unique_ptr<engine::ReleaseEngine> engine_;
};

}  // namespace cascade::adapters
