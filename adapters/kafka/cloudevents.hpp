// CloudEvents on Kafka (Kafka protocol binding v1.0.2) for the CDEvents that
// Cascade consumes and emits. Pure data and JSON: no librdkafka here, so the
// mapping is testable without a broker.
//
// Binary mode: value = the CDEvent JSON, header content-type: application/json,
// every other CloudEvents attribute as a header ce_<attr>. Structured mode:
// content-type: application/cloudevents+json; charset=UTF-8, value = a
// CloudEvents JSON object whose `data` is the CDEvent object. A receiver treats
// a record as structured when content-type starts with application/cloudevents.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "events/result.hpp"

namespace cascade::adapters::kafka {

struct RecordHeader {
  std::string key;
  std::string value;
};

// A Kafka record as the application sees it (no partition/offset).
struct Record {
  std::string key;
  std::string value;
  std::vector<RecordHeader> headers;

  // The last header with this key, if any.
  std::optional<std::string> header(const std::string& key) const;
};

enum class CloudEventsMode { kBinary, kStructured };

// Wraps a CDEvent (a JSON object with context and subject) into a record in
// the given mode. CloudEvents id/source/type = context.id/source/type,
// subject = subject.id, time = context.timestamp, specversion "1.0".
Record encode_cdevent(const nlohmann::json& cdevent, CloudEventsMode mode, std::string record_key);

// The CDEvent a record carries, in either mode, and the mode it came in.
// kInvalidArgument naming the problem (not JSON — with the byte offset —,
// missing ce_type header, structured envelope without a `data` object,
// envelope attributes disagreeing with the CDEvent's context, ...).
struct DecodedCdEvent {
  nlohmann::json cdevent;
  CloudEventsMode mode = CloudEventsMode::kBinary;
};
Result<DecodedCdEvent> decode_cdevent(const Record& record);

}  // namespace cascade::adapters::kafka
