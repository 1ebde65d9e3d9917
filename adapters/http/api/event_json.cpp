#include "adapters/http/api/event_json.hpp"

#include "events/codec.hpp"

#include <cctype>
#include <ctime>
#include <iomanip>
#include <sstream>

namespace cascade::adapters::http::api {

using events::RecordedEvent;
using events::Timestamp;

std::string iso_time(Timestamp at) {
  if (at == 0) return "";
  std::ostringstream out;
  const std::time_t seconds = static_cast<std::time_t>(at / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  out << std::put_time(&tm, "%Y-%m-%dT%H:%M:%S") << "." << std::setw(3) << std::setfill('0') << (at % 1000) << "Z";
  return out.str();
}

Result<events::Timestamp> parse_utc_time(const std::string& text) {
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == nullptr) end = strptime(text.c_str(), "%Y-%m-%dT%H:%M", &tm);
  std::int64_t millis = 0;
  if (end != nullptr && *end == '.') {
    ++end;
    int digits = 0;
    while (std::isdigit(static_cast<unsigned char>(*end))) {
      if (digits < 3) millis = millis * 10 + (*end - '0');
      ++digits;
      ++end;
    }
    if (digits == 0) end = nullptr;
    for (; digits > 0 && digits < 3; ++digits) millis *= 10;
  }
  if (end == nullptr || std::string(end) != "Z") {
    return make_error(ErrorCode::kInvalidArgument, "'" + text + "' is not a UTC time like 2026-11-29T02:00:00Z");
  }
  return static_cast<events::Timestamp>(timegm(&tm)) * 1000 + millis;
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
