// Step logs that can be followed while a deployment runs
// (GET …/stages/{stage}/logs?follow=true). Lines are not events, so the
// event stream cannot carry them: this decorator sits between the executor
// and the step-log store, hands every appended line to the streams following
// its stage attempt, and ends those streams when the attempt's finishing
// event reaches it as a reactor.
#pragma once

#include "adapters/http/sse_stream.hpp"
#include "engine/ports.hpp"
#include "engine/reactor.hpp"

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

namespace cascade::tools {

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

  // Sends every line stored so far for the attempt (steps in order, each
  // frame `event: line`, data {"step","at","stream","text"}), then each new
  // line as it is appended, without gaps or repeats, and finally
  // `event: end` (data {"release","stage","attempt"}) and closes, once the
  // attempt's deployment finished. `step_names` are the stage's steps by
  // index. `is_finished` is asked after subscribing, so an attempt that
  // finishes between the caller's check and the subscription still ends.
  Status follow(std::shared_ptr<adapters::http::SseStream> stream, const std::string& release_id,
                const std::string& stage, int attempt, std::vector<std::string> step_names,
                const std::function<Result<bool>()>& is_finished);

  std::size_t followers() const;

 private:
  using AttemptKey = std::tuple<std::string, std::string, int>;  // release, stage, attempt
  struct Follower {
    std::shared_ptr<adapters::http::SseStream> stream;
    std::vector<std::string> step_names;
  };
  void end(const AttemptKey& key);

  engine::StepLogStore& inner_;
  events::EventLog& log_;
  mutable std::mutex mutex_;
  std::map<AttemptKey, std::vector<Follower>> followers_;
};

}  // namespace cascade::tools
