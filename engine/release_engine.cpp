#include "engine/release_engine.hpp"

namespace cascade::engine {

ReleaseEngine::ReleaseEngine(EnginePorts ports, ExecutorOptions options)
    : service_(ports.log, ports.secrets, ports.clock),
      reactors_(ports.log, &service_.quarantine(), &ports.clock),
      orchestrator_(service_, ports.checkpoints),
      executor_(service_, ports.runner, ports.step_logs, ports.secrets, ports.checkpoints, ports.clock,
                std::move(options), [this] { reactors_.notify_progress(); }),
      scheduler_(service_, ports.checkpoints, ports.clock, [this] { reactors_.notify_progress(); }) {
  reactors_.add(orchestrator_);
  reactors_.add(executor_);
  reactors_.add(scheduler_);
}

ReleaseEngine::~ReleaseEngine() { stop(); }

}  // namespace cascade::engine
