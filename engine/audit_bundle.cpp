// Evidence bundles: the evidence of a release as one self-contained JSON
// document, and the same checks run again over a bundle read back.
#include "engine/audit_internal.hpp"
#include "events/codec.hpp"
#include "events/time.hpp"

#include <algorithm>
#include <ostream>

namespace cascade::engine {

using namespace audit_internal;
using events::RecordedEvent;
using events::format_rfc3339;
using events::ZeroTime;

namespace {

bool valid_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t extra = 0;
    std::uint32_t point = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      extra = 1;
      point = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2;
      point = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3;
      point = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= text.size()) return false;
    for (std::size_t k = 1; k <= extra; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xc0) != 0x80) return false;
      point = (point << 6) | (next & 0x3f);
    }
    // Overlong forms, surrogates and values beyond Unicode are not UTF-8.
    static constexpr std::uint32_t kMinimum[] = {0, 0x80, 0x800, 0x10000};
    if (point < kMinimum[extra] || point > 0x10ffff || (point >= 0xd800 && point <= 0xdfff)) return false;
    i += extra + 1;
  }
  return true;
}

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    std::uint32_t chunk = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) chunk |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) chunk |= static_cast<unsigned char>(bytes[i + 2]);
    out += kBase64[(chunk >> 18) & 0x3f];
    out += kBase64[(chunk >> 12) & 0x3f];
    out += i + 1 < bytes.size() ? kBase64[(chunk >> 6) & 0x3f] : '=';
    out += i + 2 < bytes.size() ? kBase64[chunk & 0x3f] : '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  for (std::size_t i = 0; i < text.size(); i += 4) {
    std::uint32_t chunk = 0;
    int padding = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      const char c = text[i + k];
      std::uint32_t value = 0;
      if (c == '=' && k >= 2 && i + 4 == text.size()) {
        ++padding;
      } else {
        if (padding > 0) return std::nullopt;
        const char* found = std::char_traits<char>::find(kBase64, 64, c);
        if (found == nullptr) return std::nullopt;
        value = static_cast<std::uint32_t>(found - kBase64);
      }
      chunk = (chunk << 6) | value;
    }
    out += static_cast<char>((chunk >> 16) & 0xff);
    if (padding < 2) out += static_cast<char>((chunk >> 8) & 0xff);
    if (padding < 1) out += static_cast<char>(chunk & 0xff);
  }
  return out;
}

// Text that JSON can carry as it is, or its bytes in base64.
void put_bytes(nlohmann::ordered_json& object, const std::string& name, const std::string& bytes) {
  if (valid_utf8(bytes)) {
    object[name] = bytes;
  } else {
    object[name + "_base64"] = base64_encode(bytes);
  }
}

// What the log stores for an intact event: its canonical object plus "hash"
// (what events::seal returns). The EventLog port hands out decoded events,
// and for one whose hash matches its content these are its stored bytes.
std::string stored_bytes(const RecordedEvent& event) {
  nlohmann::json object = nlohmann::json::parse(events::canonical_bytes(event));
  object["hash"] = event.hash;
  return object.dump();
}

// The entries of a bundle, shared by to_bundle (which holds them all) and
// write_bundle (which writes each as it goes).

nlohmann::ordered_json event_entry(const RecordedEvent& e) {
  nlohmann::ordered_json entry;
  entry["version"] = e.version;
  entry["position"] = e.position;
  entry["stored"] = stored_bytes(e);
  return entry;
}

// Why the stream could not be read further: the bundle then holds only the
// events before the damage, and says so.
nlohmann::ordered_json read_failure_entry(const StreamRead& read) {
  return read.failure ? to_json(*read.failure) : nlohmann::json();
}

const events::ReleaseCreated* created_event(const Evidence& evidence) {
  const auto& events = evidence.release.events;
  return events.empty() ? nullptr : std::get_if<events::ReleaseCreated>(&events.front().data);
}

std::int64_t through_version(const Evidence& evidence) {
  const auto* created = created_event(evidence);
  return created != nullptr ? created->pipeline_version : 0;
}

nlohmann::ordered_json definition_entry(const Evidence& evidence) {
  const auto* created = created_event(evidence);
  return created != nullptr ? created->definition : nlohmann::json();
}

nlohmann::ordered_json line_entry(const LogLine& line) {
  nlohmann::ordered_json entry;
  entry["at"] = line.at;
  entry["stream"] = line.stream;
  put_bytes(entry, "text", line.text);
  return entry;
}

// A step log's entry without its lines.
nlohmann::ordered_json step_log_entry(const StepLog& log) {
  nlohmann::ordered_json entry;
  entry["stage"] = log.key.stage;
  entry["attempt"] = log.key.attempt;
  entry["step_index"] = log.key.step_index;
  entry["step"] = log.step;
  if (!log.unreadable.empty()) entry["unreadable"] = log.unreadable;
  return entry;
}

std::string step_log_name(const StepLog& log) {
  return log.key.stage + "/" + std::to_string(log.key.attempt) + "/" + log.step;
}

nlohmann::ordered_json summary_entry(const Evidence& evidence) {
  if (!evidence.summary) return nullptr;
  nlohmann::ordered_json summary;
  summary["reflects_version"] = evidence.summary->reflects_version;
  put_bytes(summary, "text", evidence.summary->text);
  return summary;
}

nlohmann::ordered_json stream_json(const StreamRead& read) {
  nlohmann::ordered_json events = nlohmann::ordered_json::array();
  for (const RecordedEvent& e : read.events) events.push_back(event_entry(e));
  nlohmann::ordered_json out;
  out["stream"] = read.stream;
  out["events"] = std::move(events);
  out["read_failure"] = read_failure_entry(read);
  return out;
}

// Writes JSON laid out exactly as nlohmann's dump(2) lays it out — each
// member and element on its own line, two spaces deeper per level, "{}" and
// "[]" when empty — one member or element at a time, so that a document too
// big to hold is written as it is read.
class IndentedJsonWriter {
 public:
  explicit IndentedJsonWriter(std::ostream& out) : out_(out) {}

  void begin_object() { open('{', '}'); }
  void begin_array() { open('[', ']'); }
  void end() {
    const Level level = levels_.back();
    levels_.pop_back();
    if (level.has_items) {
      out_ << '\n';
      indent();
    }
    out_ << level.close;
  }
  // The next member of the object being written: a value or a container
  // begun next.
  void key(const std::string& name) {
    next_item();
    out_ << nlohmann::json(name).dump() << ": ";
  }
  void member(const std::string& name, const nlohmann::ordered_json& value) {
    key(name);
    write(value);
  }
  // The next element of the array being written.
  void element(const nlohmann::ordered_json& value) {
    next_item();
    write(value);
  }

 private:
  struct Level {
    char close;
    bool has_items = false;
  };

  void open(char opening, char closing) {
    out_ << opening;
    levels_.push_back(Level{closing});
  }
  void next_item() {
    Level& level = levels_.back();
    out_ << (level.has_items ? ",\n" : "\n");
    level.has_items = true;
    indent();
  }
  void indent() { out_ << std::string(2 * levels_.size(), ' '); }
  // A value dumped on its own is laid out from column 0: its inner lines
  // move to this depth. Strings escape their newlines, so every newline of
  // the dump is the layout's.
  void write(const nlohmann::ordered_json& value) {
    const std::string text = value.dump(2);
    const std::string margin(2 * levels_.size(), ' ');
    std::size_t start = 0;
    for (std::size_t newline = text.find('\n'); newline != std::string::npos; newline = text.find('\n', start)) {
      out_.write(text.data() + start, static_cast<std::streamsize>(newline + 1 - start));
      out_ << margin;
      start = newline + 1;
    }
    out_.write(text.data() + start, static_cast<std::streamsize>(text.size() - start));
  }

  std::ostream& out_;
  std::vector<Level> levels_;
};

void write_stream(IndentedJsonWriter& json, const StreamRead& read) {
  json.member("stream", read.stream);
  json.key("events");
  json.begin_array();
  for (const RecordedEvent& e : read.events) json.element(event_entry(e));
  json.end();
  json.member("read_failure", read_failure_entry(read));
}

}  // namespace

nlohmann::ordered_json to_bundle(const Evidence& evidence, const Verification& at_export, Timestamp exported_at,
                                 const std::string& exported_by) {
  nlohmann::ordered_json bundle;  // in this order, for people reading the file
  bundle["format"] = kBundleFormat;
  bundle["release_id"] = evidence.release_id;
  bundle["exported_at"] = format_rfc3339(exported_at, ZeroTime::kEmpty);
  bundle["exported_at_ms"] = exported_at;
  bundle["exported_by"] = exported_by;
  bundle["release_stream"] = stream_json(evidence.release);
  bundle["pipeline_stream"] = stream_json(evidence.pipeline);
  bundle["pipeline_stream"]["through_version"] = through_version(evidence);
  bundle["definition"] = definition_entry(evidence);
  nlohmann::ordered_json logs = nlohmann::ordered_json::object();
  for (const StepLog& log : evidence.step_logs) {
    nlohmann::ordered_json lines = nlohmann::ordered_json::array();
    // The lines of an intact log are read from its store; no error but a
    // store that fails after collect_evidence read it through can stop this.
    (void)log.each_line([&](const LogLine& line) -> Status {
      lines.push_back(line_entry(line));
      return success();
    });
    nlohmann::ordered_json entry = step_log_entry(log);
    entry["lines"] = std::move(lines);
    logs[step_log_name(log)] = std::move(entry);
  }
  bundle["step_logs"] = std::move(logs);
  bundle["summary"] = summary_entry(evidence);
  bundle["verification"] = to_json(at_export);
  return bundle;
}

Status write_bundle(std::ostream& out, const Evidence& evidence, const Verification& at_export,
                    Timestamp exported_at, const std::string& exported_by) {
  // Member for member what to_bundle builds, in its order.
  IndentedJsonWriter json(out);
  json.begin_object();
  json.member("format", kBundleFormat);
  json.member("release_id", evidence.release_id);
  json.member("exported_at", format_rfc3339(exported_at, ZeroTime::kEmpty));
  json.member("exported_at_ms", exported_at);
  json.member("exported_by", exported_by);
  json.key("release_stream");
  json.begin_object();
  write_stream(json, evidence.release);
  json.end();
  json.key("pipeline_stream");
  json.begin_object();
  write_stream(json, evidence.pipeline);
  json.member("through_version", through_version(evidence));
  json.end();
  json.member("definition", definition_entry(evidence));

  // A JSON object has one member per name: like to_bundle's, it holds the
  // last log of each name, where the name first appeared.
  std::vector<std::pair<std::string, const StepLog*>> entries;
  for (const StepLog& log : evidence.step_logs) {
    const std::string name = step_log_name(log);
    auto found = std::find_if(entries.begin(), entries.end(), [&](const auto& e) { return e.first == name; });
    if (found != entries.end()) {
      found->second = &log;
    } else {
      entries.emplace_back(name, &log);
    }
  }
  json.key("step_logs");
  json.begin_object();
  for (const auto& [name, log] : entries) {
    json.key(name);
    json.begin_object();
    const nlohmann::ordered_json header = step_log_entry(*log);
    for (const auto& member : header.items()) json.member(member.key(), member.value());
    json.key("lines");
    json.begin_array();
    CASCADE_TRY(log->each_line([&](const LogLine& line) -> Status {
      json.element(line_entry(line));
      if (!out) return make_error(ErrorCode::kUnavailable, "the bundle could not be written");
      return success();
    }));
    json.end();
    json.end();
  }
  json.end();
  json.member("summary", summary_entry(evidence));
  json.member("verification", to_json(at_export));
  json.end();
  out << '\n';
  if (!out) return make_error(ErrorCode::kUnavailable, "the bundle could not be written");
  return success();
}

namespace {

// Reads the parts of a bundle, tracking the JSON path for error messages.
class BundleReader {
 public:
  explicit BundleReader(const nlohmann::json& root) : root_(root) {}

  Result<Bundle> read() {
    try {
      return read_unchecked();
    } catch (const nlohmann::json::exception& e) {
      return make_error(ErrorCode::kDataLoss, "the bundle is damaged at " + (path_.empty() ? "/" : path_) + ": " +
                                                  e.what());
    }
  }

 private:
  // Throws nlohmann's exceptions for a missing member or a wrong type.
  Result<Bundle> read_unchecked() {
    Bundle bundle;
    path_ = "/format";
    if (!root_.is_object() || !root_.contains("format") || root_.at("format") != kBundleFormat) {
      return make_error(ErrorCode::kInvalidArgument,
                        std::string("not an evidence bundle: expected \"format\": \"") + kBundleFormat + "\"");
    }
    path_ = "/release_id";
    bundle.evidence.release_id = root_.at("release_id").get<std::string>();
    path_ = "/exported_at_ms";
    bundle.exported_at = root_.at("exported_at_ms").get<Timestamp>();
    path_ = "/exported_by";
    bundle.exported_by = root_.at("exported_by").get<std::string>();
    CASCADE_TRY(release, read_stream_part("/release_stream"));
    bundle.evidence.release = std::move(release);
    if (bundle.evidence.release.stream != release_stream(bundle.evidence.release_id)) {
      path_ = "/release_stream/stream";
      return damaged("not the stream of release " + bundle.evidence.release_id);
    }
    CASCADE_TRY(pipeline, read_stream_part("/pipeline_stream"));
    bundle.evidence.pipeline = std::move(pipeline);

    path_ = "/step_logs";
    for (const auto& [name, entry] : root_.at("step_logs").items()) {
      path_ = "/step_logs/" + name;
      StepLog log;
      log.key.release_id = bundle.evidence.release_id;
      log.key.stage = entry.at("stage").get<std::string>();
      log.key.attempt = entry.at("attempt").get<int>();
      log.key.step_index = entry.at("step_index").get<int>();
      log.step = entry.at("step").get<std::string>();
      if (entry.contains("unreadable")) log.unreadable = entry.at("unreadable").get<std::string>();
      if (name != step_log_name(log)) return damaged("the key does not name the entry's stage/attempt/step");
      const std::string log_path = path_;
      std::size_t index = 0;
      for (const auto& line : entry.at("lines")) {
        path_ = log_path + "/lines/" + std::to_string(index++);
        LogLine parsed;
        parsed.at = line.at("at").get<Timestamp>();
        parsed.stream = line.at("stream").get<std::string>();
        CASCADE_TRY(text, get_bytes(line, "text"));
        parsed.text = std::move(text);
        log.lines.push_back(std::move(parsed));
      }
      bundle.evidence.step_logs.push_back(std::move(log));
    }

    path_ = "/summary";
    const nlohmann::json& summary = root_.at("summary");
    if (!summary.is_null()) {
      StoredSummary stored;
      stored.reflects_version = summary.at("reflects_version").get<std::int64_t>();
      CASCADE_TRY(text, get_bytes(summary, "text"));
      stored.text = std::move(text);
      bundle.evidence.summary = std::move(stored);
    }

    path_ = "/verification";
    auto at_export = verification_from_json(root_.at("verification"));
    if (!at_export) return damaged(at_export.error().message);
    bundle.at_export = std::move(at_export).value();

    // The definition is a copy of what ReleaseCreated holds, for people; it
    // must not say something else.
    path_ = "/definition";
    const auto& events = bundle.evidence.release.events;
    const auto* created = events.empty() ? nullptr : std::get_if<events::ReleaseCreated>(&events.front().data);
    if (created != nullptr && root_.at("definition") != created->definition) {
      Finding f;
      f.kind = FindingKind::kBundle;
      f.location = located(bundle.evidence.release.stream, 1, events.front().position);
      f.location.field = "/definition" + first_difference(created->definition, root_.at("definition")).value_or("");
      f.message = "the bundle's definition differs from the snapshot in stream " + bundle.evidence.release.stream +
                  " version 1 at " + f.location.field;
      bundle.inconsistency = std::move(f);
    }
    return bundle;
  }

  Result<StreamRead> read_stream_part(const std::string& part) {
    path_ = part;
    const nlohmann::json& object = root_.at(part.substr(1));
    StreamRead read;
    path_ = part + "/stream";
    read.stream = object.at("stream").get<std::string>();
    std::size_t index = 0;
    for (const auto& entry : object.at("events")) {
      path_ = part + "/events/" + std::to_string(index++);
      const auto version = entry.at("version").get<std::int64_t>();
      const auto position = entry.at("position").get<std::uint64_t>();
      const std::string stored = entry.at("stored").get<std::string>();
      auto decoded = events::decode(stored, position);
      if (!decoded) {
        read.failure = read_failure(read.stream, version, decoded.error());
        return read;
      }
      if (decoded.value().version != version) {
        Finding f;
        f.kind = FindingKind::kBundle;
        f.location = located(read.stream, version, position);
        f.location.field = path_ + "/version";
        f.expected = "version " + std::to_string(version);
        f.found = "version " + std::to_string(decoded.value().version);
        f.message = "the bundle lists stream " + read.stream + " version " + std::to_string(version) +
                    " but the event there is version " + std::to_string(decoded.value().version);
        read.failure = std::move(f);
        return read;
      }
      read.events.push_back(std::move(decoded).value());
    }
    path_ = part + "/read_failure";
    if (!object.at("read_failure").is_null()) read.failure = finding_from_json(object.at("read_failure"));
    return read;
  }

  Result<std::string> get_bytes(const nlohmann::json& object, const std::string& name) {
    if (object.contains(name)) return object.at(name).get<std::string>();
    auto decoded = base64_decode(object.at(name + "_base64").get<std::string>());
    if (!decoded) return damaged(name + "_base64 is not base64");
    return std::move(decoded).value();
  }

  Error damaged(const std::string& why) const {
    return make_error(ErrorCode::kDataLoss, "the bundle is damaged at " + path_ + ": " + why);
  }

 private:
  const nlohmann::json& root_;
  std::string path_;
};

}  // namespace

Result<Bundle> read_bundle(std::string_view text) {
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    return make_error(ErrorCode::kDataLoss,
                      "the bundle is not valid JSON (at byte " + std::to_string(e.byte) + "): " + e.what());
  }
  return BundleReader(root).read();
}

Verification verify_bundle(const Bundle& bundle, const SummaryRenderer& render_summary) {
  Verification v = verify(bundle.evidence, render_summary);
  Recorder record(v);
  if (bundle.inconsistency) {
    record.failed("bundle", *bundle.inconsistency);
  } else {
    record.passed("bundle", "the bundle's definition matches the release's snapshot");
  }
  if (!bundle.at_export.ok()) {
    // The bundle then holds only what could be read at export.
    Finding at_export = *bundle.at_export.failure;
    at_export.message = "at export: " + at_export.message;
    record.failed("export", std::move(at_export));
  } else {
    record.passed("export", "the release verified when it was exported");
  }
  return v;
}

}  // namespace cascade::engine
