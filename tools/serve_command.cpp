// `cascade serve`: the engine and the HTTP API in one long-running process.
#include "adapters/http/auth.hpp"
#include "adapters/http/server.hpp"
#include "tools/api_routes.hpp"
#include "tools/cli_support.hpp"

#include <atomic>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <pthread.h>

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

int serve(const std::string& data_dir, const std::string& listen, std::string users_path) {
  // Block the signals before any thread starts, so that every thread inherits
  // the mask and only sigwait below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto endpoint = parse_listen(listen);
  if (!endpoint) return report(endpoint.error(), false);

  if (users_path.empty()) {
    std::error_code ignored;
    std::filesystem::create_directories(data_dir, ignored);
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

  auto runtime = Runtime::open(data_dir);
  if (!runtime) return report(runtime.error(), false);
  EventHub hub(runtime.value()->log());
  runtime.value()->add_observer(hub);
  std::atomic<bool> started{false};
  auto metrics = std::make_shared<http::MetricsRegistry>();
  auto router = make_api_router(*runtime.value(), hub, metrics, started);
  if (!router) return report(router.error(), false);

  runtime.value()->start();
  started = true;
  http::ServerOptions options;
  options.address = endpoint.value().first;
  options.port = endpoint.value().second;
  options.log = [](std::string_view message) { std::cerr << "cascade serve: " << message << "\n"; };
  auto server = http::HttpServer::start(std::move(options), std::move(router.value()), authenticator, metrics);
  if (!server) {
    runtime.value()->stop();
    return report(server.error(), false);
  }
  std::cout << "cascade serve: listening on http://"
            << (endpoint.value().first.find(':') != std::string::npos ? "[" + endpoint.value().first + "]"
                                                                        : endpoint.value().first)
            << ":" << server.value()->port() << "/api/v1 (data " << runtime.value()->data_dir() << ")\n"
            << std::flush;

  int received = 0;
  sigwait(&signals, &received);
  std::cout << "cascade serve: " << (received == SIGINT ? "SIGINT" : "SIGTERM") << ", stopping\n" << std::flush;
  hub.close_all();
  server.value()->stop();
  runtime.value()->stop();
  return 0;
}

}  // namespace

void add_serve_command(CLI::App& app, Common& common, int& exit_code) {
  auto* command = app.add_subcommand("serve", "run the engine and the HTTP API until SIGTERM or SIGINT");
  auto listen = std::make_shared<std::string>("127.0.0.1:8080");
  auto users = std::make_shared<std::string>();
  command->add_option("--data", common.data_dir, "data directory")->default_val(default_data_dir());
  command->add_option("--listen", *listen, "HOST:PORT to listen on (port 0: any free port)")->capture_default_str();
  command->add_option("--users", *users,
                      "users file (default: DATA/users.json, created with an admin token on first start)");
  command->callback([&common, &exit_code, listen, users] { exit_code = serve(common.data_dir, *listen, *users); });
}

}  // namespace cascade::tools
