// The codec writes and reads canonical JSON without a DOM for most event
// types (events/codec.cpp). nlohmann stays the definition of the format: these
// tests hold the fast path to nlohmann's bytes and nlohmann's reading.
#include "events/codec.hpp"

#include "tests/support/sample_events.hpp"

#include <gtest/gtest.h>

namespace cascade::events {
namespace {

RecordedEvent recorded(const Event& data, std::string actor = "alice") {
  RecordedEvent e;
  e.event_id = "7d0f4a52-8f7e-4a43-9a57-2d1c6b0e9a11";
  e.stream = "release-SampleApp-7";
  e.version = 12;
  e.position = 99;
  e.recorded_at = 1'800'000'000'123;
  e.actor = std::move(actor);
  e.command_id = "cmd-1";
  e.causation_id = "cause-1";
  e.correlation_id = "SampleApp-7";
  e.data = data;
  e.prev_hash = sha256_hex("previous");
  return e;
}

// The canonical bytes as nlohmann writes them.
std::string reference_bytes(const RecordedEvent& e) {
  const nlohmann::json object = {{"event_id", e.event_id},       {"stream", e.stream},
                                 {"version", e.version},         {"recorded_at", e.recorded_at},
                                 {"actor", e.actor},             {"command_id", e.command_id},
                                 {"causation_id", e.causation_id}, {"correlation_id", e.correlation_id},
                                 {"type", type_name(e.data)},    {"schema_version", schema_version(e.data)},
                                 {"data", payload_to_json(e.data)}, {"prev_hash", e.prev_hash}};
  return object.dump();
}

TEST(EventsCanonicalFastPathTest, EveryTypeWritesNlohmannsBytes) {
  for (const Event& data : testing::one_of_each_event()) {
    RecordedEvent e = recorded(data);
    EXPECT_EQ(canonical_bytes(e), reference_bytes(e)) << type_name(data);
    const std::string stored = seal(e);
    nlohmann::json with_hash = nlohmann::json::parse(reference_bytes(e));
    with_hash["hash"] = e.hash;
    EXPECT_EQ(stored, with_hash.dump()) << type_name(data);
    EXPECT_EQ(e.hash, sha256_hex(reference_bytes(e)));
  }
}

TEST(EventsCanonicalFastPathTest, EscapesAndUtf8GoThroughNlohmann) {
  StageCanceled canceled;
  canceled.stage = "prod";
  canceled.attempt = 2;
  canceled.reason = "superseded by \"Shop-9\"\n\tby Zoë \\ ops";
  RecordedEvent e = recorded(canceled, "zoë");
  EXPECT_EQ(canonical_bytes(e), reference_bytes(e));
  const std::string stored = seal(e);
  auto decoded = decode(stored, e.position);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(std::get<StageCanceled>(decoded.value().data).reason, canceled.reason);
  EXPECT_EQ(decoded.value().actor, "zoë");
  EXPECT_TRUE(verify_chain({decoded.value()}, e.prev_hash));
}

TEST(EventsCanonicalFastPathTest, ReadingAgreesWithNlohmannOnEveryType) {
  for (const Event& data : testing::one_of_each_event()) {
    RecordedEvent e = recorded(data);
    const std::string stored = seal(e);
    // The same event laid out differently (indented, keys in another order
    // after a round trip through nlohmann's ordered_json) takes the DOM path;
    // both must decode to the same event.
    const std::string indented = nlohmann::json::parse(stored).dump(2);
    auto fast = decode(stored, e.position);
    auto slow = decode(indented, e.position);
    ASSERT_TRUE(fast) << fast.error().message;
    ASSERT_TRUE(slow) << slow.error().message;
    EXPECT_EQ(canonical_bytes(fast.value()), canonical_bytes(slow.value())) << type_name(data);
    EXPECT_EQ(fast.value().hash, slow.value().hash);
    EXPECT_EQ(payload_to_json(fast.value().data), payload_to_json(data)) << type_name(data);
    // decode_into reuses an event of another type without leftovers.
    RecordedEvent reused = recorded(testing::one_of_each_event()[3]);
    ASSERT_TRUE(decode_into(stored, e.position, reused));
    EXPECT_EQ(canonical_bytes(reused), canonical_bytes(fast.value())) << type_name(data);
    EXPECT_TRUE(verify_event(reused, e.prev_hash));
  }
}

TEST(EventsCanonicalFastPathTest, OutOfRangeOrOddNumbersAreNotTakenAtFaceValue) {
  RecordedEvent e = recorded(testing::one_of_each_event()[2]);
  const std::string stored = seal(e);
  // A version beyond int64: nlohmann decides (and refuses or converts it the
  // way it always has); the fast path must not invent a value.
  std::string huge = stored;
  huge.replace(huge.rfind("\"version\":12"), 12, "\"version\":99999999999999999999");
  auto slow = decode(huge, 1);
  if (slow) {
    EXPECT_NE(slow.value().version, 12);
  }
  std::string leading_zero = stored;
  leading_zero.replace(leading_zero.rfind("\"version\":12"), 12, "\"version\":012");
  auto refused = decode(leading_zero, 1);
  ASSERT_FALSE(refused) << "not JSON: nlohmann refuses a leading zero";
  EXPECT_EQ(refused.error().code, ErrorCode::kDataLoss);
}

TEST(EventsCanonicalFastPathTest, TamperedContentIsCaughtByVerifyEvent) {
  RecordedEvent e = recorded(testing::one_of_each_event()[5]);
  std::string stored = seal(e);
  const auto at = stored.find("\"stage\":\"");
  ASSERT_NE(at, std::string::npos);
  stored[at + 9] ^= 0x01;  // one bit of the stage name
  auto decoded = decode(stored, e.position);
  ASSERT_TRUE(decoded);
  auto verified = verify_event(decoded.value(), e.prev_hash);
  ASSERT_FALSE(verified);
  EXPECT_EQ(verified.error().code, ErrorCode::kDataLoss);
  EXPECT_NE(verified.error().message.find("content altered"), std::string::npos);
}

}  // namespace
}  // namespace cascade::events
