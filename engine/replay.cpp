// Replay: a release folded from its events, up to a version or a time
// (time travel), and streams read so that damage is located, not fatal.
#include "engine/audit_internal.hpp"
#include "events/time.hpp"

#include <algorithm>
#include <cctype>

namespace cascade::engine {

using namespace audit_internal;
using events::RecordedEvent;

// ---- Time travel -------------------------------------------------------------

ReleaseState fold(const std::vector<RecordedEvent>& events, std::optional<std::int64_t> up_to_version,
                  std::optional<Timestamp> up_to_time) {
  ReleaseState state;
  for (const RecordedEvent& event : events) {
    if (up_to_version && event.version > *up_to_version) break;
    if (up_to_time && event.recorded_at > *up_to_time) break;
    evolve(state, event);
  }
  return state;
}

Result<TravelTarget> parse_travel_target(const std::string& text) {
  TravelTarget target;
  if (text.empty()) return target;
  if (std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); })) {
    if (text.size() > 18) return make_error(ErrorCode::kInvalidArgument, "--at " + text + ": version too large");
    target.version = std::stoll(text);
    if (*target.version < 1) return make_error(ErrorCode::kInvalidArgument, "--at: versions start at 1");
    return target;
  }
  auto time = events::parse_rfc3339(text, events::TimeSyntax::kUtc);
  if (!time) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--at '" + text + "' is neither a version nor a UTC time like 2026-11-29T02:00:00Z");
  }
  target.time = time.value();
  return target;
}

Result<TravelPoint> travel(const std::string& release_id, const std::vector<RecordedEvent>& events,
                           const TravelTarget& target, const std::string& at_text) {
  TravelPoint point;
  point.state = fold(events, target.version, target.time);
  point.last_version = events.empty() ? 0 : events.back().version;
  if (target.version && *target.version > point.last_version) {
    return make_error(ErrorCode::kInvalidArgument, "release " + release_id + " has " +
                                                       std::to_string(point.last_version) + " readable events; --at " +
                                                       at_text + " is beyond its last version");
  }
  if (!point.state.exists()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "release " + release_id + " did not exist yet at " + at_text + " (created at " +
                          (events.empty() ? "?" : events::format_rfc3339(events.front().recorded_at,
                                                                         events::ZeroTime::kEmpty)) +
                          ")");
  }
  const std::int64_t reached = point.state.version;
  point.reached = &*std::find_if(events.begin(), events.end(),
                                 [&](const RecordedEvent& e) { return e.version == reached; });
  return point;
}

// A failed read of one version, as a finding. The EventLog port has no code
// that tells a missing event from an unreadable one (both are kDataLoss), so
// the log's message decides: the RocksDB log says "missing" for an event its
// index points at but which is gone, and "unreadable" for bytes that do not decode.
Finding audit_internal::read_failure(const std::string& stream, std::int64_t version, const Error& error) {
  Finding f;
  f.kind = error.message.find("missing") != std::string::npos ? FindingKind::kMissingEvent
                                                               : FindingKind::kUnreadableEvent;
  f.location.stream = stream;
  f.location.version = version;
  const std::string where = "stream " + stream + " version " + std::to_string(version);
  f.message = error.message.rfind(where, 0) == 0 ? error.message : where + ": " + error.message;
  f.expected = "version " + std::to_string(version);
  f.found = f.kind == FindingKind::kMissingEvent ? "nothing" : "unreadable bytes";
  return f;
}

Result<StreamRead> read_stream(events::EventLog& log, const std::string& stream, std::size_t limit) {
  StreamRead out;
  out.stream = stream;
  auto all = log.read(stream, 1, limit);
  if (all) {
    out.events = std::move(all).value();
    return out;
  }
  if (all.error().code != ErrorCode::kDataLoss) return all.error();
  // Only on damage: read version by version to know where the stream breaks.
  std::int64_t next = 1;
  while (out.events.size() < limit) {
    auto one = log.read(stream, next, 1);
    if (!one) {
      if (one.error().code != ErrorCode::kDataLoss) return one.error();
      out.failure = read_failure(stream, next, one.error());
      return out;
    }
    if (one.value().empty()) break;
    next = one.value().front().version + 1;
    out.events.push_back(std::move(one.value().front()));
  }
  // Every event read on its own: the damage is not at one version.
  out.failure = read_failure(stream, next, all.error());
  return out;
}

}  // namespace cascade::engine
