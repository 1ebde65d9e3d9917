// The scheduler: fires what time decides — approval deadlines
// (ApprovalTimedOut) and deferred deployments (DeferralElapsed). Deadlines
// live in events, so after a restart they are rebuilt from the log and fire
// at the right time, once (the commands carry keys per stage attempt).
#pragma once

#include "engine/ports.hpp"
#include "engine/reactor.hpp"
#include "engine/release_service.hpp"

#include <functional>
#include <map>
#include <thread>

namespace cascade::engine {

class Scheduler final : public Reactor {
 public:
  static constexpr const char* kActor = "cascade/scheduler";

  Scheduler(ReleaseService& service, CheckpointStore& checkpoints, const Clock& clock,
            std::function<void()> on_idle_change = {});
  ~Scheduler() override;

  std::string name() const override { return "scheduler"; }
  Result<std::uint64_t> resume_position() override;
  Status handle(const std::vector<events::RecordedEvent>& batch) override;
  // Not idle while a timer is due and not yet fired.
  bool idle() const override;
  void on_start() override;
  void on_stop() override;

  // Number of timers waiting; for tests and metrics.
  std::size_t pending() const;

 private:
  enum class Kind { kApprovalDeadline, kDeferral };
  struct Timer {
    Timestamp due = 0;
    Kind kind = Kind::kApprovalDeadline;
    int attempt = 0;
    std::uint64_t cause_position = 0;  // the checkpoint may not pass it while the timer waits
  };
  using Key = std::pair<std::string, std::string>;  // release, stage

  void run();
  void fire_due();

  ReleaseService& service_;
  CheckpointStore& checkpoints_;
  const Clock& clock_;
  std::function<void()> on_idle_change_;
  mutable std::mutex mutex_;
  std::map<Key, Timer> timers_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace cascade::engine
