// What every `cascade` subcommand shares: the common options, how errors
// are reported (and which exit code each error code gives), whether a
// command talks to a server or opens a data directory, and a Session that
// opens the data directory and runs the engine while a command works.
#pragma once

#include "tools/api_client.hpp"
#include "tools/format.hpp"
#include "adapters/runtime/runtime.hpp"

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

namespace cascade::tools {

// The commands open a data directory through the composition root.
using adapters::Runtime;

struct Common {
  std::string data_dir;
  bool json = false;
  std::string actor;
  // The caller's idempotency key for a mutating command: repeating the
  // command with the same key changes nothing (empty: a fresh key).
  std::string command_id;
  // The server a command talks to, and the bearer token it sends (the
  // defaults come from CASCADE_SERVER and CASCADE_TOKEN when not given).
  std::string server;
  std::string token;
  std::string ca_file;  // --ca: the CAs an https server's certificate must chain to
  // Which of --data, --server and --as the command line gave.
  bool data_given = false;
  bool server_given = false;
  bool actor_given = false;
};

std::string default_data_dir();
std::string default_actor();
inline constexpr const char* kDefaultServer = "http://127.0.0.1:8080";

// Where a command that works either way does its work.
enum class Mode { kOffline, kServer };

// --data DIR → offline, --server URL → the server; both given is an error
// naming both. Without either flag: CASCADE_DATA → offline, else the server
// (CASCADE_SERVER or http://127.0.0.1:8080); CASCADE_DATA and CASCADE_SERVER
// both set is an error too. Over a server the acting user is the token's
// owner, so --as is refused there; offline, `actor_required` makes --as
// mandatory. kInvalidArgument with the reason.
Result<Mode> choose_mode(const Common& common, bool actor_required = false);

// The client for common.server (or the default) with common.token (or
// CASCADE_TOKEN) and common.ca_file (or CASCADE_CA).
Result<ApiClient> api_client(const Common& common);

// "/api/v1/releases/<id>": where the server serves a release (the id URL-encoded).
std::string release_path(const std::string& release_id);

// 2 invalid input, 3 not found, 4 the state does not allow it, 5 not
// permitted, 6 lost races, 7 stored data failed verification, 8 the data
// directory is corrupt (its store cannot be opened), 1 otherwise.
int exit_code_for(ErrorCode code);
// Prints the error (JSON on stdout with --json, else on stderr) and returns its exit code.
int report(const Error& error, bool json);

// Only the commands that set a data directory up (`pipeline apply`, `demo`,
// `serve`) create one; every other offline command needs an existing one, so
// a mistyped --data or a forgotten --server is an error naming the path
// instead of an empty directory, a fresh secret.key and an empty answer.
enum class DataDir { kMustExist, kCreate };
// kNotFound naming the directory when it holds no event log.
Status existing_data_dir(const std::string& data_dir);
// Runtime::open of a directory that passes existing_data_dir, engine not started.
Result<std::unique_ptr<Runtime>> open_existing_runtime(const std::string& data_dir);

// Opens the data directory and starts the engine, printing the timeline of
// what happens from now on unless the output is JSON.
class Session {
 public:
  static Result<std::unique_ptr<Session>> start(const Common& common, DataDir data_dir = DataDir::kMustExist);
  Runtime& runtime() { return *runtime_; }
  ~Session();

 private:
  explicit Session(std::unique_ptr<Runtime> runtime) : runtime_(std::move(runtime)) {}
  std::unique_ptr<TimelinePrinter> printer_;  // outlived by runtime_, which runs it
  std::unique_ptr<Runtime> runtime_;
};

// "2026-11-29T02:00:00Z" → ms since the epoch (as the API reads times).
using adapters::http::api::parse_utc_time;

// --data, --json and --as on a subcommand that works on a data directory only.
void add_common_options(CLI::App* command, Common& common, bool actor_required = false);
// --data, --server, --token, --json and --as on a subcommand that works
// either way (see choose_mode).
void add_client_options(CLI::App* command, Common& common);
// --server, --token and --ca alone: for a command that reaches a server only
// to follow up on what it did elsewhere (publish-build --wait).
void add_server_options(CLI::App* command, Common& common);

// The release a person means by `id_or_name` offline: its id, or the display
// name one release carries (projections::release_id_of). Over a server the
// server resolves names in every release URL.
Result<std::string> release_id_of(Runtime& runtime, const std::string& id_or_name);

// Remote commands read what they just wrote: the release's summary once the
// server's read model has caught up with stream version `at_least` (a short
// bounded wait; kUnavailable naming the release after `timeout`).
Result<nlohmann::json> summary_at_least(ApiClient& client, const std::string& release_id, std::int64_t at_least,
                                        std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Parses the command line, running the chosen subcommand's callback. A
// command line CLI11 refuses exits 2 (the README's "invalid input") with the
// problem, a did-you-mean for a misspelt subcommand or option, and where the
// usage is; --help exits 0. Returns the exit code, or nullopt when the
// subcommand ran (its callback set the exit code).
std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv);

// Each group of subcommands registers itself; its callbacks set `exit_code`.
void add_projection_commands(CLI::App& app, Common& common, int& exit_code);  // projection_commands.cpp
void add_audit_commands(CLI::App& app, Common& common, int& exit_code);       // audit_commands.cpp
void add_doctor_command(CLI::App& app, Common& common, int& exit_code);       // doctor_command.cpp
void add_serve_command(CLI::App& app, Common& common, int& exit_code);        // serve_command.cpp
void add_users_commands(CLI::App& app, Common& common, int& exit_code);       // serve_command.cpp

}  // namespace cascade::tools
