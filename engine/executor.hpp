// The executor: owns the deployment queue and runs deployments.
//
// It starts the deployment of every stage that is ready (triggered, or
// approved and no longer deferred) as the stage's queue policy allows —
// max_parallel deployments of a stage across releases, in release order when
// limited; under deploy_latest, older releases waiting for the stage are
// superseded by the newest — and runs its steps through the StepRunner, each
// deployment on its own thread, so stages triggered together really run at
// the same time. Every step's start and end goes through ReleaseService as a
// command; a canceled stage has its process group killed.
#pragma once

#include "engine/ports.hpp"
#include "engine/reactor.hpp"
#include "engine/secret_masker.hpp"
#include "engine/release_service.hpp"

#include <functional>
#include <map>
#include <set>
#include <tuple>

namespace cascade::engine {

struct ExecutorOptions {
  // Each deployment runs in <work_root>/<release>/<stage>/<attempt>.
  std::string work_root;
  // The environment every step starts from (PATH, HOME, LANG …); pipeline,
  // stage and release variables, the step's env and the CASCADE_* variables
  // are laid over it in that order.
  std::map<std::string, std::string> base_env;
  // The most output one step may write (stdout and stderr together) before it
  // is killed and fails with that reason: a step cannot fill the disk of the
  // step log store.
  std::uint64_t max_step_output_bytes = 64ull << 20;
};

class Executor final : public Reactor {
 public:
  static constexpr const char* kActor = "cascade/executor";
  static constexpr std::string_view kMask = SecretMasker::kMask;

  // `on_idle_change` is called whenever a deployment finishes (ReactorRunner::notify_progress).
  Executor(ReleaseService& service, StepRunner& runner, StepLogStore& logs, SecretStore& secrets,
           CheckpointStore& checkpoints, const Clock& clock, ExecutorOptions options,
           std::function<void()> on_idle_change = {});
  ~Executor() override;  // cancels and waits for running deployments

  std::string name() const override { return "executor"; }
  Result<std::uint64_t> resume_position() override;
  Status handle(const std::vector<events::RecordedEvent>& batch) override;
  bool idle() const override;
  void on_start() override { stopping_ = false; }
  void on_stop() override;

  // The environment of one step, with secrets resolved; `secrets` receives
  // their values (for masking).
  Result<std::map<std::string, std::string>> step_environment(const ReleaseState& release,
                                                              const StageDefinition& stage,
                                                              const StepDefinition& step,
                                                              std::vector<std::string>* secrets) const;

 private:
  using DeploymentKey = std::tuple<std::string, std::string, int>;  // release, stage, attempt
  using QueueKey = std::pair<std::string, std::string>;             // pipeline, stage
  struct Running {
    std::int64_t number = 0;
    QueueKey queue;
    std::shared_ptr<std::atomic<bool>> cancel = std::make_shared<std::atomic<bool>>(false);
    std::thread thread;
  };
  struct Waiting {
    std::string release_id;
    int attempt = 0;
    bool ready = false;  // may start now (not awaiting an approval or a deferral)
  };
  struct Queue {
    int max_parallel = 0;
    OnNewRelease on_new_release = OnNewRelease::kQueueAll;
    std::map<std::int64_t, Waiting> waiting;  // by release number
  };

  // Tracks each release (load, track), starts what may start, and notes in
  // `changes` which releases opened or closed. While `resuming`, a
  // quarantined release is skipped and stays open.
  Status react(const std::vector<std::pair<std::string, std::uint64_t>>& releases, OpenReleaseChanges& changes,
               bool resuming);
  Status track(const ReleaseState& release, std::uint64_t position);
  // Whether a stage of the release waits to deploy or deploys: the releases
  // saved as open with the checkpoint.
  static bool holds(const ReleaseState& release);
  void note_saved(const OpenReleaseChanges& changes);
  Status supersede_older(const QueueKey& key);
  Status start_ready(const QueueKey& key);
  void run_deployment(const DeploymentKey& key, std::shared_ptr<std::atomic<bool>> cancel);
  // Executes `command` with the digest and count of the lines stored so far
  // of each step the deployment was running (AbortDeployment::stored_logs).
  Result<ReleaseState> abort_deployment(const std::string& release_id, AbortDeployment command,
                                        const Invocation& invocation);
  Status run_steps(const DeploymentKey& key, const std::atomic<bool>& cancel);
  void reap_finished();

  ReleaseService& service_;
  StepRunner& runner_;
  StepLogStore& logs_;
  SecretStore& secrets_;
  CheckpointStore& checkpoints_;
  const Clock& clock_;
  ExecutorOptions options_;
  std::function<void()> on_idle_change_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;
  std::map<DeploymentKey, Running> running_;
  std::map<QueueKey, Queue> queues_;
  std::vector<std::thread> finished_threads_;
  std::set<std::string> open_saved_;            // only the reactor's thread touches it
};

}  // namespace cascade::engine
