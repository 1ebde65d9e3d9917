#include "projections/release_summary.hpp"

#include "projections/projection_store.hpp"

#include <map>

namespace cascade::projections {

using engine::ReleaseState;
using engine::StageRecord;

nlohmann::json summarize(const ReleaseState& release) {
  nlohmann::json stages = nlohmann::json::array();
  for (const StageRecord& stage : release.stages) {
    nlohmann::json approvals = nlohmann::json::array();
    for (const auto& a : stage.approvals) {
      approvals.push_back({{"phase", engine::to_string(a.phase)}, {"approver", a.approver},
                           {"on_behalf_of", a.on_behalf_of}, {"decision", engine::to_string(a.decision)},
                           {"comment", a.comment}, {"at", a.at},
                           {"defer_until", a.defer_until}});
      if (a.override) approvals.back()["override"] = true;  // absent otherwise: older summaries stay byte-equal
    }
    nlohmann::json steps = nlohmann::json::array();
    for (const auto& s : stage.steps) {
      steps.push_back({{"name", s.name}, {"status", engine::to_string(s.status)}, {"tries", s.tries},
                       {"continued", s.continued}, {"exit_code", s.exit_code},
                       {"duration_ms", s.duration_ms}, {"log_digest", s.log_digest}, {"reason", s.reason},
                       {"started_at", s.started_at}, {"finished_at", s.finished_at}});
    }
    stages.push_back({{"name", stage.name},
                      {"status", engine::to_string(stage.state())},
                      {"attempt", stage.attempt},
                      {"trigger_reason", stage.trigger_reason},
                      {"pending_approval",
                       {{"phase", stage.approval.phase ? engine::to_string(*stage.approval.phase) : ""},
                        {"approvers", stage.approval.approvers},
                        {"required", stage.approval.required},
                        {"order", engine::to_string(stage.approval.order)},
                        {"deadline", stage.approval.deadline},
                        {"approved_by", stage.approval.approved_by}}},
                      {"defer_until", stage.defer_until},
                      {"approvals", approvals},
                      {"steps", steps},
                      {"failure_reason", stage.failure_reason},
                      {"triggered_at", stage.triggered_at},
                      {"started_at", stage.started_at},
                      {"finished_at", stage.finished_at}});
    // on_failure redeploy_last_good, only when there is something to say:
    // summaries of every other stage stay byte-equal.
    if (!stage.rollback_of.empty()) stages.back()["rollback_of"] = stage.rollback_of;
    // Who canceled the current attempt (a person, or the orchestrator that
    // superseded it), only when it was canceled.
    if (!stage.canceled_by.empty()) stages.back()["canceled_by"] = stage.canceled_by;
    if (stage.rollback) {
      stages.back()["rollback"] = {{"rollback_to", stage.rollback->rollback_to}, {"reason", stage.rollback->reason}};
    }
  }
  // Secret variables appear by name only: their values never leave the secret store.
  nlohmann::json secret_names = nlohmann::json::array();
  for (const auto& [name, digest] : release.secret_variables) secret_names.push_back(name);
  // The artifact's package URL and download location, and the CI event, only
  // when there are any: summaries of releases without them stay byte-equal.
  nlohmann::json artifact{{"version", release.artifact.version}, {"path", release.artifact.path}};
  if (!release.artifact.id.empty()) artifact["id"] = release.artifact.id;
  if (!release.artifact.uri.empty()) artifact["uri"] = release.artifact.uri;
  nlohmann::json summary{{"id", release.id},
          {"name", release.name},
          {"pipeline", release.pipeline},
          {"pipeline_version", release.pipeline_version},
          {"artifact", std::move(artifact)},
          {"variables", release.variables},
          {"secret_variables", secret_names},
          {"abandoned", release.abandoned},
          {"abandon_reason", release.abandon_reason},
          {"trigger", release.trigger},
          {"requested_by", release.requested_by},
          {"created_at", release.created_at},
          {"status", engine::to_string(engine::release_status(release))},
          {"version", release.version},
          {"stages", stages}};
  if (!release.abandoned_by.empty()) summary["abandoned_by"] = release.abandoned_by;  // only when abandoned
  if (release.trigger_cdevent) {
    summary["trigger_cdevent"] = {{"id", release.trigger_cdevent->id},
                                  {"source", release.trigger_cdevent->source},
                                  {"type", release.trigger_cdevent->type}};
  }
  return summary;
}

ReleaseSummaryProjection::ReleaseSummaryProjection(std::shared_ptr<ProjectionStore> store, events::EventLog& log)
    : Projection(kName, {kSummariesFamily, kOrderFamily}, std::move(store), log) {}

ReleaseSummaryProjection::~ReleaseSummaryProjection() = default;

Result<std::unique_ptr<ReleaseSummaryProjection>> ReleaseSummaryProjection::open(const std::string& dir,
                                                                                 events::EventLog& log) {
  CASCADE_TRY(store, ProjectionStore::open(dir, {kSummariesFamily, kOrderFamily}));
  auto projection = std::make_unique<ReleaseSummaryProjection>(std::move(store), log);
  CASCADE_TRY(projection->adopt_format());
  return projection;
}

Status ReleaseSummaryProjection::apply(const std::vector<events::RecordedEvent>& batch, ProjectionWrite& write) {
  // One document per release per batch, however many of its events the batch holds.
  std::map<std::string, const ReleaseState*> changed;
  for (const events::RecordedEvent& event : batch) {
    CASCADE_TRY(state, fold(event));
    if (state == nullptr) continue;
    changed[state->id] = state;
    if (std::holds_alternative<events::ReleaseCreated>(event.data)) {
      write.put(store().family(kOrderFamily), big_endian(event.position), state->id);
    }
  }
  for (const auto& [release_id, state] : changed) {
    write.put(store().family(kSummariesFamily), release_id, summarize(*state).dump());
  }
  return success();
}

Result<std::string> ReleaseSummaryProjection::summary(const std::string& release_id) const {
  CASCADE_TRY(value, store().get(store().family(kSummariesFamily), release_id));
  if (!value) return make_error(ErrorCode::kNotFound, "no release '" + release_id + "'");
  return std::move(*value);
}

Result<std::vector<std::string>> ReleaseSummaryProjection::list(std::size_t limit) const {
  const Snapshot view = store().snapshot();  // one consistent answer
  std::vector<std::string> out;
  std::unique_ptr<rocksdb::Iterator> it = view.iterate(store().family(kOrderFamily));
  for (it->SeekToLast(); it->Valid() && out.size() < limit; it->Prev()) {
    CASCADE_TRY(value, view.get(store().family(kSummariesFamily), it->value().ToString()));
    if (value) out.push_back(std::move(*value));
  }
  if (!it->status().ok()) return storage_error(it->status(), "list releases");
  return out;
}

}  // namespace cascade::projections
