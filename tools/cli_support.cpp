#include "tools/cli_support.hpp"

#include "events/did_you_mean.hpp"
#include "events/time.hpp"
#include "projections/projection_set.hpp"
#include "projections/release_list.hpp"

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>

namespace cascade::tools {

std::string default_data_dir() {
  const char* env = std::getenv("CASCADE_DATA");
  return env != nullptr ? env : "var/cascade";
}

std::string default_actor() {
  const char* user = std::getenv("USER");
  return user != nullptr && *user != '\0' ? user : "cli";
}

int exit_code_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return 2;
    case ErrorCode::kNotFound: return 3;
    case ErrorCode::kFailedPrecondition: return 4;
    case ErrorCode::kPermissionDenied: return 5;
    case ErrorCode::kAborted: return 6;
    case ErrorCode::kDataLoss: return 7;
    case ErrorCode::kStoreCorrupt: return 8;
    default: return 1;
  }
}

int report(const Error& error, bool json) {
  if (json) {
    nlohmann::json details = nlohmann::json::array();
    for (const Problem& p : error.details) details.push_back({{"path", p.path}, {"message", p.message}});
    std::cout << nlohmann::json{{"error", {{"code", to_string(error.code)}, {"message", error.message}, {"details", details}}}}.dump(2)
              << "\n";
  } else {
    std::cerr << "cascade: error: " << error.message << "\n";
    for (const Problem& p : error.details) {
      // A problem of the whole document is often the message itself: once is enough.
      if (p.path.empty() && error.message.find(p.message) != std::string::npos) continue;
      std::cerr << "  " << (p.path.empty() ? "(document)" : p.path) << ": " << p.message << "\n";
    }
  }
  return exit_code_for(error.code);
}

Status existing_data_dir(const std::string& data_dir) {
  std::error_code error;
  // RocksDB's CURRENT names the live manifest: present in every opened log.
  if (std::filesystem::is_regular_file(std::filesystem::path(data_dir) / "log" / "CURRENT", error)) return success();
  const std::string path = std::filesystem::absolute(data_dir, error).lexically_normal().string();
  const bool exists = std::filesystem::exists(data_dir, error);
  return make_error(ErrorCode::kNotFound,
                    (exists ? "no Cascade data in " + path + " (it has no event log, log/)"
                            : "no data directory " + path) +
                        ": give --data the directory `cascade serve` or `cascade pipeline apply --data` set up, "
                        "or talk to a running server with --server");
}

Result<std::unique_ptr<Runtime>> open_existing_runtime(const std::string& data_dir) {
  CASCADE_TRY(existing_data_dir(data_dir));
  return Runtime::open(data_dir);
}

Result<std::unique_ptr<Session>> Session::start(const Common& common, DataDir data_dir) {
  if (data_dir == DataDir::kMustExist) {
    CASCADE_TRY(existing_data_dir(common.data_dir));
  }
  CASCADE_TRY(runtime, Runtime::open(common.data_dir));
  std::unique_ptr<Session> session(new Session(std::move(runtime)));
  if (!common.json) {
    session->printer_ = std::make_unique<TimelinePrinter>(std::cout, session->runtime_->log().head());
    session->runtime_->add_observer(*session->printer_);
  }
  session->runtime_->start();
  return session;
}

Session::~Session() { runtime_->stop(); }

void add_common_options(CLI::App* command, Common& common, bool actor_required) {
  command->add_option("--data", common.data_dir, "data directory (default $CASCADE_DATA or var/cascade)");
  command->add_flag("--json", common.json, "print JSON for scripts");
  auto* as = command->add_option("--as", common.actor, "who is acting (default $USER)");
  if (actor_required) as->required();
}

void add_server_options(CLI::App* command, Common& common) {
  command->add_option("--server", common.server, "the cascade serve to talk to (default $CASCADE_SERVER or " +
                                                      std::string(kDefaultServer) + ")")
      ->each([&common](const std::string&) { common.server_given = true; });
  command->add_option("--token", common.token, "bearer token for the server (default $CASCADE_TOKEN)");
  command->add_option("--ca", common.ca_file,
                      "an https server's certificate must chain to a CA in this PEM file (default $CASCADE_CA, else "
                      "the system's CAs)");
}

void add_client_options(CLI::App* command, Common& common) {
  add_server_options(command, common);
  command->add_option("--data", common.data_dir,
                      "work offline on this data directory instead of a server (default $CASCADE_DATA)")
      ->each([&common](const std::string&) { common.data_given = true; });
  command->add_flag("--json", common.json, "print JSON for scripts");
  command->add_option("--as", common.actor, "offline only: who is acting (over a server: the token's user)")
      ->each([&common](const std::string&) { common.actor_given = true; });
}

namespace {

std::string environment(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

}  // namespace

std::string release_path(const std::string& release_id) { return "/api/v1/releases/" + url_encode(release_id); }

Result<Mode> choose_mode(const Common& common, bool actor_required) {
  Mode mode;
  if (common.data_given && common.server_given) {
    return make_error(ErrorCode::kInvalidArgument, "both --server " + common.server + " and --data " + common.data_dir +
                                                       " given: use --server to talk to a running cascade serve, "
                                                       "or --data to work offline on a directory no server holds");
  }
  if (common.data_given) {
    mode = Mode::kOffline;
  } else if (common.server_given) {
    mode = Mode::kServer;
  } else if (!environment("CASCADE_DATA").empty()) {  // common.data_dir defaults to it
    if (!environment("CASCADE_SERVER").empty()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "both CASCADE_SERVER and CASCADE_DATA are set: unset one, or choose with --server or --data");
    }
    mode = Mode::kOffline;
  } else {
    mode = Mode::kServer;
  }
  if (mode == Mode::kServer && common.actor_given) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--as works offline only (with --data): over a server the acting user is the token's owner");
  }
  if (mode == Mode::kOffline && actor_required && !common.actor_given) {
    return make_error(ErrorCode::kInvalidArgument, "--as USER is required offline (with --data): who is acting?");
  }
  return mode;
}

Result<ApiClient> api_client(const Common& common) {
  std::string server = common.server_given ? common.server : environment("CASCADE_SERVER");
  if (server.empty()) server = kDefaultServer;
  const std::string token = common.token.empty() ? environment("CASCADE_TOKEN") : common.token;
  ApiClientOptions options;
  options.ca_file = common.ca_file.empty() ? environment("CASCADE_CA") : common.ca_file;
  return ApiClient::create(server, token, options);
}

Result<nlohmann::json> summary_at_least(ApiClient& client, const std::string& release_id, std::int64_t at_least,
                                        std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::chrono::milliseconds pause(2);
  for (;;) {
    CASCADE_TRY(summary, client.get("/api/v1/releases/" + url_encode(release_id)));
    if (summary.value("version", std::int64_t{0}) >= at_least) return summary;
    if (std::chrono::steady_clock::now() >= deadline) {
      return make_error(ErrorCode::kUnavailable, "the server's summary of " + release_id +
                                                     " did not catch up with version " + std::to_string(at_least) +
                                                     " in time");
    }
    // The read model trails the log by milliseconds; poll with a growing pause.
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(100));
  }
}

namespace {

std::string quoted(const std::string& text) { return "'" + text + "'"; }

// What went wrong in `args`, told the way a person fixes it: the first
// unknown subcommand or option on the path the words take, with the closest
// known name. `usage` gets the command path whose --help explains it. Empty
// when every word is known (CLI11's own message says it better then).
std::string unknown_word(CLI::App& app, const std::vector<std::string>& args, std::string& usage) {
  CLI::App* command = &app;
  usage = app.get_name();
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") break;
    if (arg.size() > 1 && arg[0] == '-') {
      const std::string name = arg.substr(0, arg.find('='));
      const CLI::Option* option = nullptr;
      for (CLI::App* scope = command; scope != nullptr && option == nullptr; scope = scope->get_parent()) {
        option = scope->get_option_no_throw(name);
      }
      if (option != nullptr) {
        if (arg.find('=') == std::string::npos && option->get_expected_min() > 0) ++i;  // its value
        continue;
      }
      std::vector<std::string> names;
      for (const CLI::Option* known : command->get_options()) {
        for (const std::string& long_name : known->get_lnames()) names.push_back("--" + long_name);
      }
      const std::vector<std::string_view> candidates(names.begin(), names.end());
      const auto guess = events::did_you_mean(name, candidates);
      return "unknown option " + name + " for `" + usage + "`" + (guess ? " (did you mean " + *guess + "?)" : "");
    }
    const auto subcommands = command->get_subcommands([](CLI::App*) { return true; });
    CLI::App* next = nullptr;
    for (CLI::App* subcommand : subcommands) {
      if (subcommand->check_name(arg)) next = subcommand;
    }
    if (next != nullptr) {
      command = next;
      usage += " " + next->get_name();
      continue;
    }
    // A word that is not a subcommand where one is required.
    if (!subcommands.empty() && command->get_require_subcommand_min() > 0) {
      std::vector<std::string_view> names;
      for (CLI::App* subcommand : subcommands) names.emplace_back(subcommand->get_name());
      const auto guess = events::did_you_mean(arg, names);
      std::string known;
      for (std::string_view name : names) known += (known.empty() ? "" : ", ") + std::string(name);
      return "unknown command " + quoted(arg) + " for `" + usage + "`" +
             (guess ? " (did you mean " + quoted(*guess) + "?)" : " (one of: " + known + ")");
    }
  }
  return "";
}

}  // namespace

std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
    return std::nullopt;
  } catch (const CLI::ParseError& error) {
    if (error.get_exit_code() == 0) return app.exit(error);  // --help
    std::vector<std::string> args(argv + 1, argv + argc);
    std::string usage;
    std::string problem = unknown_word(app, args, usage);
    if (problem.empty()) problem = error.what();
    std::cerr << "cascade: error: " << problem << "\n"
              << "  run `" << usage << " --help` for its usage\n";
    return 2;
  }
}

Result<std::string> release_id_of(Runtime& runtime, const std::string& id_or_name) {
  return projections::release_id_of(runtime.log(), runtime.projections().releases(), id_or_name);
}

}  // namespace cascade::tools
