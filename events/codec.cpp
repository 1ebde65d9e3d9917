#include "events/codec.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace cascade::events {

void to_json(nlohmann::json& j, const Artifact& a) {
  j = {{"version", a.version}, {"path", a.path}, {"built_at", a.built_at}};
  if (!a.id.empty()) j["id"] = a.id;  // absent when empty: older events keep their canonical bytes
  if (!a.uri.empty()) j["uri"] = a.uri;
}
void from_json(const nlohmann::json& j, Artifact& a) {
  j.at("version").get_to(a.version);
  j.at("path").get_to(a.path);
  j.at("built_at").get_to(a.built_at);
  a.id = j.value("id", std::string());
  a.uri = j.value("uri", std::string());
}

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PipelineDefined, pipeline, version, definition)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(CdEventTrigger, id, source, type)
// ReleaseCreated by hand: trigger_cdevent is left out when absent, so releases
// created before it existed keep their canonical bytes and hashes.
void to_json(nlohmann::json& j, const ReleaseCreated& e) {
  j = {{"release_id", e.release_id}, {"pipeline", e.pipeline}, {"pipeline_version", e.pipeline_version},
       {"definition", e.definition}, {"name", e.name}, {"artifact", e.artifact}, {"variables", e.variables},
       {"secret_variables", e.secret_variables}, {"trigger", e.trigger}, {"requested_by", e.requested_by}};
  if (e.trigger_cdevent) j["trigger_cdevent"] = *e.trigger_cdevent;
}
void from_json(const nlohmann::json& j, ReleaseCreated& e) {
  j.at("release_id").get_to(e.release_id);
  j.at("pipeline").get_to(e.pipeline);
  j.at("pipeline_version").get_to(e.pipeline_version);
  j.at("definition").get_to(e.definition);
  j.at("name").get_to(e.name);
  j.at("artifact").get_to(e.artifact);
  j.at("variables").get_to(e.variables);
  j.at("secret_variables").get_to(e.secret_variables);
  j.at("trigger").get_to(e.trigger);
  j.at("requested_by").get_to(e.requested_by);
  if (auto it = j.find("trigger_cdevent"); it != j.end()) e.trigger_cdevent = it->get<CdEventTrigger>();
}
// StageTriggered by hand: rollback_of is written only when set, so triggers
// that are not rollbacks keep their canonical bytes and hashes.
void to_json(nlohmann::json& j, const StageTriggered& e) {
  j = {{"stage", e.stage}, {"reason", e.reason}, {"attempt", e.attempt}};
  if (!e.rollback_of.empty()) j["rollback_of"] = e.rollback_of;
}
void from_json(const nlohmann::json& j, StageTriggered& e) {
  j.at("stage").get_to(e.stage);
  j.at("reason").get_to(e.reason);
  j.at("attempt").get_to(e.attempt);
  e.rollback_of = j.value("rollback_of", std::string());
}
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ApprovalRequested, stage, phase, approvers, required, order, deadline)
// The approvals by hand: `override` is written only when true, so approvals
// recorded before overrides existed keep their canonical bytes and hashes.
void to_json(nlohmann::json& j, const ApprovalGranted& e) {
  j = {{"stage", e.stage},     {"phase", e.phase},     {"approver", e.approver},
       {"on_behalf_of", e.on_behalf_of}, {"comment", e.comment}, {"defer_until", e.defer_until}};
  if (e.override) j["override"] = true;
}
void from_json(const nlohmann::json& j, ApprovalGranted& e) {
  j.at("stage").get_to(e.stage);
  j.at("phase").get_to(e.phase);
  j.at("approver").get_to(e.approver);
  j.at("on_behalf_of").get_to(e.on_behalf_of);
  j.at("comment").get_to(e.comment);
  j.at("defer_until").get_to(e.defer_until);
  e.override = j.value("override", false);
}
void to_json(nlohmann::json& j, const ApprovalRejected& e) {
  j = {{"stage", e.stage}, {"phase", e.phase}, {"approver", e.approver}, {"on_behalf_of", e.on_behalf_of},
       {"comment", e.comment}};
  if (e.override) j["override"] = true;
}
void from_json(const nlohmann::json& j, ApprovalRejected& e) {
  j.at("stage").get_to(e.stage);
  j.at("phase").get_to(e.phase);
  j.at("approver").get_to(e.approver);
  j.at("on_behalf_of").get_to(e.on_behalf_of);
  j.at("comment").get_to(e.comment);
  e.override = j.value("override", false);
}
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ApprovalTimedOut, stage, phase, deadline)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ApprovalSkipped, stage, phase, reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(DeferralElapsed, stage, defer_until)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(DeploymentStarted, stage, attempt)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(StepStarted, stage, attempt, step_index, step, try_number)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(StepSucceeded, stage, attempt, step_index, step, exit_code, duration_ms,
                                   log_digest)
// StepFailed by hand: the stored_log_* members of an interruption are written
// only when set, so other failures keep their canonical bytes and hashes.
void to_json(nlohmann::json& j, const StepFailed& e) {
  j = {{"stage", e.stage},       {"attempt", e.attempt},         {"step_index", e.step_index},
       {"step", e.step},         {"exit_code", e.exit_code},     {"duration_ms", e.duration_ms},
       {"log_digest", e.log_digest}, {"reason", e.reason},       {"will_retry", e.will_retry},
       {"continued", e.continued}};
  if (!e.stored_log_digest.empty()) {
    j["stored_log_digest"] = e.stored_log_digest;
    j["stored_log_lines"] = e.stored_log_lines;
  }
}
void from_json(const nlohmann::json& j, StepFailed& e) {
  j.at("stage").get_to(e.stage);
  j.at("attempt").get_to(e.attempt);
  j.at("step_index").get_to(e.step_index);
  j.at("step").get_to(e.step);
  j.at("exit_code").get_to(e.exit_code);
  j.at("duration_ms").get_to(e.duration_ms);
  j.at("log_digest").get_to(e.log_digest);
  j.at("reason").get_to(e.reason);
  j.at("will_retry").get_to(e.will_retry);
  j.at("continued").get_to(e.continued);
  e.stored_log_digest = j.value("stored_log_digest", std::string());
  e.stored_log_lines = j.value("stored_log_lines", std::int64_t{0});
}
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(StepSkipped, stage, attempt, step_index, step, reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(DeploymentSucceeded, stage, attempt, partial)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(DeploymentFailed, stage, attempt, reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(DeploymentCanceled, stage, attempt, reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(RollbackChosen, stage, attempt, rollback_to, reason)
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

// ---- Canonical JSON without a DOM --------------------------------------------
//
// Building an nlohmann DOM per event (and parsing one back) was most of the
// cost of appending and replaying. For the common payload types the fast
// path below writes and reads the canonical bytes directly. It is a strict
// subset of the DOM path: it handles only what it can reproduce byte for byte
// — strings of printable ASCII without '"' or '\\', integers in range, the
// exact key order of canonical JSON — and hands anything else (escapes,
// UTF-8, foreign key orders, PipelineDefined and ReleaseCreated with their
// nested definitions) to nlohmann, which stays the definition of the format.
// A self-check at first use compares both writers on every fast type and
// turns the fast path off for a type whose field list below has fallen out
// of step with its NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE line.

// Field lists in sorted key order (the order canonical JSON writes them).
#define CASCADE_CANONICAL_FIELD(member) f(#member, value.member);
#define CASCADE_CANONICAL_FIELDS(Type, ...)                                                            \
  template <class F>                                                                                   \
  void canonical_fields(const Type& value, F&& f) {                                                    \
    NLOHMANN_JSON_EXPAND(NLOHMANN_JSON_PASTE(CASCADE_CANONICAL_FIELD, __VA_ARGS__))                  \
  }                                                                                                    \
  template <class F>                                                                                   \
  void canonical_fields(Type& value, F&& f) {                                                          \
    NLOHMANN_JSON_EXPAND(NLOHMANN_JSON_PASTE(CASCADE_CANONICAL_FIELD, __VA_ARGS__))                  \
  }                                                                                                    \
  template <>                                                                                          \
  struct HasCanonicalFields<Type> : std::true_type {};

template <class T>
struct HasCanonicalFields : std::false_type {};

CASCADE_CANONICAL_FIELDS(StageTriggered, attempt, reason, stage)
CASCADE_CANONICAL_FIELDS(ApprovalRequested, approvers, deadline, order, phase, required, stage)
// Not ApprovalGranted/ApprovalRejected: their optional `override` member is
// beyond a fixed field list, and approvals are too rare to matter.
CASCADE_CANONICAL_FIELDS(ApprovalTimedOut, deadline, phase, stage)
CASCADE_CANONICAL_FIELDS(ApprovalSkipped, phase, reason, stage)
CASCADE_CANONICAL_FIELDS(DeferralElapsed, defer_until, stage)
CASCADE_CANONICAL_FIELDS(DeploymentStarted, attempt, stage)
CASCADE_CANONICAL_FIELDS(StepStarted, attempt, stage, step, step_index, try_number)
CASCADE_CANONICAL_FIELDS(StepSucceeded, attempt, duration_ms, exit_code, log_digest, stage, step, step_index)
CASCADE_CANONICAL_FIELDS(StepFailed, attempt, continued, duration_ms, exit_code, log_digest, reason, stage, step,
                         step_index, will_retry)
CASCADE_CANONICAL_FIELDS(StepSkipped, attempt, reason, stage, step, step_index)
CASCADE_CANONICAL_FIELDS(DeploymentSucceeded, attempt, partial, stage)
CASCADE_CANONICAL_FIELDS(DeploymentFailed, attempt, reason, stage)
CASCADE_CANONICAL_FIELDS(DeploymentCanceled, attempt, reason, stage)
CASCADE_CANONICAL_FIELDS(RollbackChosen, attempt, reason, rollback_to, stage)
CASCADE_CANONICAL_FIELDS(StageCanceled, attempt, reason, stage)
CASCADE_CANONICAL_FIELDS(ReleaseAbandoned, reason)

#undef CASCADE_CANONICAL_FIELDS
#undef CASCADE_CANONICAL_FIELD

// Members beyond a type's field list, written only when set: a payload that
// sets one takes the DOM path (the fast reader, meeting its key, gives up the
// same way), and the fast reader clears them in a payload it reuses.
template <class Payload>
bool within_fields(const Payload&) {
  return true;
}
bool within_fields(const StepFailed& e) { return e.stored_log_digest.empty(); }
bool within_fields(const StageTriggered& e) { return e.rollback_of.empty(); }
template <class Payload>
void clear_beyond_fields(Payload&) {}
void clear_beyond_fields(StepFailed& e) {
  e.stored_log_digest.clear();
  e.stored_log_lines = 0;
}
void clear_beyond_fields(StageTriggered& e) { e.rollback_of.clear(); }


// Whether every byte is printable ASCII other than '"' and '\\' — written and
// read as is, exactly as nlohmann writes it. One pass without early exits,
// which the compiler vectorises.
bool all_plain(std::string_view text) {
  unsigned char bad = 0;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    bad |= static_cast<unsigned char>((u < 0x20) | (u > 0x7e) | (u == '"') | (u == '\\'));
  }
  return bad == 0;
}

class CanonicalWriter {
 public:
  explicit CanonicalWriter(std::string& out) : out_(out) {}
  bool ok() const { return ok_; }

  void open() {
    out_ += '{';
    first_ = true;
  }
  void close() {
    out_ += '}';
    first_ = false;
  }
  void key(std::string_view name) {
    if (!first_) out_ += ',';
    first_ = false;
    out_ += '"';
    out_ += name;
    out_ += "\":";
  }
  void value(std::string_view text) {
    ok_ = ok_ && all_plain(text);
    out_ += '"';
    out_.append(text.data(), text.size());
    out_ += '"';
  }
  void value(const std::string& text) { value(std::string_view(text)); }
  void value(bool b) { out_ += b ? "true" : "false"; }
  void value(int n) { integer(n); }
  void value(std::int64_t n) { integer(n); }
  void value(const std::vector<std::string>& items) {
    out_ += '[';
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (i > 0) out_ += ',';
      value(items[i]);
    }
    out_ += ']';
  }
  template <class T>
  void field(std::string_view name, const T& v) {
    key(name);
    value(v);
  }

 private:
  template <class T>
  void integer(T n) {
    char buffer[24];
    const auto end = std::to_chars(buffer, buffer + sizeof buffer, n).ptr;
    out_.append(buffer, static_cast<std::size_t>(end - buffer));
  }

  std::string& out_;
  bool ok_ = true;
  bool first_ = true;
};

// Reads the canonical layout and nothing else: any surprise makes it give up
// (ok() false), and the caller falls back to nlohmann.
class CanonicalReader {
 public:
  explicit CanonicalReader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool at_end() const { return ok_ && pos_ == in_.size(); }
  std::size_t pos() const { return pos_; }

  void expect(char c) {
    if (ok_ && pos_ < in_.size() && in_[pos_] == c) {
      ++pos_;
    } else {
      ok_ = false;
    }
  }
  // `,"name":` (the comma unless it is the object's first key).
  void key(std::string_view name, bool first) {
    if (!first) expect(',');
    expect('"');
    if (ok_ && in_.compare(pos_, name.size(), name) == 0 && pos_ + name.size() < in_.size() &&
        in_[pos_ + name.size()] == '"') {
      pos_ += name.size() + 1;
    } else {
      ok_ = false;
    }
    expect(':');
  }
  std::string_view string_view() {
    expect('"');
    if (!ok_) return {};
    const char* begin = in_.data() + pos_;
    const void* quote = std::memchr(begin, '"', in_.size() - pos_);
    if (quote == nullptr) {
      ok_ = false;
      return {};
    }
    const std::string_view text(begin, static_cast<std::size_t>(static_cast<const char*>(quote) - begin));
    ok_ = all_plain(text);
    pos_ += text.size() + 1;
    return text;
  }
  void value(std::string& out) {
    const std::string_view text = string_view();
    out.assign(text.data(), text.size());
  }
  void value(bool& out) {
    if (in_.compare(pos_, 4, "true") == 0) {
      out = true;
      pos_ += 4;
    } else if (in_.compare(pos_, 5, "false") == 0) {
      out = false;
      pos_ += 5;
    } else {
      ok_ = false;
    }
  }
  void value(int& out) { integer(out); }
  void value(std::int64_t& out) { integer(out); }
  void value(std::vector<std::string>& out) {
    out.clear();
    expect('[');
    if (ok_ && pos_ < in_.size() && in_[pos_] == ']') {
      ++pos_;
      return;
    }
    while (ok_) {
      value(out.emplace_back());
      if (ok_ && pos_ < in_.size() && in_[pos_] == ',') {
        ++pos_;
        continue;
      }
      expect(']');
      return;
    }
  }
  template <class T>
  void field(std::string_view name, T& v, bool first = false) {
    key(name, first);
    value(v);
  }
  // Skips one value of canonical shape; returns where it started.
  std::size_t skip_value() {
    const std::size_t start = pos_;
    int depth = 0;
    do {
      if (!ok_ || pos_ >= in_.size()) {
        ok_ = false;
        break;
      }
      const char c = in_[pos_];
      if (c == '"') {
        string_view();
      } else if (c == '{' || c == '[') {
        ++depth;
        ++pos_;
      } else if (c == '}' || c == ']') {
        --depth;
        ++pos_;
      } else if (c == ',' || c == ':' || c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')) {
        ++pos_;  // punctuation, numbers, true / false / null: checked when read for real
      } else {
        ok_ = false;
      }
    } while (depth > 0);
    return start;
  }

 private:
  // JSON integers only (no leading zeros, no "-0", no fraction or exponent),
  // within the range of T.
  template <class T>
  void integer(T& out) {
    if (!ok_) return;
    const char* begin = in_.data() + pos_;
    const char* end = in_.data() + in_.size();
    const bool negative = begin < end && *begin == '-';
    const char* digits = begin + (negative ? 1 : 0);
    if (digits >= end || *digits < '0' || *digits > '9' ||
        (*digits == '0' && (negative || (digits + 1 < end && digits[1] >= '0' && digits[1] <= '9')))) {
      ok_ = false;
      return;
    }
    const auto [next, error] = std::from_chars(begin, end, out);
    if (error != std::errc() || (next < end && (*next == '.' || *next == 'e' || *next == 'E'))) {
      ok_ = false;
      return;
    }
    pos_ = static_cast<std::size_t>(next - in_.data());
  }

  std::string_view in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

template <class Payload>
void write_fast_payload(CanonicalWriter& w, const Payload& payload) {
  w.open();
  canonical_fields(payload, [&](std::string_view name, const auto& v) { w.field(name, v); });
  w.close();
}

template <class F, std::size_t... I>
void for_each_index(F&& f, std::index_sequence<I...>) {
  (f(std::integral_constant<std::size_t, I>{}), ...);
}

// Whether the fast writer gives nlohmann's bytes for each payload type (the
// self-check described above), by variant index.
const std::array<bool, std::variant_size_v<Event>>& fast_types() {
  static const std::array<bool, std::variant_size_v<Event>> fast = [] {
    std::array<bool, std::variant_size_v<Event>> out{};
    auto check = [&](auto index) {
      using Payload = std::variant_alternative_t<decltype(index)::value, Event>;
      if constexpr (HasCanonicalFields<Payload>::value) {
        Payload sample{};
        std::string bytes;
        CanonicalWriter w(bytes);
        write_fast_payload(w, sample);
        out[decltype(index)::value] = w.ok() && bytes == nlohmann::json(sample).dump();
      }
    };
    for_each_index(check, std::make_index_sequence<std::variant_size_v<Event>>{});
    return out;
  }();
  return fast;
}

nlohmann::json canonical_object(const RecordedEvent& e);

// The canonical bytes of `e`, with `"hash":"<hash>"` after event_id when
// `hash` is given; *hash_at is where that member goes (the offset of its comma).
void canonical_json_into(const RecordedEvent& e, std::size_t* hash_at, std::string& out) {
  out.clear();
  out.reserve(512);
  CanonicalWriter w(out);
  w.open();
  w.field("actor", e.actor);
  w.field("causation_id", e.causation_id);
  w.field("command_id", e.command_id);
  w.field("correlation_id", e.correlation_id);
  w.key("data");
  if (fast_types()[e.data.index()] && std::visit([](const auto& payload) { return within_fields(payload); }, e.data)) {
    std::visit(
        [&](const auto& payload) {
          if constexpr (HasCanonicalFields<std::decay_t<decltype(payload)>>::value) write_fast_payload(w, payload);
        },
        e.data);
  } else {
    out += payload_to_json(e.data).dump();
  }
  w.field("event_id", e.event_id);
  if (hash_at != nullptr) *hash_at = out.size();
  w.field("prev_hash", e.prev_hash);
  w.field("recorded_at", e.recorded_at);
  w.field("schema_version", schema_version(e.data));
  w.field("stream", e.stream);
  w.field("type", type_name(e.data));
  w.field("version", e.version);
  w.close();
  if (!w.ok()) {
    // Something only nlohmann writes right (an escape, UTF-8): its bytes.
    out = canonical_object(e).dump();
    if (hash_at != nullptr) *hash_at = out.rfind(",\"prev_hash\":");
  }
}

std::string canonical_json(const RecordedEvent& e, std::size_t* hash_at) {
  std::string out;
  canonical_json_into(e, hash_at, out);
  return out;
}

template <std::size_t I = 0>
bool read_fast_payload(std::string_view type, int version, std::string_view bytes, Event& out) {
  if constexpr (I == std::variant_size_v<Event>) {
    return false;
  } else {
    using Payload = std::variant_alternative_t<I, Event>;
    if (type != Payload::kType) return read_fast_payload<I + 1>(type, version, bytes, out);
    if constexpr (HasCanonicalFields<Payload>::value) {
      if (version != Payload::kSchemaVersion || !fast_types()[I]) return false;
      CanonicalReader r(bytes);
      Payload* reused = std::get_if<Payload>(&out);
      Payload& payload = reused != nullptr ? *reused : out.emplace<Payload>();
      clear_beyond_fields(payload);
      r.expect('{');
      bool first = true;
      canonical_fields(payload, [&](std::string_view name, auto& v) {
        r.field(name, v, first);
        first = false;
      });
      r.expect('}');
      return r.at_end();
    } else {
      return false;
    }
  }
}

// The fast decoder; false when `stored` is not of the exact canonical shape
// it reads, in which case `e` is garbage and nlohmann decides.
//
// *hash_member (when given) is where `,"hash":"…"` sits in `stored`: without
// it the stored bytes are the canonical ones, which is what the fast path
// accepts and nothing else.
struct Span {
  std::size_t begin = 0;
  std::size_t end = 0;
};
bool decode_fast(std::string_view stored, RecordedEvent& e, Span* hash_member = nullptr) {
  CanonicalReader r(stored);
  r.expect('{');
  r.field("actor", e.actor, true);
  r.field("causation_id", e.causation_id);
  r.field("command_id", e.command_id);
  r.field("correlation_id", e.correlation_id);
  r.key("data", false);
  const std::size_t data_at = r.skip_value();
  const std::size_t data_end = r.pos();
  r.field("event_id", e.event_id);
  const std::size_t hash_begin = r.pos();
  r.field("hash", e.hash);
  if (hash_member != nullptr) *hash_member = Span{hash_begin, r.pos()};
  r.field("prev_hash", e.prev_hash);
  r.field("recorded_at", e.recorded_at);
  int version = 0;
  r.field("schema_version", version);
  r.field("stream", e.stream);
  r.key("type", false);
  const std::string_view type = r.string_view();
  r.field("version", e.version);
  r.expect('}');
  if (!r.at_end()) return false;
  return read_fast_payload(type, version, stored.substr(data_at, data_end - data_at), e.data);
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

void envelope_from_json(const nlohmann::json& j, RecordedEvent& e) {
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
}

Result<Event> payload_from_json(std::string_view type, int schema_version, const nlohmann::json& payload) {
  return payload_by_index(type, schema_version, payload);
}

std::string canonical_bytes(const RecordedEvent& event) { return canonical_json(event, nullptr); }

std::string compute_hash(const RecordedEvent& event) { return sha256_hex(canonical_bytes(event)); }

std::string seal(RecordedEvent& event) {
  std::size_t hash_at = 0;
  std::string bytes = canonical_json(event, &hash_at);
  event.hash = sha256_hex(bytes);
  // The stored object is the canonical one plus "hash", which sorts right
  // after "event_id".
  bytes.insert(hash_at, ",\"hash\":\"" + event.hash + "\"");
  return bytes;
}

namespace {
// nlohmann's DOM: the definition of the format, for whatever the fast path declines.
Result<RecordedEvent> decode_slow(std::string_view stored, std::uint64_t position);
}  // namespace

Status decode_into(std::string_view stored, std::uint64_t position, RecordedEvent& out) {
  if (decode_fast(stored, out)) {
    out.position = position;
    return success();
  }
  CASCADE_TRY(e, decode_slow(stored, position));
  out = std::move(e);
  return success();
}

Result<RecordedEvent> decode(std::string_view stored, std::uint64_t position) {
  RecordedEvent e;
  if (decode_fast(stored, e)) {
    e.position = position;
    return e;
  }
  return decode_slow(stored, position);
}

namespace {
Result<RecordedEvent> decode_slow(std::string_view stored, std::uint64_t position) {
  auto broken = [&](const std::string& why) {
    return make_error(ErrorCode::kDataLoss,
                      "event at log position " + std::to_string(position) + " is unreadable: " + why);
  };
  nlohmann::json j = nlohmann::json::parse(stored, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return broken("not valid JSON");
  try {
    RecordedEvent e;
    e.position = position;
    envelope_from_json(j, e);
    auto payload = payload_from_json(j.at("type").get<std::string>(), j.at("schema_version").get<int>(),
                                     j.at("data"));
    if (!payload) return broken(payload.error().message);
    e.data = std::move(payload).value();
    return e;
  } catch (const nlohmann::json::exception& ex) {
    return broken(ex.what());
  }
}
}  // namespace

namespace {

// OpenSSL 3 looks the algorithm up and allocates a context on every
// EVP_Digest call, which costs as much as hashing a small event: fetch the
// algorithm once and keep one context per thread.
// The SHA-256 of `first` followed by `second` (a stored event around its
// hash member).
unsigned int sha256_raw(std::string_view first, std::string_view second, unsigned char* digest) {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  struct Context {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Context() { EVP_MD_CTX_free(ctx); }
  };
  thread_local Context context;
  unsigned int length = 0;
  if (md != nullptr && context.ctx != nullptr && EVP_DigestInit_ex(context.ctx, md, nullptr) == 1 &&
      EVP_DigestUpdate(context.ctx, first.data(), first.size()) == 1 &&
      EVP_DigestUpdate(context.ctx, second.data(), second.size()) == 1 &&
      EVP_DigestFinal_ex(context.ctx, digest, &length) == 1) {
    return length;
  }
  std::string joined(first);
  joined.append(second);
  EVP_Digest(joined.data(), joined.size(), digest, &length, EVP_sha256(), nullptr);
  return length;
}
unsigned int sha256_raw(std::string_view bytes, unsigned char* digest) { return sha256_raw(bytes, {}, digest); }

std::string where(const RecordedEvent& e) { return "stream " + e.stream + " version " + std::to_string(e.version); }

Status check_link(const RecordedEvent& e, std::string_view expected_prev_hash) {
  if (e.prev_hash == expected_prev_hash) return success();
  return make_error(ErrorCode::kDataLoss, where(e) + ": broken link: prev_hash expected '" +
                                              std::string(expected_prev_hash) + "', found '" + e.prev_hash + "'");
}

// Compares the digest in hex on the stack: nothing allocated for an intact event.
Status check_digest(const RecordedEvent& e, const unsigned char* digest, unsigned int length) {
  char hex[2 * EVP_MAX_MD_SIZE];
  static constexpr char kDigits[] = "0123456789abcdef";
  for (unsigned int i = 0; i < length; ++i) {
    hex[2 * i] = kDigits[digest[i] >> 4];
    hex[2 * i + 1] = kDigits[digest[i] & 0xf];
  }
  const std::string_view actual(hex, 2 * length);
  if (actual == e.hash) return success();
  return make_error(ErrorCode::kDataLoss, where(e) + ": content altered: hash expected '" + std::string(actual) +
                                              "', found '" + e.hash + "'");
}

}  // namespace

Status verify_event(const RecordedEvent& e, std::string_view expected_prev_hash) {
  CASCADE_TRY(check_link(e, expected_prev_hash));
  thread_local std::string canonical;  // one buffer per thread for the canonical bytes
  canonical_json_into(e, nullptr, canonical);
  unsigned char digest[EVP_MAX_MD_SIZE];
  const unsigned int length = sha256_raw(canonical, digest);
  return check_digest(e, digest, length);
}

Status decode_verified(std::string_view stored, std::uint64_t position, std::string_view expected_prev_hash,
                       RecordedEvent& out) {
  Span hash_member;
  if (!decode_fast(stored, out, &hash_member)) {
    CASCADE_TRY(decode_into(stored, position, out));
    return verify_event(out, expected_prev_hash);
  }
  out.position = position;
  CASCADE_TRY(check_link(out, expected_prev_hash));
  // The fast path accepted exactly the canonical layout, so the canonical
  // bytes are the stored ones around the hash member: hashed where they lie.
  unsigned char digest[EVP_MAX_MD_SIZE];
  const unsigned int length =
      sha256_raw(stored.substr(0, hash_member.begin), stored.substr(hash_member.end), digest);
  return check_digest(out, digest, length);
}

Status verify_chain(const std::vector<RecordedEvent>& events, std::string expected_prev_hash) {
  const std::string* previous = &expected_prev_hash;
  for (const RecordedEvent& e : events) {
    CASCADE_TRY(verify_event(e, *previous));
    previous = &e.hash;
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
  const unsigned int length = sha256_raw(bytes, digest);
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

std::string Sha256::digest_so_far() const {
  EVP_MD_CTX* copy = EVP_MD_CTX_new();
  EVP_MD_CTX_copy_ex(copy, static_cast<const EVP_MD_CTX*>(context_));
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(copy, digest, &length);
  EVP_MD_CTX_free(copy);
  return to_hex(digest, length);
}

std::string random_uuid() {
  // OpenSSL's generator costs a lock and a DRBG round per call, which showed
  // as 5% of the command path: draw 4 KiB at a time per thread and hand out
  // 16 bytes per id. Still OpenSSL's CSPRNG output, each byte used once.
  struct Pool {
    std::array<unsigned char, 4096> bytes{};
    std::size_t used = 4096;
  };
  thread_local Pool pool;
  if (pool.used + 16 > pool.bytes.size()) {
    if (RAND_bytes(pool.bytes.data(), static_cast<int>(pool.bytes.size())) != 1) {
      throw std::runtime_error("OpenSSL's random generator failed");
    }
    pool.used = 0;
  }
  std::array<unsigned char, 16> bytes{};
  std::copy_n(pool.bytes.begin() + static_cast<std::ptrdiff_t>(pool.used), bytes.size(), bytes.begin());
  pool.used += bytes.size();
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
