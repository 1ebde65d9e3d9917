// Wires one data directory into a running ReleaseEngine: the RocksDB store,
// the process step runner and the read models (projections/). Composition only.
//
// Data directory layout: log/ (events, checkpoints, step logs, secrets and
// secret.key), projections/, work/<release>/<stage>/<attempt>/ (steps'
// working directories).
#pragma once

#include "adapters/process/process_step_runner.hpp"
#include "adapters/rocksdb/store.hpp"
#include "engine/release_engine.hpp"
#include "projections/projection_set.hpp"
#include "tools/log_follow.hpp"

#include <memory>
#include <string>

namespace cascade::tools {

class Runtime {
 public:
  static Result<std::unique_ptr<Runtime>> open(const std::string& data_dir);
  ~Runtime();

  events::EventLog& log() { return store_->log(); }
  engine::StepLogStore& step_logs() { return store_->step_logs(); }
  engine::ReleaseService& service() { return engine_->service(); }
  projections::ReleaseSummaryProjection& summaries() { return projections_->summaries(); }
  projections::ProjectionSet& projections() { return *projections_; }
  LogFollowHub& log_follow() { return *log_follow_; }
  const std::string& data_dir() const { return data_dir_; }

  // REQUIRES: before start(). An observer that prints, for instance.
  void add_observer(engine::Reactor& reactor) { engine_->add(reactor); }
  void start() { engine_->start(); }
  // Runs until every reactor has handled every event and no step runs: the
  // release is done or waits for a person.
  void settle();
  void stop();

 private:
  Runtime() = default;

  std::string data_dir_;
  engine::SystemClock clock_;
  std::unique_ptr<adapters::RocksStore> store_;
  std::unique_ptr<adapters::ProcessStepRunner> runner_;
  std::unique_ptr<projections::ProjectionSet> projections_;
  std::unique_ptr<LogFollowHub> log_follow_;
  std::unique_ptr<engine::ReleaseEngine> engine_;
};

}  // namespace cascade::tools
