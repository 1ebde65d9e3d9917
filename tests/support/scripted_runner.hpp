// A StepRunner that runs no process: it answers from a script and records
// what ran, so engine tests control outcomes and observe concurrency.
#pragma once

#include "engine/ports.hpp"

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace cascade::testing {

class ScriptedStepRunner final : public engine::StepRunner {
 public:
  // The step whose command is `command` in stage `stage` exits with `code`.
  void fail(const std::string& stage, const std::string& command, int code) {
    std::lock_guard lock(mutex_);
    exit_codes_[{stage, command}] = code;
  }
  // The step `command` of `stage` does not finish before a step of
  // `other_stage` has started: proves both run at the same time (a serial
  // executor would make it give up and fail after `patience`).
  void hold_until_started(const std::string& stage, const std::string& command, const std::string& other_stage) {
    std::lock_guard lock(mutex_);
    holds_[{stage, command}] = other_stage;
  }

  // The command as a shell would run it: the "${NAME}" and ${NAME}
  // references a step's $(NAME) becomes (engine/step_command.hpp) replaced by
  // their values, so tests script and read commands as the pipeline says them.
  static std::string as_the_shell_runs_it(std::string command, const std::map<std::string, std::string>& env) {
    for (const auto& [name, value] : env) {
      for (const std::string& reference : {"\"${" + name + "}\"", "${" + name + "}"}) {
        for (std::size_t at = command.find(reference); at != std::string::npos;
             at = command.find(reference, at + value.size())) {
          command.replace(at, reference.size(), value);
        }
      }
    }
    return command;
  }

  engine::StepOutcome run(const engine::StepRequest& request) override {
    const std::string stage = request.env.at("CASCADE_STAGE");
    const std::string command = as_the_shell_runs_it(request.command, request.env);
    std::unique_lock lock(mutex_);
    command_lines_.push_back(request.command);
    started_.push_back(stage + ":" + command);
    changed_.notify_all();
    engine::StepOutcome outcome;
    outcome.exit_code = 0;
    auto hold = holds_.find({stage, command});
    if (hold != holds_.end()) {
      const std::string other = hold->second;
      const bool met = changed_.wait_for(lock, patience, [&] {
        for (const auto& s : started_) {
          if (s.rfind(other + ":", 0) == 0) return true;
        }
        return false;
      });
      if (!met) outcome.exit_code = 99;
    }
    auto code = exit_codes_.find({stage, command});
    if (code != exit_codes_.end()) outcome.exit_code = code->second;
    if (request.on_line) {
      lock.unlock();
      request.on_line({0, "stdout", stage + " ran " + command});
      lock.lock();
    }
    environments_.push_back(request.env);
    return outcome;
  }

  std::vector<std::string> started() const {
    std::lock_guard lock(mutex_);
    return started_;
  }
  // The command lines as the engine passed them (what `ps` would show).
  std::vector<std::string> command_lines() const {
    std::lock_guard lock(mutex_);
    return command_lines_;
  }
  std::vector<std::map<std::string, std::string>> environments() const {
    std::lock_guard lock(mutex_);
    return environments_;
  }

  std::chrono::milliseconds patience{10'000};

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::pair<std::string, std::string>, int> exit_codes_;
  std::map<std::pair<std::string, std::string>, std::string> holds_;
  std::vector<std::string> started_;
  std::vector<std::string> command_lines_;
  std::vector<std::map<std::string, std::string>> environments_;
};

}  // namespace cascade::testing
