// The figure-6 data set: a data directory holding many finished releases,
// written straight into the store (not through the HTTP API) so that 100,000
// releases take a minute, not hours. Every event is decided by the engine's
// own `decide` on the state folded so far (so the history is one the stage
// machines accept), sealed and hash-chained by EventLog::append, and every
// step's log lines are stored under the digest its finishing event records,
// so `cascade replay ID --verify` accepts any release of it. The projections
// and the engine's reactors then catch up through adapters::Runtime (the same
// wiring as `cascade serve`), leaving their checkpoints at the log's head.
#pragma once

#include "events/result.hpp"

#include <cstdint>
#include <string>

namespace cascade::bench {

// Bumped whenever the data set's content or layout changes: the benchmark
// scripts key their cached data directory by it.
constexpr int kScaleDataVersion = 1;

struct ScaleDataOptions {
  std::string data_dir;    // created; REQUIRES: holds no log yet
  int releases = 100'000;  // spread round-robin over `pipelines`
  int pipelines = 20;
  int writers = 32;        // threads appending releases at once (group commit)
};

struct ScaleDataReport {
  int releases = 0;
  std::uint64_t events = 0;      // the log's head: every event, pipelines included
  double append_seconds = 0;     // deciding and appending every release
  double catch_up_seconds = 0;   // the projections and reactors reaching the head
  std::uint64_t store_bytes = 0; // <data>/log and <data>/projections on disk
};

// Writes the data set. A release i (0-based) belongs to pipeline
// Scale-<i mod pipelines> with number i / pipelines + 1, so numbers are dense
// per pipeline as ReleaseService expects. Per release: ReleaseCreated; dev
// (triggered on creation, one step) deployed; then, for four releases in five,
// the manual prod stage deployed by a person — 10 events per release on
// average. One release in ten fails in dev (and goes no further), one in
// twenty-five fails in prod. Times run one release per minute up to now.
// kInvalidArgument when the data directory already holds a log.
Result<ScaleDataReport> write_scale_data(const ScaleDataOptions& options);

}  // namespace cascade::bench
