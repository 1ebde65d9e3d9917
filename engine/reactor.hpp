// Reactors follow the log from their own checkpoint and react by issuing
// commands (never by changing state directly). A ReactorRunner runs each on its own
// thread and can tell when everything has settled.
#pragma once

#include "engine/ports.hpp"
#include "engine/quarantine.hpp"
#include "events/event_log.hpp"

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace cascade::engine {

class Reactor {
 public:
  virtual ~Reactor() = default;
  virtual std::string name() const = 0;
  // The position of the last event whose effects are complete: the runner
  // resumes after it. Read once, at start.
  virtual Result<std::uint64_t> resume_position() = 0;
  // Handles a batch of events in position order and records the reactor's
  // checkpoint. On error the runner retries the same batch later, so handling
  // must be idempotent (commands carry keys derived from the causing event).
  virtual Status handle(const std::vector<events::RecordedEvent>& batch) = 0;
  // False while the reactor has work of its own in flight (a running step,
  // a timer that is due).
  virtual bool idle() const { return true; }
  // Asked by the runner on the reactor's own thread before every read of the
  // log: a position to go on after instead of the runner's (the reactor has
  // already reset what it keeps to match it), or nullopt to go on as before.
  // A projection rebuilding while the engine runs clears its data and
  // checkpoint here and answers 0. A reactor that rewinds must report
  // !idle() from the request until the call after the one that rewound, so
  // that quiescence is never reported at the old position. Default: never.
  virtual std::optional<std::uint64_t> rewind() { return std::nullopt; }
  // Called by ReactorRunner::start before the reactor's runner starts, and by
  // ReactorRunner::stop after it has stopped: for reactors with threads of their own.
  virtual void on_start() {}
  virtual void on_stop() {}
};

// What an operator sees of one reactor (GET /metrics, /readyz).
struct ReactorStatus {
  std::string name;
  std::uint64_t position = 0;  // the last event it has handled
  std::uint64_t lag = 0;       // events between it and the log's head
  std::uint64_t errors = 0;    // failed batches since start
  bool failing = false;        // its last batch failed and waits for a retry
  std::string last_error;      // empty when none since start
};

// Runs reactors, each on its own thread, and reports when they are quiescent:
// every reactor has handled every durable event and none has work in flight.
//
// With a quarantine, one bad stream stops only itself: an event that cannot
// be decoded quarantines its stream and is read past, events of quarantined
// streams are not handed to reactors, and a batch that failed because a
// reactor found a stream's history altered (the service quarantined it) is
// handed over again at once without that stream's events.
class ReactorRunner {
 public:
  static constexpr std::size_t kBatchSize = 256;

  // REQUIRES: `log`, and `quarantine` and `clock` when given, outlive the runner.
  explicit ReactorRunner(events::EventLog& log, Quarantine* quarantine = nullptr, const Clock* clock = nullptr);
  ~ReactorRunner();  // stops
  ReactorRunner(const ReactorRunner&) = delete;
  ReactorRunner& operator=(const ReactorRunner&) = delete;

  // REQUIRES: before start().
  void add(Reactor& reactor);
  void start();
  void stop();

  // Reactors call this when their in-flight work changes, so that a waiter
  // re-checks quiescence.
  void notify_progress();

  // Blocks until quiescent or `timeout`; returns whether quiescent.
  bool wait_until_quiescent(std::chrono::milliseconds timeout);

  // The last error a reactor met (empty when none), for operators.
  std::string last_error() const;
  std::vector<ReactorStatus> status() const;

 private:
  struct Runner;
  void run(Runner& runner);
  bool quiescent() const;
  void record_error(Runner& runner, const std::string& message);
  // record_error, and says it on stderr unless it is what this runner said last.
  void report_error(Runner& runner, const std::string& message);
  // `events` without those of quarantined streams.
  std::vector<events::RecordedEvent> without_quarantined(const std::vector<events::RecordedEvent>& events) const;

  events::EventLog& log_;
  Quarantine* quarantine_;
  const Clock* clock_;
  std::vector<std::unique_ptr<Runner>> runners_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;
  std::condition_variable progress_;
  std::string last_error_;
};

}  // namespace cascade::engine
