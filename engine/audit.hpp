// Replay and audit: time travel over a release's events, verification of what
// is stored against itself, the evidence bundle, and `why` a stage is where
// it is.
//
// Everything here folds with the engine's own evolve — there is no second
// interpretation of the events. Verification is pure over what was read:
// collect_evidence() reads through the ports (the live store; step logs stay
// there and are read a page at a time), read_bundle() from an exported file,
// and verify() checks either the same way, so that `cascade replay --verify`
// and `cascade audit verify FILE` cannot disagree.
// The summary read model lives in projections/, which engine/ may not depend
// on: callers pass the stored summary text and the function that renders one.
#pragma once

#include "engine/ports.hpp"
#include "engine/release.hpp"
#include "events/event.hpp"
#include "events/event_log.hpp"
#include "events/result.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace cascade::engine {

// ---- Time travel -------------------------------------------------------------

// The release as it was after the longest prefix of `events` (one release
// stream, in version order) whose events all have version <= up_to_version
// and recorded_at <= up_to_time (an absent bound does not limit). Folds with
// evolve. state.exists() is false when not even ReleaseCreated is in the prefix.
ReleaseState fold(const std::vector<events::RecordedEvent>& events,
                  std::optional<std::int64_t> up_to_version = std::nullopt,
                  std::optional<Timestamp> up_to_time = std::nullopt);

// Where `cascade replay --at` and GET …/replay?at= travel to: a stream
// version (digits, from 1) or a UTC time such as 2026-11-29T02:00:00Z,
// 2026-11-29T02:00:00.250Z or 2026-11-29T02:00Z. Both absent: no travel.
struct TravelTarget {
  std::optional<std::int64_t> version;
  std::optional<Timestamp> time;
  bool any() const { return version.has_value() || time.has_value(); }
};

// Parses `text` ("" gives no target). kInvalidArgument naming "--at" and the
// text otherwise: the CLI and the API say the same.
Result<TravelTarget> parse_travel_target(const std::string& text);

// The release after time travel, and the event it stopped at.
struct TravelPoint {
  ReleaseState state;
  const events::RecordedEvent* reached = nullptr;  // into the events traveled over
  std::int64_t last_version = 0;                   // the stream's last readable version
};

// fold(events, target) for the release `release_id`, refusing (kInvalidArgument,
// naming `at_text` as given) a version beyond the last readable one and a
// point before the release was created. `reached` points into `events`.
Result<TravelPoint> travel(const std::string& release_id, const std::vector<events::RecordedEvent>& events,
                           const TravelTarget& target, const std::string& at_text);

// ---- Verification ------------------------------------------------------------

enum class FindingKind {
  kEventChain,       // the release stream: a hash that does not match its event, a broken link
  kPipelineChain,    // the pipeline stream (or the release's snapshot no longer matches it)
  kStepLog,          // a step's stored log lines do not hash to the digest in its event
  kSummary,          // the stored summary is not what folding the events gives
  kUnreadableEvent,  // stored bytes that do not decode as an event
  kMissingEvent,     // a version of a stream is not there
  kBundle,           // an evidence bundle whose own structure is inconsistent
};
// "event_chain", "pipeline_chain", "step_log", "summary", "unreadable_event",
// "missing_event", "bundle".
std::string_view to_string(FindingKind kind);

// Where a check failed. Fields that do not apply are empty / 0 / -1.
struct Location {
  std::string stream;
  std::int64_t version = 0;     // stream version of the event concerned
  std::uint64_t position = 0;   // its global log position, when known
  std::string stage;
  int attempt = 0;
  int step_index = -1;
  std::string step;
  int try_number = 0;
  std::string field;            // summary: JSON pointer of the first difference; bundle: its path
};

// The first thing found wrong, with what was expected and what was found
// (hashes, digests, JSON values) and one sentence that names it all.
struct Finding {
  FindingKind kind = FindingKind::kEventChain;
  Location location;
  std::string expected;
  std::string found;
  std::string message;
};

enum class CheckOutcome { kPassed, kFailed, kSkipped };

struct Check {
  std::string name;  // "release stream", "pipeline stream", "step logs", "summary"
  CheckOutcome outcome = CheckOutcome::kPassed;
  std::string detail;  // what was covered, or why it failed or was skipped
};

struct Verification {
  std::vector<Check> checks;        // in the order they ran
  std::optional<Finding> failure;   // the first failure, in check order
  bool ok() const { return !failure.has_value(); }
};

nlohmann::json to_json(const Finding& finding);
nlohmann::json to_json(const Verification& verification);
// kInvalidArgument when `json` does not have the shape to_json gives.
Result<Verification> verification_from_json(const nlohmann::json& json);

// One stream as far as it could be read: its events from version 1 in order,
// and — when reading stopped early — why (an unreadable or missing event).
struct StreamRead {
  std::string stream;
  std::vector<events::RecordedEvent> events;
  std::optional<Finding> failure;
};

// The stored lines of one step of one attempt (every try of it, in order).
// A step may have written 64 MiB: evidence collected from the live store
// does not hold its lines but names the store they are read from, a page at
// a time, whenever a check or an export needs them; a bundle read back (or
// evidence built by hand) holds them.
struct StepLog {
  StepLogKey key;
  std::string step;  // the step's name, for people
  std::vector<LogLine> lines;  // when `store` is null
  // Where the lines are read from instead of `lines`, when set (by
  // collect_evidence). The store must outlive the evidence.
  StepLogStore* store = nullptr;
  std::string unreadable;  // non-empty: the lines could not be read (why)

  // Hands the lines to `visit` in order, stopping at the first error `visit`
  // returns or the store's (StepLogStore::read_each), which it returns.
  Status each_line(const std::function<Status(const LogLine&)>& visit) const;
};

// The stored summary document and the release version it reflects (the
// projection may lag the log: it is compared with the fold up to there).
struct StoredSummary {
  std::string text;  // empty: the projection has seen the release but holds no document of it
  std::int64_t reflects_version = 0;
};

// Everything verification looks at.
struct Evidence {
  std::string release_id;
  StreamRead release;
  // The pipeline stream from version 1 through the version the release was
  // created from: the definitions the release depends on. Later versions do
  // not bear on it and are not covered.
  StreamRead pipeline;
  // One per step attempt that recorded a digest (StepSucceeded/StepFailed).
  std::vector<StepLog> step_logs;
  std::optional<StoredSummary> summary;  // absent: no stored summary to compare
};

// Reads `stream` (at most `limit` events from version 1). Never fails for
// damaged data: when an event cannot be read, the events before it are kept
// and the failure names its version — kUnreadableEvent, or kMissingEvent when
// the log says the event is indexed but gone. Errors are only the log's
// other errors (kUnavailable).
Result<StreamRead> read_stream(events::EventLog& log, const std::string& stream,
                               std::size_t limit = std::numeric_limits<std::size_t>::max());

// Reads the release's stream and the part of its pipeline stream it depends
// on, and reads each log of its steps through once — holding a line at a
// time — to find those that cannot be read; the evidence then refers to
// `step_logs` for their lines (StepLog::store), so it must outlive the
// evidence. The summary is left absent (the caller has it). kNotFound when
// there is no such release; otherwise damaged data shows up in the evidence,
// not as an error. The reads are separate: for one consistent picture
// nothing may append to the release meanwhile (the CLI does not run the
// engine while it audits).
Result<Evidence> collect_evidence(events::EventLog& log, StepLogStore& step_logs, const std::string& release_id);

// Renders the summary document of a state exactly as the projection stores it.
using SummaryRenderer = std::function<std::string(const ReleaseState&)>;

// Runs the checks, in this order, and names the first failure:
//   release stream — versions 1…n without a gap, each hash matching its
//     event's canonical bytes and linking to the one before (verify_chain);
//   pipeline stream — the same, through the release's pipeline version, whose
//     definition must equal the release's snapshot;
//   step logs — each try's digest equals the SHA-256 of its lines'
//     digest_bytes; the tries of a retried step share one log, split in order;
//     a try cut off by an interruption is checked against what was stored of
//     the step when the interruption was recorded (StepFailed's
//     stored_log_digest over its first stored_log_lines lines, earlier tries
//     included); lines after the last finished try are allowed only while a
//     later try never finished (canceled, or interrupted before interruptions
//     recorded a digest);
//   summary — render(fold(events up to reflects_version)) equals the stored
//     text byte for byte (the projection may lag the log; it may not be
//     ahead of it, nor hold no document of a release it has seen).
// A check that needs the release's events is skipped when they could not all
// be read. Step logs are read as they are checked, a line at a time (a log
// that cannot be read then fails the check, naming why), so memory does not
// grow with their size. Thread-safe (pure over what it reads).
Verification verify(const Evidence& evidence, const SummaryRenderer& render_summary);

// ---- Evidence bundle ---------------------------------------------------------

inline constexpr const char* kBundleFormat = "cascade-audit/1";

// The bundle (format cascade-audit/1), one JSON document:
//   format, release_id, exported_at (RFC 3339) and exported_at_ms, exported_by;
//   release_stream, pipeline_stream — {stream, events: [{version, position,
//     stored}], read_failure}: "stored" is the event's stored bytes as a
//     string (its canonical object plus "hash", which is what the log holds
//     for an intact event), so verification recomputes hashes from exactly
//     these bytes; read_failure (or null) says why the events end early;
//     the pipeline stream also has through_version;
//   definition — the release's definition snapshot (a copy of ReleaseCreated's);
//   step_logs — {"<stage>/<attempt>/<step>": {stage, attempt, step_index,
//     step, lines: [{at, stream, text | text_base64}]}}: "text" when the
//     line is UTF-8, else its bytes in base64;
//   summary — {reflects_version, text | text_base64}, or null;
//   verification — the result at export (to_json(Verification)).
// Changing any byte of an event's "stored" string or of a line's text makes
// verify_bundle fail, naming the event version or the step.
// The whole bundle in memory, every log line included: for small evidence
// and tests; exports write it with write_bundle. A store that fails while
// its lines are read leaves them out (write_bundle says so).
nlohmann::ordered_json to_bundle(const Evidence& evidence, const Verification& at_export, Timestamp exported_at,
                                 const std::string& exported_by);

// Writes to_bundle(...).dump(2) and a newline to `out`, byte for byte,
// without holding the bundle: each event and each log line is written as it
// is read (`cascade audit export`). kUnavailable when `out` fails; a step log
// that can no longer be read gives the store's error. Either leaves `out`
// with part of a bundle.
Status write_bundle(std::ostream& out, const Evidence& evidence, const Verification& at_export,
                    Timestamp exported_at, const std::string& exported_by);

struct Bundle {
  Evidence evidence;
  Verification at_export;
  Timestamp exported_at = 0;
  std::string exported_by;
  // Set when the bundle contradicts itself (its copy of the definition is not
  // the snapshot in ReleaseCreated).
  std::optional<Finding> inconsistency;
};

// Reads a bundle back. Events whose bytes do not decode become the streams'
// failures (as in read_stream); gaps are left for verify() to find.
// kInvalidArgument when `text` is JSON but not a cascade-audit/1 bundle;
// kDataLoss when it is not JSON, or, naming the JSON path, when its structure
// is damaged.
Result<Bundle> read_bundle(std::string_view text);

// Verifies a bundle offline: verify() over its evidence, then two checks of
// its own — "bundle" (its definition copy is the release's snapshot) and
// "export" (the verification at export passed; when it did not, the bundle
// holds only what could be read, and this check fails with that failure).
Verification verify_bundle(const Bundle& bundle, const SummaryRenderer& render_summary);

// ---- Why ---------------------------------------------------------------------

// One or two sentences from the state on why `stage` is in its state, e.g.
//   "prod is waiting: approval by release-manager requested at
//    2027-01-15T08:00:00.000Z, 1 of 1 pending; deadline 2027-02-14T08:00:00.000Z"
//   "prod was not triggered: qa failed at step smoke-test"
// Times are RFC 3339 UTC. An unknown stage gives a sentence saying so.
std::string explain_stage(const ReleaseState& release, const std::string& stage);

}  // namespace cascade::engine
