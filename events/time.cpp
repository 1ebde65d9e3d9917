#include "events/time.hpp"

#include <cstdint>
#include <cstdio>
#include <optional>

namespace cascade::events {

namespace {

constexpr std::int64_t kMillisecondsPerDay = 86'400'000;

bool is_leap_year(std::int64_t year) { return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0); }

int days_in_month(std::int64_t year, int month) {
  constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && is_leap_year(year) ? 29 : kDays[month - 1];
}

// Days since 1970-01-01 of a proleptic Gregorian date, and back (Howard
// Hinnant's days_from_civil and civil_from_days: eras of 400 years).
std::int64_t days_from_civil(std::int64_t year, int month, int day) {
  year -= month <= 2 ? 1 : 0;
  const std::int64_t era = (year >= 0 ? year : year - 399) / 400;
  const std::int64_t year_of_era = year - era * 400;
  const std::int64_t day_of_year = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
  const std::int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + day_of_era - 719468;
}

void civil_from_days(std::int64_t days, UtcTime& out) {
  days += 719468;
  const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const std::int64_t day_of_era = days - era * 146097;
  const std::int64_t year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const std::int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const std::int64_t shifted_month = (5 * day_of_year + 2) / 153;  // March is 0
  out.day = static_cast<int>(day_of_year - (153 * shifted_month + 2) / 5 + 1);
  out.month = static_cast<int>(shifted_month < 10 ? shifted_month + 3 : shifted_month - 9);
  out.year = static_cast<int>(year_of_era + era * 400 + (out.month <= 2 ? 1 : 0));
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The number written with exactly `count` digits at `at`, or nullopt.
std::optional<int> digits(std::string_view text, std::size_t at, std::size_t count) {
  if (at + count > text.size()) return std::nullopt;
  int value = 0;
  for (std::size_t i = at; i < at + count; ++i) {
    if (!is_digit(text[i])) return std::nullopt;
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

bool is_char(std::string_view text, std::size_t at, char upper, bool any_case) {
  if (at >= text.size()) return false;
  return text[at] == upper || (any_case && text[at] == upper - 'A' + 'a');
}

// The timestamp, or nullopt when `text` is not in `syntax`.
std::optional<Timestamp> parse(std::string_view text, TimeSyntax syntax) {
  const bool rfc3339 = syntax == TimeSyntax::kRfc3339;
  UtcTime time;
  const auto year = digits(text, 0, 4), month = digits(text, 5, 2), day = digits(text, 8, 2);
  const auto hour = digits(text, 11, 2), minute = digits(text, 14, 2);
  if (!year || !month || !day || !hour || !minute) return std::nullopt;
  if (!is_char(text, 4, '-', false) || !is_char(text, 7, '-', false) || !is_char(text, 10, 'T', rfc3339) ||
      !is_char(text, 13, ':', false)) {
    return std::nullopt;
  }
  std::size_t i = 16;
  if (is_char(text, i, ':', false)) {
    const auto second = digits(text, i + 1, 2);
    if (!second) return std::nullopt;
    time.second = *second;
    i += 3;
    if (is_char(text, i, '.', false)) {
      const std::size_t start = ++i;
      while (i < text.size() && is_digit(text[i])) ++i;
      if (i == start) return std::nullopt;
      for (std::size_t k = 0; k < 3; ++k) {
        time.millisecond = time.millisecond * 10 + (start + k < i ? text[start + k] - '0' : 0);
      }
    }
  } else if (rfc3339) {
    return std::nullopt;  // seconds are required
  }
  if (*year == 0 || *month < 1 || *month > 12 || *day < 1 || *day > days_in_month(*year, *month)) return std::nullopt;
  if (*hour > 23 || *minute > 59 || time.second > 59) return std::nullopt;
  time.year = *year;
  time.month = *month;
  time.day = *day;
  time.hour = *hour;
  time.minute = *minute;

  std::int64_t offset_minutes = 0;
  if (is_char(text, i, 'Z', rfc3339)) {
    ++i;
  } else if (rfc3339 && i < text.size() && (text[i] == '+' || text[i] == '-')) {
    const auto offset_hours = digits(text, i + 1, 2), offset_rest = digits(text, i + 4, 2);
    if (!offset_hours || !offset_rest || !is_char(text, i + 3, ':', false) || *offset_hours > 23 ||
        *offset_rest > 59) {
      return std::nullopt;
    }
    offset_minutes = (*offset_hours * 60 + *offset_rest) * (text[i] == '-' ? -1 : 1);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != text.size()) return std::nullopt;
  return timestamp_of(time) - offset_minutes * 60 * 1000;
}

}  // namespace

UtcTime utc_time(Timestamp at) {
  // Floor division, so that times before 1970 fall on the day they belong to.
  std::int64_t days = at / kMillisecondsPerDay;
  std::int64_t in_day = at % kMillisecondsPerDay;
  if (in_day < 0) {
    in_day += kMillisecondsPerDay;
    --days;
  }
  UtcTime time;
  civil_from_days(days, time);
  time.hour = static_cast<int>(in_day / 3'600'000);
  time.minute = static_cast<int>(in_day / 60'000 % 60);
  time.second = static_cast<int>(in_day / 1000 % 60);
  time.millisecond = static_cast<int>(in_day % 1000);
  return time;
}

Timestamp timestamp_of(const UtcTime& time) {
  const std::int64_t days = days_from_civil(time.year, time.month, time.day);
  return days * kMillisecondsPerDay + ((time.hour * 60 + time.minute) * 60 + time.second) * 1000 + time.millisecond;
}

std::string format_rfc3339(Timestamp at, ZeroTime zero) {
  if (at == 0 && zero == ZeroTime::kEmpty) return "";
  const UtcTime t = utc_time(at);
  char text[64];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", t.year, t.month, t.day, t.hour, t.minute,
                t.second, t.millisecond);
  return text;
}

std::string format_time_of_day(Timestamp at) {
  const UtcTime t = utc_time(at);
  char text[32];
  std::snprintf(text, sizeof text, "%02d:%02d:%02d.%03d", t.hour, t.minute, t.second, t.millisecond);
  return text;
}

Result<Timestamp> parse_rfc3339(std::string_view text, TimeSyntax syntax) {
  if (const std::optional<Timestamp> at = parse(text, syntax)) return *at;
  return make_error(ErrorCode::kInvalidArgument,
                    "'" + std::string(text) + (syntax == TimeSyntax::kRfc3339 ? "' is not an RFC 3339 date-time"
                                                                              : "' is not a UTC time") +
                        " like 2026-11-29T02:00:00Z");
}

}  // namespace cascade::events
