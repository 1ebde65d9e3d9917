#include "events/codec.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <cstdio>

namespace cascade::events {

void to_json(nlohmann::json& j, const Artifact& a) {
  j = {{"version", a.version}, {"path", a.path}, {"built_at", a.built_at}};
}
void from_json(const nlohmann::json& j, Artifact& a) {
  j.at("version").get_to(a.version);
  j.at("path").get_to(a.path);
  j.at("built_at").get_to(a.built_at);
}

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PipelineDefined, pipeline, version, definition)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ReleaseCreated, release_id, pipeline, pipeline_version, definition, name,
                                   artifact, variables, secret_variables, trigger, requested_by)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(StageTriggered, stage, reason, attempt)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ApprovalRequested, stage, phase, approvers, required, order, deadline)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ApprovalGranted, stage, phase, approver, on_behalf_of, comment, defer_until)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ApprovalRejected, stage, phase, approver, on_behalf_of, comment)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ApprovalTimedOut, stage, phase, deadline)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ApprovalSkipped, stage, phase, reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(DeferralElapsed, stage, defer_until)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(DeploymentStarted, stage, attempt)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(StepStarted, stage, attempt, step_index, step, try_number)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(StepSucceeded, stage, attempt, step_index, step, exit_code, duration_ms,
                                   log_digest)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(StepFailed, stage, attempt, step_index, step, exit_code, duration_ms,
                                   log_digest, reason, will_retry, continued)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(StepSkipped, stage, attempt, step_index, step, reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(DeploymentSucceeded, stage, attempt, partial)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(DeploymentFailed, stage, attempt, reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(DeploymentCanceled, stage, attempt, reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(StageCanceled, stage, attempt, reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ReleaseAbandoned, reason)

std::string_view type_name(const Event& event) {
  return std::visit([](const auto& e) { return std::decay_t<decltype(e)>::kType; }, event);
}

int schema_version(const Event& event) {
  return std::visit([](const auto& e) { return std::decay_t<decltype(e)>::kSchemaVersion; }, event);
}

nlohmann::json payload_to_json(const Event& event) {
  return std::visit([](const auto& e) { return nlohmann::json(e); }, event);
}

namespace {

template <std::size_t I = 0>
Result<Event> payload_by_index(std::string_view type, int version, const nlohmann::json& payload) {
  if constexpr (I == std::variant_size_v<Event>) {
    return make_error(ErrorCode::kInvalidArgument, "unknown event type '" + std::string(type) + "'");
  } else {
    using Payload = std::variant_alternative_t<I, Event>;
    if (type != Payload::kType) return payload_by_index<I + 1>(type, version, payload);
    if (version != Payload::kSchemaVersion) {
      return make_error(ErrorCode::kInvalidArgument,
                        std::string(type) + " schema version " + std::to_string(version) +
                            " is not supported (this build reads version " +
                            std::to_string(Payload::kSchemaVersion) + ")");
    }
    try {
      return Event{payload.get<Payload>()};
    } catch (const nlohmann::json::exception& e) {
      return make_error(ErrorCode::kInvalidArgument,
                        "malformed " + std::string(type) + " payload: " + e.what());
    }
  }
}

nlohmann::json canonical_object(const RecordedEvent& e) {
  return {{"event_id", e.event_id},       {"stream", e.stream},
          {"version", e.version},         {"recorded_at", e.recorded_at},
          {"actor", e.actor},             {"command_id", e.command_id},
          {"causation_id", e.causation_id}, {"correlation_id", e.correlation_id},
          {"type", type_name(e.data)},    {"schema_version", schema_version(e.data)},
          {"data", payload_to_json(e.data)}, {"prev_hash", e.prev_hash}};
}

}  // namespace

Result<Event> payload_from_json(std::string_view type, int schema_version, const nlohmann::json& payload) {
  return payload_by_index(type, schema_version, payload);
}

std::string canonical_bytes(const RecordedEvent& event) { return canonical_object(event).dump(); }

std::string compute_hash(const RecordedEvent& event) { return sha256_hex(canonical_bytes(event)); }

std::string seal(RecordedEvent& event) {
  nlohmann::json object = canonical_object(event);
  event.hash = sha256_hex(object.dump());
  object["hash"] = event.hash;
  return object.dump();
}

Result<RecordedEvent> decode(std::string_view stored, std::uint64_t position) {
  auto broken = [&](const std::string& why) {
    return make_error(ErrorCode::kDataLoss,
                      "event at log position " + std::to_string(position) + " is unreadable: " + why);
  };
  nlohmann::json j = nlohmann::json::parse(stored, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return broken("not valid JSON");
  try {
    RecordedEvent e;
    e.position = position;
    j.at("event_id").get_to(e.event_id);
    j.at("stream").get_to(e.stream);
    j.at("version").get_to(e.version);
    j.at("recorded_at").get_to(e.recorded_at);
    j.at("actor").get_to(e.actor);
    j.at("command_id").get_to(e.command_id);
    j.at("causation_id").get_to(e.causation_id);
    j.at("correlation_id").get_to(e.correlation_id);
    j.at("prev_hash").get_to(e.prev_hash);
    j.at("hash").get_to(e.hash);
    auto payload = payload_from_json(j.at("type").get<std::string>(), j.at("schema_version").get<int>(),
                                     j.at("data"));
    if (!payload) return broken(payload.error().message);
    e.data = std::move(payload).value();
    return e;
  } catch (const nlohmann::json::exception& ex) {
    return broken(ex.what());
  }
}

Status verify_chain(const std::vector<RecordedEvent>& events, std::string expected_prev_hash) {
  for (const RecordedEvent& e : events) {
    const std::string where = "stream " + e.stream + " version " + std::to_string(e.version);
    if (e.prev_hash != expected_prev_hash) {
      return make_error(ErrorCode::kDataLoss, where + ": broken link: prev_hash expected '" +
                                                  expected_prev_hash + "', found '" + e.prev_hash + "'");
    }
    const std::string actual = compute_hash(e);
    if (actual != e.hash) {
      return make_error(ErrorCode::kDataLoss, where + ": content altered: hash expected '" + actual +
                                                  "', found '" + e.hash + "'");
    }
    expected_prev_hash = e.hash;
  }
  return success();
}

namespace {

std::string to_hex(const unsigned char* bytes, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 0xf];
  }
  return out;
}

std::string format_uuid(std::array<unsigned char, 16> b, unsigned version) {
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | (version << 4));
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  const std::string hex = to_hex(b.data(), b.size());
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" + hex.substr(16, 4) + "-" +
         hex.substr(20, 12);
}

}  // namespace

std::string sha256_hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr);
  return to_hex(digest, length);
}

Sha256::Sha256() : context_(EVP_MD_CTX_new()) {
  EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(context_), EVP_sha256(), nullptr);
}

Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(context_)); }

void Sha256::update(std::string_view bytes) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(context_), bytes.data(), bytes.size());
}

std::string Sha256::finish() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(context_), digest, &length);
  return to_hex(digest, length);
}

std::string random_uuid() {
  std::array<unsigned char, 16> bytes{};
  RAND_bytes(bytes.data(), static_cast<int>(bytes.size()));
  return format_uuid(bytes, 4);
}

std::string uuid_from_seed(std::string_view seed) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(seed.data(), seed.size(), digest, &length, EVP_sha256(), nullptr);
  std::array<unsigned char, 16> bytes{};
  std::copy_n(digest, bytes.size(), bytes.begin());
  return format_uuid(bytes, 8);
}

}  // namespace cascade::events
