// `cascade serve`: the engine and the HTTP API in one long-running process.
#include "adapters/http/api/routes.hpp"
#include "adapters/http/auth.hpp"
#include "adapters/http/server.hpp"
#include "adapters/metrics/engine_metrics.hpp"
#include "tools/cli_support.hpp"
#include "tools/kafka_wiring.hpp"

#include <atomic>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <pthread.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

namespace cascade::tools {
namespace {

namespace http = adapters::http;

// "127.0.0.1:8080", "[::1]:8080", ":8080" (loopback) → address and port.
Result<std::pair<std::string, std::uint16_t>> parse_listen(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) return make_error(ErrorCode::kInvalidArgument, "--listen '" + text + "': expected HOST:PORT");
  std::string host = text.substr(0, colon);
  const std::string port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "127.0.0.1";
  if (port_text.empty() || port_text.size() > 5 || port_text.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port_text) > 65535) {
    return make_error(ErrorCode::kInvalidArgument, "--listen '" + text + "': bad port '" + port_text + "'");
  }
  return std::make_pair(host, static_cast<std::uint16_t>(std::stoul(port_text)));
}

// What `serve` takes beyond where it listens and keeps its data.
struct ServeLimits {
  std::string artifacts_root;  // empty: DATA/artifacts
  std::size_t max_connections = 1024;
  std::size_t max_connections_per_client = 128;
  std::uint64_t max_step_output_mib = 64;
  std::size_t max_streams = 256;
  std::size_t max_streams_per_user = 16;
  std::uint64_t max_stream_lifetime_s = 3600;  // 0: no limit
  std::string tls_certificate_file;  // both set: HTTPS
  std::string tls_private_key_file;
  bool insecure_http = false;  // plain HTTP on a non-loopback address
  std::string step_user;  // --step-user; empty: steps run as the serve user
};

// Who steps run as. As root, an unprivileged --step-user is required: a step
// running as root could read secret.key and rewrite the event log. Not as
// root, the process cannot switch users, so only its own user is accepted.
Result<std::optional<adapters::StepIdentity>> choose_step_user(const std::string& name) {
  const bool root = ::geteuid() == 0;
  if (name.empty()) {
    if (root) {
      return make_error(ErrorCode::kInvalidArgument,
                        "refusing to run steps as root: pass --step-user NAME (an unprivileged user; tools/dev "
                        "creates cascade-step)");
    }
    return std::optional<adapters::StepIdentity>();
  }
  auto identity = adapters::resolve_step_identity(name);
  if (!identity) return make_error(ErrorCode::kInvalidArgument, "--step-user: " + identity.error().message);
  if (identity.value().uid == 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--step-user '" + name + "' is root (uid 0): refusing to run steps as root; name an "
                      "unprivileged user (tools/dev creates cascade-step)");
  }
  if (!root) {
    if (identity.value().uid != ::geteuid()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "--step-user '" + name + "': cascade serve runs as uid " + std::to_string(::geteuid()) +
                            ", not root, so it cannot switch steps to another user (omit --step-user to run steps "
                            "as this user, or start serve as root)");
    }
    // Steps already run as this user; setgroups would fail without privilege.
    return std::optional<adapters::StepIdentity>();
  }
  return std::optional<adapters::StepIdentity>(std::move(identity).value());
}

int serve(const std::string& data_dir, const std::string& listen, std::string users_path, const ServeLimits& limits) {
  // Block the signals before any thread starts, so that every thread inherits
  // the mask and only sigwait below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto endpoint = parse_listen(listen);
  if (!endpoint) return report(endpoint.error(), false);
  auto step_user = choose_step_user(limits.step_user);
  if (!step_user) return report(step_user.error(), false);

  if (users_path.empty()) {
    std::error_code ignored;
    const auto parent = std::filesystem::absolute(data_dir).lexically_normal().parent_path();
    std::filesystem::create_directories(parent, ignored);
    // The mode Runtime::open gives it (see runtime.hpp), so that a first
    // start reports no change of mode.
    ::mkdir(data_dir.c_str(), step_user.value() ? 0711 : 0700);
    users_path = data_dir + "/users.json";
    auto created = http::create_users_file_if_missing(users_path);
    if (!created) return report(created.error(), false);
    if (created.value()) {
      std::cout << "created " << users_path << " with user 'admin'; its token (shown only this once):\n  "
                << *created.value() << "\n"
                << std::flush;
    }
  }
  auto users = http::load_users_file(users_path);
  if (!users) return report(users.error(), false);
  auto authenticator = std::make_shared<const http::Authenticator>(std::move(users.value()));

  adapters::RuntimeOptions runtime_options;
  runtime_options.max_step_output_bytes = limits.max_step_output_mib << 20;
  runtime_options.step_user = step_user.value();
  auto runtime = Runtime::open(data_dir, runtime_options);
  if (!runtime) return report(runtime.error(), false);
  for (const std::string& change : runtime.value()->mode_changes()) {
    std::cout << "cascade serve: set the mode of " << change << "\n";
  }
  if (step_user.value()) {
    std::cout << "cascade serve: steps run as user '" << step_user.value()->name << "' (uid " << step_user.value()->uid
              << ")\n";
  }
  http::api::EventHub hub(runtime.value()->log());
  runtime.value()->add_observer(hub);
  std::atomic<bool> started{false};
  auto metrics = std::make_shared<adapters::metrics::MetricsRegistry>();
  auto engine_metrics = adapters::metrics::EngineMetrics::create(runtime.value()->log(), *metrics);
  if (!engine_metrics) return report(engine_metrics.error(), false);
  runtime.value()->add_observer(*engine_metrics.value());
  auto kafka = KafkaEdges::attach(kafka_serve_options(), *runtime.value(), *metrics);
  if (!kafka) return report(kafka.error(), false);
  http::api::ApiOptions api_options;
  api_options.artifacts_root = limits.artifacts_root;
  auto router =
      http::api::make_api_router(http::api::ApiContext::of(*runtime.value(), hub, metrics, started, api_options));
  if (!router) return report(router.error(), false);

  runtime.value()->start();
  started = true;
  kafka.value()->start();
  http::ServerOptions options;
  options.address = endpoint.value().first;
  options.port = endpoint.value().second;
  options.max_connections = limits.max_connections;
  options.max_connections_per_client = limits.max_connections_per_client;
  options.max_streams = limits.max_streams;
  options.max_streams_per_user = limits.max_streams_per_user;
  options.max_stream_lifetime = std::chrono::seconds(limits.max_stream_lifetime_s);
  options.tls_certificate_file = limits.tls_certificate_file;
  options.tls_private_key_file = limits.tls_private_key_file;
  options.allow_insecure_http = limits.insecure_http;
  options.log = [](std::string_view message) { std::cerr << "cascade serve: " << message << "\n"; };
  auto server = http::HttpServer::start(std::move(options), std::move(router.value()), authenticator, metrics);
  if (!server) {
    runtime.value()->stop();
    return report(server.error(), false);
  }
  const bool tls = !limits.tls_certificate_file.empty();
  std::cout << "cascade serve: listening on " << (tls ? "https://" : "http://")
            << (endpoint.value().first.find(':') != std::string::npos ? "[" + endpoint.value().first + "]"
                                                                        : endpoint.value().first)
            << ":" << server.value()->port() << "/api/v1 (data " << runtime.value()->data_dir() << ")\n"
            << std::flush;

  int received = 0;
  // SIGHUP re-reads the users file (add, rotate and revoke without a
  // restart) and the TLS certificate and key (a renewed certificate). A file
  // that does not load leaves what it holds as it was.
  while (sigwait(&signals, &received) == 0 && received == SIGHUP) {
    if (tls) {
      if (auto reloaded_tls = server.value()->reload_tls(); !reloaded_tls) {
        std::cerr << ("cascade serve: SIGHUP: keeping the TLS certificate as it was: " +
                      reloaded_tls.error().message + "\n");
      } else {
        std::cout << "cascade serve: SIGHUP: reloaded the TLS certificate " << limits.tls_certificate_file << "\n"
                  << std::flush;
      }
    }
    auto reloaded = http::load_users_file(users_path);
    if (!reloaded) {
      // One write, so a reader of the log never sees half the line.
      std::cerr << ("cascade serve: SIGHUP: keeping the users as they were: " + reloaded.error().message + "\n");
      continue;
    }
    const std::size_t count = reloaded.value().size();
    server.value()->replace_authenticator(std::make_shared<const http::Authenticator>(std::move(reloaded.value())));
    std::cout << "cascade serve: SIGHUP: reloaded " << count << " users from " << users_path << "\n" << std::flush;
  }
  std::cout << "cascade serve: " << (received == SIGINT ? "SIGINT" : "SIGTERM") << ", stopping\n" << std::flush;
  hub.close_all();
  server.value()->stop();
  kafka.value()->stop();
  runtime.value()->stop();
  return 0;
}

// ---- users -------------------------------------------------------------------

struct UsersOptions {
  std::string file;  // --users
  bool data_given = false;
  std::string name;
  std::string role;
  std::vector<std::string> groups;
};

// The users file a `users` command edits: --users FILE, else DATA/users.json.
Result<std::string> users_path(const Common& common, const UsersOptions& options) {
  if (!options.file.empty() && options.data_given) {
    return make_error(ErrorCode::kInvalidArgument, "both --users and --data given: name the users file one way");
  }
  return options.file.empty() ? common.data_dir + "/users.json" : options.file;
}

void print_token(const Common& common, const std::string& path, const std::string& name, const std::string& verb,
                 const std::string& token) {
  if (common.json) {
    std::cout << nlohmann::json{{"users_file", path}, {"name", name}, {"token", token}}.dump(2) << "\n";
    return;
  }
  std::cout << verb << " user '" << name << "' in " << path << "; its token (shown only this once):\n  " << token
            << "\n(a running cascade serve applies this when it receives SIGHUP: kill -HUP <its pid>)\n";
}

int users_add(const Common& common, const UsersOptions& options) {
  auto path = users_path(common, options);
  if (!path) return report(path.error(), common.json);
  auto role = http::parse_role(options.role);
  if (!role) {
    return report(make_error(ErrorCode::kInvalidArgument,
                             "--role '" + options.role + "': expected viewer, releaser, approver or admin"),
                  common.json);
  }
  std::error_code ignored;
  const auto parent = std::filesystem::path(path.value()).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ignored);
  auto token = http::add_user(path.value(), options.name, {*role}, options.groups);
  if (!token) return report(token.error(), common.json);
  print_token(common, path.value(), options.name, "added", token.value());
  return 0;
}

int users_rotate(const Common& common, const UsersOptions& options) {
  auto path = users_path(common, options);
  if (!path) return report(path.error(), common.json);
  auto token = http::rotate_user_token(path.value(), options.name);
  if (!token) return report(token.error(), common.json);
  print_token(common, path.value(), options.name, "new token for", token.value());
  return 0;
}

int users_list(const Common& common, const UsersOptions& options) {
  auto path = users_path(common, options);
  if (!path) return report(path.error(), common.json);
  auto users = http::load_users_file(path.value());
  if (!users) return report(users.error(), common.json);
  auto joined = [](const auto& items, auto name_of) {
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : ", ") + std::string(name_of(item));
    return out;
  };
  if (common.json) {
    // Names, roles and groups; never the hashes (they are the file's business).
    nlohmann::json list = nlohmann::json::array();
    for (const auto& user : users.value()) {
      nlohmann::json roles = nlohmann::json::array();
      for (http::Role role : user.roles) roles.push_back(std::string(http::to_string(role)));
      list.push_back({{"name", user.name}, {"roles", roles}, {"groups", user.groups}});
    }
    std::cout << nlohmann::json{{"users_file", path.value()}, {"users", list}}.dump(2) << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& user : users.value()) {
    rows.push_back({user.name, joined(user.roles, [](http::Role r) { return http::to_string(r); }),
                    user.groups.empty() ? "-" : joined(user.groups, [](const std::string& g) { return g; })});
  }
  print_table(std::cout, {"USER", "ROLES", "GROUPS"}, rows);
  return 0;
}

}  // namespace

void add_users_commands(CLI::App& app, Common& common, int& exit_code) {
  auto options = std::make_shared<UsersOptions>();
  auto* users = app.add_subcommand(
      "users", "the users file of cascade serve (a running server re-reads it on SIGHUP)");
  users->require_subcommand(1);
  auto file_options = [&common, options](CLI::App* command) {
    command->add_option("--users", options->file, "the users file (default: DATA/users.json)");
    command->add_option("--data", common.data_dir, "data directory whose users.json to use (default $CASCADE_DATA or var/cascade)")
        ->each([options](const std::string&) { options->data_given = true; });
    command->add_flag("--json", common.json, "print JSON for scripts");
  };
  auto* add = users->add_subcommand("add", "add a user with a new token (printed once; the file keeps its SHA-256)");
  add->add_option("NAME", options->name)->required();
  add->add_option("--role", options->role, "viewer, releaser, approver or admin (each includes those before it)")
      ->required();
  add->add_option("--group", options->groups, "an approver group of pipelines the user belongs to (repeatable)");
  file_options(add);
  add->callback([&common, &exit_code, options] { exit_code = users_add(common, *options); });
  auto* rotate = users->add_subcommand("rotate", "give a user a new token; the old one stops working");
  rotate->add_option("NAME", options->name)->required();
  file_options(rotate);
  rotate->callback([&common, &exit_code, options] { exit_code = users_rotate(common, *options); });
  auto* list = users->add_subcommand("list", "users, their roles and groups (never tokens or hashes)");
  file_options(list);
  list->callback([&common, &exit_code, options] { exit_code = users_list(common, *options); });
}

void add_serve_command(CLI::App& app, Common& common, int& exit_code) {
  auto* command = app.add_subcommand("serve", "run the engine and the HTTP API until SIGTERM or SIGINT");
  auto listen = std::make_shared<std::string>("127.0.0.1:8080");
  auto users = std::make_shared<std::string>();
  auto limits = std::make_shared<ServeLimits>();
  command->add_option("--data", common.data_dir, "data directory")->default_val(default_data_dir());
  command->add_option("--artifacts-root", limits->artifacts_root,
                      "artifact paths of releases created over the API must lie inside it (default: DATA/artifacts)");
  command->add_option("--max-connections", limits->max_connections, "open connections at once")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  command->add_option("--max-connections-per-client", limits->max_connections_per_client,
                      "open connections from one client address")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  command->add_option("--max-streams", limits->max_streams, "open event streams at once (GET …/stream, log follows)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  command->add_option("--max-streams-per-user", limits->max_streams_per_user, "open event streams of one user")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  command->add_option("--max-stream-lifetime", limits->max_stream_lifetime_s,
                      "seconds after which an event stream ends (its client resumes with Last-Event-ID); 0: no limit")
      ->capture_default_str();
  command->add_option("--max-step-output", limits->max_step_output_mib,
                      "MiB of output one step may write before it is killed and fails")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  command->add_option("--listen", *listen, "HOST:PORT to listen on (port 0: any free port)")->capture_default_str();
  auto* certificate = command->add_option("--tls-cert", limits->tls_certificate_file,
                                          "serve HTTPS with this PEM certificate chain (leaf first; needs --tls-key)");
  auto* key = command->add_option("--tls-key", limits->tls_private_key_file,
                                  "the PEM private key of --tls-cert (not readable by every user)");
  certificate->needs(key);
  key->needs(certificate);
  command->add_flag("--insecure-http", limits->insecure_http,
                    "allow plain HTTP on a non-loopback --listen address (a TLS-terminating proxy is in front)")
      ->excludes(certificate);
  command->add_option("--step-user", limits->step_user,
                      "run steps as this unprivileged user (required when serve runs as root; it cannot read the "
                      "data dir's log, projections, secret.key or users.json)");
  command->add_option("--users", *users,
                      "users file (default: DATA/users.json, created with an admin token on first start)");
  add_kafka_serve_options(*command);
  command->callback([&common, &exit_code, listen, users, limits] {
    exit_code = serve(common.data_dir, *listen, *users, *limits);
  });
}

}  // namespace cascade::tools
