// ReleaseEngine — the engine as one running thing: the command service and
// the reactors that follow the log (orchestrator, executor, scheduler), plus
// any reactor a caller adds (a projection, a printer). The only place that
// wires them; `cascade` and the tests use it alike.
#pragma once

#include "engine/executor.hpp"
#include "engine/orchestrator.hpp"
#include "engine/ports.hpp"
#include "engine/reactor.hpp"
#include "engine/release_service.hpp"
#include "engine/scheduler.hpp"

#include <memory>

namespace cascade::engine {

// What the engine needs from outside. Each must outlive the engine.
struct EnginePorts {
  events::EventLog& log;
  CheckpointStore& checkpoints;
  StepLogStore& step_logs;
  SecretStore& secrets;
  StepRunner& runner;
  const Clock& clock;
};

class ReleaseEngine {
 public:
  ReleaseEngine(EnginePorts ports, ExecutorOptions options);
  ~ReleaseEngine();  // stops
  ReleaseEngine(const ReleaseEngine&) = delete;
  ReleaseEngine& operator=(const ReleaseEngine&) = delete;

  ReleaseService& service() { return service_; }
  // REQUIRES: before start(); `reactor` outlives the engine.
  void add(Reactor& reactor) { reactors_.add(reactor); }
  void start() { reactors_.start(); }
  // Stops the reactors and the deployments they run.
  void stop() { reactors_.stop(); }
  // Blocks until every reactor has handled every durable event and nothing
  // runs or is due (the releases are done or wait for a person or a time), or
  // `timeout`; returns whether it settled.
  bool settle(std::chrono::milliseconds timeout) { return reactors_.wait_until_quiescent(timeout); }
  std::string last_error() const { return reactors_.last_error(); }
  std::vector<ReactorStatus> reactor_status() const { return reactors_.status(); }
  const Quarantine& quarantine() const { return service_.quarantine(); }
  // Steps of the wall clock the scheduler has seen (and logged) since start.
  std::uint64_t clock_steps() const { return scheduler_.clock_steps(); }

 private:
  ReleaseService service_;
  ReactorRunner reactors_;
  Orchestrator orchestrator_;
  Executor executor_;
  Scheduler scheduler_;
};

}  // namespace cascade::engine
