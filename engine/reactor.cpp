#include "engine/reactor.hpp"

#include <iostream>

namespace cascade::engine {

struct ReactorRunner::Runner {
  Reactor& reactor;
  std::atomic<std::uint64_t> position{0};
  std::atomic<bool> started{false};
  std::thread thread;
  explicit Runner(Reactor& r) : reactor(r) {}
};

ReactorRunner::ReactorRunner(events::EventLog& log) : log_(log) {}

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

void ReactorRunner::run(Runner& runner) {
  // Bounds how long stop() waits for a runner blocked on an idle log.
  constexpr std::chrono::milliseconds kIdleWait{100};
  auto resume = runner.reactor.resume_position();
  while (!resume && !stopping_) {
    {
      std::lock_guard lock(mutex_);
      last_error_ = runner.reactor.name() + ": " + resume.error().message;
    }
    log_.wait_for_events(log_.head(), kIdleWait);
    resume = runner.reactor.resume_position();
  }
  if (!resume) return;
  runner.position = resume.value();
  runner.started = true;
  notify_progress();
  while (!stopping_) {
    if (const std::optional<std::uint64_t> rewound = runner.reactor.rewind()) {
      runner.position = *rewound;
      notify_progress();
    }
    auto batch = log_.read_all(runner.position + 1, kBatchSize);
    Status handled = batch ? (batch.value().empty() ? Status(success()) : runner.reactor.handle(batch.value()))
                           : Status(batch.error());
    if (!handled) {
      {
        std::lock_guard lock(mutex_);
        last_error_ = runner.reactor.name() + ": " + handled.error().message;
      }
      std::cerr << "cascade: reactor " << runner.reactor.name() << ": " << handled.error().message << "\n";
      // Retry the same batch when the log next moves (or shortly).
      log_.wait_for_events(log_.head(), kIdleWait);
      continue;
    }
    if (batch.value().empty()) {
      log_.wait_for_events(runner.position, kIdleWait);
      continue;
    }
    runner.position = batch.value().back().position;
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
