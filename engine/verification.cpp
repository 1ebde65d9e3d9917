#include "engine/audit.hpp"

#include "engine/pipeline.hpp"
#include "events/codec.hpp"
#include "events/join.hpp"
#include "events/time.hpp"

#include <algorithm>
#include <initializer_list>

namespace cascade::engine {
namespace {

using events::format_rfc3339;
using events::join;
using events::ZeroTime;
using events::RecordedEvent;

Location located(std::string stream, std::int64_t version, std::uint64_t position) {
  Location location;
  location.stream = std::move(stream);
  location.version = version;
  location.position = position;
  return location;
}

// "1 line", "3 lines".
std::string counted(std::size_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

std::string versions_text(std::size_t count) {
  if (count == 0) return "no events";
  if (count == 1) return "version 1";
  return "versions 1–" + std::to_string(count);
}

}  // namespace

// ---- Time travel -------------------------------------------------------------

ReleaseState fold(const std::vector<RecordedEvent>& events, std::optional<std::int64_t> up_to_version,
                  std::optional<Timestamp> up_to_time) {
  ReleaseState state;
  for (const RecordedEvent& event : events) {
    if (up_to_version && event.version > *up_to_version) break;
    if (up_to_time && event.recorded_at > *up_to_time) break;
    evolve(state, event);
  }
  return state;
}

// ---- Findings and their JSON -------------------------------------------------

std::string_view to_string(FindingKind kind) {
  switch (kind) {
    case FindingKind::kEventChain: return "event_chain";
    case FindingKind::kPipelineChain: return "pipeline_chain";
    case FindingKind::kStepLog: return "step_log";
    case FindingKind::kSummary: return "summary";
    case FindingKind::kUnreadableEvent: return "unreadable_event";
    case FindingKind::kMissingEvent: return "missing_event";
    case FindingKind::kBundle: return "bundle";
  }
  return "unknown";
}

namespace {

std::optional<FindingKind> finding_kind(std::string_view name) {
  for (FindingKind kind : {FindingKind::kEventChain, FindingKind::kPipelineChain, FindingKind::kStepLog,
                           FindingKind::kSummary, FindingKind::kUnreadableEvent, FindingKind::kMissingEvent,
                           FindingKind::kBundle}) {
    if (to_string(kind) == name) return kind;
  }
  return std::nullopt;
}

std::string_view to_string(CheckOutcome outcome) {
  switch (outcome) {
    case CheckOutcome::kPassed: return "ok";
    case CheckOutcome::kFailed: return "failed";
    case CheckOutcome::kSkipped: return "skipped";
  }
  return "unknown";
}

}  // namespace

nlohmann::json to_json(const Finding& f) {
  const Location& l = f.location;
  return {{"kind", to_string(f.kind)},
          {"location",
           {{"stream", l.stream}, {"version", l.version}, {"position", l.position}, {"stage", l.stage},
            {"attempt", l.attempt}, {"step_index", l.step_index}, {"step", l.step}, {"try", l.try_number},
            {"field", l.field}}},
          {"expected", f.expected},
          {"found", f.found},
          {"message", f.message}};
}

nlohmann::json to_json(const Verification& v) {
  nlohmann::json checks = nlohmann::json::array();
  for (const Check& c : v.checks) {
    checks.push_back({{"name", c.name}, {"outcome", to_string(c.outcome)}, {"detail", c.detail}});
  }
  return {{"ok", v.ok()}, {"checks", checks}, {"failure", v.failure ? to_json(*v.failure) : nlohmann::json()}};
}

namespace {

// Throws nlohmann's exceptions for a missing member or a wrong type.
Finding finding_from_json(const nlohmann::json& f) {
  Finding finding;
  const auto kind = finding_kind(f.at("kind").get<std::string>());
  if (!kind) throw nlohmann::json::other_error::create(501, "unknown finding kind " + f.at("kind").dump(), &f);
  finding.kind = *kind;
  const nlohmann::json& l = f.at("location");
  finding.location.stream = l.at("stream").get<std::string>();
  finding.location.version = l.at("version").get<std::int64_t>();
  finding.location.position = l.at("position").get<std::uint64_t>();
  finding.location.stage = l.at("stage").get<std::string>();
  finding.location.attempt = l.at("attempt").get<int>();
  finding.location.step_index = l.at("step_index").get<int>();
  finding.location.step = l.at("step").get<std::string>();
  finding.location.try_number = l.at("try").get<int>();
  finding.location.field = l.at("field").get<std::string>();
  finding.expected = f.at("expected").get<std::string>();
  finding.found = f.at("found").get<std::string>();
  finding.message = f.at("message").get<std::string>();
  return finding;
}

}  // namespace

Result<Verification> verification_from_json(const nlohmann::json& json) {
  try {
    Verification v;
    for (const auto& c : json.at("checks")) {
      Check check;
      check.name = c.at("name").get<std::string>();
      const std::string outcome = c.at("outcome").get<std::string>();
      check.outcome = outcome == "ok"       ? CheckOutcome::kPassed
                      : outcome == "failed" ? CheckOutcome::kFailed
                                            : CheckOutcome::kSkipped;
      check.detail = c.at("detail").get<std::string>();
      v.checks.push_back(std::move(check));
    }
    if (!json.at("failure").is_null()) v.failure = finding_from_json(json.at("failure"));
    return v;
  } catch (const nlohmann::json::exception& e) {
    return make_error(ErrorCode::kInvalidArgument, std::string("malformed verification: ") + e.what());
  }
}

// ---- Reading -----------------------------------------------------------------

namespace {

// A failed read of one version, as a finding. The EventLog port has no code
// that tells a missing event from an unreadable one (both are kDataLoss), so
// the log's message decides: the RocksDB log says "missing" for an event its
// index points at but which is gone, and "unreadable" for bytes that do not decode.
Finding read_failure(const std::string& stream, std::int64_t version, const Error& error) {
  Finding f;
  f.kind = error.message.find("missing") != std::string::npos ? FindingKind::kMissingEvent
                                                               : FindingKind::kUnreadableEvent;
  f.location.stream = stream;
  f.location.version = version;
  const std::string where = "stream " + stream + " version " + std::to_string(version);
  f.message = error.message.rfind(where, 0) == 0 ? error.message : where + ": " + error.message;
  f.expected = "version " + std::to_string(version);
  f.found = f.kind == FindingKind::kMissingEvent ? "nothing" : "unreadable bytes";
  return f;
}

}  // namespace

Result<StreamRead> read_stream(events::EventLog& log, const std::string& stream, std::size_t limit) {
  StreamRead out;
  out.stream = stream;
  auto all = log.read(stream, 1, limit);
  if (all) {
    out.events = std::move(all).value();
    return out;
  }
  if (all.error().code != ErrorCode::kDataLoss) return all.error();
  // Only on damage: read version by version to know where the stream breaks.
  std::int64_t next = 1;
  while (out.events.size() < limit) {
    auto one = log.read(stream, next, 1);
    if (!one) {
      if (one.error().code != ErrorCode::kDataLoss) return one.error();
      out.failure = read_failure(stream, next, one.error());
      return out;
    }
    if (one.value().empty()) break;
    next = one.value().front().version + 1;
    out.events.push_back(std::move(one.value().front()));
  }
  // Every event read on its own: the damage is not at one version.
  out.failure = read_failure(stream, next, all.error());
  return out;
}

namespace {

bool same_key(const StepLogKey& a, const StepLogKey& b) {
  return a.release_id == b.release_id && a.stage == b.stage && a.attempt == b.attempt &&
         a.step_index == b.step_index;
}

// One try of one step: the event that finished it (if any) and its digest.
struct StepTry {
  int try_number = 0;
  const RecordedEvent* finish = nullptr;
  std::string digest;
};

struct StepHistory {
  StepLogKey key;
  std::string step;
  std::vector<StepTry> tries;
};

// Every step of the release, with its tries in event order.
std::vector<StepHistory> step_histories(const std::string& release_id, const std::vector<RecordedEvent>& events) {
  std::vector<StepHistory> out;
  auto history = [&](const std::string& stage, int attempt, int index, const std::string& step) -> StepHistory& {
    const StepLogKey key{release_id, stage, attempt, index};
    auto found = std::find_if(out.begin(), out.end(), [&](const StepHistory& h) { return same_key(h.key, key); });
    if (found != out.end()) return *found;
    out.push_back(StepHistory{key, step, {}});
    return out.back();
  };
  auto finished = [&](StepHistory& h, const RecordedEvent& e, const std::string& digest) {
    if (h.tries.empty() || h.tries.back().finish != nullptr) h.tries.push_back(StepTry{});
    h.tries.back().finish = &e;
    h.tries.back().digest = digest;
  };
  for (const RecordedEvent& e : events) {
    if (const auto* s = std::get_if<events::StepStarted>(&e.data)) {
      history(s->stage, s->attempt, s->step_index, s->step).tries.push_back(StepTry{s->try_number, nullptr, ""});
    } else if (const auto* ok = std::get_if<events::StepSucceeded>(&e.data)) {
      finished(history(ok->stage, ok->attempt, ok->step_index, ok->step), e, ok->log_digest);
    } else if (const auto* failed = std::get_if<events::StepFailed>(&e.data)) {
      finished(history(failed->stage, failed->attempt, failed->step_index, failed->step), e, failed->log_digest);
    }
  }
  return out;
}

bool digested(const StepHistory& history) {
  return std::any_of(history.tries.begin(), history.tries.end(), [](const StepTry& t) { return t.finish != nullptr; });
}

}  // namespace

Result<Evidence> collect_evidence(events::EventLog& log, StepLogStore& step_logs, const std::string& release_id) {
  Evidence evidence;
  evidence.release_id = release_id;
  CASCADE_TRY(release, read_stream(log, release_stream(release_id)));
  if (release.events.empty() && !release.failure) {
    return make_error(ErrorCode::kNotFound, "no release '" + release_id + "'");
  }
  evidence.release = std::move(release);
  const auto* created = evidence.release.events.empty()
                            ? nullptr
                            : std::get_if<events::ReleaseCreated>(&evidence.release.events.front().data);
  if (created != nullptr && created->pipeline_version > 0) {
    CASCADE_TRY(pipeline, read_stream(log, pipeline_stream(created->pipeline),
                                      static_cast<std::size_t>(created->pipeline_version)));
    evidence.pipeline = std::move(pipeline);
  }
  for (StepHistory& history : step_histories(release_id, evidence.release.events)) {
    if (!digested(history)) continue;
    StepLog entry;
    entry.key = std::move(history.key);
    entry.step = std::move(history.step);
    auto lines = step_logs.read(entry.key);
    if (lines) {
      entry.lines = std::move(lines).value();
    } else if (lines.error().code == ErrorCode::kDataLoss) {
      entry.unreadable = lines.error().message;
    } else {
      return lines.error();
    }
    evidence.step_logs.push_back(std::move(entry));
  }
  return evidence;
}

// ---- The checks --------------------------------------------------------------

namespace {

// `path` extended by `key` as a JSON pointer (RFC 6901 escaping by nlohmann).
std::string child_path(const std::string& path, const std::string& key) {
  return (nlohmann::json::json_pointer(path) / key).to_string();
}

// The JSON pointer of the first place where `a` and `b` differ, or nullopt.
std::optional<std::string> first_difference(const nlohmann::json& a, const nlohmann::json& b,
                                            const std::string& path = "") {
  if (a.type() != b.type()) return path.empty() ? "/" : path;
  if (a.is_object()) {
    auto ia = a.begin();
    auto ib = b.begin();
    for (; ia != a.end() && ib != b.end(); ++ia, ++ib) {
      if (ia.key() != ib.key()) return child_path(path, std::min(ia.key(), ib.key()));
      if (auto d = first_difference(ia.value(), ib.value(), child_path(path, ia.key()))) return d;
    }
    if (ia != a.end()) return child_path(path, ia.key());
    if (ib != b.end()) return child_path(path, ib.key());
    return std::nullopt;
  }
  if (a.is_array()) {
    for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
      if (auto d = first_difference(a[i], b[i], path + "/" + std::to_string(i))) return d;
    }
    if (a.size() != b.size()) return path + "/" + std::to_string(std::min(a.size(), b.size()));
    return std::nullopt;
  }
  if (a != b) return path.empty() ? "/" : path;
  return std::nullopt;
}

std::string value_at(const nlohmann::json& document, const std::string& pointer) {
  const nlohmann::json::json_pointer p(pointer == "/" ? "" : pointer);
  if (!document.contains(p)) return "(absent)";
  std::string text = document.at(p).dump();
  if (text.size() > 200) text = text.substr(0, 200) + "…";
  return text;
}

// Versions 1…n of one stream, without a gap, each sealed and linked; then
// whatever stopped the read.
std::optional<Finding> check_stream(const StreamRead& read, FindingKind chain_kind) {
  const auto& events = read.events;
  // verify_chain over the whole stream decides; only when it fails is it
  // asked again event by event, to locate the first broken link.
  const bool chain_holds = static_cast<bool>(events::verify_chain(events));
  std::string previous_hash;
  for (std::size_t i = 0; i < events.size(); ++i) {
    const RecordedEvent& e = events[i];
    const auto want = static_cast<std::int64_t>(i + 1);
    Finding f;
    f.kind = chain_kind;
    f.location = located(read.stream, e.version, e.position);
    const std::string where = "stream " + read.stream + " version " + std::to_string(e.version);
    if (e.stream != read.stream) {
      f.expected = read.stream;
      f.found = e.stream;
      f.message = where + ": the event stored there belongs to stream " + e.stream;
      return f;
    }
    if (e.version > want) {
      f.kind = FindingKind::kMissingEvent;
      f.location = located(read.stream, want, 0);
      f.expected = "version " + std::to_string(want);
      f.found = "version " + std::to_string(e.version);
      const std::string before =
          want == 1 ? std::string("the stream starts") : "version " + std::to_string(want - 1) + " is followed";
      f.message = "stream " + read.stream + " version " + std::to_string(want) + " is missing: " + before +
                  " with version " + std::to_string(e.version);
      return f;
    }
    if (e.version < want) {
      f.expected = "version " + std::to_string(want);
      f.found = "version " + std::to_string(e.version);
      f.message = where + " appears again after version " + std::to_string(want - 1);
      return f;
    }
    if (!chain_holds) {
      const Status linked = events::verify_chain({e}, previous_hash);
      if (!linked) {
        if (e.prev_hash != previous_hash) {
          f.expected = previous_hash;
          f.found = e.prev_hash;
        } else {
          f.expected = events::compute_hash(e);
          f.found = e.hash;
        }
        f.message = linked.error().message;
        return f;
      }
    }
    previous_hash = e.hash;
  }
  if (read.failure) return read.failure;
  return std::nullopt;
}

// A pipeline definition in the form the engine writes it, so that two
// spellings of the same definition compare equal.
nlohmann::json normalized_definition(const nlohmann::json& definition) {
  auto parsed = parse_pipeline(definition);
  return parsed ? to_json(parsed.value()) : definition;
}

std::optional<Finding> check_pipeline(const Evidence& evidence, const events::ReleaseCreated& created,
                                      std::string* detail) {
  if (auto broken = check_stream(evidence.pipeline, FindingKind::kPipelineChain)) return broken;
  const auto& events = evidence.pipeline.events;
  const std::int64_t needed = created.pipeline_version;
  if (static_cast<std::int64_t>(events.size()) < needed) {
    Finding f;
    f.kind = FindingKind::kMissingEvent;
    f.location = located(evidence.pipeline.stream, static_cast<std::int64_t>(events.size()) + 1, 0);
    f.expected = "version " + std::to_string(needed);
    f.found = events.empty() ? "no events" : "versions 1–" + std::to_string(events.size());
    f.message = "stream " + evidence.pipeline.stream + " version " + std::to_string(events.size() + 1) +
                " is missing: release " + evidence.release_id + " was created from version " +
                std::to_string(needed);
    return f;
  }
  const RecordedEvent& source = events[static_cast<std::size_t>(needed - 1)];
  const auto* defined = std::get_if<events::PipelineDefined>(&source.data);
  const nlohmann::json snapshot = normalized_definition(created.definition);
  const nlohmann::json original =
      defined != nullptr ? normalized_definition(defined->definition) : nlohmann::json();
  if (auto differs = first_difference(original, snapshot)) {
    Finding f;
    f.kind = FindingKind::kPipelineChain;
    f.location = located(evidence.pipeline.stream, source.version, source.position);
    f.location.field = *differs;
    f.expected = value_at(original, *differs);
    f.found = value_at(snapshot, *differs);
    f.message = "the definition snapshot of release " + evidence.release_id + " differs from stream " +
                evidence.pipeline.stream + " version " + std::to_string(source.version) + " at " + *differs +
                ": expected " + f.expected + ", found " + f.found;
    return f;
  }
  *detail = evidence.pipeline.stream + ": " + versions_text(events.size()) +
            " (through the version the release was created from), every hash and link intact; the release's "
            "definition snapshot matches version " +
            std::to_string(needed);
  return std::nullopt;
}

std::string digest_of(const std::vector<LogLine>& lines, std::size_t from, std::size_t to) {
  events::Sha256 digest;
  for (std::size_t i = from; i < to; ++i) digest.update(digest_bytes(lines[i]));
  return digest.finish();
}

// Where the lines of a try that ended at `finish` end, starting at `from`:
// the split whose digest matches. Lines carry the engine's clock, so the
// first line stamped after the finishing event is tried first; other splits
// are tried in order after it (clocks that disagree, lines stamped 0), which
// costs time quadratic in the try's lines, only for retried steps.
std::optional<std::size_t> split_after_try(const std::vector<LogLine>& lines, std::size_t from,
                                           const StepTry& step_try, std::size_t* hint) {
  std::size_t by_time = from;
  while (by_time < lines.size() && lines[by_time].at <= step_try.finish->recorded_at) ++by_time;
  *hint = by_time;
  if (digest_of(lines, from, by_time) == step_try.digest) return by_time;
  for (std::size_t end = from; end <= lines.size(); ++end) {
    if (end != by_time && digest_of(lines, from, end) == step_try.digest) return end;
  }
  return std::nullopt;
}

std::optional<Finding> check_step_logs(const Evidence& evidence, std::string* detail) {
  std::size_t logs = 0, tries = 0, lines_covered = 0, lines_uncovered = 0;
  for (const StepHistory& history : step_histories(evidence.release_id, evidence.release.events)) {
    if (!digested(history)) continue;
    ++logs;
    const auto stored = std::find_if(evidence.step_logs.begin(), evidence.step_logs.end(),
                                     [&](const StepLog& log) { return same_key(log.key, history.key); });
    auto failure = [&](const StepTry& step_try, std::string found, const std::string& what) {
      Finding f;
      f.kind = FindingKind::kStepLog;
      f.location = located(evidence.release.stream, step_try.finish->version, step_try.finish->position);
      f.location.stage = history.key.stage;
      f.location.attempt = history.key.attempt;
      f.location.step_index = history.key.step_index;
      f.location.step = history.step;
      f.location.try_number = step_try.try_number;
      f.expected = step_try.digest;
      f.found = std::move(found);
      f.message = "stream " + evidence.release.stream + " version " + std::to_string(step_try.finish->version) +
                  ": the log of stage " + history.key.stage + " attempt " + std::to_string(history.key.attempt) +
                  " step " + history.step + " (try " + std::to_string(step_try.try_number) + ") " + what;
      return f;
    };
    const StepTry& first_finished =
        *std::find_if(history.tries.begin(), history.tries.end(), [](const StepTry& t) { return t.finish != nullptr; });
    if (stored == evidence.step_logs.end()) return failure(first_finished, "", "is not there");
    if (!stored->unreadable.empty()) return failure(first_finished, "", "cannot be read: " + stored->unreadable);

    const std::vector<LogLine>& lines = stored->lines;
    std::size_t from = 0;
    for (std::size_t t = 0; t < history.tries.size(); ++t) {
      const StepTry& step_try = history.tries[t];
      if (step_try.finish == nullptr) {
        // A try that never finished (canceled, interrupted) recorded no
        // digest: whatever it logged is not covered, and no later try can be
        // told apart from it.
        lines_uncovered += lines.size() - from;
        from = lines.size();
        break;
      }
      ++tries;
      const bool last = t + 1 == history.tries.size();
      std::size_t end = lines.size();
      if (last) {
        const std::string found = digest_of(lines, from, end);
        if (found != step_try.digest) {
          return failure(step_try, found,
                         "does not match its digest: expected '" + step_try.digest + "', found '" + found + "'");
        }
      } else {
        std::size_t hint = 0;
        auto split = split_after_try(lines, from, step_try, &hint);
        if (!split) {
          const std::string found = digest_of(lines, from, hint);
          return failure(step_try, found,
                         "does not match its digest: expected '" + step_try.digest + "', found '" + found + "'");
        }
        end = *split;
      }
      lines_covered += end - from;
      from = end;
    }
  }
  *detail = counted(logs, "step log") + ", " + (tries == 1 ? "1 try" : std::to_string(tries) + " tries") + ", " +
            counted(lines_covered, "line") + ": every digest matches";
  if (lines_uncovered > 0) {
    *detail += " (" + counted(lines_uncovered, "line") + " of tries that never finished carry no digest)";
  }
  return std::nullopt;
}

std::optional<Finding> check_summary(const Evidence& evidence, const StoredSummary& stored,
                                     const SummaryRenderer& render, std::string* detail) {
  const auto& events = evidence.release.events;
  const auto count = static_cast<std::int64_t>(events.size());
  Finding f;
  f.location.stream = evidence.release.stream;
  if (stored.reflects_version > count || stored.reflects_version < 1) {
    f.kind = stored.reflects_version > count ? FindingKind::kMissingEvent : FindingKind::kSummary;
    f.location.version = count + 1;
    f.expected = "version " + std::to_string(stored.reflects_version);
    f.found = versions_text(events.size());
    f.message = "the stored summary of release " + evidence.release_id + " reflects version " +
                std::to_string(stored.reflects_version) + ", but stream " + evidence.release.stream + " has " +
                versions_text(events.size());
    return f;
  }
  if (stored.text.empty()) {
    f.kind = FindingKind::kSummary;
    f.location.version = stored.reflects_version;
    f.expected = "a summary document";
    f.found = "nothing";
    f.message = "the summary projection has seen version " + std::to_string(stored.reflects_version) +
                " of release " + evidence.release_id + " but holds no summary of it";
    return f;
  }
  const std::string expected = render(fold(events, stored.reflects_version));
  if (expected == stored.text) {
    *detail = "the stored summary equals the fold of " +
              versions_text(static_cast<std::size_t>(stored.reflects_version));
    if (stored.reflects_version < count) {
      *detail += " (the projection has not yet seen versions " + std::to_string(stored.reflects_version + 1) + "–" +
                 std::to_string(count) + ")";
    }
    return std::nullopt;
  }
  f.kind = FindingKind::kSummary;
  f.location.version = stored.reflects_version;
  const std::string of = "the stored summary of release " + evidence.release_id + " differs from the fold of " +
                         versions_text(static_cast<std::size_t>(stored.reflects_version));
  const nlohmann::json found = nlohmann::json::parse(stored.text, nullptr, /*allow_exceptions=*/false);
  if (!found.is_discarded()) {
    const nlohmann::json folded = nlohmann::json::parse(expected, nullptr, /*allow_exceptions=*/false);
    if (auto pointer = folded.is_discarded() ? std::nullopt : first_difference(folded, found)) {
      f.location.field = *pointer;
      f.expected = value_at(folded, *pointer);
      f.found = value_at(found, *pointer);
      f.message = of + " at " + *pointer + ": expected " + f.expected + ", found " + f.found;
      return f;
    }
  }
  // Not JSON, or the same JSON spelled differently: name the first byte.
  std::size_t at = 0;
  while (at < expected.size() && at < stored.text.size() && expected[at] == stored.text[at]) ++at;
  auto around = [&](const std::string& text) {
    const std::size_t start = at < 20 ? 0 : at - 20;
    return text.substr(start, 60);
  };
  f.location.field = "byte " + std::to_string(at);
  f.expected = around(expected);
  f.found = around(stored.text);
  f.message = of + " at byte " + std::to_string(at) + ": expected '" + f.expected + "', found '" + f.found + "'";
  return f;
}

class Recorder {
 public:
  explicit Recorder(Verification& v) : v_(v) {}
  void passed(std::string name, std::string detail) {
    v_.checks.push_back({std::move(name), CheckOutcome::kPassed, std::move(detail)});
  }
  void skipped(std::string name, std::string why) {
    v_.checks.push_back({std::move(name), CheckOutcome::kSkipped, std::move(why)});
  }
  void failed(std::string name, Finding finding) {
    v_.checks.push_back({std::move(name), CheckOutcome::kFailed, finding.message});
    if (!v_.failure) v_.failure = std::move(finding);
  }
  void record(std::string name, std::optional<Finding> finding, std::string detail) {
    if (finding) {
      failed(std::move(name), std::move(*finding));
    } else {
      passed(std::move(name), std::move(detail));
    }
  }

 private:
  Verification& v_;
};

}  // namespace

Verification verify(const Evidence& evidence, const SummaryRenderer& render_summary) {
  Verification v;
  Recorder record(v);
  const StreamRead& release = evidence.release;
  record.record("release stream", check_stream(release, FindingKind::kEventChain),
                release.stream + ": " + versions_text(release.events.size()) + ", every hash and link intact");

  const auto* created =
      release.events.empty() ? nullptr : std::get_if<events::ReleaseCreated>(&release.events.front().data);
  if (created == nullptr) {
    record.skipped("pipeline stream", "the release's first event (ReleaseCreated) could not be read");
  } else {
    std::string detail;
    auto finding = check_pipeline(evidence, *created, &detail);
    record.record("pipeline stream", std::move(finding), detail);
  }

  const bool complete = !release.failure.has_value();
  const std::string incomplete = "the release stream could not be read to its end";
  if (!complete) {
    record.skipped("step logs", incomplete);
  } else {
    std::string detail;
    auto finding = check_step_logs(evidence, &detail);
    record.record("step logs", std::move(finding), detail);
  }

  if (!complete) {
    record.skipped("summary", incomplete);
  } else if (!evidence.summary) {
    record.skipped("summary", "no stored summary of release " + evidence.release_id);
  } else {
    std::string detail;
    auto finding = check_summary(evidence, *evidence.summary, render_summary, &detail);
    record.record("summary", std::move(finding), detail);
  }
  return v;
}

// ---- Evidence bundle ---------------------------------------------------------

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

nlohmann::ordered_json stream_json(const StreamRead& read) {
  nlohmann::ordered_json events = nlohmann::ordered_json::array();
  for (const RecordedEvent& e : read.events) {
    nlohmann::ordered_json entry;
    entry["version"] = e.version;
    entry["position"] = e.position;
    entry["stored"] = stored_bytes(e);
    events.push_back(std::move(entry));
  }
  nlohmann::ordered_json out;
  out["stream"] = read.stream;
  out["events"] = std::move(events);
  // Why the stream could not be read further: the bundle then holds only
  // the events before the damage, and says so.
  out["read_failure"] = read.failure ? to_json(*read.failure) : nlohmann::json();
  return out;
}

std::string step_log_name(const StepLog& log) {
  return log.key.stage + "/" + std::to_string(log.key.attempt) + "/" + log.step;
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
  const auto* created = evidence.release.events.empty()
                            ? nullptr
                            : std::get_if<events::ReleaseCreated>(&evidence.release.events.front().data);
  bundle["pipeline_stream"]["through_version"] = created != nullptr ? created->pipeline_version : 0;
  bundle["definition"] = created != nullptr ? created->definition : nlohmann::json();
  nlohmann::ordered_json logs = nlohmann::ordered_json::object();
  for (const StepLog& log : evidence.step_logs) {
    nlohmann::ordered_json lines = nlohmann::ordered_json::array();
    for (const LogLine& line : log.lines) {
      nlohmann::ordered_json entry;
      entry["at"] = line.at;
      entry["stream"] = line.stream;
      put_bytes(entry, "text", line.text);
      lines.push_back(std::move(entry));
    }
    nlohmann::ordered_json entry;
    entry["stage"] = log.key.stage;
    entry["attempt"] = log.key.attempt;
    entry["step_index"] = log.key.step_index;
    entry["step"] = log.step;
    if (!log.unreadable.empty()) entry["unreadable"] = log.unreadable;
    entry["lines"] = std::move(lines);
    logs[step_log_name(log)] = std::move(entry);
  }
  bundle["step_logs"] = std::move(logs);
  if (evidence.summary) {
    nlohmann::ordered_json summary;
    summary["reflects_version"] = evidence.summary->reflects_version;
    put_bytes(summary, "text", evidence.summary->text);
    bundle["summary"] = std::move(summary);
  } else {
    bundle["summary"] = nullptr;
  }
  bundle["verification"] = to_json(at_export);
  return bundle;
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

// ---- Why ---------------------------------------------------------------------

namespace {

std::string phase_words(const std::string& phase) {
  return phase == "post" ? "post-deployment approval" : "approval";
}

const StepRecord* failed_step(const StageRecord& stage) {
  for (const StepRecord& step : stage.steps) {
    if (step.status == StepStatus::kFailed && !step.continued) return &step;
  }
  return nullptr;
}

const ApprovalRecord* last_decision(const StageRecord& stage, std::initializer_list<std::string_view> decisions) {
  for (auto it = stage.approvals.rbegin(); it != stage.approvals.rend(); ++it) {
    if (std::find(decisions.begin(), decisions.end(), it->decision) != decisions.end()) return &*it;
  }
  return nullptr;
}

std::string comment_of(const std::string& comment) { return comment.empty() ? "" : ": \"" + comment + "\""; }

std::string at_time(Timestamp at) { return at == 0 ? "" : " at " + format_rfc3339(at); }

// Why `stage` failed, was rejected or canceled, in a clause: "qa failed at step smoke-test".
std::string outcome_clause(const StageRecord& stage) {
  switch (stage.state()) {
    case StageState::kFailed:
      if (const StepRecord* step = failed_step(stage)) return stage.name + " failed at step " + step->name;
      return stage.name + " failed: " + stage.failure_reason;
    case StageState::kRejected:
      if (const ApprovalRecord* rejected = last_decision(stage, {"rejected"});
          rejected != nullptr && rejected->at >= stage.triggered_at) {
        return stage.name + " was rejected by " + rejected->approver + comment_of(rejected->comment);
      }
      return stage.name + " was rejected: " + stage.failure_reason;
    case StageState::kCanceled: return stage.name + " was canceled: " + stage.failure_reason;
    default: return stage.name + " is " + std::string(to_string(stage.state()));
  }
}

// Why an upstream stage does not (yet) let its downstream stages go on.
std::string upstream_clause(const ReleaseState& release, const StageRecord& upstream, bool partial_ok) {
  switch (upstream.state()) {
    case StageState::kFailed:
    case StageState::kRejected:
    case StageState::kCanceled: return outcome_clause(upstream);
    case StageState::kAwaitingPreApproval:
    case StageState::kAwaitingPostApproval:
      return upstream.name + " is waiting for " + phase_words(upstream.approval.phase) + " by " +
             join(upstream.approval.approvers);
    case StageState::kTriggered:
    case StageState::kApproved: return upstream.name + " is waiting to deploy";
    case StageState::kDeferred:
      return upstream.name + " is deferred until " + format_rfc3339(upstream.defer_until, ZeroTime::kEmpty);
    case StageState::kDeploying: return upstream.name + " is still deploying";
    case StageState::kPartiallySucceeded:
      return partial_ok ? upstream.name + " partially succeeded"
                        : upstream.name + " only partially succeeded (the trigger does not set on_partial_success)";
    case StageState::kSucceeded: return upstream.name + " succeeded";
    case StageState::kNotStarted: {
      const StageDefinition* definition = release.definition.find_stage(upstream.name);
      if (definition != nullptr && definition->trigger.kind == TriggerKind::kManual) {
        return upstream.name + " (a manual stage) was never deployed";
      }
      std::vector<std::string> reasons;
      if (definition != nullptr && definition->trigger.kind == TriggerKind::kAfterStages) {
        for (const std::string& name : definition->trigger.after_stages) {
          const StageRecord* record = release.find_stage(name);
          if (record == nullptr) continue;
          const StageState s = record->state();
          const bool done = s == StageState::kSucceeded ||
                            (s == StageState::kPartiallySucceeded && definition->trigger.on_partial_success);
          if (!done) reasons.push_back(upstream_clause(release, *record, definition->trigger.on_partial_success));
        }
      }
      return upstream.name + " was not triggered" + (reasons.empty() ? "" : " (" + join(reasons, "; ") + ")");
    }
  }
  return upstream.name + " is " + std::string(to_string(upstream.state()));
}

std::string not_started(const ReleaseState& release, const StageRecord& stage) {
  const std::string head = stage.name + " was not triggered: ";
  if (release.abandoned) {
    return head + "the release was abandoned" +
           (release.abandon_reason.empty() ? "" : " (" + release.abandon_reason + ")");
  }
  const StageDefinition* definition = release.definition.find_stage(stage.name);
  if (definition == nullptr) return head + "the release's definition has no such stage";
  switch (definition->trigger.kind) {
    case TriggerKind::kManual:
      return head + "it is a manual stage, waiting for someone to deploy it (cascade deploy " + release.id + " " +
             stage.name + ")";
    case TriggerKind::kAfterRelease:
      return stage.name + " is about to be triggered: it starts when the release is created";
    case TriggerKind::kAfterStages: {
      std::vector<std::string> reasons;
      for (const std::string& name : definition->trigger.after_stages) {
        const StageRecord* upstream = release.find_stage(name);
        if (upstream == nullptr) continue;
        const StageState s = upstream->state();
        const bool done = s == StageState::kSucceeded ||
                          (s == StageState::kPartiallySucceeded && definition->trigger.on_partial_success);
        if (!done) reasons.push_back(upstream_clause(release, *upstream, definition->trigger.on_partial_success));
      }
      if (reasons.empty()) {
        return stage.name + " is about to be triggered: " + join(definition->trigger.after_stages) + " succeeded";
      }
      return head + join(reasons, "; ");
    }
  }
  return head + "unknown trigger";
}

std::string attempt_text(const StageRecord& stage) { return "attempt " + std::to_string(stage.attempt); }

std::string queue_text(const ReleaseState& release, const StageRecord& stage) {
  const StageDefinition* definition = release.definition.find_stage(stage.name);
  if (definition == nullptr || definition->max_parallel == 0) return "; the executor starts it next";
  return "; it is in the deployment queue (at most " + std::to_string(definition->max_parallel) +
         " deployment" + (definition->max_parallel == 1 ? "" : "s") + " of " + stage.name +
         " at once, in release order)";
}

std::string awaiting_approval(const StageRecord& stage) {
  const PendingApproval& approval = stage.approval;
  // The request is made by the same command that triggered the stage (pre)
  // or that finished its deployment (post), so it carries that time.
  const Timestamp requested_at = approval.phase == "post" ? stage.finished_at : stage.triggered_at;
  const int pending = std::max(0, approval.required - static_cast<int>(approval.satisfied.size()));
  std::string out = stage.name + " is waiting: " + phase_words(approval.phase) + " by " + join(approval.approvers) +
                    " requested" + at_time(requested_at) + ", " + std::to_string(pending) + " of " +
                    std::to_string(approval.required) + " pending";
  if (!approval.approved_by.empty()) out += "; approved so far by " + join(approval.approved_by);
  if (approval.order == "sequential") {
    for (const std::string& entry : approval.approvers) {
      if (std::find(approval.satisfied.begin(), approval.satisfied.end(), entry) == approval.satisfied.end()) {
        out += "; in order, next: " + entry;
        break;
      }
    }
  }
  if (approval.deadline != 0) out += "; deadline " + format_rfc3339(approval.deadline);
  return out;
}

std::string approvals_of_attempt(const StageRecord& stage, const std::string& phase) {
  std::vector<std::string> people;
  for (const ApprovalRecord& record : stage.approvals) {
    if (record.phase == phase && record.decision == "approved" && record.at >= stage.triggered_at) {
      people.push_back(record.approver + (record.override ? " (admin override)" : "") + at_time(record.at));
    }
  }
  return join(people);
}

std::string finished(const StageRecord& stage) {
  std::string out = stage.name + (stage.state() == StageState::kSucceeded ? " succeeded" : " partially succeeded") +
                    at_time(stage.finished_at) + " (" + attempt_text(stage) + ", triggered: " + stage.trigger_reason +
                    ")";
  std::vector<std::string> continued;
  for (const StepRecord& step : stage.steps) {
    if (step.status == StepStatus::kFailed && step.continued) continued.push_back(step.name + " (" + step.reason + ")");
  }
  if (!continued.empty()) out += "; failed but continued on error: " + join(continued);
  const std::string pre = approvals_of_attempt(stage, "pre");
  if (!pre.empty()) out += "; approved by " + pre;
  const std::string post = approvals_of_attempt(stage, "post");
  if (!post.empty()) out += "; post-deployment approval by " + post;
  return out;
}

std::string deploying(const StageRecord& stage) {
  std::string out = stage.name + " is deploying: " + attempt_text(stage) + ", started" + at_time(stage.started_at);
  std::size_t done = 0;
  for (std::size_t i = 0; i < stage.steps.size(); ++i) {
    const StepRecord& step = stage.steps[i];
    if (step.status == StepStatus::kRunning) {
      return out + "; step " + std::to_string(i + 1) + " of " + std::to_string(stage.steps.size()) + " (" +
             step.name + ") is running" + (step.tries > 1 ? " (try " + std::to_string(step.tries) + ")" : "") +
             " since " + format_rfc3339(step.started_at, ZeroTime::kEmpty);
    }
    if (step.status == StepStatus::kFailed && step.will_retry) {
      return out + "; step " + step.name + " failed (" + step.reason + ") and will be tried again";
    }
    if (step.status != StepStatus::kPending) ++done;
  }
  return out + "; " + std::to_string(done) + " of " + std::to_string(stage.steps.size()) + " steps done";
}

}  // namespace

std::string explain_stage(const ReleaseState& release, const std::string& stage_name) {
  const StageRecord* stage = release.find_stage(stage_name);
  if (stage == nullptr) return "release " + release.id + " has no stage '" + stage_name + "'";
  const StageRecord& s = *stage;
  switch (s.state()) {
    case StageState::kNotStarted: return not_started(release, s);
    case StageState::kTriggered:
      return s.name + " is waiting to deploy: triggered" + at_time(s.triggered_at) + " (" + s.trigger_reason + "), " +
             attempt_text(s) + queue_text(release, s);
    case StageState::kApproved: {
      const std::string people = approvals_of_attempt(s, "pre");
      return s.name + " is waiting to deploy: " + (people.empty() ? "approved" : "approved by " + people) +
             queue_text(release, s);
    }
    case StageState::kAwaitingPreApproval:
    case StageState::kAwaitingPostApproval: return awaiting_approval(s);
    case StageState::kDeferred:
      return s.name + " is deferred until " + format_rfc3339(s.defer_until, ZeroTime::kEmpty) + ": approved by " +
             approvals_of_attempt(s, "pre");
    case StageState::kDeploying: return deploying(s);
    case StageState::kSucceeded:
    case StageState::kPartiallySucceeded: return finished(s);
    case StageState::kFailed: {
      std::string out = s.name + " failed" + at_time(s.finished_at) + " (" + attempt_text(s) + "): ";
      if (const StepRecord* step = failed_step(s)) return out + "step " + step->name + " failed: " + step->reason;
      return out + s.failure_reason;
    }
    case StageState::kRejected: {
      const ApprovalRecord* decision = last_decision(s, {"rejected", "timed out"});
      if (decision != nullptr && decision->decision == "timed out") {
        return s.name + " was rejected: the " + phase_words(decision->phase) + " timed out" +
               at_time(decision->at) + " (" + attempt_text(s) + ")";
      }
      if (decision != nullptr) {
        return s.name + " was rejected by " + decision->approver + at_time(decision->at) +
               comment_of(decision->comment) + " (" + attempt_text(s) + ")";
      }
      return s.name + " was rejected: " + s.failure_reason;
    }
    case StageState::kCanceled:
      return s.name + " was canceled" + at_time(s.finished_at) + " (" + attempt_text(s) + "): " + s.failure_reason;
  }
  return s.name + " is " + std::string(to_string(s.state()));
}

}  // namespace cascade::engine
