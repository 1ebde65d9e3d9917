// The releases list: releases newest first, across pipelines or of one
// pipeline, optionally of one status, in pages whose cursor stays correct
// while new releases arrive.
#pragma once

#include "projections/projection.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace cascade::projections {

struct ReleaseQuery {
  static constexpr std::size_t kDefaultLimit = 50;
  static constexpr std::size_t kMaxLimit = 500;

  std::string pipeline;  // empty: every pipeline
  std::string status;    // empty: any; else a release status ("Succeeded", "WaitingForApproval", …)
  std::size_t limit = kDefaultLimit;  // 1…kMaxLimit
  std::string cursor;    // empty: the first page; else a page's next_cursor
  std::string cdevent;   // empty: any; else only releases created by the CDEvent with this id
};

struct ReleasePage {
  // The releases' summary documents (see summarize()) as stored — JSON text,
  // so a server can answer without parsing and re-writing them — newest
  // first. A release whose summary is not written yet (the summary projection
  // is behind or rebuilding) appears as {id, name, pipeline, artifact,
  // created_at} without "status", and never matches a status filter.
  std::vector<std::string> documents;
  // The documents parsed.
  std::vector<nlohmann::json> releases() const;
  // Set when more releases match: pass it as the next query's cursor.
  std::optional<std::string> next_cursor;
};

// Indexes, keyed by the position of each ReleaseCreated event (BE64), so
// newer releases always sort after older ones: family "releases_all"
// (position → entry), "releases_by_pipeline" (pipeline '\0' position →
// entry), "releases_by_name" (display name '\0' position → entry) and
// "releases_by_cdevent" (the creating CDEvent's id '\0' position → entry),
// the entry being {id, name, pipeline, artifact, created_at}.
// Status comes from the summary documents (ReleaseSummaryProjection's
// family), read in the same snapshot as the index.
class ReleaseListProjection final : public Projection {
 public:
  static constexpr const char* kName = "releases";
  static constexpr const char* kAllFamily = "releases_all";
  static constexpr const char* kByPipelineFamily = "releases_by_pipeline";
  static constexpr const char* kByNameFamily = "releases_by_name";
  static constexpr const char* kByCdEventFamily = "releases_by_cdevent";

  // REQUIRES: `store` was opened with this projection's families and
  // ReleaseSummaryProjection::kSummariesFamily.
  ReleaseListProjection(std::shared_ptr<ProjectionStore> store, events::EventLog& log);

  // A page of releases. A cursor names the last release of the previous
  // page; the next page holds only releases created before it, so releases
  // created meanwhile never shift or repeat items. A status filter skips
  // releases while scanning (its cost grows with the releases it skips).
  // kInvalidArgument: a limit outside 1…kMaxLimit, an unknown status, a
  // malformed cursor.
  Result<ReleasePage> list(const ReleaseQuery& query) const;

  // The ids of the releases whose display name is `name`, oldest first
  // (names repeat: every pipeline's default format is Release-$(rev:r)).
  Result<std::vector<std::string>> ids_named(const std::string& name) const;

  // Format 2: the name and CDEvent indexes (a store of format 1 has neither,
  // so it rebuilds them from the log).
  int format() const override { return 2; }

 protected:
  Status apply(const std::vector<events::RecordedEvent>& batch, ProjectionWrite& write) override;
};

// What a caller means by `id_or_name` (a command line, a URL): the id itself
// when a release has that id (read from the log, so a release created a
// moment ago resolves before the projection has it); else the one release
// with that display name; else `id_or_name` unchanged, for the caller's own
// "no release" answer. kInvalidArgument when the name belongs to several
// releases, listing their ids. A name no release has yet is looked up again
// once the projection has caught up with the log's head as of the call, for
// at most `catch_up`, so that (with a running engine) a name resolves for
// every release created before the call.
Result<std::string> release_id_of(events::EventLog& log, const ReleaseListProjection& releases,
                                  const std::string& id_or_name,
                                  std::chrono::milliseconds catch_up = std::chrono::milliseconds(0));

}  // namespace cascade::projections
