#include "engine/executor.hpp"

#include "engine/orchestrator.hpp"
#include "engine/step_command.hpp"
#include "events/codec.hpp"
#include "events/utf8.hpp"

#include <algorithm>
#include <iostream>
#include <system_error>

namespace cascade::engine {

namespace {

// How long a restarted engine waits for the steps of an interrupted
// deployment to be gone (their supervisor kills them as soon as the old
// engine's end closes its pipe; this only covers a slow kernel). Past it the
// handling fails and is retried: the interruption is never recorded while a
// step of it may still run.
constexpr std::chrono::milliseconds kOrphanStopWait{30'000};

std::string key_text(const std::tuple<std::string, std::string, int>& key) {
  return std::get<0>(key) + "/" + std::get<1>(key) + "/" + std::to_string(std::get<2>(key));
}

std::string failure_reason(const StepOutcome& outcome, const StepDefinition& step, std::uint64_t max_output_bytes) {
  if (!outcome.error.empty()) return outcome.error;
  if (outcome.timed_out) return "timed out after " + std::to_string(step.timeout_s) + " s";
  if (outcome.output_limit_exceeded) {
    return "wrote more than " + std::to_string(max_output_bytes >> 20) + " MiB of output (the step output limit)";
  }
  return "exit code " + std::to_string(outcome.exit_code);
}

}  // namespace

Executor::Executor(ReleaseService& service, StepRunner& runner, StepLogStore& logs, SecretStore& secrets,
                   CheckpointStore& checkpoints, const Clock& clock, ExecutorOptions options,
                   std::function<void()> on_idle_change)
    : service_(service),
      runner_(runner),
      logs_(logs),
      secrets_(secrets),
      checkpoints_(checkpoints),
      clock_(clock),
      options_(std::move(options)),
      on_idle_change_(std::move(on_idle_change)) {}

Executor::~Executor() { on_stop(); }

void Executor::on_stop() {
  // Stopping the engine stops its deployments; after a restart they are
  // found interrupted and failed (see handle).
  stopping_ = true;
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mutex_);
    for (auto& [key, running] : running_) {
      running.cancel->store(true);
      if (running.thread.joinable()) threads.push_back(std::move(running.thread));
    }
    for (auto& thread : finished_threads_) threads.push_back(std::move(thread));
    finished_threads_.clear();
  }
  for (auto& thread : threads) {
    if (thread.joinable()) thread.join();
  }
}

Result<std::uint64_t> Executor::resume_position() {
  // The queues are rebuilt from the releases that had a stage queued or
  // deploying at the checkpoint (a deployment found Deploying is one the
  // engine stopped under: track fails it); events after the checkpoint are
  // handed over as usual.
  CASCADE_TRY(open, checkpoints_.load_open(name()));
  open_saved_.clear();
  for (const auto& [release_id, position] : open) open_saved_.insert(release_id);
  OpenReleaseChanges changes;
  CASCADE_TRY(react(std::vector<std::pair<std::string, std::uint64_t>>(open.begin(), open.end()), changes,
                    /*resuming=*/true));
  CASCADE_TRY(checkpoint, checkpoints_.load(name()));
  if (!changes.empty()) {
    CASCADE_TRY(checkpoints_.save(name(), checkpoint, changes));
  }
  note_saved(changes);
  return checkpoint;
}

bool Executor::idle() const {
  std::lock_guard lock(mutex_);
  return running_.empty();
}

void Executor::reap_finished() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mutex_);
    threads.swap(finished_threads_);
  }
  for (auto& thread : threads) {
    if (thread.joinable()) thread.join();
  }
}

bool Executor::holds(const ReleaseState& release) {
  // From the release's state, not from running_: a deployment whose last
  // event was handled while its thread was still ending is not open, and
  // one found Deploying is, whoever runs it.
  return std::any_of(release.stages.begin(), release.stages.end(), [](const StageRecord& stage) {
    return is_waiting(stage.state()) || stage.state() == StageState::kDeploying;
  });
}

Status Executor::react(const std::vector<std::pair<std::string, std::uint64_t>>& releases,
                       OpenReleaseChanges& changes, bool resuming) {
  std::set<QueueKey> touched_queues;
  for (const auto& [release_id, position] : releases) {
    auto release = service_.load(release_id);
    if (!release && resuming && release.error().code == ErrorCode::kDataLoss) {
      // Quarantined: kept open, so a repaired release is picked up again.
      std::cerr << "cascade: executor: " << release_id << ": " << release.error().message << "\n";
      continue;
    }
    if (!release) return release.error();
    CASCADE_TRY(track(release.value(), position));
    for (const StageRecord& stage : release.value().stages) touched_queues.insert({release.value().pipeline, stage.name});
    const bool open = holds(release.value());
    const bool saved = open_saved_.count(release_id) != 0;
    if (open && !saved) changes.opened[release_id] = position;
    if (!open && saved) changes.closed.push_back(release_id);
  }
  {
    // A finished deployment frees capacity in its queue too.
    std::lock_guard lock(mutex_);
    for (const auto& [key, queue] : queues_) {
      if (!queue.waiting.empty()) touched_queues.insert(key);
    }
  }
  for (const QueueKey& key : touched_queues) {
    CASCADE_TRY(supersede_older(key));
    CASCADE_TRY(start_ready(key));
  }
  return success();
}

void Executor::note_saved(const OpenReleaseChanges& changes) {
  for (const auto& [release_id, position] : changes.opened) open_saved_.insert(release_id);
  for (const std::string& release_id : changes.closed) open_saved_.erase(release_id);
}

Status Executor::handle(const std::vector<events::RecordedEvent>& batch) {
  reap_finished();
  OpenReleaseChanges changes;
  CASCADE_TRY(react(releases_touched(batch), changes, /*resuming=*/false));
  // The checkpoint moves past every handled event: what is still queued or
  // deploying is saved with it as open releases, so after a crash the queue
  // is rebuilt and an interrupted deployment is seen again and failed.
  CASCADE_TRY(checkpoints_.save(name(), batch.back().position, changes));
  note_saved(changes);
  return success();
}

Status Executor::track(const ReleaseState& release, std::uint64_t position) {
  for (const StageRecord& stage : release.stages) {
    const StageDefinition* definition = release.definition.find_stage(stage.name);
    if (definition == nullptr) continue;
    const QueueKey queue_key{release.pipeline, stage.name};
    bool orphaned = false;
    {
      std::lock_guard lock(mutex_);
      // A deployment whose stage was canceled (or moved to a newer attempt)
      // is stopped; its own success or failure is not a reason to. `release`
      // may be older than a deployment started meanwhile by another thread
      // (a finishing deployment starts queued ones): an older attempt, or
      // the same one still waiting, says nothing about it.
      bool runs_now = false;
      for (auto& [key, running] : running_) {
        if (std::get<0>(key) != release.id || std::get<1>(key) != stage.name) continue;
        if (stage.attempt > std::get<2>(key) ||
            (stage.attempt == std::get<2>(key) && stage.state() == StageState::kCanceled)) {
          running.cancel->store(true);
        }
        runs_now = runs_now || stage.attempt == std::get<2>(key);
      }
      Queue& queue = queues_[queue_key];
      queue.max_parallel = definition->max_parallel;
      queue.on_new_release = definition->on_new_release;
      if (is_waiting(stage.state()) && runs_now) {
        // Already started from a newer state: never queued a second time.
      } else if (is_waiting(stage.state())) {
        Waiting& waiting = queue.waiting[release.number];
        waiting.release_id = release.id;
        waiting.attempt = stage.attempt;
        events::DeploymentStarted probe;
        probe.stage = stage.name;
        waiting.ready = stage.machine.would_accept(probe);
      } else {
        queue.waiting.erase(release.number);
      }
      orphaned = stage.state() == StageState::kDeploying &&
                 running_.count(DeploymentKey{release.id, stage.name, stage.attempt}) == 0;
    }
    if (orphaned) {
      // Deploying, yet not run by this process: the engine stopped under it.
      // Its steps may have half-run, so it fails rather than silently re-running.
      // Not before anything it started has stopped: the failure may start a
      // rollback onto the same target.
      CASCADE_TRY(runner_.await_stopped(deployment_name(release.id, stage.name, stage.attempt), kOrphanStopWait));
      const Invocation abort{kActor, "executor/" + release.id + "/" + stage.name + "/" + std::to_string(stage.attempt) + "/abort",
                             "position-" + std::to_string(position)};
      auto done = abort_deployment(
          release.id, AbortDeployment{stage.name, stage.attempt, "interrupted: the engine stopped during the deployment"},
          abort);
      if (!done && !is_superseded(done.error())) return done.error();
    }
  }
  return success();
}

Status Executor::supersede_older(const QueueKey& key) {
  std::vector<std::pair<std::string, int>> older;
  std::string newest_id;
  {
    std::lock_guard lock(mutex_);
    const Queue& queue = queues_[key];
    if (queue.on_new_release != OnNewRelease::kDeployLatest) return success();
    std::int64_t newest = queue.waiting.empty() ? 0 : queue.waiting.rbegin()->first;
    if (newest > 0) newest_id = queue.waiting.rbegin()->second.release_id;
    for (const auto& [deployment, running] : running_) {
      if (running.queue == key && running.number > newest) {
        newest = running.number;
        newest_id = std::get<0>(deployment);
      }
    }
    for (const auto& [number, waiting] : queue.waiting) {
      if (number < newest) older.emplace_back(waiting.release_id, waiting.attempt);
    }
  }
  for (const auto& [release_id, attempt] : older) {
    const Invocation invocation{kActor, "executor/supersede/" + release_id + "/" + key.second + "/" + std::to_string(attempt), ""};
    auto done = service_.execute(release_id, SupersedeStage{key.second, newest_id}, invocation);
    if (!done && !is_superseded(done.error())) return done.error();
  }
  return success();
}

Status Executor::start_ready(const QueueKey& key) {
  // Chosen entries move from the queue to running_ under the lock, before
  // their StartDeployment is appended, so two callers (the runner and a
  // finishing deployment) never start the same deployment or overfill a queue.
  std::vector<std::pair<std::int64_t, Waiting>> chosen;
  {
    std::lock_guard lock(mutex_);
    Queue& queue = queues_[key];
    int running = 0;
    for (const auto& [deployment, r] : running_) running += r.queue == key ? 1 : 0;
    for (auto it = queue.waiting.begin(); it != queue.waiting.end();) {
      if (queue.max_parallel > 0 && running >= queue.max_parallel) break;
      if (!it->second.ready) {
        // A limited queue deploys releases in order: a release waiting for
        // its approval holds back the newer ones behind it.
        if (queue.max_parallel > 0) break;
        ++it;
        continue;
      }
      const DeploymentKey candidate{it->second.release_id, key.second, it->second.attempt};
      if (running_.count(candidate) != 0) {
        // Queued again from an older state while it runs: it is started once.
        it = queue.waiting.erase(it);
        continue;
      }
      Running& reserved = running_[candidate];
      reserved.number = it->first;
      reserved.queue = key;
      chosen.emplace_back(it->first, it->second);
      it = queue.waiting.erase(it);
      ++running;
    }
  }
  Status status = success();
  std::vector<std::pair<DeploymentKey, std::string>> unstartable;
  for (const auto& [number, waiting] : chosen) {
    const DeploymentKey deployment{waiting.release_id, key.second, waiting.attempt};
    const Invocation start{kActor, "executor/" + key_text(deployment) + "/start", ""};
    auto started = status ? service_.execute(waiting.release_id, StartDeployment{key.second, waiting.attempt}, start)
                          : Result<ReleaseState>(status.error());
    std::lock_guard lock(mutex_);
    if (!started) {
      running_.erase(deployment);
      if (!is_superseded(started.error())) {
        queues_[key].waiting[number] = waiting;  // tried again on the next event
        status = started.error();
      }
      continue;
    }
    Running& running = running_[deployment];
    try {
      running.thread = std::thread([this, deployment, cancel = running.cancel] { run_deployment(deployment, cancel); });
    } catch (const std::system_error& e) {
      // No thread to run it (the process is out of threads): the deployment
      // fails saying so, rather than the engine going down with it.
      running_.erase(deployment);
      unstartable.emplace_back(deployment, e.what());
    }
  }
  for (const auto& [deployment, why] : unstartable) {
    const Invocation abort{kActor, "executor/" + key_text(deployment) + "/abort", ""};
    auto aborted = abort_deployment(
        std::get<0>(deployment),
        AbortDeployment{std::get<1>(deployment), std::get<2>(deployment), "executor error: cannot start a thread: " + why},
        abort);
    if (!aborted && !is_superseded(aborted.error()) && status) status = aborted.error();
  }
  return status;
}

void Executor::run_deployment(const DeploymentKey& key, std::shared_ptr<std::atomic<bool>> cancel) {
  Status done = run_steps(key, *cancel);
  if (!done && !cancel->load()) {
    std::cerr << "cascade: deployment " << key_text(key) << " stopped: " << done.error().message << "\n";
    Invocation abort{kActor, "executor/" + key_text(key) + "/abort", ""};
    auto aborted = abort_deployment(std::get<0>(key), AbortDeployment{std::get<1>(key), std::get<2>(key),
                                                                      "executor error: " + done.error().message},
                                    abort);
    if (!aborted && !is_superseded(aborted.error())) {
      std::cerr << "cascade: could not record the failure of " << key_text(key) << ": "
                << aborted.error().message << "\n";
    }
  }
  QueueKey queue;
  {
    std::lock_guard lock(mutex_);
    auto it = running_.find(key);
    if (it != running_.end()) {
      queue = it->second.queue;
      // on_stop may have taken the thread already, to join it itself.
      if (it->second.thread.joinable()) finished_threads_.push_back(std::move(it->second.thread));
      running_.erase(it);
    }
  }
  // The capacity this deployment held may let a queued one start now; no
  // new event would otherwise ask.
  if (!stopping_ && !queue.first.empty()) {
    Status started = start_ready(queue);
    if (!started) std::cerr << "cascade: starting queued deployments: " << started.error().message << "\n";
  }
  if (on_idle_change_) on_idle_change_();
}

Result<ReleaseState> Executor::abort_deployment(const std::string& release_id, AbortDeployment command,
                                                const Invocation& invocation) {
  // A running step is cut off: its StepFailed records what its log holds now
  // (after a restart, exactly the lines that outlived the stop — they are
  // synced only at a step's end), so that verification covers them.
  auto release = service_.load(release_id);
  const StageRecord* stage = release ? release.value().find_stage(command.stage) : nullptr;
  if (stage != nullptr && stage->attempt == command.attempt) {
    for (std::size_t i = 0; i < stage->steps.size(); ++i) {
      if (stage->steps[i].status != StepStatus::kRunning) continue;
      const int index = static_cast<int>(i);
      // Read a line at a time: the step may have written 64 MiB.
      events::Sha256 digest;
      std::int64_t lines = 0;
      auto count = [&](const LogLine& line) -> Status {
        digest.update(digest_bytes(line));
        ++lines;
        return success();
      };
      const Status read = logs_.read_each(StepLogKey{release_id, command.stage, command.attempt, index}, count);
      if (!read) {
        // Recorded without a digest: its lines stay uncovered by verification.
        std::cerr << "cascade: the log of step " << index << " of " << release_id << "/" << command.stage << "/"
                  << command.attempt << " cannot be read: " << read.error().message << "\n";
        continue;
      }
      command.stored_logs[index] = StoredStepLog{digest.finish(), lines};
    }
  }
  return service_.execute(release_id, command, invocation);
}

Result<std::map<std::string, std::string>> Executor::step_environment(const ReleaseState& release,
                                                                      const StageDefinition& stage,
                                                                      const StepDefinition& step,
                                                                      std::vector<std::string>* secrets) const {
  std::map<std::string, std::string> env = options_.base_env;
  auto lay = [&](const std::string& name, const std::string& value, bool secret) {
    env[name] = value;
    if (secret && secrets != nullptr) secrets->push_back(value);
  };
  auto lay_variables = [&](const VariableMap& variables) -> Status {
    for (const auto& [name, variable] : variables) {
      if (!variable.secret) {
        lay(name, variable.value, false);
        continue;
      }
      CASCADE_TRY(value, secrets_.get(variable.secret_digest));
      lay(name, value, true);
    }
    return success();
  };
  CASCADE_TRY(lay_variables(release.definition.variables));
  CASCADE_TRY(lay_variables(stage.variables));
  // A release's own values replace only what this stage declares settable
  // (its own declaration, else the pipeline's): a name the stage declares
  // without `settable` keeps the admin's value.
  auto settable_here = [&](const std::string& name) {
    auto declared = stage.variables.find(name);
    if (declared != stage.variables.end()) return declared->second.settable;
    declared = release.definition.variables.find(name);
    return declared != release.definition.variables.end() && declared->second.settable;
  };
  for (const auto& [name, value] : release.variables) {
    if (settable_here(name)) lay(name, value, false);
  }
  for (const auto& [name, digest] : release.secret_variables) {
    if (!settable_here(name)) continue;
    CASCADE_TRY(value, secrets_.get(digest));
    lay(name, value, true);
  }
  for (const auto& [name, value] : step.env) lay(name, value, false);
  env["CASCADE_RELEASE_ID"] = release.id;
  env["CASCADE_RELEASE_NAME"] = release.name;
  env["CASCADE_PIPELINE"] = release.pipeline;
  env["CASCADE_STAGE"] = stage.name;
  env["CASCADE_ARTIFACT_VERSION"] = release.artifact.version;
  env["CASCADE_ARTIFACT_PATH"] = release.artifact.path;
  // From CI (Kafka ingress) only; fetching from the URI is a step's job.
  if (!release.artifact.id.empty()) env["CASCADE_ARTIFACT_ID"] = release.artifact.id;
  if (!release.artifact.uri.empty()) env["CASCADE_ARTIFACT_URI"] = release.artifact.uri;
  return env;
}

Status Executor::run_steps(const DeploymentKey& key, const std::atomic<bool>& cancel) {
  const auto& [release_id, stage_name, attempt] = key;
  const std::string work_dir =
      options_.work_root + "/" + release_id + "/" + stage_name + "/" + std::to_string(attempt);
  const std::string prefix = "executor/" + key_text(key) + "/step/";
  const Invocation as_executor{kActor, "", ""};
  auto command_key = [&](std::size_t index, const std::string& what) {
    Invocation invocation = as_executor;
    invocation.command_id = prefix + std::to_string(index) + "/" + what;
    return invocation;
  };

  CASCADE_TRY(snapshot, service_.load(release_id));
  const StageDefinition* stage = snapshot.definition.find_stage(stage_name);
  if (stage == nullptr) return make_error(ErrorCode::kNotFound, "stage '" + stage_name + "' is not defined");

  for (std::size_t i = 0; i < stage->steps.size(); ++i) {
    const StepDefinition& step = stage->steps[i];
    const int index = static_cast<int>(i);
    for (int try_number = 1;; ++try_number) {
      if (cancel) return success();
      CASCADE_TRY(release, service_.load(release_id));
      const StageRecord* record = release.find_stage(stage_name);
      if (record == nullptr || record->attempt != attempt || record->state() != StageState::kDeploying) {
        return success();  // canceled or aborted by someone else
      }
      if (!step_should_run(release, *record, index)) {
        const std::string reason = step.condition == StepCondition::kFailed ? "runs only after a failure"
                                                                             : "an earlier step failed";
        auto skipped = service_.execute(release_id, RecordStepSkipped{stage_name, attempt, index, reason},
                                        command_key(i, "skip"));
        if (!skipped) return is_superseded(skipped.error()) ? Status(success()) : Status(skipped.error());
        break;
      }
      auto started = service_.execute(release_id, RecordStepStarted{stage_name, attempt, index},
                                      command_key(i, "start/" + std::to_string(try_number)));
      if (!started) return is_superseded(started.error()) ? Status(success()) : Status(started.error());

      std::vector<std::string> secret_values;
      CASCADE_TRY(env, step_environment(release, *stage, step, &secret_values));
      const StepLogKey log_key{release_id, stage_name, attempt, index};
      events::Sha256 digest;
      Status log_status = success();
      StepRequest request;
      request.command = step_shell_command(step.run, env);
      request.env = std::move(env);
      request.work_dir = work_dir;
      request.timeout = std::chrono::seconds(step.timeout_s);
      request.cancel = std::shared_ptr<const std::atomic<bool>>(std::shared_ptr<const void>(), &cancel);
      request.secrets = secret_values;
      request.max_output_bytes = options_.max_step_output_bytes;
      request.deployment = deployment_name(release_id, stage_name, attempt);
      const SecretMasker line_masker(secret_values);
      request.on_line = [&](const LogLine& captured) {
        // The runner masked the raw stream already; masking each line again and
        // replacing what is not UTF-8 here holds for every runner, whatever
        // build it is, before anything is stored.
        LogLine line = captured;
        line.text = events::valid_utf8(line_masker.mask(line.text));
        digest.update(digest_bytes(line));
        if (log_status) log_status = logs_.append_line(log_key, line);
      };
      const StepOutcome outcome = runner_.run(request);
      CASCADE_TRY(log_status);
      // The digest's event is appended only once the lines it covers are durable.
      CASCADE_TRY(logs_.flush());
      if (outcome.canceled) return success();  // the cancel command recorded the outcome

      RecordStepFinished finished;
      finished.stage = stage_name;
      finished.attempt = attempt;
      finished.step_index = index;
      finished.succeeded = outcome.succeeded();
      finished.exit_code = outcome.exit_code;
      finished.duration_ms = outcome.duration_ms;
      finished.log_digest = digest.finish();
      finished.will_retry = !finished.succeeded && try_number <= step.retries;
      if (!finished.succeeded) finished.reason = failure_reason(outcome, step, options_.max_step_output_bytes);
      auto recorded = service_.execute(release_id, finished, command_key(i, "finish/" + std::to_string(try_number)));
      if (!recorded) return is_superseded(recorded.error()) ? Status(success()) : Status(recorded.error());
      if (!finished.will_retry) break;
      const std::int64_t retry_at = clock_.monotonic_ms() + step.retry_delay_s * 1000LL;
      while (!cancel && clock_.monotonic_ms() < retry_at) {
        clock_.wait_until_monotonic(retry_at, std::chrono::milliseconds(100));
      }
    }
  }
  auto finished = service_.execute(release_id, FinishDeployment{stage_name, attempt},
                                   Invocation{kActor, "executor/" + key_text(key) + "/finish", ""});
  if (!finished && !is_superseded(finished.error())) return finished.error();
  return success();
}

}  // namespace cascade::engine
