// The runtime (adapters/runtime/runtime.hpp: the engine and every projection) on a
// real RocksDB store in a temp dir, with a manual clock and a scripted step
// runner: the base of the integration tests.
#pragma once

#include "adapters/rocksdb/store.hpp"
#include "events/codec.hpp"
#include "projections/projection_set.hpp"
#include "adapters/runtime/runtime.hpp"

#include "tests/support/release_fixture.hpp"
#include "tests/support/scripted_runner.hpp"
#include "tests/support/temp_dir.hpp"

#include <gtest/gtest.h>

namespace cascade::testing {

// The first event of `type` for `stage` (a stage-less event when `stage` is
// empty), or nullptr.
inline const events::RecordedEvent* find_event(const std::vector<events::RecordedEvent>& events,
                                               std::string_view type, const std::string& stage) {
  for (const events::RecordedEvent& e : events) {
    if (events::type_name(e.data) != type) continue;
    const bool match = std::visit(
        [&](const auto& payload) {
          if constexpr (events::kIsStageEvent<std::decay_t<decltype(payload)>>) {
            return payload.stage == stage;
          } else {
            return stage.empty();
          }
        },
        e.data);
    if (match) return &e;
  }
  return nullptr;
}

class EngineHarness : public ::testing::Test {
 protected:
  void SetUp() override {
    open_store();
    start(scripted_, /*run=*/false);
  }
  // (Re)opens the store with store_options_; the runtime must be stopped.
  void open_store() {
    store_.reset();
    auto store = adapters::RocksStore::open(dir_ / "log", store_options_);
    ASSERT_TRUE(store) << store.error().message;
    store_ = std::move(store).value();
  }
  void TearDown() override { stop(); }

  // Starts a fresh runtime (its service with an empty cache, the
  // projections reopened) over the store; with run = false it is built but
  // its reactors do not run yet.
  void start(engine::StepRunner& runner, bool run = true) {
    stop();
    adapters::RuntimeOptions options;
    options.clock = &clock_;
    options.runner = &runner;
    options.base_env = std::map<std::string, std::string>{{"PATH", "/usr/bin:/bin"}};
    options.store = store_.get();
    auto runtime = adapters::Runtime::open(dir_.path(), std::move(options));
    ASSERT_TRUE(runtime) << runtime.error().message;
    runtime_ = std::move(runtime).value();
    projections_ = &runtime_->projections();
    summaries_ = &projections_->summaries();
    if (run) runtime_->start();
  }
  void start() { start(scripted_); }
  // Runs the reactors of the runtime SetUp built.
  void run() { runtime_->start(); }

  void stop() {
    runtime_.reset();
    summaries_ = nullptr;
    projections_ = nullptr;
  }

  engine::ReleaseService& service() { return runtime_->service(); }
  // Returns as soon as the engine is quiescent; the deadline only bounds a hang.
  void settle(std::chrono::seconds deadline = std::chrono::seconds(30)) {
    ASSERT_TRUE(runtime_->settle(deadline)) << runtime_->last_error();
  }

  void apply(const std::string& json) {
    auto definition = engine::parse_pipeline_text(json);
    ASSERT_TRUE(definition) << definition.error().message;
    ASSERT_TRUE(service().apply_pipeline(definition.value(), "alice"));
  }

  std::string create(const std::string& pipeline, const std::string& version = "1.0.0",
                     events::Variables variables = {}, std::map<std::string, std::string> secrets = {}) {
    engine::NewRelease request;
    request.pipeline = pipeline;
    request.artifact = {version, "/artifacts/" + version, 0, "", ""};
    request.variables = std::move(variables);
    request.secret_variables = std::move(secrets);
    auto id = service().create_release(request, engine::Invocation{"dave", "", ""});
    EXPECT_TRUE(id) << id.error().message;
    return id ? id.value() : "";
  }

  // A release of an artifact with every field chosen (built_at for lead times).
  std::string create_from(const std::string& pipeline, const events::Artifact& artifact) {
    engine::NewRelease request;
    request.pipeline = pipeline;
    request.artifact = artifact;
    auto id = service().create_release(request, engine::Invocation{"dave", "", ""});
    EXPECT_TRUE(id) << id.error().message;
    return id ? id.value() : "";
  }

  engine::ReleaseState load(const std::string& id) {
    auto release = service().load(id);
    EXPECT_TRUE(release) << release.error().message;
    return release ? release.value() : engine::ReleaseState{};
  }

  engine::StageState state_of(const std::string& id, const std::string& stage) {
    const engine::ReleaseState release = load(id);
    const engine::StageRecord* record = release.find_stage(stage);
    EXPECT_NE(record, nullptr) << stage;
    return record == nullptr ? engine::StageState::kNotStarted : record->state();
  }

  std::vector<events::RecordedEvent> events_of(const std::string& release_id) {
    auto events = store_->log().read(engine::release_stream(release_id));
    EXPECT_TRUE(events);
    return events ? events.value() : std::vector<events::RecordedEvent>{};
  }

  template <class T>
  std::size_t count(const std::string& release_id) {
    std::size_t n = 0;
    for (const events::RecordedEvent& e : events_of(release_id)) n += std::holds_alternative<T>(e.data) ? 1 : 0;
    return n;
  }

  TempDir dir_;
  engine::ManualClock clock_;
  ScriptedStepRunner scripted_;
  adapters::StoreOptions store_options_;         // set before SetUp, e.g. write faults
  std::unique_ptr<adapters::RocksStore> store_;  // kept open across restarts
  std::unique_ptr<adapters::Runtime> runtime_;
  projections::ProjectionSet* projections_ = nullptr;           // of runtime_
  projections::ReleaseSummaryProjection* summaries_ = nullptr;  // of projections_
};

}  // namespace cascade::testing
