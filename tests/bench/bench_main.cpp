// Cascade's performance figures, each measured against a raw RocksDB baseline
// in the same run (see ../shared/design/PERFORMANCE-NOTES.md for the numbers
// this kind of machine gives). tools/dev bench runs them all and prints the
// table; tools/bench_report.py pairs each figure with its baseline.
//
//   Fig1_DurableAppend/threads:N   EventLog::append of 1-event batches, synced,
//   Fig1_RawAppend/threads:N       vs one synced WriteBatch with the log's 3 puts;
//                                  both report events_per_fsync and writes_per_group.
//   Fig2_Commands/threads:64       create + trigger + approve through ReleaseService
//                                  (baseline: Fig1_RawAppend/threads:64).
//   Fig3_Replay/N                  read_each_verified + evolve of an N-event stream,
//   Fig3_RawScan/N                 vs a raw forward scan of the same stored bytes.
//
// Run one alone: cascade_bench --benchmark_filter='Fig3_Replay/51200'.

#include "adapters/rocksdb/store.hpp"
#include "adapters/rocksdb/store_options.hpp"
#include "engine/audit.hpp"
#include "engine/pipeline.hpp"
#include "engine/ports.hpp"
#include "engine/release.hpp"
#include "engine/release_service.hpp"
#include "events/codec.hpp"
#include "events/event_log.hpp"

#include "tests/bench/append_event.hpp"
#include "tests/support/temp_dir.hpp"

#include <benchmark/benchmark.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/statistics.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace {

using namespace cascade;
using bench::small_event;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "cascade_bench: %s\n", what.c_str());
  std::abort();
}

template <class T>
T take(Result<T> result, const char* what) {
  if (!result) die(std::string(what) + ": " + result.error().message);
  return std::move(result).value();
}

std::string be64(std::uint64_t value) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = static_cast<char>(value & 0xff);
    value >>= 8;
  }
  return out;
}

// ---- Raw RocksDB, opened as adapters/rocksdb/store.cpp opens the store ----------

class RawDb {
 public:
  explicit RawDb(const std::string& dir) {
    options_ = adapters::store_db_options();  // exactly the store's, statistics included
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const char* name : {rocksdb::kDefaultColumnFamilyName.c_str(), "events", "streams", "event_ids"}) {
      families.emplace_back(name, adapters::store_family_options(name));  // the store's, family by family
    }
    rocksdb::DB* db = nullptr;
    const rocksdb::Status s = rocksdb::DB::Open(options_, dir, families, &handles_, &db);
    if (!s.ok()) die("raw open " + dir + ": " + s.ToString());
    db_.reset(db);
  }
  ~RawDb() {
    for (rocksdb::ColumnFamilyHandle* handle : handles_) db_->DestroyColumnFamilyHandle(handle);
    db_->Close().PermitUncheckedError();
  }
  rocksdb::DB* db() { return db_.get(); }
  rocksdb::ColumnFamilyHandle* events() { return handles_[1]; }
  rocksdb::ColumnFamilyHandle* streams() { return handles_[2]; }
  rocksdb::ColumnFamilyHandle* event_ids() { return handles_[3]; }
  std::uint64_t wal_syncs() const { return options_.statistics->getTickerCount(rocksdb::WAL_FILE_SYNCED); }
  std::uint64_t write_groups() const { return options_.statistics->getTickerCount(rocksdb::WRITE_DONE_BY_SELF); }
  std::uint64_t writes_joined() const { return options_.statistics->getTickerCount(rocksdb::WRITE_DONE_BY_OTHER); }

 private:
  rocksdb::Options options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};

// ---- Figure 1: durable append --------------------------------------------------

constexpr engine::Timestamp kT0 = bench::kAppendEpochMs;

// The stored bytes of a small_event as the log would seal them (mid-stream,
// with a prev_hash): the value size the raw baseline writes.
std::string sealed_small_event() {
  const events::NewEvent e = small_event("bench-append-0000", 2);
  events::RecordedEvent r;
  r.event_id = e.event_id;
  r.stream = "bench-append-0000";
  r.version = 2;
  r.position = 2;
  r.recorded_at = e.recorded_at;
  r.actor = e.actor;
  r.command_id = e.command_id;
  r.causation_id = e.causation_id;
  r.correlation_id = e.correlation_id;
  r.data = e.data;
  r.prev_hash = events::sha256_hex("previous");
  return events::seal(r);
}

struct AppendFixture {
  testing::TempDir dir;
  std::unique_ptr<adapters::RocksStore> store;
};
AppendFixture& append_fixture() {
  static AppendFixture* fixture = [] {
    auto* f = new AppendFixture;
    f->store = take(adapters::RocksStore::open(f->dir / "store"), "open store");
    return f;
  }();
  return *fixture;
}

void Fig1_DurableAppend(benchmark::State& state) {
  AppendFixture& f = append_fixture();
  events::EventLog& log = f.store->log();
  static std::atomic<int> run{0};
  static int this_run = 0;
  // Thread 0's setup is seen by all: Google Benchmark holds every thread at
  // the loop's start until all have arrived.
  if (state.thread_index() == 0) this_run = run.fetch_add(1);
  static adapters::StoreStatistics before;
  if (state.thread_index() == 0) before = f.store->statistics();
  std::string stream;
  std::int64_t version = 0;
  for (auto _ : state) {
    if (stream.empty()) stream = "bench-append-" + std::to_string(this_run) + "-" + std::to_string(state.thread_index());
    auto appended = log.append(stream, version, {small_event(stream, version + 1)});
    if (!appended) {
      state.SkipWithError(appended.error().message.c_str());
      break;
    }
    version = appended.value().last_version;
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    // The loop's end is a barrier: every thread's appends are in the counters.
    const adapters::StoreStatistics after = f.store->statistics();
    const double syncs = static_cast<double>(after.wal_syncs - before.wal_syncs);
    const double appended = static_cast<double>(after.events_appended - before.events_appended);
    state.counters["events_per_fsync"] = syncs > 0 ? appended / syncs : 0;
    const double groups = static_cast<double>(after.write_groups - before.write_groups);
    state.counters["writes_per_group"] =
        groups > 0 ? static_cast<double>(after.write_groups - before.write_groups + after.writes_joined -
                                         before.writes_joined) / groups
                   : 0;
  }
}
BENCHMARK(Fig1_DurableAppend)->Threads(1)->Threads(8)->Threads(64)->UseRealTime()->MinTime(1.0);

struct RawFixture {
  testing::TempDir dir;
  std::unique_ptr<RawDb> db;
  std::string value;
  std::atomic<std::uint64_t> position{0};
};
RawFixture& raw_fixture() {
  static RawFixture* fixture = [] {
    auto* f = new RawFixture;
    f->db = std::make_unique<RawDb>(f->dir / "raw");
    f->value = sealed_small_event();
    return f;
  }();
  return *fixture;
}

void Fig1_RawAppend(benchmark::State& state) {
  RawFixture& f = raw_fixture();
  static std::uint64_t syncs_before = 0, groups_before = 0, joined_before = 0;
  static std::atomic<int> run{0};
  static int this_run = 0;
  if (state.thread_index() == 0) {
    this_run = run.fetch_add(1);
    syncs_before = f.db->wal_syncs();
    groups_before = f.db->write_groups();
    joined_before = f.db->writes_joined();
  }
  rocksdb::WriteOptions options;
  options.sync = true;
  std::string stream;
  std::uint64_t version = 0;
  for (auto _ : state) {
    if (stream.empty()) stream = "raw-append-" + std::to_string(this_run) + "-" + std::to_string(state.thread_index());
    const std::uint64_t position = f.position.fetch_add(1) + 1;
    ++version;
    const std::string position_key = be64(position);
    rocksdb::WriteBatch batch;
    batch.Put(f.db->events(), position_key, f.value);
    batch.Put(f.db->streams(), stream + '\0' + be64(version), position_key);
    batch.Put(f.db->event_ids(), events::random_uuid(), position_key);
    const rocksdb::Status s = f.db->db()->Write(options, &batch);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    // Every thread has stopped here (the loop's end is a barrier); each ran
    // the same number of iterations.
    const double syncs = static_cast<double>(f.db->wal_syncs() - syncs_before);
    const double writes = static_cast<double>(state.iterations()) * state.threads();
    state.counters["events_per_fsync"] = syncs > 0 ? writes / syncs : 0;
    const double groups = static_cast<double>(f.db->write_groups() - groups_before);
    state.counters["writes_per_group"] =
        groups > 0 ? (groups + static_cast<double>(f.db->writes_joined() - joined_before)) / groups : 0;
    state.counters["value_bytes"] = static_cast<double>(f.value.size());
  }
}
BENCHMARK(Fig1_RawAppend)->Threads(1)->Threads(8)->Threads(64)->UseRealTime()->MinTime(1.0);

// ---- Figure 2: the command path ------------------------------------------------

// One pipeline per thread: ReleaseService numbers the releases of a pipeline
// by optimistic appends, and 64 threads creating releases of one pipeline at
// once exhaust its retries ("could not allocate a release number").
constexpr int kCommandThreads = 64;
std::string approval_pipeline(int index) {
  return R"({"name": "Bench-)" + std::to_string(index) + R"(", "stages": [
    {"name": "prod", "trigger": {"after_release": true},
     "pre_approval": {"approvers": ["release-manager"]},
     "steps": [{"name": "deploy", "run": "true"}]}
  ]})";
}

struct CommandFixture {
  testing::TempDir dir;
  std::unique_ptr<adapters::RocksStore> store;
  engine::ManualClock clock;
  std::unique_ptr<engine::ReleaseService> service;
};
CommandFixture& command_fixture() {
  static CommandFixture* fixture = [] {
    auto* f = new CommandFixture;
    f->store = take(adapters::RocksStore::open(f->dir / "store"), "open store");
    f->service = std::make_unique<engine::ReleaseService>(f->store->log(), f->store->secrets(), f->clock);
    for (int i = 0; i < kCommandThreads; ++i) {
      const engine::PipelineDefinition definition =
          take(engine::parse_pipeline_text(approval_pipeline(i)), "parse the pipeline");
      take(f->service->apply_pipeline(definition, "alice"), "apply the pipeline");
    }
    return f;
  }();
  return *fixture;
}

// One release per iteration: create it, trigger its stage (the orchestrator's
// command, which requests the approval), approve it. Three synced commands.
void Fig2_Commands(benchmark::State& state) {
  CommandFixture& f = command_fixture();
  engine::ReleaseService& service = *f.service;
  std::int64_t n = 0;
  for (auto _ : state) {
    engine::NewRelease request;
    request.pipeline = "Bench-" + std::to_string(state.thread_index() % kCommandThreads);
    const std::string build = std::to_string(state.thread_index()) + "." + std::to_string(++n);
    request.artifact.version = build;
    request.artifact.path = "/artifacts/" + build;
    auto id = service.create_release(request, engine::Invocation{"ci", "", ""});
    if (!id) {
      state.SkipWithError(id.error().message.c_str());
      break;
    }
    auto triggered = service.execute(id.value(), engine::TriggerStage{"prod", "release created"},
                                     engine::Invocation{"orchestrator", "", ""});
    if (!triggered) {
      state.SkipWithError(triggered.error().message.c_str());
      break;
    }
    auto approved = service.execute(id.value(), engine::ApproveStage{"prod", "go", 0},
                                    engine::Invocation{"release-manager", "", ""});
    if (!approved) {
      state.SkipWithError(approved.error().message.c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * 3);
  state.counters["releases"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(Fig2_Commands)->Threads(kCommandThreads)->UseRealTime()->MinTime(1.0);

// ---- Figure 3: replay ----------------------------------------------------------

const char* kDeployPipeline = R"({
  "name": "Replay",
  "stages": [
    {"name": "dev", "trigger": {"after_release": true},
     "steps": [{"name": "deploy", "run": "true"}]}
  ]
})";

// A release stream of `count` events: created, then one stage deployed again
// and again (trigger, start, step started, step succeeded, deployed), each
// event decided by the engine on the state folded so far.
std::vector<events::NewEvent> release_history(std::size_t count) {
  const engine::PipelineDefinition definition = take(engine::parse_pipeline_text(kDeployPipeline), "parse");
  engine::ReleaseState state;
  std::vector<events::NewEvent> out;
  out.reserve(count + 8);
  engine::Timestamp now = kT0;
  const std::string digest = events::sha256_hex("deployed\n");
  auto apply = [&](const engine::Command& command, const std::string& actor) {
    engine::CommandContext context;
    context.command_id = events::random_uuid();
    context.actor = actor;
    context.now = now += 1000;
    auto decided = take(engine::decide(state, command, context), "decide");
    for (events::Event& e : decided) {
      events::RecordedEvent recorded;
      recorded.version = state.version + 1;
      recorded.recorded_at = context.now;
      recorded.actor = actor;
      recorded.command_id = context.command_id;
      recorded.data = e;
      engine::evolve(state, recorded);
      events::NewEvent event;
      event.event_id = events::random_uuid();
      event.data = std::move(e);
      event.recorded_at = context.now;
      event.actor = actor;
      event.command_id = context.command_id;
      event.correlation_id = "Replay-1";
      out.push_back(std::move(event));
    }
  };
  engine::CreateRelease create;
  create.release_id = "Replay-1";
  create.number = 1;
  create.name = "Replay-1";
  create.pipeline_version = 1;
  create.definition = definition;
  create.artifact.version = "1.0.0";
  create.artifact.path = "/artifacts/1.0.0";
  create.artifact.built_at = kT0;
  apply(create, "alice");
  apply(engine::TriggerStage{"dev", "release created"}, "orchestrator");
  while (out.size() < count) {
    const int attempt = state.find_stage("dev")->attempt;
    apply(engine::StartDeployment{"dev"}, "executor");
    apply(engine::RecordStepStarted{"dev", attempt, 0}, "executor");
    engine::RecordStepFinished finished;
    finished.stage = "dev";
    finished.attempt = attempt;
    finished.step_index = 0;
    finished.succeeded = true;
    finished.duration_ms = 42;
    finished.log_digest = digest;
    apply(finished, "executor");
    apply(engine::FinishDeployment{"dev", attempt}, "executor");
    apply(engine::RedeployStage{"dev", ""}, "alice");
  }
  out.resize(count);
  return out;
}

struct ReplayFixture {
  testing::TempDir dir;
  std::unique_ptr<adapters::RocksStore> store;
  std::unique_ptr<RawDb> raw;
  std::string stream;
};

// One per event count, built on first use (not timed) and kept for the run.
ReplayFixture& replay_fixture(std::size_t count) {
  static std::mutex mutex;
  static std::map<std::size_t, std::unique_ptr<ReplayFixture>> fixtures;
  std::lock_guard<std::mutex> lock(mutex);
  std::unique_ptr<ReplayFixture>& slot = fixtures[count];
  if (slot) return *slot;
  auto f = std::make_unique<ReplayFixture>();
  f->store = take(adapters::RocksStore::open(f->dir / "store"), "open store");
  f->stream = engine::release_stream("Replay-1");
  std::vector<events::NewEvent> history = release_history(count);
  constexpr std::size_t kBatch = 1024;
  std::int64_t version = 0;
  for (std::size_t i = 0; i < history.size(); i += kBatch) {
    const std::size_t end = std::min(history.size(), i + kBatch);
    std::vector<events::NewEvent> batch(std::make_move_iterator(history.begin() + static_cast<std::ptrdiff_t>(i)),
                                        std::make_move_iterator(history.begin() + static_cast<std::ptrdiff_t>(end)));
    version = take(f->store->log().append(f->stream, version, std::move(batch)), "append the history").last_version;
  }
  // The same stored bytes, at the same keys, in a raw database.
  std::vector<events::RecordedEvent> stored = take(f->store->log().read(f->stream), "read the history");
  if (stored.size() != count) die("the replay stream holds " + std::to_string(stored.size()) + " events");
  f->raw = std::make_unique<RawDb>(f->dir / "raw");
  rocksdb::WriteBatch batch;
  for (events::RecordedEvent& e : stored) {
    const std::string bytes = events::seal(e);
    batch.Put(f->raw->events(), be64(e.position), bytes);
  }
  rocksdb::WriteOptions options;
  options.sync = true;
  const rocksdb::Status s = f->raw->db()->Write(options, &batch);
  if (!s.ok()) die("raw write: " + s.ToString());
  // Both sides read table files, as a replay of a stored release does.
  const rocksdb::Status flushed = f->raw->db()->Flush(rocksdb::FlushOptions(), f->raw->events());
  if (!flushed.ok()) die("raw flush: " + flushed.ToString());
  const Status store_flushed = f->store->flush_for_test();
  if (!store_flushed) die("store flush: " + store_flushed.error().message);
  slot = std::move(f);
  return *slot;
}

void Fig3_Replay(benchmark::State& state) {
  const auto count = static_cast<std::size_t>(state.range(0));
  ReplayFixture& f = replay_fixture(count);
  for (auto _ : state) {
    // Streamed: each event is decoded, checked against its hash and the one
    // before, and folded, without the stream ever being held in memory.
    engine::ReleaseState folded;
    const Status replayed =
        f.store->log().read_each_verified(f.stream, 1, "", [&](const events::RecordedEvent& e) -> Status {
          engine::evolve(folded, e);
          return success();
        });
    if (!replayed) {
      state.SkipWithError(replayed.error().message.c_str());
      break;
    }
    if (folded.version != static_cast<std::int64_t>(count)) {
      state.SkipWithError("the fold did not reach the stream's end");
      break;
    }
    benchmark::DoNotOptimize(folded);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(count));
}
BENCHMARK(Fig3_Replay)->Arg(51200)->Arg(5120)->Unit(benchmark::kMillisecond)->UseRealTime();

void Fig3_RawScan(benchmark::State& state) {
  const auto count = static_cast<std::size_t>(state.range(0));
  ReplayFixture& f = replay_fixture(count);
  for (auto _ : state) {
    std::unique_ptr<rocksdb::Iterator> it(f.raw->db()->NewIterator(rocksdb::ReadOptions(), f.raw->events()));
    std::size_t n = 0;
    std::size_t bytes = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      bytes += it->value().size() + static_cast<unsigned char>(it->value()[0]);
      ++n;
    }
    if (!it->status().ok() || n != count) {
      state.SkipWithError("raw scan failed");
      break;
    }
    benchmark::DoNotOptimize(bytes);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(count));
}
BENCHMARK(Fig3_RawScan)->Arg(51200)->Arg(5120)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
