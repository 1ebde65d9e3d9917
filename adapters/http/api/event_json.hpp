// The API's JSON forms of events and times: what GET …/events, the event
// stream and `--json` show, and what the CLI reads back from a server.
#pragma once

#include "events/event.hpp"
#include "events/result.hpp"

#include <nlohmann/json.hpp>

#include <string>

namespace cascade::adapters::http::api {

// "2026-11-28T14:03:07.250Z"; "" for 0.
std::string iso_time(events::Timestamp at);
// "2026-11-29T02:00:00Z", seconds and milliseconds optional, UTC only → ms
// since the epoch; kInvalidArgument naming the text otherwise.
Result<events::Timestamp> parse_utc_time(const std::string& text);

// An event as the API, `cascade events` and --json show it.
nlohmann::json event_json(const events::RecordedEvent& event);
// One line of a release timeline in words: "dev step deploy succeeded
// (0.41 s)" — the "details" of GET …/replay and of the CLI's tables.
std::string describe(const events::RecordedEvent& event);

// The inverse, for events that arrive over HTTP. kInvalidArgument when
// `event` does not have that shape.
Result<events::RecordedEvent> event_from_json(const nlohmann::json& event);

}  // namespace cascade::adapters::http::api
