// Step logs that can be followed while a deployment runs
// (GET …/stages/{stage}/logs?follow=true). Lines are not events, so the
// event stream cannot carry them: this decorator sits between the executor
// and the step-log store, hands every appended line to the sinks following
// its stage attempt, and ends those sinks when the attempt's finishing
// event reaches it as a reactor.
//
// Transport-neutral: the runtime always wires the hub (it must sit under the
// executor from the start, holding its lock across the store's append so a
// follower gets each line exactly once), and a transport follows through a
// LineSink — the HTTP API's is an event stream (adapters/http/api).
#pragma once

#include "engine/ports.hpp"
#include "engine/reactor.hpp"

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

namespace cascade::adapters {

// Where a follower's lines go. line() is called with the hub's lock held:
// it must not block for long (queue, like an event stream's backlog) nor
// call the hub.
class LineSink {
 public:
  virtual ~LineSink() = default;
  // One stored line of the step named `step`; false when the receiver is
  // gone (the sink is then dropped).
  virtual bool line(const std::string& step, const engine::LogLine& line) = 0;
  // The attempt's deployment finished: the last call.
  virtual void end(const std::string& release_id, const std::string& stage, int attempt) = 0;
  // Whether the receiver left (idle sinks are dropped when another follows).
  virtual bool closed() const = 0;
};

// Thread-safe.
class LogFollowHub final : public engine::StepLogStore, public engine::Reactor {
 public:
  // REQUIRES: `inner` and `log` outlive the hub.
  LogFollowHub(engine::StepLogStore& inner, events::EventLog& log) : inner_(inner), log_(log) {}

  // StepLogStore: the inner store's, and each appended line goes to the
  // followers of its attempt once the inner store took it.
  Status append_line(const engine::StepLogKey& key, const engine::LogLine& line) override;
  Status flush() override { return inner_.flush(); }
  Result<std::vector<engine::LogLine>> read(const engine::StepLogKey& key) override { return inner_.read(key); }

  // Reactor: keeps nothing; starts at the log's head.
  std::string name() const override { return "log-follow"; }
  Result<std::uint64_t> resume_position() override { return log_.head(); }
  Status handle(const std::vector<events::RecordedEvent>& batch) override;

  // Hands `sink` every line stored so far for the attempt (steps in order),
  // then each new line as it is appended, without gaps or repeats, and
  // finally end(), once the attempt's deployment finished. `step_names` are
  // the stage's steps by index. `is_finished` is asked after subscribing, so
  // an attempt that finishes between the caller's check and the
  // subscription still ends.
  Status follow(std::shared_ptr<LineSink> sink, const std::string& release_id,
                const std::string& stage, int attempt, std::vector<std::string> step_names,
                const std::function<Result<bool>()>& is_finished);

  std::size_t followers() const;

 private:
  using AttemptKey = std::tuple<std::string, std::string, int>;  // release, stage, attempt
  struct Follower {
    std::shared_ptr<LineSink> sink;
    std::vector<std::string> step_names;
  };
  void end(const AttemptKey& key);

  engine::StepLogStore& inner_;
  events::EventLog& log_;
  mutable std::mutex mutex_;
  std::map<AttemptKey, std::vector<Follower>> followers_;
};

}  // namespace cascade::adapters
