// The executor: starts the deployment of every stage that is ready to deploy
// and runs its steps, in order, through the StepRunner — each deployment on
// its own thread, so stages triggered together really run at the same time.
// Every step's start and end goes through ReleaseService as a command.
#pragma once

#include "engine/ports.hpp"
#include "engine/reactor.hpp"
#include "engine/release_service.hpp"

#include <functional>
#include <list>
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
};

class Executor final : public Reactor {
 public:
  static constexpr const char* kActor = "cascade/executor";

  // `on_idle_change` is called whenever a deployment finishes (Engine::notify_progress).
  Executor(ReleaseService& service, StepRunner& runner, StepLogStore& logs, CheckpointStore& checkpoints,
           ExecutorOptions options, std::function<void()> on_idle_change = {});
  ~Executor() override;  // waits for running deployments

  std::string name() const override { return "executor"; }
  Result<std::uint64_t> resume_position() override;
  Status handle(const std::vector<events::RecordedEvent>& batch) override;
  bool idle() const override;

  // The environment of one step of a release's stage.
  std::map<std::string, std::string> step_environment(const ReleaseState& release, const StageDefinition& stage,
                                                      const StepDefinition& step) const;

 private:
  using DeploymentKey = std::tuple<std::string, std::string, int>;  // release, stage, attempt
  struct Running {
    std::uint64_t cause_position = 0;  // the checkpoint may not pass it while the deployment runs
    std::thread thread;
    bool finished = false;
  };

  void run_deployment(const DeploymentKey& key);
  Status run_steps(const DeploymentKey& key);
  void reap_finished();

  ReleaseService& service_;
  StepRunner& runner_;
  StepLogStore& logs_;
  CheckpointStore& checkpoints_;
  ExecutorOptions options_;
  std::function<void()> on_idle_change_;
  mutable std::mutex mutex_;
  std::map<DeploymentKey, Running> running_;
  std::vector<std::thread> finished_threads_;
};

}  // namespace cascade::engine
