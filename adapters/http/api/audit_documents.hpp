// The documents of the read-only audit commands — `cascade why`, `cascade
// replay` and `cascade audit export` — built once for both ways they are
// asked for: the CLI over a data directory, and GET /api/v1/releases/{id}/why,
// …/replay and …/audit (which the CLI calls over a server). One function per
// document, so the two can never print different things.
//
// They live here, not in engine/, because the documents hold the release
// summary (projections/) and events as the API shows them (event_json); the
// engine parts (time travel, verification, the bundle) are engine/audit.hpp.
#pragma once

#include "engine/audit.hpp"
#include "engine/ports.hpp"
#include "events/event_log.hpp"
#include "events/result.hpp"
#include "projections/release_summary.hpp"

#include <nlohmann/json.hpp>

#include <iosfwd>
#include <string>

namespace cascade::adapters::http::api {

// What the audit documents read: the log, the step logs and the stored summaries.
struct AuditPorts {
  events::EventLog& log;
  engine::StepLogStore& step_logs;
  projections::ReleaseSummaryProjection& summaries;
};

// engine::collect_evidence with the stored summary of the release. The
// summary text is read first, and the version it reflects is the one it
// names, so a projection that moves on meanwhile (a running server) cannot
// make an intact release look tampered; when there is no document, the
// projection's checkpoint says whether it has seen the release (and should
// hold one). kNotFound when there is no such release.
Result<engine::Evidence> live_evidence(const AuditPorts& ports, const std::string& release_id);

// `cascade why ID STAGE --json` and GET …/why?stage=:
//   {release, stage, state, version, explanation}
// kNotFound for no release, ReleaseState::unknown_stage for a stage it does
// not have, kDataLoss when its events cannot all be read.
Result<nlohmann::json> why_document(events::EventLog& log, const std::string& release_id, const std::string& stage);

struct ReplayRequest {
  std::string at;       // "" (the timeline), a version, or a UTC time (engine::parse_travel_target)
  bool verify = false;  // also run engine::verify over live_evidence
};

// `cascade replay ID --json` and GET …/replay:
//   {release, events: [event_json + details]}                     no `at`
//   {release, at: {version, time, event, details, last_version},
//    summary}                                                     with `at`
// plus verification (engine::to_json) with `verify`. Without `verify`, a
// release stream that cannot be read to its end gives the events before the
// damage and read_failure (the finding's message), which the CLI reports as
// data loss. kInvalidArgument for a bad `at` (the CLI's --at wording), one
// beyond the last version or before the release existed; kNotFound for no
// release.
Result<nlohmann::json> replay_document(const AuditPorts& ports, const std::string& release_id,
                                       const ReplayRequest& request);

// The evidence an export wrote and its verification at export.
struct ExportedBundle {
  engine::Evidence evidence;
  engine::Verification verification;
};

// `cascade audit export` and GET …/audit: live_evidence, verified, written to
// `out` as the cascade-audit/1 bundle (engine::write_bundle) exported at
// `now` by `actor`. A failed verification is in the bundle, not an error.
Result<ExportedBundle> export_bundle(const AuditPorts& ports, const std::string& release_id, std::ostream& out,
                                     events::Timestamp now, const std::string& actor);

}  // namespace cascade::adapters::http::api
