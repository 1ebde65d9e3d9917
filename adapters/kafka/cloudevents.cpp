#include "adapters/kafka/cloudevents.hpp"

#include <algorithm>
#include <cctype>
#include <string_view>

namespace cascade::adapters::kafka {
namespace {

constexpr std::string_view kStructuredContentType = "application/cloudevents+json; charset=UTF-8";
constexpr std::string_view kBinaryContentType = "application/json";

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool starts_with_ci(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && iequals(text.substr(0, prefix.size()), prefix);
}

// content-type is matched case-insensitively: the binding names it in lower
// case, but HTTP habits leak into Kafka producers.
std::optional<std::string> content_type_of(const Record& record) {
  std::optional<std::string> found;
  for (const auto& h : record.headers) {
    if (iequals(h.key, "content-type")) found = h.value;
  }
  return found;
}

// The media type without parameters, lower-cased and trimmed.
std::string media_type(std::string_view content_type) {
  std::string out(content_type.substr(0, content_type.find(';')));
  while (!out.empty() && std::isspace(static_cast<unsigned char>(out.back()))) out.pop_back();
  std::size_t first = 0;
  while (first < out.size() && std::isspace(static_cast<unsigned char>(out[first]))) ++first;
  out.erase(0, first);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

bool is_json_media_type(std::string_view type) {
  return type == "application/json" || type == "text/json" ||
         (type.size() > 5 && type.substr(type.size() - 5) == "+json");
}

const nlohmann::json* string_at(const nlohmann::json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return nullptr;
  return &*it;
}

Result<nlohmann::json> parse_json(std::string_view bytes, std::string_view what) {
  try {
    return nlohmann::json::parse(bytes.begin(), bytes.end());
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte is 1-based; the explanation follows nlohmann's "line L, column C: ".
    const std::string text = e.what();
    const std::size_t located = text.find(": ", text.find("parse error"));
    const std::string explanation = located == std::string::npos ? text : text.substr(located + 2);
    return make_error(ErrorCode::kInvalidArgument, std::string(what) + " is not JSON: at byte " +
                                                       std::to_string(e.byte == 0 ? 0 : e.byte - 1) + ": " +
                                                       explanation);
  }
}

// The CloudEvents attributes that must agree with the CDEvent they carry.
// Checked only where the CDEvent has the field: a CDEvent without it is the
// schema validator's finding, not the binding's.
Status check_agreement(const nlohmann::json& cdevent, std::string_view attribute,
                       const std::optional<std::string>& envelope_value, std::string_view where) {
  if (!envelope_value) return success();
  const nlohmann::json* context = cdevent.is_object() && cdevent.contains("context") ? &cdevent["context"] : nullptr;
  const nlohmann::json* subject = cdevent.is_object() && cdevent.contains("subject") ? &cdevent["subject"] : nullptr;
  const nlohmann::json* inner = nullptr;
  std::string inner_name;
  if (attribute == "subject") {
    if (subject) inner = string_at(*subject, "id");
    inner_name = "subject.id";
  } else {
    if (context) inner = string_at(*context, attribute);
    inner_name = "context." + std::string(attribute);
  }
  if (inner && inner->get_ref<const std::string&>() != *envelope_value) {
    return make_error(ErrorCode::kInvalidArgument,
                      std::string(where) + " '" + *envelope_value + "' disagrees with the CDEvent's " +
                          inner_name + " '" + inner->get_ref<const std::string&>() + "'");
  }
  return success();
}

Result<DecodedCdEvent> decode_structured(const Record& record) {
  CASCADE_TRY(envelope, parse_json(record.value, "structured CloudEvent"));
  if (!envelope.is_object()) {
    return make_error(ErrorCode::kInvalidArgument, "structured CloudEvent is not a JSON object");
  }
  const nlohmann::json* specversion = string_at(envelope, "specversion");
  if (!specversion || *specversion != "1.0") {
    return make_error(ErrorCode::kInvalidArgument,
                      "structured CloudEvent: specversion must be \"1.0\"");
  }
  for (std::string_view required : {"id", "source", "type"}) {
    if (!string_at(envelope, required)) {
      return make_error(ErrorCode::kInvalidArgument,
                        "structured CloudEvent: missing string attribute '" + std::string(required) + "'");
    }
  }
  if (auto it = envelope.find("datacontenttype"); it != envelope.end()) {
    if (!it->is_string() || !is_json_media_type(media_type(it->get_ref<const std::string&>()))) {
      return make_error(ErrorCode::kInvalidArgument,
                        "structured CloudEvent: datacontenttype must be application/json");
    }
  }
  auto data = envelope.find("data");
  if (data == envelope.end() || !data->is_object()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "structured CloudEvent without a `data` object (the CDEvent)");
  }
  DecodedCdEvent decoded{std::move(*data), CloudEventsMode::kStructured};
  for (std::string_view attribute : {"id", "source", "type", "subject"}) {
    std::optional<std::string> value;
    if (const auto* v = string_at(envelope, attribute)) value = v->get<std::string>();
    CASCADE_TRY(check_agreement(decoded.cdevent, attribute, value,
                                "structured CloudEvent attribute " + std::string(attribute)));
  }
  return decoded;
}

Result<DecodedCdEvent> decode_binary(const Record& record, const std::optional<std::string>& content_type) {
  if (content_type && !is_json_media_type(media_type(*content_type))) {
    return make_error(ErrorCode::kInvalidArgument,
                      "binary CloudEvent: content-type '" + *content_type + "' is not JSON");
  }
  auto specversion = record.header("ce_specversion");
  if (!specversion) {
    return make_error(ErrorCode::kInvalidArgument, "binary CloudEvent: missing ce_specversion header");
  }
  if (*specversion != "1.0") {
    return make_error(ErrorCode::kInvalidArgument,
                      "binary CloudEvent: ce_specversion '" + *specversion + "' is not \"1.0\"");
  }
  for (std::string_view required : {"ce_id", "ce_source", "ce_type"}) {
    if (!record.header(std::string(required))) {
      return make_error(ErrorCode::kInvalidArgument,
                        "binary CloudEvent: missing " + std::string(required) + " header");
    }
  }
  CASCADE_TRY(cdevent, parse_json(record.value, "binary CloudEvent value"));
  if (!cdevent.is_object()) {
    return make_error(ErrorCode::kInvalidArgument, "binary CloudEvent value is not a JSON object");
  }
  DecodedCdEvent decoded{std::move(cdevent), CloudEventsMode::kBinary};
  for (std::string_view attribute : {"id", "source", "type", "subject"}) {
    std::string header = "ce_" + std::string(attribute);
    CASCADE_TRY(check_agreement(decoded.cdevent, attribute, record.header(header), "header " + header));
  }
  return decoded;
}

}  // namespace

std::optional<std::string> Record::header(const std::string& wanted) const {
  std::optional<std::string> found;
  for (const auto& h : headers) {
    if (h.key == wanted) found = h.value;
  }
  return found;
}

Record encode_cdevent(const nlohmann::json& cdevent, CloudEventsMode mode, std::string record_key) {
  const nlohmann::json empty = nlohmann::json::object();
  const nlohmann::json& context = cdevent.is_object() && cdevent.contains("context") ? cdevent["context"] : empty;
  const nlohmann::json& subject = cdevent.is_object() && cdevent.contains("subject") ? cdevent["subject"] : empty;
  // CloudEvents attribute → value, from the CDEvent; absent ones are left out.
  std::vector<std::pair<std::string, std::string>> attributes{{"specversion", "1.0"}};
  auto add = [&](const char* attribute, const nlohmann::json& from, const char* field) {
    if (const auto* v = string_at(from, field)) attributes.emplace_back(attribute, v->get<std::string>());
  };
  add("id", context, "id");
  add("source", context, "source");
  add("type", context, "type");
  add("subject", subject, "id");
  add("time", context, "timestamp");

  Record record;
  record.key = std::move(record_key);
  if (mode == CloudEventsMode::kBinary) {
    record.value = cdevent.dump();
    record.headers.push_back({"content-type", std::string(kBinaryContentType)});
    for (auto& [attribute, value] : attributes) record.headers.push_back({"ce_" + attribute, value});
  } else {
    nlohmann::json envelope = nlohmann::json::object();
    for (auto& [attribute, value] : attributes) envelope[attribute] = value;
    envelope["datacontenttype"] = kBinaryContentType;
    envelope["data"] = cdevent;
    record.value = envelope.dump();
    record.headers.push_back({"content-type", std::string(kStructuredContentType)});
  }
  return record;
}

Result<DecodedCdEvent> decode_cdevent(const Record& record) {
  auto content_type = content_type_of(record);
  if (content_type && starts_with_ci(*content_type, "application/cloudevents")) {
    if (media_type(*content_type) != "application/cloudevents+json") {
      return make_error(ErrorCode::kInvalidArgument,
                        "structured CloudEvent in unsupported format '" + *content_type +
                            "' (only application/cloudevents+json)");
    }
    return decode_structured(record);
  }
  return decode_binary(record, content_type);
}

}  // namespace cascade::adapters::kafka
