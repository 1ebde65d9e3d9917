// events/time.hpp: the one RFC 3339 formatter and parser.
#include "events/time.hpp"

#include <gtest/gtest.h>

namespace cascade::events {
namespace {

constexpr Timestamp kStart = 1'800'000'000'000;  // 2027-01-15T08:00:00Z

Timestamp parsed(std::string_view text, TimeSyntax syntax = TimeSyntax::kRfc3339) {
  const auto at = parse_rfc3339(text, syntax);
  EXPECT_TRUE(at) << text;
  return at ? at.value() : -1;
}

TEST(EventsTimeTest, FormatsUtcWithMillisecondsAndZ) {
  EXPECT_EQ(format_rfc3339(kStart), "2027-01-15T08:00:00.000Z");
  EXPECT_EQ(format_rfc3339(kStart + 23'250), "2027-01-15T08:00:23.250Z");
  EXPECT_EQ(format_rfc3339(1'800'000'000'123), "2027-01-15T08:00:00.123Z");
  EXPECT_EQ(format_rfc3339(951'782'400'007), "2000-02-29T00:00:00.007Z");
  EXPECT_EQ(format_time_of_day(kStart + 23'250), "08:00:23.250");
}

TEST(EventsTimeTest, ZeroIsTheEpochOrEmptyAsTheCallerAsks) {
  EXPECT_EQ(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339(0, ZeroTime::kEpoch), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339(0, ZeroTime::kEmpty), "");
  EXPECT_EQ(format_rfc3339(1, ZeroTime::kEmpty), "1970-01-01T00:00:00.001Z");
}

TEST(EventsTimeTest, TimesBefore1970RoundDown) {
  EXPECT_EQ(format_rfc3339(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(format_rfc3339(-86'400'000), "1969-12-31T00:00:00.000Z");
  EXPECT_EQ(format_time_of_day(-1), "23:59:59.999");
  EXPECT_EQ(parsed("1969-12-31T23:59:59.999Z"), -1);
  EXPECT_EQ(parsed("1900-03-01T00:00:00Z"), -2'203'891'200'000);
  EXPECT_EQ(parsed("0001-01-01T00:00:00Z"), -62'135'596'800'000);
}

TEST(EventsTimeTest, LeapYearsFollowTheGregorianRules) {
  EXPECT_EQ(parsed("2024-02-29T00:00:00Z") + 86'400'000, parsed("2024-03-01T00:00:00Z"));
  EXPECT_EQ(parsed("2000-02-29T00:00:00Z"), 951'782'400'000);  // divisible by 400: leap
  EXPECT_FALSE(parse_rfc3339("1900-02-29T00:00:00Z"));          // by 100, not by 400: not leap
  EXPECT_FALSE(parse_rfc3339("2023-02-29T00:00:00Z"));
  EXPECT_FALSE(parse_rfc3339("2023-02-30T00:00:00Z"));
  EXPECT_FALSE(parse_rfc3339("2023-04-31T00:00:00Z"));
  EXPECT_EQ(format_rfc3339(parsed("2096-02-29T12:34:56.789Z")), "2096-02-29T12:34:56.789Z");
}

TEST(EventsTimeTest, FormattedTimesParseBack) {
  for (Timestamp at : {Timestamp{0}, Timestamp{1}, kStart, kStart + 999, Timestamp{951'782'400'007},
                       Timestamp{-1}, Timestamp{-62'135'596'800'000}, Timestamp{253'402'300'799'999}}) {
    EXPECT_EQ(parsed(format_rfc3339(at)), at) << at;
    EXPECT_EQ(parsed(format_rfc3339(at), TimeSyntax::kUtc), at) << at;
  }
  // Every day of four years, at a time with every field non-zero.
  for (Timestamp day = 0; day < 4 * 366; ++day) {
    const Timestamp at = kStart + day * 86'400'000 + 3'723'456;
    const UtcTime fields = utc_time(at);
    EXPECT_EQ(timestamp_of(fields), at);
    EXPECT_EQ(parsed(format_rfc3339(at)), at);
  }
}

TEST(EventsTimeTest, Rfc3339AcceptsOffsetsLowercaseAndFractions) {
  EXPECT_EQ(parsed("2027-01-15T10:00:00+02:00"), kStart);
  EXPECT_EQ(parsed("2027-01-15T07:30:00-00:30"), kStart);
  EXPECT_EQ(parsed("2027-01-15t08:00:00z"), kStart);
  EXPECT_EQ(parsed("2027-01-15T08:00:00.5Z"), kStart + 500);
  EXPECT_EQ(parsed("2027-01-15T08:00:00.123999Z"), kStart + 123);  // cut, not rounded
  EXPECT_FALSE(parse_rfc3339("2027-01-15T08:00Z"));                  // seconds are required
}

TEST(EventsTimeTest, UtcSyntaxIsWhatPeopleType) {
  EXPECT_EQ(parsed("2027-01-15T08:00:00Z", TimeSyntax::kUtc), kStart);
  EXPECT_EQ(parsed("2027-01-15T08:00Z", TimeSyntax::kUtc), kStart);
  EXPECT_EQ(parsed("2027-01-15T08:00:00.25Z", TimeSyntax::kUtc), kStart + 250);
  EXPECT_FALSE(parse_rfc3339("2027-01-15T10:00:00+02:00", TimeSyntax::kUtc));
  EXPECT_FALSE(parse_rfc3339("2027-01-15t08:00:00z", TimeSyntax::kUtc));
  EXPECT_FALSE(parse_rfc3339("2027-01-15T08:00:00", TimeSyntax::kUtc));
}

TEST(EventsTimeTest, BadInputIsInvalidArgumentNamingTheText) {
  for (const char* text :
       {"", "2027", "2027-01-15", "2027-01-15 08:00:00Z", "2027-1-15T08:00:00Z", "2027-01-15T8:00:00Z",
        "2027-13-01T00:00:00Z", "2027-00-01T00:00:00Z", "2027-01-00T00:00:00Z", "2027-01-15T24:00:00Z",
        "2027-01-15T08:60:00Z", "2027-01-15T08:00:60Z", "0000-01-01T00:00:00Z", "2027-01-15T08:00:00.Z",
        "2027-01-15T08:00:00Zjunk", "2027-01-15T08:00:00+2:00", "2027-01-15T08:00:00+24:00", "+2027-01-15T08:00:00Z",
        "２０２７-01-15T08:00:00Z"}) {
    const auto at = parse_rfc3339(text);
    ASSERT_FALSE(at) << text;
    EXPECT_EQ(at.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(at.error().message, "'" + std::string(text) + "' is not an RFC 3339 date-time like 2026-11-29T02:00:00Z");
  }
  const auto typed = parse_rfc3339("tomorrow", TimeSyntax::kUtc);
  ASSERT_FALSE(typed);
  EXPECT_EQ(typed.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(typed.error().message, "'tomorrow' is not a UTC time like 2026-11-29T02:00:00Z");
}

}  // namespace
}  // namespace cascade::events
