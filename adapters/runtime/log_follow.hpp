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

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace cascade::adapters {

// A position in a stage attempt's log: the next line to read is line `line`
// (0-based) of step `step`. Written "<step>:<line>" for the last line handed
// over (the id of an event-stream frame, the `next` of a page), so a reader
// resumes after it.
struct LogCursor {
  int step = 0;
  std::uint64_t line = 0;

  // "<step>:<line>" of the line just before this cursor. REQUIRES: line > 0.
  std::string id_of_previous() const { return std::to_string(step) + ":" + std::to_string(line - 1); }
  // The cursor after the line named by `id` ("<step>:<line>"), or nullopt
  // when `id` is not of that form.
  static std::optional<LogCursor> after(std::string_view id);
};

// Where a follower's lines go. line() is called with the hub's lock held
// once the follower is live: it must not block for long (queue, like an
// event stream's backlog) nor call the hub.
class LineSink {
 public:
  virtual ~LineSink() = default;
  // One stored line: line `line_index` of step `step_index`, named `step`;
  // false when the receiver is gone (the sink is then dropped).
  virtual bool line(const std::string& step, int step_index, std::uint64_t line_index,
                    const engine::LogLine& line) = 0;
  // The attempt's deployment finished: the last call.
  virtual void end(const std::string& release_id, const std::string& stage, int attempt) = 0;
  // Whether the receiver left (idle sinks are dropped when another follows).
  virtual bool closed() const = 0;
  // How many more bytes the receiver takes before the current page is full
  // (0: hand over no more now; the catch-up continues in its next call).
  virtual std::size_t room() const = 0;
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
  Result<std::vector<engine::LogLine>> read_page(const engine::StepLogKey& key, std::uint64_t first_line,
                                                 std::size_t max_lines) override {
    return inner_.read_page(key, first_line, max_lines);
  }
  Status read_each(const engine::StepLogKey& key,
                   const std::function<Status(const engine::LogLine&)>& visit) override {
    return inner_.read_each(key, visit);
  }

  // Reactor: keeps nothing; starts at the log's head.
  std::string name() const override { return "log-follow"; }
  Result<std::uint64_t> resume_position() override { return log_.head(); }
  Status handle(const std::vector<events::RecordedEvent>& batch) override;

  // Follows an attempt's log from `from`: returns the catch-up's pager. Each
  // call hands `sink` the next page of stored lines (until sink->room() is 0)
  // and answers true while more remain; the call that catches up makes the
  // sink live — each new line as it is appended, without gaps or repeats,
  // then end() once the attempt's deployment finished — and answers false.
  // The stored lines are read outside the lock every step's output goes
  // through; it is taken only for the hand-over, to read what was appended
  // during the last page (at most a page). `step_names` are the stage's
  // steps by index. `is_finished` is asked after the sink went live, so an
  // attempt that finishes between the caller's check and the hand-over still
  // ends.
  std::function<Result<bool>()> follow(std::shared_ptr<LineSink> sink, const std::string& release_id,
                                       const std::string& stage, int attempt, std::vector<std::string> step_names,
                                       std::function<Result<bool>()> is_finished, LogCursor from = {});

  std::size_t followers() const;

 private:
  using AttemptKey = std::tuple<std::string, std::string, int>;  // release, stage, attempt
  struct Follower {
    std::shared_ptr<LineSink> sink;
    std::vector<std::string> step_names;
    LogCursor cursor;  // the next line it expects
  };
  struct CatchUp;
  Result<bool> next_page(CatchUp& catch_up);
  void end(const AttemptKey& key);

  engine::StepLogStore& inner_;
  events::EventLog& log_;
  mutable std::mutex mutex_;
  std::map<AttemptKey, std::vector<Follower>> followers_;
};

}  // namespace cascade::adapters
