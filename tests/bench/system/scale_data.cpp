#include "tests/bench/system/scale_data.hpp"

#include "adapters/rocksdb/store.hpp"
#include "engine/pipeline.hpp"
#include "engine/ports.hpp"
#include "engine/release.hpp"
#include "engine/release_service.hpp"
#include "events/codec.hpp"
#include "adapters/runtime/runtime.hpp"

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

namespace cascade::bench {
namespace {

using engine::Timestamp;
constexpr Timestamp kReleaseSpacingMs = 60'000;

std::string pipeline_text(const std::string& name) {
  return R"json({"name": ")json" + name + R"json(", "release_name_format": ")json" + name +
         R"json(-$(rev:r)_$(build)",
    "stages": [
      {"name": "dev", "trigger": {"after_release": true},
       "steps": [{"name": "deploy", "run": "deploy.sh dev", "timeout_s": 600}]},
      {"name": "prod", "trigger": {"manual": true},
       "steps": [{"name": "deploy", "run": "deploy.sh prod", "timeout_s": 600}]}
    ]})json";
}

std::string pipeline_name(int index) {
  std::string digits = std::to_string(index);
  if (digits.size() < 2) digits.insert(0, 2 - digits.size(), '0');
  return "Scale-" + digits;
}

struct PipelineVersion {
  std::string name;
  std::int64_t version = 0;
  engine::PipelineDefinition definition;
};

// Decides one release's whole history on its own folded state, the way the
// engine's command path would, and appends it to the log in one batch.
class ReleaseHistory {
 public:
  ReleaseHistory(const PipelineVersion& pipeline, std::int64_t number, Timestamp created_at,
                 engine::StepLogStore& step_logs)
      : pipeline_(pipeline),
        id_(pipeline.name + "-" + std::to_string(number)),
        stream_(engine::release_stream(id_)),
        number_(number),
        now_(created_at),
        step_logs_(step_logs) {}

  Status create() {
    engine::CreateRelease create;
    create.release_id = id_;
    create.number = number_;
    const std::string build = "1." + std::to_string(number_) + ".0";
    create.name = engine::format_release_name(pipeline_.definition.release_name_format, number_, build, now_);
    create.pipeline_version = pipeline_.version;
    create.definition = pipeline_.definition;
    create.artifact.version = build;
    create.artifact.path = "/artifacts/" + pipeline_.name + "/" + build;
    create.artifact.built_at = now_ - 5 * 60'000;
    create.trigger = "manual";
    return apply(create, "ci", "generator/" + id_ + "/create");
  }

  // The orchestrator's trigger of a stage whose condition holds now.
  Status trigger_automatically(const std::string& stage) {
    const engine::StageRecord* record = state_.find_stage(stage);
    auto reason = record == nullptr ? std::nullopt : engine::automatic_trigger_reason(state_, *record);
    if (!reason) return make_error(ErrorCode::kFailedPrecondition, id_ + ": stage " + stage + " is not due");
    return apply(engine::TriggerStage{stage, *reason}, "orchestrator", "orchestrator/" + id_ + "/" + stage + "/1");
  }

  Status deploy_manually(const std::string& stage, const std::string& actor) {
    now_ += 30 * 60'000;
    return apply(engine::DeployStage{stage}, actor, "generator/" + id_ + "/" + stage + "/deploy");
  }

  // The executor's events for the stage's current attempt, with the step's
  // log lines stored before the event that records their digest.
  Status deploy(const std::string& stage, bool succeeds) {
    const int attempt = state_.find_stage(stage)->attempt;
    const std::string prefix = "executor/" + id_ + "/" + stage + "/" + std::to_string(attempt);
    now_ += 150;
    CASCADE_TRY(apply(engine::StartDeployment{stage}, "executor", prefix + "/start"));
    now_ += 40;
    CASCADE_TRY(apply(engine::RecordStepStarted{stage, attempt, 0}, "executor", prefix + "/step/0/start/1"));
    const std::int64_t duration_ms = 20'000 + (number_ * 7919) % 40'000;
    std::vector<engine::LogLine> lines = {
        {now_ + 30, "stdout", "deploying " + state_.artifact.version + " to " + stage},
        {now_ + duration_ms / 2, "stdout", "rolled out 4 of 4 instances"},
        {now_ + duration_ms - 20, succeeds ? "stdout" : "stderr",
         succeeds ? "health check passed" : "health check failed: HTTP 503 from /healthz"},
    };
    const engine::StepLogKey key{id_, stage, attempt, 0};
    events::Sha256 digest;
    for (const engine::LogLine& line : lines) {
      digest.update(engine::digest_bytes(line));
      CASCADE_TRY(step_logs_.append_line(key, line));
    }
    now_ += duration_ms;
    engine::RecordStepFinished finished;
    finished.stage = stage;
    finished.attempt = attempt;
    finished.step_index = 0;
    finished.succeeded = succeeds;
    finished.exit_code = succeeds ? 0 : 1;
    finished.duration_ms = duration_ms;
    finished.log_digest = digest.finish();
    if (!succeeds) finished.reason = "exit code 1";
    CASCADE_TRY(apply(finished, "executor", prefix + "/step/0/finish/1"));
    now_ += 25;
    return apply(engine::FinishDeployment{stage, attempt}, "executor", prefix + "/finish");
  }

  // One synced append of the whole history: the step log lines written
  // above (unsynced) become durable with it, before anything refers to them
  // from outside this data set.
  Result<std::size_t> append(events::EventLog& log) {
    const std::size_t count = events_.size();
    CASCADE_TRY(log.append(stream_, 0, std::move(events_)));
    return count;
  }

 private:
  Status apply(const engine::Command& command, const std::string& actor, const std::string& command_id) {
    engine::CommandContext context;
    context.command_id = command_id;
    context.actor = actor;
    context.causation_id = command_id;
    context.now = now_;
    CASCADE_TRY(decided, engine::decide(state_, command, context));
    for (std::size_t i = 0; i < decided.size(); ++i) {
      events::RecordedEvent recorded;
      recorded.stream = stream_;
      recorded.version = state_.version + 1;
      recorded.recorded_at = now_;
      recorded.actor = actor;
      recorded.command_id = command_id;
      recorded.causation_id = command_id;
      recorded.correlation_id = id_;
      recorded.data = decided[i];
      engine::evolve(state_, recorded);
      events::NewEvent event;
      // As ReleaseService::envelope derives them.
      event.event_id = events::uuid_from_seed(stream_ + "\n" + command_id + "\n" + std::to_string(i));
      event.data = std::move(decided[i]);
      event.recorded_at = now_;
      event.actor = actor;
      event.command_id = command_id;
      event.causation_id = command_id;
      event.correlation_id = id_;
      events_.push_back(std::move(event));
    }
    return success();
  }

  const PipelineVersion& pipeline_;
  const std::string id_;
  const std::string stream_;
  const std::int64_t number_;
  Timestamp now_;
  engine::StepLogStore& step_logs_;
  engine::ReleaseState state_;
  std::vector<events::NewEvent> events_;
};

// Release i's history (see write_scale_data for the mix).
Result<std::size_t> write_release(int i, const std::vector<PipelineVersion>& pipelines, Timestamp first_release_at,
                                  adapters::RocksStore& store) {
  const PipelineVersion& pipeline = pipelines[static_cast<std::size_t>(i) % pipelines.size()];
  const std::int64_t number = i / static_cast<std::int64_t>(pipelines.size()) + 1;
  ReleaseHistory release(pipeline, number, first_release_at + i * kReleaseSpacingMs, store.step_logs());
  CASCADE_TRY(release.create());
  CASCADE_TRY(release.trigger_automatically("dev"));
  const bool dev_fails = i % 10 == 0;
  CASCADE_TRY(release.deploy("dev", !dev_fails));
  if (i % 5 != 0) {
    CASCADE_TRY(release.deploy_manually("prod", "alice"));
    CASCADE_TRY(release.deploy("prod", i % 25 != 3));
  }
  return release.append(store.log());
}

std::uint64_t bytes_under(const std::filesystem::path& dir) {
  std::uint64_t total = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec)) total += it->file_size(ec);
  }
  return total;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

Result<ScaleDataReport> write_scale_data(const ScaleDataOptions& options) {
  if (options.releases < 1 || options.pipelines < 1 || options.writers < 1) {
    return make_error(ErrorCode::kInvalidArgument, "releases, pipelines and writers must be at least 1");
  }
  const std::filesystem::path data = options.data_dir;
  if (std::filesystem::exists(data / "log")) {
    return make_error(ErrorCode::kInvalidArgument, options.data_dir + " already holds a log: generate into a new directory");
  }
  ScaleDataReport report;
  report.releases = options.releases;
  const Timestamp now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count();
  const Timestamp first_release_at = now - options.releases * kReleaseSpacingMs - 3'600'000;

  const auto append_started = std::chrono::steady_clock::now();
  {
    CASCADE_TRY(store, adapters::RocksStore::open((data / "log").string()));
    engine::ManualClock clock(first_release_at - 86'400'000);
    engine::ReleaseService service(store->log(), store->secrets(), clock);
    std::vector<PipelineVersion> pipelines;
    for (int p = 0; p < options.pipelines; ++p) {
      PipelineVersion pipeline;
      pipeline.name = pipeline_name(p);
      CASCADE_TRY(definition, engine::parse_pipeline_text(pipeline_text(pipeline.name)));
      CASCADE_TRY(version, service.apply_pipeline(definition, "admin"));
      pipeline.version = version;
      pipeline.definition = std::move(definition);
      pipelines.push_back(std::move(pipeline));
    }

    std::atomic<int> next{0};
    std::atomic<bool> failed{false};
    std::mutex error_mutex;
    Error first_error;
    std::vector<std::thread> writers;
    for (int w = 0; w < options.writers; ++w) {
      writers.emplace_back([&] {
        for (int i = next++; i < options.releases && !failed; i = next++) {
          auto written = write_release(i, pipelines, first_release_at, *store);
          if (!written) {
            std::lock_guard lock(error_mutex);
            if (!failed.exchange(true)) first_error = written.error();
          }
        }
      });
    }
    for (std::thread& writer : writers) writer.join();
    if (failed) return first_error;
    report.events = store->log().head();
  }
  report.append_seconds = seconds_since(append_started);

  // The read models and the reactors follow the log from their checkpoints,
  // as `cascade serve` would on its first start; afterwards every checkpoint
  // is at the head, so a start of the server replays nothing.
  const auto catch_up_started = std::chrono::steady_clock::now();
  {
    CASCADE_TRY(runtime, adapters::Runtime::open(options.data_dir));
    runtime->start();
    runtime->settle();
    runtime->stop();
    CASCADE_TRY(status, runtime->projections().status(runtime->log().head()));
    for (const projections::ProjectionStatus& projection : status) {
      if (projection.lag != 0) {
        return make_error(ErrorCode::kAborted, "projection " + projection.name + " settled " +
                                                   std::to_string(projection.lag) + " events behind the log");
      }
    }
  }
  report.catch_up_seconds = seconds_since(catch_up_started);
  report.store_bytes = bytes_under(data / "log") + bytes_under(data / "projections");
  return report;
}

}  // namespace cascade::bench
