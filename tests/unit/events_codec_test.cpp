#include "events/codec.hpp"

#include "tests/support/sample_events.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include <regex>
#include <set>

namespace cascade::events {
namespace {

RecordedEvent recorded(const Event& data, std::int64_t version, std::string prev_hash) {
  RecordedEvent e;
  e.event_id = random_uuid();
  e.stream = "release-SampleApp-7";
  e.version = version;
  e.position = 100 + static_cast<std::uint64_t>(version);
  e.recorded_at = 1'800'000'000'123;
  e.actor = "alice";
  e.command_id = "cmd-1";
  e.causation_id = "cause-1";
  e.correlation_id = "SampleApp-7";
  e.data = data;
  e.prev_hash = std::move(prev_hash);
  return e;
}

std::vector<RecordedEvent> sealed_chain() {
  std::vector<RecordedEvent> chain;
  std::string prev;
  std::int64_t version = 1;
  for (const Event& data : testing::one_of_each_event()) {
    RecordedEvent e = recorded(data, version++, prev);
    seal(e);
    prev = e.hash;
    chain.push_back(e);
  }
  return chain;
}

TEST(EventsCodecTest, AnApprovalOverrideIsStoredAndAPlainApprovalKeepsItsOldBytes) {
  ApprovalGranted plain{"prod", "pre", "alice", "release-managers", "ok", 0};
  RecordedEvent before = recorded(plain, 1, "");
  seal(before);
  // The bytes an approval had before overrides existed: no "override" key.
  EXPECT_EQ(canonical_bytes(before).find("override"), std::string::npos);

  ApprovalGranted overridden = plain;
  overridden.on_behalf_of = "";
  overridden.override = true;
  RecordedEvent override_event = recorded(overridden, 1, "");
  const std::string stored = seal(override_event);
  auto decoded = decode(stored, override_event.position);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_TRUE(std::get<ApprovalGranted>(decoded.value().data).override);
  EXPECT_TRUE(verify_event(decoded.value(), ""));
  EXPECT_NE(override_event.hash, before.hash);

  ApprovalRejected rejected{"prod", "pre", "erin", "", "no", true};
  RecordedEvent rejected_event = recorded(rejected, 1, "");
  auto rejected_decoded = decode(seal(rejected_event), rejected_event.position);
  ASSERT_TRUE(rejected_decoded) << rejected_decoded.error().message;
  EXPECT_TRUE(std::get<ApprovalRejected>(rejected_decoded.value().data).override);
}

// An interruption's StepFailed carries the digest of the lines stored so far;
// every other StepFailed keeps the bytes (and so the hash) it always had, and
// a payload reused by the fast reader does not carry the fields over.
TEST(EventsCodecTest, AnInterruptedStepFailedKeepsItsStoredLogAndOtherFailuresKeepTheirBytes) {
  StepFailed plain{"dev", 1, 0, "deploy", 3, 120, "d1g35t", "exit code 3", false, false, "", 0};
  RecordedEvent plain_event = recorded(plain, 1, "");
  const std::string plain_stored = seal(plain_event);
  EXPECT_EQ(canonical_bytes(plain_event).find("stored_log"), std::string::npos);

  StepFailed cut = plain;
  cut.exit_code = -1;
  cut.log_digest = "";
  cut.reason = "interrupted: the engine stopped during the deployment";
  cut.stored_log_digest = std::string(64, 'a');
  cut.stored_log_lines = 42;
  RecordedEvent cut_event = recorded(cut, 2, plain_event.hash);
  const std::string cut_stored = seal(cut_event);
  EXPECT_NE(canonical_bytes(cut_event).find("\"stored_log_lines\":42"), std::string::npos);

  RecordedEvent out;  // one payload, reused as a reader does
  ASSERT_TRUE(decode_verified(cut_stored, cut_event.position, plain_event.hash, out));
  EXPECT_EQ(std::get<StepFailed>(out.data).stored_log_digest, cut.stored_log_digest);
  EXPECT_EQ(std::get<StepFailed>(out.data).stored_log_lines, 42);
  ASSERT_TRUE(decode_verified(plain_stored, plain_event.position, "", out));
  EXPECT_EQ(std::get<StepFailed>(out.data).stored_log_digest, "");
  EXPECT_EQ(std::get<StepFailed>(out.data).stored_log_lines, 0);
  EXPECT_EQ(out.hash, plain_event.hash);

  // The stored count is covered by the hash like any other field.
  std::string altered = cut_stored;
  altered.replace(altered.find("\"stored_log_lines\":42"), 22, "\"stored_log_lines\":41");
  const Status refused = decode_verified(altered, cut_event.position, plain_event.hash, out);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kDataLoss);
}

// A rollback's StageTriggered names the release whose failure it undoes;
// every other trigger keeps the bytes (and so the hash) it always had, and a
// payload reused by the fast reader does not carry the field over.
TEST(EventsCodecTest, ARollbackTriggerNamesTheFailedReleaseAndOtherTriggersKeepTheirBytes) {
  StageTriggered plain{"prod", "release created", 1};
  RecordedEvent plain_event = recorded(plain, 1, "");
  const std::string plain_stored = seal(plain_event);
  EXPECT_EQ(canonical_bytes(plain_event).find("rollback_of"), std::string::npos);
  EXPECT_NE(canonical_bytes(plain_event).find(R"("data":{"attempt":1,"reason":"release created","stage":"prod"})"),
            std::string::npos);

  StageTriggered rollback{"prod", "auto-redeploy: Shop-3 failed at prod", 2, "Shop-3"};
  RecordedEvent rollback_event = recorded(rollback, 2, plain_event.hash);
  const std::string rollback_stored = seal(rollback_event);
  EXPECT_NE(canonical_bytes(rollback_event).find(R"("rollback_of":"Shop-3")"), std::string::npos);

  RecordedEvent out;  // one payload, reused as a reader does
  ASSERT_TRUE(decode_verified(rollback_stored, rollback_event.position, plain_event.hash, out));
  EXPECT_EQ(std::get<StageTriggered>(out.data).rollback_of, "Shop-3");
  ASSERT_TRUE(decode_verified(plain_stored, plain_event.position, "", out));
  EXPECT_EQ(std::get<StageTriggered>(out.data).rollback_of, "");
  EXPECT_EQ(out.hash, plain_event.hash);
}

TEST(EventsCodecTest, EveryEventTypeRoundTripsThroughItsStoredBytes) {
  const auto samples = testing::one_of_each_event();
  ASSERT_EQ(samples.size(), std::variant_size_v<Event>) << "add the new event type to sample_events.hpp";
  std::set<std::string_view> types;
  for (const Event& data : samples) {
    RecordedEvent original = recorded(data, 1, "");
    const std::string stored = seal(original);
    auto decoded = decode(stored, original.position);
    ASSERT_TRUE(decoded) << decoded.error().message;
    EXPECT_EQ(decoded.value().data.index(), data.index());
    EXPECT_EQ(payload_to_json(decoded.value().data), payload_to_json(data)) << type_name(data);
    EXPECT_EQ(decoded.value().hash, original.hash);
    EXPECT_EQ(decoded.value().position, original.position);
    EXPECT_EQ(canonical_bytes(decoded.value()), canonical_bytes(original));
    EXPECT_EQ(schema_version(data), 1);
    types.insert(type_name(data));
  }
  EXPECT_EQ(types.size(), samples.size()) << "each type has its own name";
}

TEST(EventsCodecTest, CanonicalBytesAreSortedCompactAndLeaveOutPositionAndHash) {
  RecordedEvent e = recorded(testing::one_of_each_event()[2], 4, "abc");
  const std::string bytes = canonical_bytes(e);
  EXPECT_EQ(bytes.find(' '), bytes.find("after dev succeeded") + 5) << "no whitespace outside strings";
  EXPECT_EQ(bytes.find("\"position\""), std::string::npos);
  EXPECT_EQ(bytes.find("\"hash\""), std::string::npos);
  EXPECT_LT(bytes.find("\"actor\""), bytes.find("\"causation_id\""));
  EXPECT_LT(bytes.find("\"version\":4"), std::string::npos);
  RecordedEvent moved = e;
  moved.position = 999;
  EXPECT_EQ(compute_hash(moved), compute_hash(e)) << "where an event sits is not what it says";
  moved.prev_hash = "abd";
  EXPECT_NE(compute_hash(moved), compute_hash(e)) << "the hash covers prev_hash";
}

TEST(EventsCodecTest, HashIsSha256OfTheCanonicalBytes) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  RecordedEvent e = recorded(testing::one_of_each_event()[0], 1, "");
  seal(e);
  EXPECT_EQ(e.hash, sha256_hex(canonical_bytes(e)));
  Sha256 pieces;
  pieces.update("a");
  pieces.update("bc");
  EXPECT_EQ(pieces.finish(), sha256_hex("abc"));
}

TEST(EventsCodecTest, IntactChainVerifies) {
  const auto chain = sealed_chain();
  EXPECT_TRUE(verify_chain(chain));
  // A slice verifies from the hash before it.
  std::vector<RecordedEvent> tail(chain.begin() + 5, chain.end());
  EXPECT_TRUE(verify_chain(tail, chain[4].hash));
  const Status unanchored = verify_chain(tail);
  ASSERT_FALSE(unanchored);
  EXPECT_EQ(unanchored.error().code, ErrorCode::kDataLoss);
  EXPECT_NE(unanchored.error().message.find("broken link"), std::string::npos) << unanchored.error().message;
}

TEST(EventsCodecTest, OneChangedByteInAStoredEventIsDetectedAtItsVersion) {
  auto chain = sealed_chain();
  RecordedEvent& victim = chain[4];  // ApprovalGranted, version 5
  std::string stored = seal(victim);
  const auto at = stored.find("bob");
  ASSERT_NE(at, std::string::npos);
  stored[at] = 'B';  // still valid JSON: only the hash can tell
  auto tampered = decode(stored, victim.position);
  ASSERT_TRUE(tampered);
  victim = tampered.value();
  auto verified = verify_chain(chain);
  ASSERT_FALSE(verified);
  EXPECT_EQ(verified.error().code, ErrorCode::kDataLoss);
  EXPECT_NE(verified.error().message.find("version 5"), std::string::npos) << verified.error().message;
  EXPECT_NE(verified.error().message.find("content altered"), std::string::npos);
}

// decode_verified hashes the stored bytes where they lie; it must reach the
// verdict verify_event reaches on the decoded event, for every event type
// (fast and nlohmann paths) and for every kind of tampering.
TEST(EventsCodecTest, DecodeVerifiedAgreesWithVerifyEventOnEveryType) {
  std::string previous;
  std::int64_t version = 0;
  for (const Event& payload : testing::one_of_each_event()) {
    RecordedEvent e = recorded(payload, ++version, previous);
    const std::string stored = seal(e);
    RecordedEvent out;
    const Status verified = decode_verified(stored, e.position, previous, out);
    EXPECT_TRUE(verified) << type_name(payload) << ": " << verified.error().message;
    EXPECT_EQ(out.hash, e.hash);
    EXPECT_EQ(out.position, e.position);
    EXPECT_EQ(canonical_bytes(out), canonical_bytes(e)) << type_name(payload);
    std::string flipped = stored;  // one byte of the event id: valid JSON, same layout
    flipped[flipped.find("\"event_id\":\"") + 12] ^= 1;
    const Status altered = decode_verified(flipped, e.position, previous, out);
    ASSERT_FALSE(altered) << type_name(payload);
    EXPECT_EQ(altered.error().code, ErrorCode::kDataLoss);
    EXPECT_NE(altered.error().message.find("content altered"), std::string::npos) << altered.error().message;
    const Status unlinked = decode_verified(stored, e.position, "not-the-previous-hash", out);
    ASSERT_FALSE(unlinked) << type_name(payload);
    EXPECT_EQ(unlinked.error().code, ErrorCode::kDataLoss);
    EXPECT_NE(unlinked.error().message.find("broken link"), std::string::npos) << unlinked.error().message;
    previous = e.hash;
  }
}

TEST(EventsCodecTest, DecodeVerifiedDetectsAlteredAndReformattedBytes) {
  auto chain = sealed_chain();
  RecordedEvent& victim = chain[4];  // ApprovalGranted, version 5
  const std::string stored = seal(victim);
  RecordedEvent out;
  ASSERT_TRUE(decode_verified(stored, victim.position, chain[3].hash, out));

  std::string altered = stored;
  altered[altered.find("bob")] = 'B';
  Status verified = decode_verified(altered, victim.position, chain[3].hash, out);
  ASSERT_FALSE(verified);
  EXPECT_EQ(verified.error().code, ErrorCode::kDataLoss);
  EXPECT_NE(verified.error().message.find("version 5: content altered"), std::string::npos)
      << verified.error().message;

  // The same content in another layout (a space after a colon) is not the
  // canonical bytes: the fast path declines it, and the event still verifies
  // by its content, as verify_event would.
  std::string spaced = stored;
  spaced.insert(spaced.find(':') + 1, " ");
  EXPECT_TRUE(decode_verified(spaced, victim.position, chain[3].hash, out));

  // A fast-path event (StageTriggered) with one byte changed in a field the
  // fold does not even read.
  auto triggered = std::find_if(chain.begin(), chain.end(),
                                [](const RecordedEvent& e) { return std::holds_alternative<StageTriggered>(e.data); });
  ASSERT_NE(triggered, chain.end());
  std::string trigger_stored = seal(*triggered);
  trigger_stored[trigger_stored.find("\"command_id\":\"") + 14] ^= 1;
  verified = decode_verified(trigger_stored, triggered->position, triggered->prev_hash, out);
  ASSERT_FALSE(verified);
  EXPECT_EQ(verified.error().code, ErrorCode::kDataLoss);
  EXPECT_NE(verified.error().message.find("content altered"), std::string::npos) << verified.error().message;
}

TEST(EventsCodecTest, RemovedEventBreaksTheLinkOfTheNextOne) {
  auto chain = sealed_chain();
  chain.erase(chain.begin() + 3);
  auto verified = verify_chain(chain);
  ASSERT_FALSE(verified);
  EXPECT_EQ(verified.error().code, ErrorCode::kDataLoss);
  EXPECT_NE(verified.error().message.find("version 5: broken link"), std::string::npos) << verified.error().message;
}

TEST(EventsCodecTest, UnreadableBytesAreDataLossNamingThePosition) {
  auto broken = decode("{\"event_id\":", 42);
  ASSERT_FALSE(broken);
  EXPECT_EQ(broken.error().code, ErrorCode::kDataLoss);
  EXPECT_NE(broken.error().message.find("position 42"), std::string::npos);
  RecordedEvent e = recorded(testing::one_of_each_event()[1], 1, "");
  std::string stored = seal(e);
  stored.replace(stored.find("ReleaseCreated"), 14, "ReleaseDeleted");
  auto unknown = decode(stored, 7);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, ErrorCode::kDataLoss);
  EXPECT_NE(unknown.error().message.find("unknown event type 'ReleaseDeleted'"), std::string::npos);
}

TEST(EventsCodecTest, UnknownSchemaVersionIsRefused) {
  auto payload = payload_from_json("StageTriggered", 2, {{"stage", "dev"}, {"reason", "r"}, {"attempt", 1}});
  ASSERT_FALSE(payload);
  EXPECT_EQ(payload.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(payload.error().message.find("schema version 2"), std::string::npos);
}

TEST(EventsCodecTest, UuidsAreWellFormedAndSeededOnesAreStable) {
  const std::regex v4("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  const std::regex v8("^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  const std::string a = random_uuid(), b = random_uuid();
  EXPECT_TRUE(std::regex_match(a, v4)) << a;
  EXPECT_NE(a, b);
  EXPECT_TRUE(std::regex_match(uuid_from_seed("x"), v8));
  EXPECT_EQ(uuid_from_seed("release-1\ncmd\n0"), uuid_from_seed("release-1\ncmd\n0"));
  EXPECT_NE(uuid_from_seed("release-1\ncmd\n0"), uuid_from_seed("release-1\ncmd\n1"));
}

}  // namespace
}  // namespace cascade::events
