// The release summary read model: one JSON document per release, kept in its
// own RocksDB (rebuildable from the log at any time) by a projector that
// writes its checkpoint in the same WriteBatch as the documents.
#pragma once

#include "engine/reactor.hpp"
#include "engine/release.hpp"
#include "events/event_log.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <optional>
#include <string>

namespace cascade::projections {

// The summary document of a release: overall status; per stage its status,
// attempt, why it was triggered, approvals, steps, start and finish. A pure
// function of the state, so a rebuild gives byte-identical documents.
nlohmann::json summarize(const engine::ReleaseState& release);

// Thread-safe: queries may run while the projector handles events.
class ReleaseSummaryProjection final : public engine::Reactor {
 public:
  // Opens (creating if needed) the projection database in `dir`.
  static Result<std::unique_ptr<ReleaseSummaryProjection>> open(const std::string& dir, events::EventLog& log);
  ~ReleaseSummaryProjection() override;

  std::string name() const override { return "release_summary"; }
  Result<std::uint64_t> resume_position() override;
  Status handle(const std::vector<events::RecordedEvent>& batch) override;

  // The stored summary of a release (its JSON text); kNotFound when unknown.
  Result<std::string> summary(const std::string& release_id) const;
  // Summaries, newest release first, at most `limit`.
  Result<std::vector<std::string>> list(std::size_t limit) const;
  // The log position the stored documents reflect.
  Result<std::uint64_t> checkpoint() const;
  // Forgets every document and the checkpoint. REQUIRES: the projector is
  // not running (the engine re-folds from position 1 when next started).
  Status clear();

 private:
  struct Impl;
  explicit ReleaseSummaryProjection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cascade::projections
