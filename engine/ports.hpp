// The ports the engine needs from the outside world. Adapters implement them;
// tests drive ManualClock and scripted runners.
#pragma once

#include "events/event.hpp"
#include "events/result.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace cascade::engine {

using events::Timestamp;

// Engine code reads time only through a Clock. Thread-safe.
//
// Two times: the wall clock (now), which deadlines recorded in events are
// stated in and which an operator or NTP may step, and a monotonic one,
// which never steps and measures delays (a retry's wait must not grow by an
// hour because the wall clock went back an hour).
class Clock {
 public:
  virtual ~Clock() = default;
  virtual Timestamp now() const = 0;
  // Milliseconds since an arbitrary start; never goes back, never jumps.
  virtual std::int64_t monotonic_ms() const = 0;
  // Blocks until now() >= due, or until `max_wait` of real time has passed,
  // whichever comes first — so a waiter can also notice that it should stop.
  virtual void wait_until(Timestamp due, std::chrono::milliseconds max_wait) const = 0;
  // The same for monotonic_ms() >= due.
  virtual void wait_until_monotonic(std::int64_t due, std::chrono::milliseconds max_wait) const = 0;
};

class SystemClock final : public Clock {
 public:
  Timestamp now() const override;
  std::int64_t monotonic_ms() const override;
  void wait_until(Timestamp due, std::chrono::milliseconds max_wait) const override;
  void wait_until_monotonic(std::int64_t due, std::chrono::milliseconds max_wait) const override;
};

// A clock that moves only when told to: for tests and replays. Waiters wake
// as soon as it is moved past their time. advance() moves both times, as
// time passing does; set() moves only the wall clock, as a clock step does.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(Timestamp start = 1'800'000'000'000) : now_(start) {}
  Timestamp now() const override { return now_.load(); }
  std::int64_t monotonic_ms() const override { return monotonic_.load(); }
  void wait_until(Timestamp due, std::chrono::milliseconds max_wait) const override;
  void wait_until_monotonic(std::int64_t due, std::chrono::milliseconds max_wait) const override;
  void set(Timestamp t);
  void advance(std::chrono::milliseconds by);

 private:
  std::atomic<Timestamp> now_;
  std::atomic<std::int64_t> monotonic_{0};
  mutable std::mutex mutex_;
  mutable std::condition_variable moved_;
};

// One captured line of a step's output.
struct LogLine {
  Timestamp at = 0;
  std::string stream;  // "stdout" or "stderr"
  std::string text;    // without the trailing newline
};

// The bytes a step's log digest covers: each line as "<at>\t<stream>\t<text>\n".
std::string digest_bytes(const LogLine& line);

struct StepRequest {
  std::string command;                     // run by /bin/sh -c
  std::map<std::string, std::string> env;  // the whole environment of the step
  std::string work_dir;                    // created if missing
  std::chrono::milliseconds timeout{0};    // 0: no limit
  // Called once per output line, in order, from the calling thread.
  std::function<void(const LogLine&)> on_line;
  // When set and it turns true, the runner kills the step's whole process
  // group promptly (within ~100 ms) and reports the step canceled.
  std::shared_ptr<const std::atomic<bool>> cancel;
  // Values that never reach on_line: each is replaced by "***" in the raw
  // output before it is cut into lines (engine/secret_masker.hpp).
  std::vector<std::string> secrets;
  // The most output (stdout and stderr together) the step may write; past it
  // the runner kills the whole process group and reports output_limit_exceeded.
  // 0: no limit.
  std::uint64_t max_output_bytes = 0;
  // The stage attempt the step belongs to (deployment_name()); a runner
  // whose steps may outlive a crash of the engine tracks them by it
  // (await_stopped). Empty: not tracked.
  std::string deployment;
};

struct StepOutcome {
  int exit_code = -1;         // -1 when the step did not exit on its own
  bool timed_out = false;     // the whole process group was killed at the timeout
  bool canceled = false;      // the whole process group was killed because `cancel` turned true
  bool output_limit_exceeded = false;  // killed for writing more than max_output_bytes
  std::int64_t duration_ms = 0;
  std::string error;          // non-empty when the step could not be started
  bool succeeded() const {
    return error.empty() && !timed_out && !canceled && !output_limit_exceeded && exit_code == 0;
  }
};

// Runs one deploy step to completion. Thread-safe: steps of different stages
// run at the same time on different threads.
class StepRunner {
 public:
  virtual ~StepRunner() = default;
  virtual StepOutcome run(const StepRequest& request) = 0;
  // Returns once nothing started for `deployment` (a StepRequest's
  // deployment) by this or an earlier process still runs: after a crash the
  // engine records an interruption, and starts a rollback, only then.
  // kUnavailable when something still runs after `timeout`. Runners whose
  // steps cannot outlive them need not wait.
  virtual Status await_stopped(const std::string& deployment, std::chrono::milliseconds timeout) {
    (void)deployment;
    (void)timeout;
    return outcome::success();
  }
};

// The StepRequest::deployment of a stage attempt: "<release>/<stage>/<attempt>".
std::string deployment_name(const std::string& release_id, const std::string& stage, int attempt);

// Where a step's log lives: beside the event log.
struct StepLogKey {
  std::string release_id;
  std::string stage;
  int attempt = 1;
  int step_index = 0;
};

// Thread-safe.
class StepLogStore {
 public:
  virtual ~StepLogStore() = default;
  // Appends one line; durable only after flush().
  virtual Status append_line(const StepLogKey& key, const LogLine& line) = 0;
  // Makes every appended line durable (a step's finishing event, which holds
  // the digest, is appended only after this).
  virtual Status flush() = 0;
  // The lines of one step, in order.
  virtual Result<std::vector<LogLine>> read(const StepLogKey& key) = 0;
  // At most `max_lines` lines of one step, from its line `first_line` (0 is
  // the first), in order: a step's log read a page at a time. The default
  // reads the whole step; stores override it to read only the page.
  virtual Result<std::vector<LogLine>> read_page(const StepLogKey& key, std::uint64_t first_line,
                                                 std::size_t max_lines);
  // The lines read() would return, handed to `visit` one at a time in order,
  // stopping at the first error `visit` returns (which it returns). Memory is
  // bounded by a page of lines, not by the log (a step may write 64 MiB):
  // this is how a whole log is digested, verified and exported. The line
  // passed is valid only during the call. The default reads with read_page.
  virtual Status read_each(const StepLogKey& key, const std::function<Status(const LogLine&)>& visit);
};

// Keeps secret values out of the event log, the projections and the logs:
// values are stored encrypted and referred to by a keyed digest. Thread-safe.
class SecretStore {
 public:
  virtual ~SecretStore() = default;
  // Stores `value` durably and returns its digest: hex HMAC-SHA256 under the
  // store's own key of `scope` and `value`, so the digest cannot be
  // brute-forced without the key, the same value in the same scope gives the
  // same digest (re-applying an unchanged pipeline changes nothing), and the
  // same value in another scope gives another: nobody can confirm a guess of
  // a secret by storing the guess elsewhere and comparing digests.
  virtual Result<std::string> put(std::string_view scope, std::string_view value) = 0;
  // kNotFound for a digest the store does not hold.
  virtual Result<std::string> get(const std::string& digest) = 0;
};

// The releases a reactor still has business with (a stage queued or
// deploying, a timer pending), each with the position of the event it last
// handled of it.
using OpenReleases = std::map<std::string, std::uint64_t>;

// What changed in a reactor's open releases since its last save.
struct OpenReleaseChanges {
  OpenReleases opened;              // added, or their position updated
  std::vector<std::string> closed;  // removed
  bool empty() const { return opened.empty() && closed.empty(); }
};

// A reactor's durable position in the log, and the releases it still has
// business with there. Keeping those beside the checkpoint lets a reactor
// resume after its last handled event and rebuild its work by loading those
// releases, instead of keeping its checkpoint before the oldest of them and
// re-reading every event since (30 days of them behind a pending approval).
// Thread-safe.
class CheckpointStore {
 public:
  virtual ~CheckpointStore() = default;
  // 0 when the reactor has never saved one.
  virtual Result<std::uint64_t> load(const std::string& reactor) = 0;
  virtual Status save(const std::string& reactor, std::uint64_t position) = 0;
  // The checkpoint and the changes to the open releases, in one write.
  virtual Status save(const std::string& reactor, std::uint64_t position, const OpenReleaseChanges& changes) = 0;
  // Empty when the reactor has never saved any.
  virtual Result<OpenReleases> load_open(const std::string& reactor) = 0;
};

}  // namespace cascade::engine
