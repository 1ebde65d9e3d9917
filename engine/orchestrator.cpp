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

std::optional<std::string> automatic_trigger_reason(const ReleaseState& release, const StageRecord& stage) {
  if (stage.attempt != 0) return std::nullopt;
  const StageDefinition* definition = release.definition.find_stage(stage.name);
  if (definition == nullptr) return std::nullopt;
  switch (definition->trigger.kind) {
    case TriggerKind::kManual: return std::nullopt;
    case TriggerKind::kAfterRelease: return std::string("release created");
    case TriggerKind::kAfterStages: {
      std::string names;
      for (const std::string& upstream : definition->trigger.after_stages) {
        const StageRecord* record = release.find_stage(upstream);
        if (record == nullptr || record->state() != StageState::kSucceeded) return std::nullopt;
        names += (names.empty() ? "" : ", ") + upstream;
      }
      return "after " + names + " succeeded";
    }
  }
  return std::nullopt;
}

Orchestrator::Orchestrator(ReleaseService& service, CheckpointStore& checkpoints)
    : service_(service), checkpoints_(checkpoints) {}

Result<std::uint64_t> Orchestrator::resume_position() { return checkpoints_.load(name()); }

Status Orchestrator::handle(const std::vector<events::RecordedEvent>& batch) {
  for (const auto& [release_id, position] : releases_touched(batch)) {
    CASCADE_TRY(release, service_.load(release_id));
    for (const StageRecord& stage : release.stages) {
      auto reason = automatic_trigger_reason(release, stage);
      if (!reason) continue;
      // One key per stage and first attempt: triggered exactly once, however
      // often this release's events are handled again.
      Invocation invocation{kActor, "orchestrator/" + release_id + "/" + stage.name + "/1",
                            "position-" + std::to_string(position)};
      auto done = service_.execute(release_id, TriggerStage{stage.name, *reason}, invocation);
      if (!done && !is_superseded(done.error())) return done.error();
    }
  }
  return checkpoints_.save(name(), batch.back().position);
}

}  // namespace cascade::engine
