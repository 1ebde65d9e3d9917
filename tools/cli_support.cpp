#include "tools/cli_support.hpp"

#include <cctype>
#include <cstdlib>
#include <ctime>
#include <iostream>

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
    for (const Problem& p : error.details) std::cerr << "  " << (p.path.empty() ? "(document)" : p.path) << ": " << p.message << "\n";
  }
  return exit_code_for(error.code);
}

Result<std::unique_ptr<Session>> Session::start(const Common& common) {
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

Result<events::Timestamp> parse_utc_time(const std::string& text) {
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == nullptr) end = strptime(text.c_str(), "%Y-%m-%dT%H:%M", &tm);
  std::int64_t millis = 0;
  if (end != nullptr && *end == '.') {
    ++end;
    int digits = 0;
    while (std::isdigit(static_cast<unsigned char>(*end))) {
      if (digits < 3) millis = millis * 10 + (*end - '0');
      ++digits;
      ++end;
    }
    if (digits == 0) end = nullptr;
    for (; digits > 0 && digits < 3; ++digits) millis *= 10;
  }
  if (end == nullptr || std::string(end) != "Z") {
    return make_error(ErrorCode::kInvalidArgument, "'" + text + "' is not a UTC time like 2026-11-29T02:00:00Z");
  }
  return static_cast<events::Timestamp>(timegm(&tm)) * 1000 + millis;
}

void add_common_options(CLI::App* command, Common& common, bool actor_required) {
  command->add_option("--data", common.data_dir, "data directory (default $CASCADE_DATA or var/cascade)");
  command->add_flag("--json", common.json, "print JSON for scripts");
  auto* as = command->add_option("--as", common.actor, "who is acting (default $USER)");
  if (actor_required) as->required();
}

}  // namespace cascade::tools
