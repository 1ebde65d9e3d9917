#include "engine/executor.hpp"

#include "engine/orchestrator.hpp"
#include "events/codec.hpp"

#include <iostream>

namespace cascade::engine {

namespace {

std::string key_text(const std::tuple<std::string, std::string, int>& key) {
  return std::get<0>(key) + "/" + std::get<1>(key) + "/" + std::to_string(std::get<2>(key));
}

std::string failure_reason(const StepOutcome& outcome, const StepDefinition& step) {
  if (!outcome.error.empty()) return outcome.error;
  if (outcome.timed_out) return "timed out after " + std::to_string(step.timeout_s) + " s";
  return "exit code " + std::to_string(outcome.exit_code);
}

}  // namespace

Executor::Executor(ReleaseService& service, StepRunner& runner, StepLogStore& logs, CheckpointStore& checkpoints,
                   ExecutorOptions options, std::function<void()> on_idle_change)
    : service_(service),
      runner_(runner),
      logs_(logs),
      checkpoints_(checkpoints),
      options_(std::move(options)),
      on_idle_change_(std::move(on_idle_change)) {}

Executor::~Executor() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mutex_);
    for (auto& [key, running] : running_) {
      if (running.thread.joinable()) threads.push_back(std::move(running.thread));
    }
    for (auto& thread : finished_threads_) threads.push_back(std::move(thread));
    finished_threads_.clear();
  }
  for (auto& thread : threads) thread.join();
}

Result<std::uint64_t> Executor::resume_position() { return checkpoints_.load(name()); }

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
  for (auto& thread : threads) thread.join();
}

Status Executor::handle(const std::vector<events::RecordedEvent>& batch) {
  reap_finished();
  for (const auto& [release_id, position] : releases_touched(batch)) {
    CASCADE_TRY(release, service_.load(release_id));
    for (const StageRecord& stage : release.stages) {
      const DeploymentKey key{release_id, stage.name, stage.attempt};
      {
        std::lock_guard lock(mutex_);
        if (running_.count(key) != 0) continue;
      }
      const std::string prefix = "executor/" + key_text(key);
      const Invocation invocation{kActor, "", "position-" + std::to_string(position)};
      if (stage.state() == StageState::kDeploying) {
        // Deploying, yet not run by this process: the engine stopped under it.
        // Its steps may have half-run, so it fails rather than silently re-running.
        Invocation abort = invocation;
        abort.command_id = prefix + "/abort";
        auto done = service_.execute(
            release_id, AbortDeployment{stage.name, stage.attempt, "interrupted: the engine stopped during the deployment"},
            abort);
        if (!done && !is_superseded(done.error())) return done.error();
        continue;
      }
      events::DeploymentStarted probe;
      probe.stage = stage.name;
      if (!stage.machine.would_accept(probe)) continue;
      Invocation start = invocation;
      start.command_id = prefix + "/start";
      auto started = service_.execute(release_id, StartDeployment{stage.name}, start);
      if (!started) {
        if (is_superseded(started.error())) continue;
        return started.error();
      }
      std::lock_guard lock(mutex_);
      Running& running = running_[key];
      running.cause_position = position;
      running.thread = std::thread([this, key] { run_deployment(key); });
    }
  }
  // The checkpoint stays before the event that started any deployment still
  // running, so after a crash that deployment is seen again and failed.
  std::uint64_t checkpoint = batch.back().position;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [key, running] : running_) checkpoint = std::min(checkpoint, running.cause_position - 1);
  }
  return checkpoints_.save(name(), checkpoint);
}

void Executor::run_deployment(const DeploymentKey& key) {
  Status done = run_steps(key);
  if (!done) {
    std::cerr << "cascade: deployment " << key_text(key) << " stopped: " << done.error().message << "\n";
    Invocation abort{kActor, "executor/" + key_text(key) + "/abort", ""};
    auto aborted = service_.execute(std::get<0>(key), AbortDeployment{std::get<1>(key), std::get<2>(key),
                                                                      "executor error: " + done.error().message},
                                    abort);
    if (!aborted && !is_superseded(aborted.error())) {
      std::cerr << "cascade: could not record the failure of " << key_text(key) << ": "
                << aborted.error().message << "\n";
    }
  }
  {
    std::lock_guard lock(mutex_);
    auto it = running_.find(key);
    if (it != running_.end()) {
      finished_threads_.push_back(std::move(it->second.thread));
      running_.erase(it);
    }
  }
  if (on_idle_change_) on_idle_change_();
}

std::map<std::string, std::string> Executor::step_environment(const ReleaseState& release,
                                                              const StageDefinition& stage,
                                                              const StepDefinition& step) const {
  std::map<std::string, std::string> env = options_.base_env;
  for (const auto& [k, v] : release.definition.variables) env[k] = v;
  for (const auto& [k, v] : stage.variables) env[k] = v;
  for (const auto& [k, v] : release.variables) env[k] = v;
  for (const auto& [k, v] : step.env) env[k] = v;
  env["CASCADE_RELEASE_ID"] = release.id;
  env["CASCADE_RELEASE_NAME"] = release.id;
  env["CASCADE_PIPELINE"] = release.pipeline;
  env["CASCADE_STAGE"] = stage.name;
  env["CASCADE_ARTIFACT_VERSION"] = release.artifact.version;
  env["CASCADE_ARTIFACT_PATH"] = release.artifact.path;
  return env;
}

Status Executor::run_steps(const DeploymentKey& key) {
  const auto& [release_id, stage_name, attempt] = key;
  CASCADE_TRY(release, service_.load(release_id));
  const StageDefinition* stage = release.definition.find_stage(stage_name);
  if (stage == nullptr) return make_error(ErrorCode::kNotFound, "stage '" + stage_name + "' is not defined");
  const std::string work_dir =
      options_.work_root + "/" + release_id + "/" + stage_name + "/" + std::to_string(attempt);
  const std::string prefix = "executor/" + key_text(key) + "/step/";

  for (std::size_t i = 0; i < stage->steps.size(); ++i) {
    const StepDefinition& step = stage->steps[i];
    const int index = static_cast<int>(i);
    CASCADE_TRY(service_.execute(release_id, RecordStepStarted{stage_name, attempt, index},
                                 Invocation{kActor, prefix + std::to_string(i) + "/start", ""}));

    const StepLogKey log_key{release_id, stage_name, attempt, index};
    events::Sha256 digest;
    Status log_status = success();
    StepRequest request;
    request.command = step.run;
    request.env = step_environment(release, *stage, step);
    request.work_dir = work_dir;
    request.timeout = std::chrono::seconds(step.timeout_s);
    request.on_line = [&](const LogLine& line) {
      digest.update(digest_bytes(line));
      if (log_status) log_status = logs_.append_line(log_key, line);
    };
    const StepOutcome outcome = runner_.run(request);
    CASCADE_TRY(log_status);
    // The digest's event is appended only once the lines it covers are durable.
    CASCADE_TRY(logs_.flush());

    RecordStepFinished finished;
    finished.stage = stage_name;
    finished.attempt = attempt;
    finished.step_index = index;
    finished.succeeded = outcome.succeeded();
    finished.exit_code = outcome.exit_code;
    finished.duration_ms = outcome.duration_ms;
    finished.log_digest = digest.finish();
    if (!finished.succeeded) finished.reason = failure_reason(outcome, step);
    CASCADE_TRY(service_.execute(release_id, finished, Invocation{kActor, prefix + std::to_string(i) + "/finish", ""}));
    if (!finished.succeeded) break;
  }
  return success();
}

}  // namespace cascade::engine
