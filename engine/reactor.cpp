#include "engine/reactor.hpp"

#include <iostream>

namespace cascade::engine {

struct ReactorRunner::Runner {
  Reactor& reactor;
  std::atomic<std::uint64_t> position{0};
  std::atomic<bool> started{false};
  std::atomic<std::uint64_t> errors{0};
  std::atomic<bool> failing{false};
  std::string last_error;  // guarded by the runner's mutex_
  std::string printed_error;  // what report_error last printed; only the runner's thread uses it
  std::thread thread;
  explicit Runner(Reactor& r) : reactor(r) {}
};

ReactorRunner::ReactorRunner(events::EventLog& log, Quarantine* quarantine, const Clock* clock)
    : log_(log), quarantine_(quarantine), clock_(clock) {}

ReactorRunner::~ReactorRunner() { stop(); }

void ReactorRunner::add(Reactor& reactor) { runners_.push_back(std::make_unique<Runner>(reactor)); }

void ReactorRunner::start() {
  stopping_ = false;
  for (auto& runner : runners_) {
    runner->reactor.on_start();
    runner->thread = std::thread([this, r = runner.get()] { run(*r); });
  }
}

void ReactorRunner::stop() {
  stopping_ = true;
  for (auto& runner : runners_) {
    if (!runner->thread.joinable()) continue;
    runner->thread.join();
    runner->reactor.on_stop();
  }
}

void ReactorRunner::notify_progress() {
  { std::lock_guard lock(mutex_); }
  progress_.notify_all();
}

std::string ReactorRunner::last_error() const {
  std::lock_guard lock(mutex_);
  return last_error_;
}

std::vector<ReactorStatus> ReactorRunner::status() const {
  const std::uint64_t head = log_.head();
  std::vector<ReactorStatus> out;
  std::lock_guard lock(mutex_);
  for (const auto& runner : runners_) {
    ReactorStatus status;
    status.name = runner->reactor.name();
    status.position = runner->position.load();
    status.lag = head > status.position ? head - status.position : 0;
    status.errors = runner->errors.load();
    status.failing = runner->failing.load();
    status.last_error = runner->last_error;
    out.push_back(std::move(status));
  }
  return out;
}

void ReactorRunner::record_error(Runner& runner, const std::string& message) {
  {
    std::lock_guard lock(mutex_);
    last_error_ = runner.reactor.name() + ": " + message;
    runner.last_error = message;
  }
  runner.errors.fetch_add(1);
  runner.failing = true;
}

void ReactorRunner::report_error(Runner& runner, const std::string& message) {
  record_error(runner, message);
  // A failing batch is retried every 100 ms (kIdleWait), and while the disk
  // is full every retry meets the same error: printed once per reason until
  // the reactor goes on, the count and the last error stay in status().
  if (message == runner.printed_error) return;
  runner.printed_error = message;
  // One write, so that reactors failing at once do not interleave their lines.
  std::cerr << ("cascade: reactor " + runner.reactor.name() + ": " + message + "\n");
}

std::vector<events::RecordedEvent> ReactorRunner::without_quarantined(
    const std::vector<events::RecordedEvent>& events) const {
  std::vector<events::RecordedEvent> kept;
  kept.reserve(events.size());
  for (const events::RecordedEvent& event : events) {
    if (!quarantine_->contains(event.stream)) kept.push_back(event);
  }
  return kept;
}

void ReactorRunner::run(Runner& runner) {
  // Bounds how long stop() waits for a runner blocked on an idle log.
  constexpr std::chrono::milliseconds kIdleWait{100};
  auto resume = runner.reactor.resume_position();
  while (!resume && !stopping_) {
    record_error(runner, resume.error().message);
    log_.wait_for_events(log_.head(), kIdleWait);
    resume = runner.reactor.resume_position();
  }
  if (!resume) return;
  runner.position = resume.value();
  runner.started = true;
  runner.failing = false;
  notify_progress();
  while (!stopping_) {
    if (const std::optional<std::uint64_t> rewound = runner.reactor.rewind()) {
      runner.position = *rewound;
      notify_progress();
    }
    auto page = log_.read_all_readable(runner.position + 1, kBatchSize);
    if (!page) {
      report_error(runner, page.error().message);
      log_.wait_for_events(log_.head(), kIdleWait);
      continue;
    }
    if (page.value().last_position() == 0) {
      log_.wait_for_events(runner.position, kIdleWait);
      continue;
    }
    // A record no reader can decode stops its own stream, and only it; with
    // no quarantine to put it in, the reactor must not read past it.
    for (const events::UnreadableEvent& bad : page.value().unreadable) {
      const std::string where = "position " + std::to_string(bad.position);
      if (quarantine_ == nullptr) {
        record_error(runner, "unreadable event at " + where + ": " + bad.reason);
        break;
      }
      quarantine_->add(bad.stream.empty() ? "unknown stream at " + where : bad.stream,
                       "unreadable event at " + where + ": " + bad.reason, clock_ != nullptr ? clock_->now() : 0);
    }
    if (quarantine_ == nullptr && !page.value().unreadable.empty()) {
      log_.wait_for_events(log_.head(), kIdleWait);
      continue;
    }
    Status handled = success();
    for (;;) {
      const std::uint64_t generation = quarantine_ != nullptr ? quarantine_->generation() : 0;
      const bool filter = quarantine_ != nullptr && quarantine_->size() != 0;
      std::vector<events::RecordedEvent> filtered;
      if (filter) filtered = without_quarantined(page.value().events);
      const std::vector<events::RecordedEvent>& batch = filter ? filtered : page.value().events;
      handled = batch.empty() ? Status(success()) : runner.reactor.handle(batch);
      // Handling found (and quarantined) a stream it cannot trust: the batch
      // goes again at once without it, rather than the whole log waiting.
      if (handled || quarantine_ == nullptr || quarantine_->generation() == generation) break;
    }
    if (!handled) {
      report_error(runner, handled.error().message);
      // Retry the same batch when the log next moves (or shortly).
      log_.wait_for_events(log_.head(), kIdleWait);
      continue;
    }
    runner.failing = false;
    runner.printed_error.clear();
    runner.position = page.value().last_position();
    notify_progress();
  }
}

bool ReactorRunner::quiescent() const {
  // Idleness first: a reactor appends its last events before it turns idle,
  // so the head read afterwards already covers them.
  for (const auto& runner : runners_) {
    if (!runner->started || !runner->reactor.idle()) return false;
  }
  const std::uint64_t head = log_.head();
  for (const auto& runner : runners_) {
    if (runner->position < head) return false;
  }
  return true;
}

bool ReactorRunner::wait_until_quiescent(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock lock(mutex_);
  while (!quiescent()) {
    // The timed wait only bounds a missed wake-up; progress is signalled.
    if (progress_.wait_until(lock, std::min(deadline, std::chrono::steady_clock::now() +
                                                          std::chrono::milliseconds(50))) ==
            std::cv_status::timeout &&
        std::chrono::steady_clock::now() >= deadline) {
      return quiescent();
    }
  }
  return true;
}

}  // namespace cascade::engine
