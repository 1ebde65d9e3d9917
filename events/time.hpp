// Cascade's timestamps (milliseconds since the Unix epoch, UTC) as RFC 3339
// text: the one formatter and the one parser every layer uses. Calendar
// arithmetic is done here (proleptic Gregorian, no leap seconds, as POSIX
// time), not with gmtime/timegm, so it is the same on every platform and
// works before 1970.
#pragma once

#include <string>
#include <string_view>

#include "events/event.hpp"
#include "events/result.hpp"

namespace cascade::events {

// The calendar fields of a timestamp in UTC; month and day 1-based.
struct UtcTime {
  int year = 1970;
  int month = 1;
  int day = 1;
  int hour = 0;
  int minute = 0;
  int second = 0;
  int millisecond = 0;
};

// The fields of `at`; negative timestamps (before 1970) round down, so -1 is
// 1969-12-31T23:59:59.999.
UtcTime utc_time(Timestamp at);

// The timestamp of `time`. REQUIRES: every field in its range (parse_rfc3339
// checks them; a day past the month's end is not normalised).
Timestamp timestamp_of(const UtcTime& time);

// How format_rfc3339 writes a timestamp of 0, which is how Cascade's state
// says "not set": as the epoch (machine-facing documents such as CDEvents),
// or as "" (the audit's explanations and the CLI's tables).
enum class ZeroTime { kEpoch, kEmpty };

// "2027-01-15T08:00:23.250Z": always with milliseconds and 'Z'. Years
// 0001-9999 round-trip through parse_rfc3339.
std::string format_rfc3339(Timestamp at, ZeroTime zero = ZeroTime::kEpoch);

// "08:00:23.250": the time of day in UTC, with milliseconds and no zone (the
// CLI's live timeline).
std::string format_time_of_day(Timestamp at);

// What parse_rfc3339 accepts.
enum class TimeSyntax {
  // An RFC 3339 date-time as machines write it (CDEvents):
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM), 'T' and 'Z' in either case.
  kRfc3339,
  // A UTC time as people type it (CLI options, API fields):
  // YYYY-MM-DDTHH:MM[:SS[.frac]]Z, uppercase 'T' and 'Z', no offset.
  kUtc,
};

// The timestamp `text` denotes. Fractions of a second beyond milliseconds are
// cut off (not rounded). Years 0001-9999; the date must exist (no 2023-02-29),
// hours 00-23, minutes and seconds 00-59 (no leap second). kInvalidArgument
// otherwise, with the message "'<text>' is not an RFC 3339 date-time like
// 2026-11-29T02:00:00Z" (kRfc3339) or "'<text>' is not a UTC time like
// 2026-11-29T02:00:00Z" (kUtc). Thread-safe; never throws.
[[nodiscard]] Result<Timestamp> parse_rfc3339(std::string_view text, TimeSyntax syntax = TimeSyntax::kRfc3339);

}  // namespace cascade::events
