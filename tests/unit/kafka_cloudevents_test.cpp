// The CloudEvents Kafka binding: encode and decode in both modes, and every
// official CDEvents conformance example round-trips through both.
#include "adapters/kafka/cloudevents.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace cascade::adapters::kafka {
namespace {

const std::string kConformanceDir = std::string(CASCADE_SOURCE_DIR) + "/../shared/cdevents/conformance";

nlohmann::json sample_cdevent() {
  return nlohmann::json::parse(R"({
    "context": {"specversion": "0.5.1", "id": "e1", "source": "/ci/shop",
                "type": "dev.cdevents.artifact.published.0.3.0",
                "timestamp": "2026-11-28T10:00:00Z"},
    "subject": {"id": "pkg:generic/shop@1.2.3", "content": {}},
    "customData": {"branch": "main"}})");
}

std::map<std::string, std::string> header_map(const Record& record) {
  std::map<std::string, std::string> out;
  for (const auto& h : record.headers) out[h.key] = h.value;
  return out;
}

TEST(KafkaCloudEventsTest, BinaryModePutsAttributesInHeadersAndTheCdEventInTheValue) {
  Record record = encode_cdevent(sample_cdevent(), CloudEventsMode::kBinary, "shop");
  EXPECT_EQ(record.key, "shop");
  EXPECT_EQ(nlohmann::json::parse(record.value), sample_cdevent());
  auto headers = header_map(record);
  EXPECT_EQ(headers["content-type"], "application/json");
  EXPECT_EQ(headers["ce_specversion"], "1.0");
  EXPECT_EQ(headers["ce_id"], "e1");
  EXPECT_EQ(headers["ce_source"], "/ci/shop");
  EXPECT_EQ(headers["ce_type"], "dev.cdevents.artifact.published.0.3.0");
  EXPECT_EQ(headers["ce_subject"], "pkg:generic/shop@1.2.3");
  EXPECT_EQ(headers["ce_time"], "2026-11-28T10:00:00Z");
  auto decoded = decode_cdevent(record);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(decoded.value().mode, CloudEventsMode::kBinary);
  EXPECT_EQ(decoded.value().cdevent, sample_cdevent());
}

TEST(KafkaCloudEventsTest, StructuredModeWrapsTheCdEventAsDataObject) {
  Record record = encode_cdevent(sample_cdevent(), CloudEventsMode::kStructured, "shop");
  auto headers = header_map(record);
  EXPECT_EQ(headers.size(), 1u);
  EXPECT_EQ(headers["content-type"], "application/cloudevents+json; charset=UTF-8");
  auto envelope = nlohmann::json::parse(record.value);
  EXPECT_EQ(envelope["specversion"], "1.0");
  EXPECT_EQ(envelope["id"], "e1");
  EXPECT_EQ(envelope["source"], "/ci/shop");
  EXPECT_EQ(envelope["type"], "dev.cdevents.artifact.published.0.3.0");
  EXPECT_EQ(envelope["subject"], "pkg:generic/shop@1.2.3");
  EXPECT_EQ(envelope["time"], "2026-11-28T10:00:00Z");
  EXPECT_TRUE(envelope["data"].is_object()) << "data must be an object, not an escaped string";
  EXPECT_EQ(envelope["data"], sample_cdevent());
  auto decoded = decode_cdevent(record);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(decoded.value().mode, CloudEventsMode::kStructured);
  EXPECT_EQ(decoded.value().cdevent, sample_cdevent());
}

TEST(KafkaCloudEventsTest, ContentTypeIsMatchedCaseInsensitivelyAndWithoutParameters) {
  Record record = encode_cdevent(sample_cdevent(), CloudEventsMode::kStructured, "");
  record.headers = {{"Content-Type", "Application/CloudEvents+JSON"}};
  auto decoded = decode_cdevent(record);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(decoded.value().mode, CloudEventsMode::kStructured);
}

TEST(KafkaCloudEventsTest, BinaryWithoutContentTypeIsAccepted) {
  Record record = encode_cdevent(sample_cdevent(), CloudEventsMode::kBinary, "");
  record.headers.erase(record.headers.begin());  // content-type
  auto decoded = decode_cdevent(record);
  ASSERT_TRUE(decoded) << decoded.error().message;
}

void expect_rejected(const Record& record, const std::string& fragment) {
  auto decoded = decode_cdevent(record);
  ASSERT_FALSE(decoded) << "accepted: " << record.value;
  EXPECT_EQ(decoded.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(decoded.error().message.find(fragment), std::string::npos) << decoded.error().message;
}

TEST(KafkaCloudEventsTest, GarbageValueIsRejectedWithTheByteOffset) {
  Record record = encode_cdevent(sample_cdevent(), CloudEventsMode::kBinary, "");
  record.value = "{\"context\": nope}";
  expect_rejected(record, "is not JSON: at byte 13");
  record.value = "[1,2]";
  expect_rejected(record, "not a JSON object");
}

TEST(KafkaCloudEventsTest, BinaryRecordNeedsTheRequiredCeHeaders) {
  for (const char* missing : {"ce_specversion", "ce_id", "ce_source", "ce_type"}) {
    Record record = encode_cdevent(sample_cdevent(), CloudEventsMode::kBinary, "");
    std::vector<RecordHeader> kept;
    for (auto& h : record.headers) {
      if (h.key != missing) kept.push_back(h);
    }
    record.headers = kept;
    expect_rejected(record, std::string("missing ") + missing);
  }
  Record record = encode_cdevent(sample_cdevent(), CloudEventsMode::kBinary, "");
  for (auto& h : record.headers) {
    if (h.key == "ce_specversion") h.value = "0.3";
  }
  expect_rejected(record, "ce_specversion '0.3'");
}

TEST(KafkaCloudEventsTest, BinaryRecordWithNonJsonContentTypeIsRejected) {
  Record record = encode_cdevent(sample_cdevent(), CloudEventsMode::kBinary, "");
  record.headers[0].value = "application/avro";
  expect_rejected(record, "content-type 'application/avro' is not JSON");
}

TEST(KafkaCloudEventsTest, EnvelopeDisagreeingWithTheContextIsRejected) {
  Record binary = encode_cdevent(sample_cdevent(), CloudEventsMode::kBinary, "");
  for (auto& h : binary.headers) {
    if (h.key == "ce_type") h.value = "dev.cdevents.build.finished.0.3.0";
  }
  expect_rejected(binary, "header ce_type 'dev.cdevents.build.finished.0.3.0' disagrees with the CDEvent's context.type");

  Record structured = encode_cdevent(sample_cdevent(), CloudEventsMode::kStructured, "");
  auto envelope = nlohmann::json::parse(structured.value);
  envelope["subject"] = "something-else";
  structured.value = envelope.dump();
  expect_rejected(structured, "disagrees with the CDEvent's subject.id");
}

TEST(KafkaCloudEventsTest, StructuredEnvelopeProblemsAreNamed) {
  Record record = encode_cdevent(sample_cdevent(), CloudEventsMode::kStructured, "");
  auto envelope = nlohmann::json::parse(record.value);

  auto with = [&](nlohmann::json changed) {
    Record r = record;
    r.value = changed.dump();
    return r;
  };
  auto no_data = envelope;
  no_data.erase("data");
  expect_rejected(with(no_data), "without a `data` object");
  auto string_data = envelope;
  string_data["data"] = envelope["data"].dump();
  expect_rejected(with(string_data), "without a `data` object");
  auto old_spec = envelope;
  old_spec["specversion"] = "0.3";
  expect_rejected(with(old_spec), "specversion must be \"1.0\"");
  auto no_id = envelope;
  no_id.erase("id");
  expect_rejected(with(no_id), "missing string attribute 'id'");
  auto xml = envelope;
  xml["datacontenttype"] = "application/xml";
  expect_rejected(with(xml), "datacontenttype");

  Record avro = record;
  avro.headers[0].value = "application/cloudevents+avro";
  expect_rejected(avro, "unsupported format");
}

TEST(KafkaCloudEventsTest, EveryConformanceExampleRoundTripsInBothModes) {
  if (!std::filesystem::is_directory(kConformanceDir)) GTEST_SKIP() << kConformanceDir << " is absent";
  int examples = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kConformanceDir)) {
    if (entry.path().extension() != ".json") continue;
    std::ifstream in(entry.path());
    auto cdevent = nlohmann::json::parse(in);
    for (auto mode : {CloudEventsMode::kBinary, CloudEventsMode::kStructured}) {
      Record record = encode_cdevent(cdevent, mode, "k");
      auto decoded = decode_cdevent(record);
      ASSERT_TRUE(decoded) << entry.path() << ": " << decoded.error().message;
      EXPECT_EQ(decoded.value().mode, mode) << entry.path();
      EXPECT_EQ(decoded.value().cdevent, cdevent) << entry.path();
      if (mode == CloudEventsMode::kBinary) {
        EXPECT_EQ(record.header("ce_type"), cdevent["context"]["type"].get<std::string>()) << entry.path();
        EXPECT_EQ(record.header("ce_subject"), cdevent["subject"]["id"].get<std::string>()) << entry.path();
      }
    }
    ++examples;
  }
  EXPECT_GE(examples, 40);
}

}  // namespace
}  // namespace cascade::adapters::kafka
