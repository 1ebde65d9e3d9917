// What every `cascade` subcommand shares: the common options, how errors
// are reported (and which exit code each error code gives), and a Session
// that opens the data directory and runs the engine while a command works.
#pragma once

#include "tools/format.hpp"
#include "tools/runtime.hpp"

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

namespace cascade::tools {

struct Common {
  std::string data_dir;
  bool json = false;
  std::string actor;
  // The caller's idempotency key for a mutating command: repeating the
  // command with the same key changes nothing (empty: a fresh key).
  std::string command_id;
};

std::string default_data_dir();
std::string default_actor();

// 2 invalid input, 3 not found, 4 the state does not allow it, 5 not
// permitted, 6 lost races, 7 stored data failed verification, 1 otherwise.
int exit_code_for(ErrorCode code);
// Prints the error (JSON on stdout with --json, else on stderr) and returns its exit code.
int report(const Error& error, bool json);

// Opens the data directory and starts the engine, printing the timeline of
// what happens from now on unless the output is JSON.
class Session {
 public:
  static Result<std::unique_ptr<Session>> start(const Common& common);
  Runtime& runtime() { return *runtime_; }
  ~Session();

 private:
  explicit Session(std::unique_ptr<Runtime> runtime) : runtime_(std::move(runtime)) {}
  std::unique_ptr<TimelinePrinter> printer_;  // outlived by runtime_, which runs it
  std::unique_ptr<Runtime> runtime_;
};

// "2026-11-29T02:00:00Z", seconds and milliseconds optional, UTC only → ms
// since the epoch; kInvalidArgument naming the text otherwise.
Result<events::Timestamp> parse_utc_time(const std::string& text);

// --data, --json and --as on a subcommand.
void add_common_options(CLI::App* command, Common& common, bool actor_required = false);

// Each group of subcommands registers itself; its callbacks set `exit_code`.
void add_projection_commands(CLI::App& app, Common& common, int& exit_code);  // projection_commands.cpp
void add_audit_commands(CLI::App& app, Common& common, int& exit_code);       // audit_commands.cpp
void add_serve_command(CLI::App& app, Common& common, int& exit_code);        // serve_command.cpp

}  // namespace cascade::tools
