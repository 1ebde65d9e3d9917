#include "adapters/http/api/event_json.hpp"

#include "events/codec.hpp"
#include "events/time.hpp"

namespace cascade::adapters::http::api {

using events::RecordedEvent;
using events::Timestamp;

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

}  // namespace cascade::adapters::http::api
