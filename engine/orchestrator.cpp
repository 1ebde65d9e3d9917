#include "engine/orchestrator.hpp"

#include <algorithm>

namespace cascade::engine {

std::vector<std::pair<std::string, std::uint64_t>> releases_touched(const std::vector<events::RecordedEvent>& batch) {
  static constexpr std::string_view kPrefix = "release-";
  std::vector<std::pair<std::string, std::uint64_t>> touched;
  for (const events::RecordedEvent& event : batch) {
    if (event.stream.compare(0, kPrefix.size(), kPrefix) != 0) continue;
    std::string id = event.stream.substr(kPrefix.size());
    auto it = std::find_if(touched.begin(), touched.end(), [&](const auto& t) { return t.first == id; });
    if (it == touched.end()) {
      touched.emplace_back(std::move(id), event.position);
    } else {
      it->second = event.position;
    }
  }
  return touched;
}

bool is_superseded(const Error& error) {
  return error.code == ErrorCode::kFailedPrecondition || error.code == ErrorCode::kAlreadyExists;
}

Orchestrator::Orchestrator(ReleaseService& service, CheckpointStore& checkpoints)
    : service_(service), checkpoints_(checkpoints) {}

Result<std::uint64_t> Orchestrator::resume_position() { return checkpoints_.load(name()); }

Status Orchestrator::handle(const std::vector<events::RecordedEvent>& batch) {
  for (const auto& [release_id, position] : releases_touched(batch)) {
    CASCADE_TRY(release, service_.load(release_id));
    for (const StageRecord& stage : release.stages) {
      if (auto reason = automatic_trigger_reason(release, stage)) {
        // One key per stage and first attempt: triggered exactly once, however
        // often this release's events are handled again.
        Invocation invocation{kActor, "orchestrator/" + release_id + "/" + stage.name + "/1",
                              "position-" + std::to_string(position)};
        auto done = service_.execute(release_id, TriggerStage{stage.name, *reason}, invocation);
        if (!done && !is_superseded(done.error())) return done.error();
      }
      const StageDefinition* definition = release.definition.find_stage(stage.name);
      if (stage.state() == StageState::kFailed && definition != nullptr &&
          definition->on_failure == OnFailure::kRedeployLastGood) {
        CASCADE_TRY(redeploy_last_good(release, stage, position));
      }
    }
  }
  return checkpoints_.save(name(), batch.back().position);
}

Result<ChooseRollback> Orchestrator::choose_rollback(const ReleaseState& failed, const StageRecord& stage) {
  ChooseRollback choice{stage.name, stage.attempt, "", ""};
  if (!stage.rollback_of.empty()) {
    choice.reason = "attempt " + std::to_string(stage.attempt) + " was itself the rollback of " + stage.rollback_of +
                    "'s failure at " + stage.name + ": not rolled back again";
    return choice;
  }
  // Release numbers are dense, so the older releases are found by number.
  for (std::int64_t n = failed.number - 1; n >= 1 && n >= failed.number - kLastGoodSearchDepth; --n) {
    const std::string candidate = failed.pipeline + "-" + std::to_string(n);
    auto older = service_.load(candidate);
    if (!older) {
      if (older.error().code == ErrorCode::kNotFound) continue;
      return older.error();
    }
    const StageRecord* there = older.value().find_stage(stage.name);
    if (there == nullptr || older.value().abandoned || there->state() != StageState::kSucceeded) continue;
    choice.rollback_to = candidate;
    choice.reason = "the last release before " + failed.id + " that succeeded at " + stage.name;
    return choice;
  }
  choice.reason = "no release before " + failed.id + " succeeded at " + stage.name +
                  (failed.number - 1 > kLastGoodSearchDepth
                       ? " among the last " + std::to_string(kLastGoodSearchDepth)
                       : std::string());
  return choice;
}

Status Orchestrator::redeploy_last_good(const ReleaseState& failed, const StageRecord& stage, std::uint64_t position) {
  const std::string causation = "position-" + std::to_string(position);
  const std::string failed_attempt = failed.id + "/" + stage.name + "/" + std::to_string(stage.attempt);
  std::optional<RollbackChoice> chosen = stage.rollback;
  if (!chosen) {
    // Recorded before anything is redeployed: whatever happens after (a
    // crash, an older release finishing meanwhile), this is the choice.
    CASCADE_TRY(choice, choose_rollback(failed, stage));
    auto after = service_.execute(failed.id, choice,
                                  Invocation{kActor, "orchestrator/rollback-choice/" + failed_attempt, causation});
    if (!after && after.error().code == ErrorCode::kAlreadyExists) after = service_.load(failed.id);
    if (!after) {
      if (is_superseded(after.error())) return success();  // e.g. redeployed meanwhile: a new attempt
      return after.error();
    }
    const StageRecord* now = after.value().find_stage(stage.name);
    if (now == nullptr || now->attempt != stage.attempt || !now->rollback) return success();  // moved on
    chosen = now->rollback;
  }
  if (chosen->rollback_to.empty()) return success();
  // The same key however often this runs: the chosen release is redeployed once.
  auto done = service_.execute(chosen->rollback_to,
                               RedeployStage{stage.name, "auto-redeploy: " + failed.id + " failed at " + stage.name,
                                             failed.id},
                               Invocation{kActor, "orchestrator/redeploy-last-good/" + failed_attempt, causation});
  if (!done && !is_superseded(done.error())) return done.error();
  return success();
}

}  // namespace cascade::engine
