// cascade_bench_system: the in-process halves of the system figures, driven
// by tests/bench/system/run.py. Each command prints one JSON object.
//
//   version                      the scale data set's version (the cache key)
//   generate --data DIR          figure 6's data set (see scale_data.hpp)
//   summary-read --data DIR      figure 4a: ReleaseSummaryProjection::summary(id)
//                                vs a raw RocksDB Get of the same value, same DB
//   append --store DIR           figures 6 and 7: EventLog::append of 1-event
//                                batches, synced, N writers on distinct streams
//                                (figure 1's Cascade side), for a fixed time
#include "adapters/rocksdb/store.hpp"
#include "adapters/rocksdb/store_options.hpp"
#include "events/codec.hpp"
#include "events/event_log.hpp"
#include "projections/projection_store.hpp"
#include "projections/release_summary.hpp"
#include "tests/bench/append_event.hpp"
#include "tests/bench/system/scale_data.hpp"
#include "tests/support/kafka_test_clients.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <rocksdb/db.h>
#include <rocksdb/utilities/checkpoint.h>

#include <algorithm>
#include <cmath>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace cascade::bench {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

int fail(const Error& error) {
  std::cerr << "cascade_bench_system: " << error.message << "\n";
  for (const auto& problem : error.details) std::cerr << "  " << problem.path << ": " << problem.message << "\n";
  return 1;
}

// Nearest-rank percentile (an observed value) of sorted nanoseconds, in µs.
double percentile_us(const std::vector<std::int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return static_cast<double>(sorted[rank - 1]) / 1000.0;
}

json latency_json(std::vector<std::int64_t> nanoseconds) {
  std::sort(nanoseconds.begin(), nanoseconds.end());
  double total = 0;
  for (std::int64_t ns : nanoseconds) total += static_cast<double>(ns);
  return {{"samples", nanoseconds.size()},
          {"p50_us", percentile_us(nanoseconds, 0.50)},
          {"p90_us", percentile_us(nanoseconds, 0.90)},
          {"p99_us", percentile_us(nanoseconds, 0.99)},
          {"p999_us", percentile_us(nanoseconds, 0.999)},
          {"max_us", nanoseconds.empty() ? 0.0 : static_cast<double>(nanoseconds.back()) / 1000.0},
          {"mean_us", nanoseconds.empty() ? 0.0 : total / static_cast<double>(nanoseconds.size()) / 1000.0}};
}

// ---- summary-read (figure 4a) -------------------------------------------------

int summary_read(const std::string& data_dir, std::size_t samples, unsigned seed) {
  using projections::ReleaseSummaryProjection;
  auto store = adapters::RocksStore::open(data_dir + "/log");
  if (!store) return fail(store.error());
  auto projection_store = projections::ProjectionStore::open(
      data_dir + "/projections",
      {ReleaseSummaryProjection::kSummariesFamily, ReleaseSummaryProjection::kOrderFamily});
  if (!projection_store) return fail(projection_store.error());
  ReleaseSummaryProjection summaries(projection_store.value(), store.value()->log());
  rocksdb::DB& db = projection_store.value()->db();
  rocksdb::ColumnFamilyHandle* family = projection_store.value()->family(ReleaseSummaryProjection::kSummariesFamily);

  std::vector<std::string> ids;
  {
    std::unique_ptr<rocksdb::Iterator> it(
        db.NewIterator({}, projection_store.value()->family(ReleaseSummaryProjection::kOrderFamily)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) ids.push_back(it->value().ToString());
    if (!it->status().ok()) return fail(make_error(ErrorCode::kUnavailable, it->status().ToString()));
  }
  if (ids.empty()) return fail(make_error(ErrorCode::kNotFound, data_dir + " holds no release summaries"));

  // Both paths must answer the same bytes, or the comparison means nothing.
  std::uint64_t value_bytes = 0;
  for (std::size_t i = 0; i < std::min<std::size_t>(ids.size(), 100); ++i) {
    std::string raw;
    const rocksdb::Status s = db.Get({}, family, ids[i], &raw);
    auto stored = summaries.summary(ids[i]);
    if (!s.ok() || !stored || stored.value() != raw) {
      return fail(make_error(ErrorCode::kDataLoss, "summary of " + ids[i] + " differs from the raw value"));
    }
    value_bytes += raw.size();
  }

  // Each sample times one call of each path on two independent random ids,
  // in an order that alternates, so neither path warms the cache for the other.
  std::mt19937_64 random(seed);
  std::uniform_int_distribution<std::size_t> pick(0, ids.size() - 1);
  std::vector<std::int64_t> projection_ns, raw_ns;
  projection_ns.reserve(samples);
  raw_ns.reserve(samples);
  std::size_t checksum = 0;
  auto time_projection = [&](const std::string& id) {
    const auto start = Clock::now();
    auto text = summaries.summary(id);
    const auto end = Clock::now();
    if (!text) return false;
    checksum += text.value().size();
    projection_ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count());
    return true;
  };
  auto time_raw = [&](const std::string& id) {
    std::string value;
    const auto start = Clock::now();
    const rocksdb::Status s = db.Get(rocksdb::ReadOptions(), family, id, &value);
    const auto end = Clock::now();
    if (!s.ok()) return false;
    checksum += value.size();
    raw_ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count());
    return true;
  };
  const std::size_t warm_up = std::min<std::size_t>(samples / 10, 10'000);
  const auto started = Clock::now();
  for (std::size_t i = 0; i < samples + warm_up; ++i) {
    const std::string& a = ids[pick(random)];
    const std::string& b = ids[pick(random)];
    const bool ok = (i % 2 == 0) ? time_projection(a) && time_raw(b) : time_raw(a) && time_projection(b);
    if (!ok) return fail(make_error(ErrorCode::kUnavailable, "a summary read failed"));
    if (i + 1 == warm_up) {
      projection_ns.clear();
      raw_ns.clear();
    }
  }
  json out{{"figure", "4a"},
           {"releases", ids.size()},
           {"summary_bytes_avg", static_cast<double>(value_bytes) / static_cast<double>(std::min<std::size_t>(ids.size(), 100))},
           {"seconds", seconds_since(started)},
           {"summary", latency_json(std::move(projection_ns))},
           {"raw_get", latency_json(std::move(raw_ns))},
           {"checksum", checksum}};
  std::cout << out.dump() << std::endl;
  return 0;
}

// ---- append (figures 6 and 7) -------------------------------------------------

// A hard-linked copy of the database in `from` (RocksDB's checkpoint: table
// files are linked, never copied), so a big store can be appended to without
// changing the cached data set.
Status checkpoint_copy(const std::string& from, const std::string& to) {
  std::vector<std::string> names;
  rocksdb::Status s = rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), from, &names);
  if (!s.ok()) return make_error(ErrorCode::kUnavailable, "list families of " + from + ": " + s.ToString());
  rocksdb::Options options = adapters::store_db_options();
  options.create_if_missing = false;
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const std::string& name : names) {
    families.emplace_back(name, adapters::store_family_options(name));
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  s = rocksdb::DB::Open(options, from, families, &handles, &raw);
  if (!s.ok()) return make_error(ErrorCode::kUnavailable, "open " + from + ": " + s.ToString());
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::Checkpoint* checkpoint = nullptr;
  s = rocksdb::Checkpoint::Create(db.get(), &checkpoint);
  if (s.ok()) {
    s = checkpoint->CreateCheckpoint(to);
    delete checkpoint;
  }
  for (rocksdb::ColumnFamilyHandle* handle : handles) db->DestroyColumnFamilyHandle(handle);
  db->Close().PermitUncheckedError();
  if (!s.ok()) return make_error(ErrorCode::kUnavailable, "checkpoint of " + from + " in " + to + ": " + s.ToString());
  std::error_code ec;
  if (std::filesystem::exists(from + "/secret.key")) {
    std::filesystem::copy_file(from + "/secret.key", to + "/secret.key", ec);
    if (ec) return make_error(ErrorCode::kUnavailable, "copy secret.key: " + ec.message());
  }
  return success();
}

int append(const std::string& store_dir, const std::string& copy_of, int writers, double seconds) {
  if (writers < 1 || seconds <= 0) return fail(make_error(ErrorCode::kInvalidArgument, "--writers and --seconds must be positive"));
  if (std::filesystem::exists(store_dir)) {
    return fail(make_error(ErrorCode::kInvalidArgument, store_dir + " exists: name a new directory"));
  }
  if (!copy_of.empty()) {
    const Status copied = checkpoint_copy(copy_of, store_dir);
    if (!copied) return fail(copied.error());
  }
  const auto open_started = Clock::now();
  auto opened = adapters::RocksStore::open(store_dir);
  if (!opened) return fail(opened.error());
  const double open_seconds = seconds_since(open_started);
  adapters::RocksStore& store = *opened.value();
  const std::uint64_t head_before = store.log().head();

  std::mutex mutex;
  std::condition_variable go;
  bool started = false;
  std::atomic<std::uint64_t> appended{0};
  std::atomic<bool> failed{false};
  std::string error;
  const std::string run = events::random_uuid().substr(0, 8);
  const adapters::StoreStatistics before = store.statistics();
  Clock::time_point start;
  std::vector<std::thread> threads;
  for (int t = 0; t < writers; ++t) {
    threads.emplace_back([&, t] {
      const std::string stream = "bench-append-" + run + "-" + std::to_string(t);
      std::int64_t version = 0;
      {
        std::unique_lock lock(mutex);
        go.wait(lock, [&] { return started; });
      }
      const auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
      while (Clock::now() < deadline && !failed) {
        auto result = store.log().append(stream, version, {small_event(stream, version + 1)});
        if (!result) {
          std::lock_guard lock(mutex);
          if (!failed.exchange(true)) error = result.error().message;
          return;
        }
        version = result.value().last_version;
        appended.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  {
    std::lock_guard lock(mutex);
    start = Clock::now();
    started = true;
  }
  go.notify_all();
  for (std::thread& thread : threads) thread.join();
  const double elapsed = seconds_since(start);
  if (failed) return fail(make_error(ErrorCode::kUnavailable, "append failed: " + error));
  const adapters::StoreStatistics after = store.statistics();
  const double syncs = static_cast<double>(after.wal_syncs - before.wal_syncs);
  json out{{"writers", writers},
           {"seconds", elapsed},
           {"events", appended.load()},
           {"appends_per_second", static_cast<double>(appended.load()) / elapsed},
           {"events_per_fsync", syncs > 0 ? static_cast<double>(after.events_appended - before.events_appended) / syncs : 0.0},
           {"log_head_before", head_before},
           {"open_seconds", open_seconds}};
  std::cout << out.dump() << std::endl;
  return 0;
}

}  // namespace
}  // namespace cascade::bench

int main(int argc, char** argv) {
  using namespace cascade::bench;
  CLI::App app("cascade_bench_system: in-process parts of the system benchmarks (figures 4a, 6, 7)");
  app.require_subcommand(1);

  app.add_subcommand("version", "print the scale data set's version")->callback([] {
    std::cout << kScaleDataVersion << std::endl;
  });

  ScaleDataOptions generate_options;
  auto* generate = app.add_subcommand("generate", "write figure 6's data set into a new data directory");
  generate->add_option("--data", generate_options.data_dir, "the data directory to create")->required();
  generate->add_option("--releases", generate_options.releases, "releases")->capture_default_str();
  generate->add_option("--pipelines", generate_options.pipelines, "pipelines")->capture_default_str();
  generate->add_option("--writers", generate_options.writers, "appending threads")->capture_default_str();

  std::string data_dir;
  std::size_t samples = 200'000;
  unsigned seed = 7;
  auto* read = app.add_subcommand("summary-read", "figure 4a: summary query vs raw Get, p50/p99");
  read->add_option("--data", data_dir, "a populated data directory (not in use by a server)")->required();
  read->add_option("--samples", samples, "timed calls of each path")->capture_default_str();
  read->add_option("--seed", seed, "random seed for the ids")->capture_default_str();

  std::string store_dir, copy_of;
  int writers = 64;
  double seconds = 5;
  auto* appends = app.add_subcommand("append", "synced 1-event appends by N writers for a fixed time");
  appends->add_option("--store", store_dir, "a new directory for the store")->required();
  appends->add_option("--copy-of", copy_of, "start from a hard-linked copy of this store (a <data>/log directory)");
  appends->add_option("--writers", writers, "concurrent writers, each on its own stream")->capture_default_str();
  appends->add_option("--seconds", seconds, "how long to append")->capture_default_str();

  // Figure 5's publisher: kcat only sends what it reads from a pipe when the
  // pipe closes, so a connected producer that stamps each send is needed.
  std::string brokers, topic = "cascade.builds";
  auto* publish = app.add_subcommand("publish-lines",
                                     "figure 5: each stdin line → one structured CloudEvent record, acknowledged; "
                                     "prints {\"sent_ms\"} per line");
  publish->add_option("--brokers", brokers, "bootstrap servers")->required();
  publish->add_option("--topic", topic, "topic")->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  if (publish->parsed()) {
    cascade::testing::TestProducer producer(brokers);
    std::string line;
    while (std::getline(std::cin, line)) {
      cascade::adapters::kafka::Record record;
      record.value = line;
      record.headers.push_back({"content-type", "application/cloudevents+json; charset=UTF-8"});
      const auto sent_ms = std::chrono::duration<double, std::milli>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
      const std::string error = producer.send(topic, record);
      if (!error.empty()) {
        std::cerr << "publish-lines: " << error << "\n";
        return 1;
      }
      std::cout << nlohmann::json{{"sent_ms", sent_ms}}.dump() << std::endl;
    }
    return 0;
  }
  if (generate->parsed()) {
    auto report = write_scale_data(generate_options);
    if (!report) return fail(report.error());
    const ScaleDataReport& r = report.value();
    std::cout << nlohmann::json{{"version", kScaleDataVersion},
                                {"releases", r.releases},
                                {"events", r.events},
                                {"append_seconds", r.append_seconds},
                                {"catch_up_seconds", r.catch_up_seconds},
                                {"store_bytes", r.store_bytes}}
                     .dump()
              << std::endl;
    return 0;
  }
  if (read->parsed()) return summary_read(data_dir, samples, seed);
  if (appends->parsed()) return append(store_dir, copy_of, writers, seconds);
  return 0;
}
