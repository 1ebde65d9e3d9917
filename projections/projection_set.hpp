// Every read model over one projection database (<data>/projections),
// opened once: the face of projections/ for the runtime, the CLI and tests.
#pragma once

#include "projections/approval_inbox.hpp"
#include "projections/delivery_metrics.hpp"
#include "projections/environments.hpp"
#include "projections/pipeline_versions.hpp"
#include "projections/projection.hpp"
#include "projections/release_list.hpp"
#include "projections/release_summary.hpp"

#include <memory>
#include <string>
#include <vector>

namespace rocksdb {
class Env;
}  // namespace rocksdb

namespace cascade::projections {

struct ProjectionStatus {
  std::string name;
  std::uint64_t checkpoint = 0;
  std::uint64_t lag = 0;  // log head − checkpoint
};

// Thread-safe as its projections are. Each projection is a Reactor the
// caller adds to the engine (all()).
class ProjectionSet {
 public:
  // Opens (creating if needed) the database in `dir` with every read model,
  // with the RocksDB Env `env` (nullptr: RocksDB's default).
  static Result<std::unique_ptr<ProjectionSet>> open(const std::string& dir, events::EventLog& log,
                                                     rocksdb::Env* env = nullptr);
  ~ProjectionSet();
  ProjectionSet(const ProjectionSet&) = delete;
  ProjectionSet& operator=(const ProjectionSet&) = delete;

  ReleaseSummaryProjection& summaries() { return *summaries_; }
  ReleaseListProjection& releases() { return *releases_; }
  EnvironmentProjection& environments() { return *environments_; }
  ApprovalInboxProjection& approvals() { return *approvals_; }
  PipelineProjection& pipelines() { return *pipelines_; }
  DeliveryMetricsProjection& delivery_metrics() { return *delivery_metrics_; }

  // Every projection, in a fixed order (the summary first).
  const std::vector<Projection*>& all() const { return all_; }
  std::vector<std::string> names() const;
  // kNotFound (naming the projections) for an unknown name.
  Result<Projection*> find(const std::string& name) const;

  // Each projection's checkpoint and lag behind a log whose head is `head`.
  Result<std::vector<ProjectionStatus>> status(std::uint64_t head) const;
  // Rebuilds projection `name` — every projection when `name` is empty —
  // from the log while the engine runs (Projection::request_rebuild); wait
  // for the engine to settle to see it done. kNotFound for an unknown name.
  Status rebuild(const std::string& name);

 private:
  ProjectionSet() = default;

  std::shared_ptr<ProjectionStore> store_;
  std::unique_ptr<ReleaseSummaryProjection> summaries_;
  std::unique_ptr<ReleaseListProjection> releases_;
  std::unique_ptr<EnvironmentProjection> environments_;
  std::unique_ptr<ApprovalInboxProjection> approvals_;
  std::unique_ptr<PipelineProjection> pipelines_;
  std::unique_ptr<DeliveryMetricsProjection> delivery_metrics_;
  std::vector<Projection*> all_;
};

}  // namespace cascade::projections
