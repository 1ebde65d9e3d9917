// The orchestrator: triggers stages whose trigger condition holds — after
// release creation, or once every stage of an after_stages join has
// succeeded. Manual stages wait for a person's DeployStage.
#pragma once

#include "engine/reactor.hpp"
#include "engine/release_service.hpp"

namespace cascade::engine {

// Why `stage` should be triggered now, or nullopt. Only a stage that has
// never been triggered qualifies: redeploys are people's decisions.
std::optional<std::string> automatic_trigger_reason(const ReleaseState& release, const StageRecord& stage);

class Orchestrator final : public Reactor {
 public:
  static constexpr const char* kActor = "cascade/orchestrator";

  Orchestrator(ReleaseService& service, CheckpointStore& checkpoints);
  std::string name() const override { return "orchestrator"; }
  Result<std::uint64_t> resume_position() override;
  Status handle(const std::vector<events::RecordedEvent>& batch) override;

 private:
  ReleaseService& service_;
  CheckpointStore& checkpoints_;
};

// The release ids whose streams the batch touches, each once, with the
// position of the last of its events in the batch.
std::vector<std::pair<std::string, std::uint64_t>> releases_touched(const std::vector<events::RecordedEvent>& batch);

// True for errors that mean "the state moved on; nothing to do": a reactor
// that decided on a slightly older state simply drops the command.
bool is_superseded(const Error& error);

}  // namespace cascade::engine
