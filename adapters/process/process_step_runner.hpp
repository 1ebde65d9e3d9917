// The StepRunner that runs deploy steps as real processes (POSIX, Linux-first).
#pragma once

#include "engine/ports.hpp"

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace cascade::adapters {

// The unprivileged user steps run as (`cascade serve --step-user NAME`), so
// that a step cannot read or write the engine's own data. Resolved once, in
// the parent: the forked child may not call getpwnam_r (not
// async-signal-safe), only setgroups/setgid/setuid with these numbers.
struct StepIdentity {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups, the primary one included
};

// Looks `name` up in the user database (getpwnam_r, getgrouplist).
// kNotFound naming the user when there is no such user.
Result<StepIdentity> resolve_step_identity(const std::string& name);

// Runs each step as `/bin/sh -c <command>` in its own process group, under a
// supervisor process that leads the group and kills it the moment this
// process ends, however it ends: no step outlives the engine. While a step
// of a deployment (StepRequest::deployment) runs, its supervisor holds a
// lock file in `run_dir`; await_stopped() takes it, so a restarted engine
// knows when nothing of an interrupted deployment runs any more. Processes
// a step moves out of its group (setsid) are not followed.
//
// The step sees exactly request.env as its environment (nothing is inherited:
// the caller supplies PATH), request.work_dir as its cwd (created like
// `mkdir -p`), /dev/null as stdin, an empty signal mask and default signal
// dispositions, and no file descriptors beyond 0, 1 and 2. With a
// StepIdentity it runs as that user (its groups, then gid, then uid are set
// after the redirects and before the work dir is entered) and its work dir
// is made owned by that user.
//
// Thread-safe: one call per thread, many threads at once. REQUIRES: SIGCHLD is
// not ignored and nothing else in the process reaps children it did not start
// (waitpid(-1, ...)), since run() reaps its own child.
class ProcessStepRunner final : public engine::StepRunner {
 public:
  // Stamps each output line with clock.now() at the moment it is delivered.
  // REQUIRES: clock outlives the runner.
  // `run_dir` (created 0700) holds the deployments' lock files; empty: steps
  // are not tracked across restarts (await_stopped returns at once).
  // With a `step_user`, steps run as that user (see StepIdentity).
  explicit ProcessStepRunner(const engine::Clock& clock, std::string run_dir = "",
                             std::optional<StepIdentity> step_user = std::nullopt);
  ~ProcessStepRunner() override;
  ProcessStepRunner(const ProcessStepRunner&) = delete;
  ProcessStepRunner& operator=(const ProcessStepRunner&) = delete;

  Status await_stopped(const std::string& deployment, std::chrono::milliseconds timeout) override;

  // Runs the step to completion and never throws.
  //
  // Output: stdout and stderr are split into lines (without the '\n') and
  // passed to request.on_line on the calling thread in the order read; a final
  // line without '\n' is delivered at EOF; a line longer than 64 KiB arrives as
  // consecutive chunks of at most 64 KiB, cut between UTF-8 characters. Each of
  // request.secrets is replaced by "***" in the raw bytes before they are cut
  // into lines, so a secret spanning reads, cuts or lines is masked too. An
  // empty on_line discards the output. When request.max_output_bytes > 0 and
  // the step writes more, what is past the limit is dropped, the whole group
  // is killed, output_limit_exceeded is true and exit_code -1.
  //
  // Outcome: exit_code is the shell's exit status, or 128 + the signal number
  // when it died of a signal (as shells report it). When request.timeout > 0
  // elapses first (measured on steady_clock), the whole process group is
  // killed with SIGKILL, timed_out is true and exit_code -1. Likewise, when
  // request.cancel is set and reads true while the shell runs (it is read at
  // least every 50 ms), the whole group is killed with SIGKILL, canceled is
  // true and exit_code -1; a cancel already true when run() is called starts
  // nothing (no work dir, no process) and reports canceled. When the shell
  // exits first, whatever it left running in its process group is killed too,
  // so background children cannot hold the output open; output still buffered
  // is then read to EOF, for at most a short grace period (a process that left
  // the group, e.g. via setsid, is not waited for). error is non-empty, and
  // exit_code -1, when the step could not be started: the work dir could not
  // be created or entered, the step user could not be become, /bin/sh could not be executed, a string holds a NUL
  // byte, an env name is empty or holds '=', or a system call failed; it is
  // also set if on_line throws (the step is then killed).
  engine::StepOutcome run(const engine::StepRequest& request) override;

 private:
  const engine::Clock& clock_;
  const std::string run_dir_;
  // A pipe nothing writes to: every supervisor watches the read end, and the
  // write end closes only when this process ends.
  int lifeline_read_ = -1;
  int lifeline_write_ = -1;
  std::optional<StepIdentity> step_user_;
};

}  // namespace cascade::adapters
