// The scheduler: fires what time decides — approval deadlines
// (ApprovalTimedOut) and deferred deployments (DeferralElapsed). Deadlines
// live in events, so after a restart they are rebuilt from the log and fire
// at the right time, once (the commands carry keys per stage attempt).
//
// Deadlines are wall-clock times (what the events state and people read).
// A clock stepped back keeps every timer: each fires when the clock reaches
// its time again. A clock stepped forward fires what fell due in between at
// once. A step of more than kClockStepLogged either way is logged, measured
// against the monotonic clock.
#pragma once

#include "engine/ports.hpp"
#include "engine/reactor.hpp"
#include "engine/release_service.hpp"

#include <functional>
#include <map>
#include <set>
#include <thread>

namespace cascade::engine {

class Scheduler final : public Reactor {
 public:
  static constexpr const char* kActor = "cascade/scheduler";
  static constexpr std::chrono::milliseconds kClockStepLogged{60'000};

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
  // Wall-clock steps of more than kClockStepLogged seen since start.
  std::uint64_t clock_steps() const { return clock_steps_.load(); }

 private:
  enum class Kind { kApprovalDeadline, kDeferral };
  struct Timer {
    Timestamp due = 0;
    Kind kind = Kind::kApprovalDeadline;
    int attempt = 0;
  };
  using Key = std::pair<std::string, std::string>;  // release, stage

  // Brings the timers of one release up to date with its state; returns
  // whether it has one.
  Status track(const std::string& release_id, bool* has_timer);
  void run();
  void fire_due();
  // Logs a step of the wall clock since the last call.
  void notice_clock_step();

  ReleaseService& service_;
  CheckpointStore& checkpoints_;
  const Clock& clock_;
  std::function<void()> on_idle_change_;
  mutable std::mutex mutex_;
  std::map<Key, Timer> timers_;
  std::set<std::string> open_saved_;  // releases saved as open with the checkpoint
  Timestamp last_wall_ = 0;
  std::int64_t last_monotonic_ = 0;
  std::atomic<std::uint64_t> clock_steps_{0};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace cascade::engine
