#include "engine/scheduler.hpp"

#include "engine/orchestrator.hpp"

#include <iostream>

namespace cascade::engine {

Scheduler::Scheduler(ReleaseService& service, CheckpointStore& checkpoints, const Clock& clock,
                     std::function<void()> on_idle_change)
    : service_(service), checkpoints_(checkpoints), clock_(clock), on_idle_change_(std::move(on_idle_change)) {}

Scheduler::~Scheduler() { on_stop(); }

Result<std::uint64_t> Scheduler::resume_position() { return checkpoints_.load(name()); }

Status Scheduler::handle(const std::vector<events::RecordedEvent>& batch) {
  for (const auto& [release_id, position] : releases_touched(batch)) {
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
        wanted = Timer{stage.approval.deadline, Kind::kApprovalDeadline, stage.attempt, position};
      } else if (stage.machine.would_accept(elapsed)) {
        wanted = Timer{stage.defer_until, Kind::kDeferral, stage.attempt, position};
      }
      auto existing = timers_.find(key);
      if (!wanted) {
        if (existing != timers_.end()) timers_.erase(existing);
        continue;
      }
      if (existing != timers_.end() && existing->second.kind == wanted->kind &&
          existing->second.attempt == wanted->attempt && existing->second.due == wanted->due) {
        continue;  // keep the earlier cause position
      }
      timers_[key] = *wanted;
    }
  }
  std::uint64_t checkpoint = batch.back().position;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [key, timer] : timers_) checkpoint = std::min(checkpoint, timer.cause_position - 1);
  }
  if (on_idle_change_) on_idle_change_();  // a new timer may already be due
  return checkpoints_.save(name(), checkpoint);
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
    fire_due();
  }
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
