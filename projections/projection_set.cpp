#include "projections/projection_set.hpp"

#include "projections/projection_store.hpp"

namespace cascade::projections {

Result<std::unique_ptr<ProjectionSet>> ProjectionSet::open(const std::string& dir, events::EventLog& log,
                                                           rocksdb::Env* env) {
  std::unique_ptr<ProjectionSet> set(new ProjectionSet());
  const std::vector<std::string> families = {
      ReleaseSummaryProjection::kSummariesFamily, ReleaseSummaryProjection::kOrderFamily,
      ReleaseListProjection::kAllFamily,          ReleaseListProjection::kByPipelineFamily,
      ReleaseListProjection::kByNameFamily,       ReleaseListProjection::kByCdEventFamily,
      EnvironmentProjection::kCurrentFamily,      EnvironmentProjection::kHistoryFamily,
      ApprovalInboxProjection::kUsersFamily,      ApprovalInboxProjection::kGroupsFamily,
      ApprovalInboxProjection::kPendingFamily,    PipelineProjection::kVersionsFamily,
      PipelineProjection::kReleasesFamily,        DeliveryMetricsProjection::kDeploymentsFamily};
  CASCADE_TRY(store, ProjectionStore::open(dir, families, env));
  set->store_ = std::move(store);
  set->summaries_ = std::make_unique<ReleaseSummaryProjection>(set->store_, log);
  set->releases_ = std::make_unique<ReleaseListProjection>(set->store_, log);
  set->environments_ = std::make_unique<EnvironmentProjection>(set->store_, log);
  set->approvals_ = std::make_unique<ApprovalInboxProjection>(set->store_, log);
  set->pipelines_ = std::make_unique<PipelineProjection>(set->store_, log);
  set->delivery_metrics_ = std::make_unique<DeliveryMetricsProjection>(set->store_, log);
  set->all_ = {set->summaries_.get(),    set->releases_.get(),  set->environments_.get(),
               set->approvals_.get(),    set->pipelines_.get(), set->delivery_metrics_.get()};
  for (Projection* projection : set->all_) {
    CASCADE_TRY(projection->adopt_format());
  }
  return set;
}

ProjectionSet::~ProjectionSet() = default;

std::vector<std::string> ProjectionSet::names() const {
  std::vector<std::string> out;
  for (const Projection* projection : all_) out.push_back(projection->name());
  return out;
}

Result<Projection*> ProjectionSet::find(const std::string& name) const {
  for (Projection* projection : all_) {
    if (projection->name() == name) return projection;
  }
  std::string known;
  for (const std::string& n : names()) known += (known.empty() ? "" : ", ") + n;
  return make_error(ErrorCode::kNotFound, "no projection '" + name + "' (projections: " + known + ")");
}

Result<std::vector<ProjectionStatus>> ProjectionSet::status(std::uint64_t head) const {
  std::vector<ProjectionStatus> out;
  for (const Projection* projection : all_) {
    CASCADE_TRY(checkpoint, projection->checkpoint());
    out.push_back({projection->name(), checkpoint, head > checkpoint ? head - checkpoint : 0});
  }
  return out;
}

Status ProjectionSet::rebuild(const std::string& name) {
  if (name.empty()) {
    for (Projection* projection : all_) projection->request_rebuild();
    return success();
  }
  CASCADE_TRY(projection, find(name));
  projection->request_rebuild();
  return success();
}

}  // namespace cascade::projections
