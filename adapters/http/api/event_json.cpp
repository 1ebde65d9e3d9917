#include "adapters/http/api/event_json.hpp"

#include "events/codec.hpp"
#include "events/overloaded.hpp"
#include "events/time.hpp"

#include <iomanip>
#include <sstream>

namespace cascade::adapters::http::api {

using events::RecordedEvent;
using events::Timestamp;
using namespace events;

namespace {

std::string seconds(std::int64_t ms) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(2) << static_cast<double>(ms) / 1000.0 << " s";
  return out.str();
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

std::string with_comment(const std::string& comment) { return comment.empty() ? "" : ": \"" + comment + "\""; }

}  // namespace

std::string iso_time(Timestamp at) { return events::format_rfc3339(at, events::ZeroTime::kEmpty); }

Result<events::Timestamp> parse_utc_time(const std::string& text) {
  return events::parse_rfc3339(text, events::TimeSyntax::kUtc);
}

nlohmann::json event_json(const RecordedEvent& e) {
  return {{"position", e.position},         {"stream", e.stream},
          {"version", e.version},           {"event_id", e.event_id},
          {"type", events::type_name(e.data)},      {"schema_version", events::schema_version(e.data)},
          {"recorded_at", e.recorded_at},
          {"time", iso_time(e.recorded_at)}, {"actor", e.actor},
          {"command_id", e.command_id},     {"causation_id", e.causation_id},
          {"correlation_id", e.correlation_id}, {"data", events::payload_to_json(e.data)},
          {"prev_hash", e.prev_hash},       {"hash", e.hash}};
}

Result<RecordedEvent> event_from_json(const nlohmann::json& j) {
  try {
    RecordedEvent e;
    j.at("position").get_to(e.position);
    events::envelope_from_json(j, e);
    CASCADE_TRY(payload, events::payload_from_json(j.at("type").get<std::string>(), j.value("schema_version", 1), j.at("data")));
    e.data = std::move(payload);
    return e;
  } catch (const nlohmann::json::exception& ex) {
    return make_error(ErrorCode::kInvalidArgument, std::string("not an event: ") + ex.what());
  }
}

std::string describe(const RecordedEvent& event) {
  return std::visit(
      Overloaded{
          [](const PipelineDefined& e) {
            return "pipeline " + e.pipeline + " defined (version " + std::to_string(e.version) + ")";
          },
          [&](const ReleaseCreated& e) {
            return "release " + e.release_id + " (" + e.name + ") created from " + e.pipeline + " v" +
                   std::to_string(e.pipeline_version) + ", artifact " + e.artifact.version + " (by " +
                   e.requested_by + ")";
          },
          [](const StageTriggered& e) {
            return e.stage + " triggered: " + e.reason + (e.attempt > 1 ? " (attempt " + std::to_string(e.attempt) + ")" : "");
          },
          [](const ApprovalRequested& e) {
            std::string line = (e.phase == "post" ? "post-deployment approval pending: " : "approval pending: ") +
                               e.stage + " (approvers: " + joined(e.approvers);
            if (e.required > 1) line += "; " + std::to_string(e.required) + " needed";
            if (e.order == "sequential") line += "; in order";
            return line + ")";
          },
          [](const ApprovalGranted& e) {
            std::string line = e.stage + " approved by " + e.approver;
            if (e.override) line += " (admin override)";
            if (!e.on_behalf_of.empty() && e.on_behalf_of != e.approver) line += " for " + e.on_behalf_of;
            if (e.defer_until != 0) line += ", deploying at " + iso_time(e.defer_until);
            return line + with_comment(e.comment);
          },
          [](const ApprovalRejected& e) {
            return e.stage + " rejected by " + e.approver + (e.override ? " (admin override)" : "") + with_comment(e.comment);
          },
          [](const ApprovalTimedOut& e) { return e.stage + " " + e.phase + "-deployment approval timed out"; },
          [](const ApprovalSkipped& e) { return e.stage + " approval skipped: " + e.reason; },
          [](const DeferralElapsed& e) { return e.stage + " deferral over: may deploy now"; },
          [](const DeploymentStarted& e) {
            return e.stage + " deploying (attempt " + std::to_string(e.attempt) + ")";
          },
          [](const StepStarted& e) {
            return e.stage + " step " + e.step + " started" +
                   (e.try_number > 1 ? " (try " + std::to_string(e.try_number) + ")" : "");
          },
          [](const StepSucceeded& e) {
            return e.stage + " step " + e.step + " succeeded (" + seconds(e.duration_ms) + ")";
          },
          [](const StepFailed& e) {
            return e.stage + " step " + e.step + " failed: " + e.reason + " (" + seconds(e.duration_ms) + ")" +
                   (e.will_retry ? ", will retry" : "") + (e.continued ? ", continuing" : "");
          },
          [](const StepSkipped& e) { return e.stage + " step " + e.step + " skipped: " + e.reason; },
          [](const DeploymentSucceeded& e) { return e.stage + (e.partial ? " partially deployed" : " deployed"); },
          [](const DeploymentFailed& e) { return e.stage + " failed: " + e.reason; },
          [](const DeploymentCanceled& e) { return e.stage + " deployment canceled: " + e.reason; },
          [](const RollbackChosen& e) {
            return e.rollback_to.empty() ? e.stage + " not rolled back: " + e.reason
                                         : e.stage + " rolls back to " + e.rollback_to + " (" + e.reason + ")";
          },
          [](const StageCanceled& e) { return e.stage + " canceled: " + e.reason; },
          [](const ReleaseAbandoned& e) { return "release abandoned: " + e.reason; },
      },
      event.data);
}

}  // namespace cascade::adapters::http::api
