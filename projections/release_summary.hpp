// The release summary read model: one JSON document per release, kept in
// the projection database (rebuildable from the log at any time), its
// checkpoint written in the same WriteBatch as the documents.
#pragma once

#include "engine/release.hpp"
#include "events/event_log.hpp"
#include "projections/projection.hpp"

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

// One summary document per release (family "summaries", release id →
// JSON) and the releases in creation order (family "release_order", BE64
// position of ReleaseCreated → release id). Thread-safe: queries may run
// while the projector handles events.
class ReleaseSummaryProjection final : public Projection {
 public:
  static constexpr const char* kName = "release_summary";
  static constexpr const char* kSummariesFamily = "summaries";
  static constexpr const char* kOrderFamily = "release_order";

  // Opens (creating if needed) the projection database in `dir` for this
  // read model alone (ProjectionSet opens it for all of them).
  static Result<std::unique_ptr<ReleaseSummaryProjection>> open(const std::string& dir, events::EventLog& log);
  // REQUIRES: `store` was opened with kSummariesFamily and kOrderFamily.
  ReleaseSummaryProjection(std::shared_ptr<ProjectionStore> store, events::EventLog& log);
  ~ReleaseSummaryProjection() override;

  // 2: who closed an approval, canceled a stage (canceled_by) and abandoned
  // the release (abandoned_by), also for events stored before (issue 15).
  int format() const override { return 2; }

  // The stored summary of a release (its JSON text); kNotFound when unknown.
  Result<std::string> summary(const std::string& release_id) const;
  // Summaries, newest release first, at most `limit` (see ReleaseListProjection
  // for filters and paging).
  Result<std::vector<std::string>> list(std::size_t limit) const;
  // checkpoint() and clear() come from Projection.

 protected:
  Status apply(const std::vector<events::RecordedEvent>& batch, ProjectionWrite& write) override;
};

}  // namespace cascade::projections
