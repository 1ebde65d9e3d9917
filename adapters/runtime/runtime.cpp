#include "adapters/runtime/runtime.hpp"

#include "adapters/rocksdb/rocksdb_env.hpp"

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace cascade::adapters {

namespace {

// What a step inherits from the process that runs the engine; nothing else
// of its environment (tokens, credentials) leaks into steps.
std::map<std::string, std::string> inherited_environment() {
  std::map<std::string, std::string> env;
  for (const char* name : {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER"}) {
    if (const char* value = std::getenv(name)) env[name] = value;
  }
  if (env.count("PATH") == 0) env["PATH"] = "/usr/local/bin:/usr/bin:/bin";
  return env;
}

std::string octal(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// Creates `path` (one level) with `mode`, or gives an existing dir that mode;
// a change of an existing dir's mode is added to `changes`. Existing data
// dirs made before the modes were set are tightened, not refused.
std::optional<Error> ensure_dir_mode(const std::string& path, mode_t mode, std::vector<std::string>& changes) {
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST) {
    return make_error(ErrorCode::kInvalidArgument, "cannot create data directory " + path + ": " + std::strerror(errno));
  }
  struct stat status {};
  if (::stat(path.c_str(), &status) != 0) {
    return make_error(ErrorCode::kInvalidArgument, "cannot inspect " + path + ": " + std::strerror(errno));
  }
  if (!S_ISDIR(status.st_mode)) return make_error(ErrorCode::kInvalidArgument, path + " is not a directory");
  const mode_t current = status.st_mode & 07777;
  // mkdir's mode passed through the umask; chmod sets it exactly.
  if (current == mode) return std::nullopt;
  if (::chmod(path.c_str(), mode) != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "cannot set mode " + octal(mode) + " on " + path + ": " + std::strerror(errno));
  }
  changes.push_back(path + ": " + octal(current) + " -> " + octal(mode));
  return std::nullopt;
}

}  // namespace

Result<std::unique_ptr<Runtime>> Runtime::open(const std::string& data_dir, RuntimeOptions options) {
  std::error_code ec;
  const auto parent = std::filesystem::absolute(data_dir).lexically_normal().parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) return make_error(ErrorCode::kInvalidArgument, "cannot create data directory " + data_dir + ": " + ec.message());
  std::unique_ptr<Runtime> runtime(new Runtime());
  runtime->data_dir_ = std::filesystem::absolute(data_dir).lexically_normal().string();
  {
    // The step user may pass through the data dir (0711: not list it) into
    // work/; log/ and projections/ are the engine's alone.
    const bool step_user = options.step_user.has_value();
    auto& changes = runtime->mode_changes_;
    const std::string& root = runtime->data_dir_;
    for (const auto& [path, mode] : {std::pair<std::string, mode_t>{root, step_user ? 0711 : 0700},
                                     {root + "/log", 0700},
                                     {root + "/run", 0700},
                                     {root + "/projections", 0700},
                                     {root + "/work", step_user ? 0711 : 0700}}) {
      if (auto problem = ensure_dir_mode(path, mode, changes)) return *problem;
    }
  }
  runtime->clock_ = options.clock != nullptr ? options.clock : &runtime->system_clock_;
  runtime->store_ = options.store;
  if (runtime->store_ == nullptr) {
    auto store = RocksStore::open(runtime->data_dir_ + "/log");
    if (!store && store.error().message.find("lock file") != std::string::npos) {
      // RocksDB's own words ("While lock file: …/LOCK: Resource temporarily
      // unavailable") do not say what to do.
      return make_error(ErrorCode::kUnavailable, data_dir + " is held by a running server (or another cascade "
                                                            "command); use --server to talk to it");
    }
    if (!store && store.error().code == ErrorCode::kStoreCorrupt) {
      return make_error(ErrorCode::kStoreCorrupt,
                        "the data directory " + data_dir + " is corrupt: " + store.error().message +
                            ". Retrying will not help. Keep a copy of " + data_dir + " as it is, run `cascade doctor "
                            "--data " + data_dir + "` for a report, and restore the data directory from a backup "
                            "(README.md, \"Exit codes\" and \"cascade doctor\")");
    }
    if (!store) return store.error();
    runtime->owned_store_ = std::move(store).value();
    runtime->store_ = runtime->owned_store_.get();
  }
  RocksStore& s = *runtime->store_;
  // Cascade's Env, as the log's store: RocksDB's LOG written best effort.
  auto projections = projections::ProjectionSet::open(runtime->data_dir_ + "/projections", s.log(), rocksdb_env());
  if (!projections && projections.error().code == ErrorCode::kStoreCorrupt) {
    // The read models are derived from the log: without them nothing is lost.
    return make_error(ErrorCode::kStoreCorrupt,
                      "the data directory " + data_dir + " is corrupt: " + projections.error().message +
                          ". The projections are rebuilt from the log: move " + runtime->data_dir_ +
                          "/projections aside (no server running) and start again");
  }
  if (!projections) return projections.error();
  runtime->projections_ = std::move(projections).value();
  engine::StepRunner* runner = options.runner;
  if (runner == nullptr) {
    runtime->process_runner_ =
        std::make_unique<ProcessStepRunner>(*runtime->clock_, runtime->data_dir_ + "/run", std::move(options.step_user));
    runner = runtime->process_runner_.get();
  }
  engine::ExecutorOptions executor;
  executor.work_root = runtime->data_dir_ + "/work";
  executor.base_env = options.base_env ? std::move(*options.base_env) : inherited_environment();
  executor.max_step_output_bytes = options.max_step_output_bytes;
  runtime->log_follow_ = std::make_unique<LogFollowHub>(s.step_logs(), s.log());
  runtime->engine_ = std::make_unique<engine::ReleaseEngine>(
      engine::EnginePorts{s.log(), s.checkpoints(), *runtime->log_follow_, s.secrets(), *runner, *runtime->clock_},
      std::move(executor));
  runtime->engine_->add(*runtime->log_follow_);
  for (projections::Projection* projection : runtime->projections_->all()) runtime->engine_->add(*projection);
  return runtime;
}

Runtime::~Runtime() { stop(); }

void Runtime::settle() {
  while (!engine_->settle(std::chrono::hours(1))) {
  }
}

void Runtime::stop() {
  if (engine_) engine_->stop();
}

}  // namespace cascade::adapters
