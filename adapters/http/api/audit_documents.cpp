#include "adapters/http/api/audit_documents.hpp"

#include "adapters/http/api/event_json.hpp"

#include <optional>
#include <ostream>
#include <utility>

namespace cascade::adapters::http::api {

using nlohmann::json;

namespace {

Error no_release(const std::string& release_id) {
  return make_error(ErrorCode::kNotFound, "no release '" + release_id + "'");
}

std::string render_summary(const engine::ReleaseState& state) { return projections::summarize(state).dump(); }

// The stored summary of the release and the release version it reflects:
// the version the document names, or — without one — the last at or below
// the projection's checkpoint. None when the projection has not seen the release yet; empty text when it
// has, but holds no document of it. `summary_text` was read before the events.
Result<std::optional<engine::StoredSummary>> stored_summary(const engine::Evidence& evidence,
                                                            Result<std::string> summary_text,
                                                            std::uint64_t checkpoint) {
  engine::StoredSummary stored;
  for (const events::RecordedEvent& e : evidence.release.events) {
    if (e.position <= checkpoint) stored.reflects_version = e.version;
  }
  if (summary_text) {
    stored.text = std::move(summary_text).value();
    const json document = json::parse(stored.text, nullptr, false);
    if (document.is_object() && document.contains("version") && document["version"].is_number_integer()) {
      stored.reflects_version = document["version"].get<std::int64_t>();
    }
  } else if (summary_text.error().code != ErrorCode::kNotFound) {
    return summary_text.error();
  } else if (stored.reflects_version == 0) {
    return std::optional<engine::StoredSummary>();
  }
  return std::optional<engine::StoredSummary>(std::move(stored));
}

}  // namespace

Result<engine::Evidence> live_evidence(const AuditPorts& ports, const std::string& release_id) {
  // Summary and checkpoint before the events: the events then cover every
  // version the summary reflects.
  Result<std::string> summary_text = ports.summaries.summary(release_id);
  CASCADE_TRY(checkpoint, ports.summaries.checkpoint());
  CASCADE_TRY(evidence, engine::collect_evidence(ports.log, ports.step_logs, release_id));
  CASCADE_TRY(summary, stored_summary(evidence, std::move(summary_text), checkpoint));
  evidence.summary = std::move(summary);
  return std::move(evidence);
}

Result<json> why_document(events::EventLog& log, const std::string& release_id, const std::string& stage) {
  CASCADE_TRY(read, engine::read_stream(log, engine::release_stream(release_id)));
  if (read.failure) return make_error(ErrorCode::kDataLoss, read.failure->message);
  if (read.events.empty()) return no_release(release_id);
  const engine::ReleaseState state = engine::fold(read.events);
  const engine::StageRecord* record = state.find_stage(stage);
  if (record == nullptr) return state.unknown_stage(stage);
  return json{{"release", release_id},
              {"stage", stage},
              {"state", engine::to_string(record->state())},
              {"version", state.version},
              {"explanation", engine::explain_stage(state, stage)}};
}

Result<json> replay_document(const AuditPorts& ports, const std::string& release_id, const ReplayRequest& request) {
  CASCADE_TRY(target, engine::parse_travel_target(request.at));
  // Without verify only the stream is read; with it, everything is.
  engine::Evidence evidence;
  if (request.verify) {
    CASCADE_TRY(collected, live_evidence(ports, release_id));
    evidence = std::move(collected);
  } else {
    CASCADE_TRY(read, engine::read_stream(ports.log, engine::release_stream(release_id)));
    if (read.events.empty() && !read.failure) return no_release(release_id);
    evidence.release_id = release_id;
    evidence.release = std::move(read);
  }
  const std::vector<events::RecordedEvent>& events = evidence.release.events;
  json output = {{"release", release_id}};
  if (target.any()) {
    CASCADE_TRY(point, engine::travel(release_id, events, target, request.at));
    const events::RecordedEvent& reached = *point.reached;
    output["at"] = {{"version", point.state.version},
                    {"time", iso_time(reached.recorded_at)},
                    {"event", events::type_name(reached.data)},
                    {"details", describe(reached)},
                    {"last_version", point.last_version}};
    output["summary"] = projections::summarize(point.state);
  } else {
    json list = json::array();
    for (const events::RecordedEvent& e : events) {
      json entry = event_json(e);
      entry["details"] = describe(e);
      list.push_back(std::move(entry));
    }
    output["events"] = std::move(list);
  }
  if (request.verify) {
    output["verification"] = engine::to_json(engine::verify(evidence, render_summary));
  } else if (evidence.release.failure) {
    output["read_failure"] = evidence.release.failure->message;
  }
  return output;
}

Result<ExportedBundle> export_bundle(const AuditPorts& ports, const std::string& release_id, std::ostream& out,
                                     events::Timestamp now, const std::string& actor) {
  CASCADE_TRY(evidence, live_evidence(ports, release_id));
  ExportedBundle exported{std::move(evidence), {}};
  exported.verification = engine::verify(exported.evidence, render_summary);
  // Step logs go from the store to `out` a line at a time (write_bundle).
  CASCADE_TRY(engine::write_bundle(out, exported.evidence, exported.verification, now, actor));
  return exported;
}

}  // namespace cascade::adapters::http::api
