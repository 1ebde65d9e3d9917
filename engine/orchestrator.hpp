// The orchestrator: triggers stages whose trigger condition holds — after
// release creation, or once every stage of an after_stages join has
// succeeded — and, for a stage with on_failure redeploy_last_good, redeploys
// the last release that succeeded there when a newer one fails. Manual
// stages wait for a person.
//
// redeploy_last_good decides once per failed attempt: the choice (a release,
// or none) is recorded on the failed release (RollbackChosen) before anything
// is redeployed, and every later handling of that release — after a restart,
// or for any later event of it — redeploys exactly the recorded release,
// under the same idempotency key, so a failure is rolled back at most once.
// An attempt that was itself a rollback (StageTriggered.rollback_of) is not
// rolled back when it fails; the choice records why.
#pragma once

#include "engine/reactor.hpp"
#include "engine/release_service.hpp"

namespace cascade::engine {

class Orchestrator final : public Reactor {
 public:
  static constexpr const char* kActor = "cascade/orchestrator";
  // How far back redeploy_last_good looks for a release that succeeded.
  static constexpr int kLastGoodSearchDepth = 1000;

  Orchestrator(ReleaseService& service, CheckpointStore& checkpoints);
  std::string name() const override { return "orchestrator"; }
  Result<std::uint64_t> resume_position() override;
  Status handle(const std::vector<events::RecordedEvent>& batch) override;

 private:
  Status redeploy_last_good(const ReleaseState& failed, const StageRecord& stage, std::uint64_t position);
  // What to record for the failed attempt of `stage`: the last older release
  // (dense numbers, at most kLastGoodSearchDepth back) not abandoned whose
  // stage succeeded there, or none with the reason.
  Result<ChooseRollback> choose_rollback(const ReleaseState& failed, const StageRecord& stage);

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
