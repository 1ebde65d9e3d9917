#include "projections/environments.hpp"

#include "projections/projection_store.hpp"

#include <algorithm>
#include <limits>
#include <tuple>

namespace cascade::projections {

namespace {

std::string environment_key(const std::string& pipeline, const std::string& stage) {
  return pipeline + '\0' + stage;
}

}  // namespace

EnvironmentProjection::EnvironmentProjection(std::shared_ptr<ProjectionStore> store, events::EventLog& log)
    : Projection(kName, {kCurrentFamily, kHistoryFamily}, std::move(store), log) {}

Status EnvironmentProjection::apply(const std::vector<events::RecordedEvent>& batch, ProjectionWrite& write) {
  for (const events::RecordedEvent& event : batch) {
    const auto finished = finished_deployment(event.data);
    // Every release event is folded, so that the cached state stays in step.
    CASCADE_TRY(release, fold(event));
    if (!finished || release == nullptr) continue;
    const std::string stage_name = stage_of(event.data);
    const engine::StageRecord* stage = release->find_stage(stage_name);
    if (stage == nullptr) continue;
    const std::string outcome(to_string(finished->outcome));
    const nlohmann::json item = {{"release", release->id},
                                 {"release_name", release->name},
                                 {"artifact_version", release->artifact.version},
                                 {"attempt", stage->attempt},
                                 {"outcome", outcome},
                                 {"trigger_reason", stage->trigger_reason},
                                 {"started_at", stage->started_at},
                                 {"finished_at", event.recorded_at},
                                 {"reason", finished->reason}};
    const std::string key = environment_key(release->pipeline, stage_name);
    write.put(store().family(kHistoryFamily), key + '\0' + big_endian(event.position), item.dump());

    CASCADE_TRY(stored, write.get(store().family(kCurrentFamily), key));
    nlohmann::json environment = stored ? nlohmann::json::parse(*stored)
                                        : nlohmann::json{{"pipeline", release->pipeline},
                                                         {"stage", stage_name},
                                                         {"current", nullptr}};
    // The newest release's definition decides where the stage is listed.
    const auto& stages = release->definition.stages;
    const auto index = std::find_if(stages.begin(), stages.end(), [&](const auto& s) { return s.name == stage_name; });
    environment["order"] = index - stages.begin();
    environment["last"] = item;
    if (std::holds_alternative<events::DeploymentSucceeded>(event.data)) {
      environment["current"] = {{"release", release->id},
                                {"release_name", release->name},
                                {"artifact_version", release->artifact.version},
                                {"deployed_at", event.recorded_at},
                                {"trigger_reason", stage->trigger_reason},
                                {"attempt", stage->attempt},
                                {"status", outcome}};
    }
    write.put(store().family(kCurrentFamily), key, environment.dump());
  }
  return success();
}

Result<std::vector<nlohmann::json>> EnvironmentProjection::environments(const std::string& pipeline) const {
  const Snapshot view = store().snapshot();
  const std::string prefix = pipeline.empty() ? std::string() : pipeline + '\0';
  std::vector<nlohmann::json> out;
  std::unique_ptr<rocksdb::Iterator> it = view.iterate(store().family(kCurrentFamily));
  for (it->Seek(prefix); it->Valid() && starts_with(it->key().ToStringView(), prefix); it->Next()) {
    out.push_back(nlohmann::json::parse(it->value().ToStringView()));
  }
  if (!it->status().ok()) return storage_error(it->status(), "list environments");
  std::stable_sort(out.begin(), out.end(), [](const nlohmann::json& a, const nlohmann::json& b) {
    return std::make_tuple(a["pipeline"].get<std::string>(), a["order"].get<std::int64_t>()) <
           std::make_tuple(b["pipeline"].get<std::string>(), b["order"].get<std::int64_t>());
  });
  return out;
}

Result<nlohmann::json> EnvironmentProjection::environment(const std::string& pipeline, const std::string& stage) const {
  CASCADE_TRY(stored, store().get(store().family(kCurrentFamily), environment_key(pipeline, stage)));
  if (!stored) {
    return make_error(ErrorCode::kNotFound, "nothing was deployed to stage '" + stage + "' of pipeline '" + pipeline + "'");
  }
  return nlohmann::json::parse(*stored);
}

Result<DeploymentHistoryPage> EnvironmentProjection::history(const std::string& pipeline, const std::string& stage,
                                                             std::size_t limit, const std::string& cursor) const {
  if (limit < 1 || limit > kMaxLimit) {
    return make_error(ErrorCode::kInvalidArgument,
                      "limit must be 1 to " + std::to_string(kMaxLimit) + ", not " + std::to_string(limit));
  }
  std::uint64_t before = std::numeric_limits<std::uint64_t>::max();
  if (!cursor.empty()) {
    CASCADE_TRY(position, decode_cursor(cursor));
    if (position == 0) return DeploymentHistoryPage{};
    before = position - 1;
  }
  const std::string prefix = environment_key(pipeline, stage) + '\0';
  const Snapshot view = store().snapshot();
  DeploymentHistoryPage page;
  std::uint64_t last_position = 0;
  std::unique_ptr<rocksdb::Iterator> it = view.iterate(store().family(kHistoryFamily));
  for (it->SeekForPrev(prefix + big_endian(before)); it->Valid() && starts_with(it->key().ToStringView(), prefix);
       it->Prev()) {
    if (page.deployments.size() == limit) {
      page.next_cursor = encode_cursor(last_position);
      break;
    }
    last_position = from_big_endian(it->key().ToStringView().substr(prefix.size()));
    page.deployments.push_back(nlohmann::json::parse(it->value().ToStringView()));
  }
  if (!it->status().ok()) return storage_error(it->status(), "read deployment history");
  return page;
}

}  // namespace cascade::projections
