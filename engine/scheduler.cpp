#include "engine/scheduler.hpp"

#include "engine/orchestrator.hpp"

#include <cstdlib>
#include <iostream>

namespace cascade::engine {

Scheduler::Scheduler(ReleaseService& service, CheckpointStore& checkpoints, const Clock& clock,
                     std::function<void()> on_idle_change)
    : service_(service), checkpoints_(checkpoints), clock_(clock), on_idle_change_(std::move(on_idle_change)) {}

Scheduler::~Scheduler() { on_stop(); }

Result<std::uint64_t> Scheduler::resume_position() {
  // The timers are rebuilt from the releases that had one at the checkpoint;
  // events after it are handed over as usual.
  CASCADE_TRY(open, checkpoints_.load_open(name()));
  open_saved_.clear();
  OpenReleaseChanges changes;
  for (const auto& [release_id, position] : open) {
    bool has_timer = false;
    Status tracked = track(release_id, &has_timer);
    if (!tracked && tracked.error().code == ErrorCode::kDataLoss) {
      // Quarantined: kept open, so a repaired release gets its timer back.
      std::cerr << "cascade: scheduler: " << release_id << ": " << tracked.error().message << "\n";
      open_saved_.insert(release_id);
      continue;
    }
    if (!tracked) return tracked.error();
    if (has_timer) {
      open_saved_.insert(release_id);
    } else {
      changes.closed.push_back(release_id);
    }
  }
  CASCADE_TRY(checkpoint, checkpoints_.load(name()));
  if (!changes.empty()) {
    CASCADE_TRY(checkpoints_.save(name(), checkpoint, changes));
  }
  return checkpoint;
}

Status Scheduler::track(const std::string& release_id, bool* has_timer) {
  CASCADE_TRY(release, service_.load(release_id));
  std::lock_guard lock(mutex_);
  for (const StageRecord& stage : release.stages) {
    const Key key{release_id, stage.name};
    // A timer exists while the machine would take the event it fires.
    std::optional<Timer> wanted;
    events::ApprovalTimedOut timed_out;
    timed_out.stage = stage.name;
    events::DeferralElapsed elapsed;
    elapsed.stage = stage.name;
    if (stage.machine.would_accept(timed_out)) {
      wanted = Timer{stage.approval.deadline, Kind::kApprovalDeadline, stage.attempt};
    } else if (stage.machine.would_accept(elapsed)) {
      wanted = Timer{stage.defer_until, Kind::kDeferral, stage.attempt};
    }
    if (wanted) {
      timers_[key] = *wanted;
    } else {
      timers_.erase(key);
    }
  }
  const auto first = timers_.lower_bound(Key{release_id, ""});
  *has_timer = first != timers_.end() && first->first.first == release_id;
  return success();
}

Status Scheduler::handle(const std::vector<events::RecordedEvent>& batch) {
  OpenReleaseChanges changes;
  for (const auto& [release_id, position] : releases_touched(batch)) {
    bool has_timer = false;
    CASCADE_TRY(track(release_id, &has_timer));
    if (has_timer && open_saved_.count(release_id) == 0) changes.opened[release_id] = position;
    if (!has_timer && open_saved_.count(release_id) != 0) changes.closed.push_back(release_id);
  }
  if (on_idle_change_) on_idle_change_();  // a new timer may already be due
  CASCADE_TRY(checkpoints_.save(name(), batch.back().position, changes));
  for (const auto& [release_id, position] : changes.opened) open_saved_.insert(release_id);
  for (const std::string& release_id : changes.closed) open_saved_.erase(release_id);
  return success();
}

bool Scheduler::idle() const {
  const Timestamp now = clock_.now();
  std::lock_guard lock(mutex_);
  for (const auto& [key, timer] : timers_) {
    if (timer.due <= now) return false;
  }
  return true;
}

std::size_t Scheduler::pending() const {
  std::lock_guard lock(mutex_);
  return timers_.size();
}

void Scheduler::on_start() {
  stopping_ = false;
  last_wall_ = clock_.now();
  last_monotonic_ = clock_.monotonic_ms();
  thread_ = std::thread([this] { run(); });
}

void Scheduler::on_stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void Scheduler::run() {
  // Bounds how long a new, earlier timer or a stop request waits to be seen.
  constexpr std::chrono::milliseconds kRecheck{100};
  while (!stopping_) {
    Timestamp earliest = clock_.now() + kRecheck.count();
    {
      std::lock_guard lock(mutex_);
      for (const auto& [key, timer] : timers_) earliest = std::min(earliest, timer.due);
    }
    clock_.wait_until(earliest, kRecheck);
    notice_clock_step();
    fire_due();
  }
}

void Scheduler::notice_clock_step() {
  const Timestamp wall = clock_.now();
  const std::int64_t monotonic = clock_.monotonic_ms();
  const std::int64_t step = (wall - last_wall_) - (monotonic - last_monotonic_);
  last_wall_ = wall;
  last_monotonic_ = monotonic;
  if (std::abs(step) <= kClockStepLogged.count()) return;
  ++clock_steps_;
  std::cerr << "cascade: scheduler: the wall clock stepped " << (step > 0 ? "forward" : "back") << " by "
            << std::abs(step) / 1000 << " s; "
            << (step > 0 ? "approval deadlines and deferrals that fell due in between fire now"
                         : "every timer keeps its time and fires when the clock reaches it again")
            << " (" << pending() << " pending)\n";
}

void Scheduler::fire_due() {
  std::vector<std::pair<Key, Timer>> due;
  const Timestamp now = clock_.now();
  {
    std::lock_guard lock(mutex_);
    for (const auto& [key, timer] : timers_) {
      if (timer.due <= now) due.emplace_back(key, timer);
    }
  }
  for (const auto& [key, timer] : due) {
    const auto& [release_id, stage] = key;
    const bool deadline = timer.kind == Kind::kApprovalDeadline;
    const Invocation invocation{kActor,
                                "scheduler/" + release_id + "/" + stage + "/" + std::to_string(timer.attempt) +
                                    (deadline ? "/approval-deadline/" : "/deferral/") + std::to_string(timer.due),
                                ""};
    auto fired = deadline ? service_.execute(release_id, ExpireApproval{stage}, invocation)
                          : service_.execute(release_id, EndDeferral{stage}, invocation);
    if (!fired && !is_superseded(fired.error())) {
      std::cerr << "cascade: scheduler: " << release_id << "/" << stage << ": " << fired.error().message << "\n";
      continue;  // tried again on the next round
    }
    std::lock_guard lock(mutex_);
    auto it = timers_.find(key);
    if (it != timers_.end() && it->second.due == timer.due && it->second.attempt == timer.attempt) timers_.erase(it);
  }
  if (!due.empty() && on_idle_change_) on_idle_change_();
}

}  // namespace cascade::engine
