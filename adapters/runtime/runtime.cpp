#include "adapters/runtime/runtime.hpp"

#include <cstdlib>
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

}  // namespace

Result<std::unique_ptr<Runtime>> Runtime::open(const std::string& data_dir, RuntimeOptions options) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return make_error(ErrorCode::kInvalidArgument, "cannot create data directory " + data_dir + ": " + ec.message());
  std::unique_ptr<Runtime> runtime(new Runtime());
  runtime->data_dir_ = std::filesystem::absolute(data_dir).lexically_normal().string();
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
    if (!store) return store.error();
    runtime->owned_store_ = std::move(store).value();
    runtime->store_ = runtime->owned_store_.get();
  }
  RocksStore& s = *runtime->store_;
  CASCADE_TRY(projections, projections::ProjectionSet::open(runtime->data_dir_ + "/projections", s.log()));
  runtime->projections_ = std::move(projections);
  engine::StepRunner* runner = options.runner;
  if (runner == nullptr) {
    runtime->process_runner_ = std::make_unique<ProcessStepRunner>(*runtime->clock_, runtime->data_dir_ + "/run");
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
