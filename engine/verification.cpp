// Verification: the checks an auditor runs over a release's evidence (hash
// chains, the pipeline snapshot, step log digests, the stored summary) and
// their findings as JSON.
#include "engine/audit_internal.hpp"

#include "engine/pipeline.hpp"
#include "events/codec.hpp"

#include <algorithm>

namespace cascade::engine {

using namespace audit_internal;

namespace {

using events::RecordedEvent;

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

Finding audit_internal::finding_from_json(const nlohmann::json& f) {
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

// ---- The checks --------------------------------------------------------------

namespace {

// `path` extended by `key` as a JSON pointer (RFC 6901 escaping by nlohmann).
std::string child_path(const std::string& path, const std::string& key) {
  return (nlohmann::json::json_pointer(path) / key).to_string();
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

// The lines of one step's log as the checks read them: in order from the
// first, as often as they need, holding one line at a time — a log may be
// 64 MiB, held nowhere (StepLog::each_line). One place for the rules below,
// whether the lines come from the store or from a bundle.
class StepLines {
 public:
  explicit StepLines(const StepLog& log) : log_(log) {}

  // Hands the lines from index `from` on to `visit`, which answers whether
  // to go on: reading stops as soon as a check has what it needs.
  Status scan(std::size_t from, const std::function<bool(std::size_t, const LogLine&)>& visit) const {
    std::size_t index = 0;
    bool enough = false;
    const Status read = log_.each_line([&](const LogLine& line) -> Status {
      if (index >= from && !visit(index, line)) {
        enough = true;
        return make_error(ErrorCode::kAborted, "read far enough");
      }
      ++index;
      return success();
    });
    if (!read && !enough) return read.error();
    return success();
  }

  // How many lines there are, and the digest of them all.
  struct Whole {
    std::size_t lines = 0;
    std::string digest;
  };
  Result<Whole> whole() const {
    Whole whole;
    events::Sha256 digest;
    CASCADE_TRY(scan(0, [&](std::size_t, const LogLine& line) {
      digest.update(digest_bytes(line));
      ++whole.lines;
      return true;
    }));
    whole.digest = digest.finish();
    return whole;
  }

  // The digest of lines [from, to).
  Result<std::string> digest(std::size_t from, std::size_t to) const {
    events::Sha256 digest;
    CASCADE_TRY(scan(from, [&](std::size_t index, const LogLine& line) {
      if (index >= to) return false;
      digest.update(digest_bytes(line));
      return true;
    }));
    return digest.finish();
  }

 private:
  const StepLog& log_;
};

// Where the lines of a try that ended at `finish` end, starting at `from`:
// the split whose digest matches, or none (then *by_time_digest is the
// digest of the lines stamped up to the try's end, for the finding). Lines
// carry the engine's clock, so the first line stamped after the finishing
// event is tried first; other splits are tried in order after it (clocks
// that disagree, lines stamped 0) in one more read, taking the digest of
// each prefix as it grows — only for retried steps.
Result<std::optional<std::size_t>> split_after_try(const StepLines& lines, std::size_t from,
                                                   const StepTry& step_try, std::string* by_time_digest) {
  std::size_t by_time = from;
  events::Sha256 stamped_before;
  CASCADE_TRY(lines.scan(from, [&](std::size_t index, const LogLine& line) {
    if (line.at > step_try.finish->recorded_at) return false;
    stamped_before.update(digest_bytes(line));
    by_time = index + 1;
    return true;
  }));
  *by_time_digest = stamped_before.finish();
  if (*by_time_digest == step_try.digest) return std::optional<std::size_t>(by_time);
  events::Sha256 growing;
  if (from != by_time && growing.digest_so_far() == step_try.digest) return std::optional<std::size_t>(from);
  std::optional<std::size_t> split;
  CASCADE_TRY(lines.scan(from, [&](std::size_t index, const LogLine& line) {
    growing.update(digest_bytes(line));
    const std::size_t end = index + 1;
    if (end != by_time && growing.digest_so_far() == step_try.digest) split = end;
    return !split;
  }));
  return split;
}

// What the step-log check covered, over every log.
struct StepLogTally {
  std::size_t tries = 0;
  std::size_t lines_covered = 0;
  std::size_t lines_uncovered = 0;
};

// The finding for a try whose lines do not match: `found` is the digest of
// what is stored, `what` finishes the sentence.
using StepLogFailure =
    std::function<std::optional<Finding>(const StepTry& step_try, std::string found, const std::string& what)>;

// Checks one step's log against the digests of its tries (the rules are
// verify()'s, audit.hpp). A finding names the first try that does not match;
// an error says the lines could not be read.
Result<std::optional<Finding>> check_step_log(const StepHistory& history, const StepLines& lines,
                                              const StepLogFailure& failure, StepLogTally& tally) {
  // One read through the whole log gives all a step tried once needs.
  CASCADE_TRY(whole, lines.whole());
  auto digest_of = [&](std::size_t from, std::size_t to) -> Result<std::string> {
    if (from == 0 && to == whole.lines) return whole.digest;
    return lines.digest(from, to);
  };
  std::size_t from = 0;
  for (std::size_t t = 0; t < history.tries.size(); ++t) {
    const StepTry& step_try = history.tries[t];
    if (step_try.finish == nullptr) {
      // A try that never finished (canceled, or interrupted before
      // interruptions recorded a digest) has none: whatever it logged is
      // not covered, and no later try can be told apart from it.
      tally.lines_uncovered += whole.lines - from;
      from = whole.lines;
      break;
    }
    ++tally.tries;
    const bool last = t + 1 == history.tries.size();
    std::size_t end = whole.lines;
    if (step_try.cut_off) {
      // Its digest covers every line stored for the step when it was cut
      // off, from the first: no line of it or of an earlier try may have
      // changed, and (being the last try) none may have been added.
      const auto stored = static_cast<std::size_t>(std::max<std::int64_t>(step_try.stored_lines, 0));
      const std::size_t upto = last ? whole.lines : std::min(stored, whole.lines);
      CASCADE_TRY(found, digest_of(0, upto));
      if (upto != stored || stored < from || found != step_try.digest) {
        return failure(step_try, found,
                       "does not match what was stored of it when it was cut off: expected '" + step_try.digest +
                           "' over " + counted(stored, "line") + ", found '" + found + "' over " +
                           counted(upto, "line"));
      }
      end = stored;
    } else if (last) {
      CASCADE_TRY(found, digest_of(from, end));
      if (found != step_try.digest) {
        return failure(step_try, found,
                       "does not match its digest: expected '" + step_try.digest + "', found '" + found + "'");
      }
    } else {
      std::string found;
      CASCADE_TRY(split, split_after_try(lines, from, step_try, &found));
      if (!split) {
        return failure(step_try, found,
                       "does not match its digest: expected '" + step_try.digest + "', found '" + found + "'");
      }
      end = *split;
    }
    tally.lines_covered += end - from;
    from = end;
  }
  return std::optional<Finding>();
}

std::optional<Finding> check_step_logs(const Evidence& evidence, std::string* detail) {
  std::size_t logs = 0;
  StepLogTally tally;
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
    auto checked = check_step_log(history, StepLines(*stored), failure, tally);
    if (!checked) return failure(first_finished, "", "cannot be read: " + checked.error().message);
    if (checked.value()) return checked.value();
  }
  *detail = counted(logs, "step log") + ", " +
            (tally.tries == 1 ? "1 try" : std::to_string(tally.tries) + " tries") + ", " +
            counted(tally.lines_covered, "line") + ": every digest matches";
  if (tally.lines_uncovered > 0) {
    *detail += " (" + counted(tally.lines_uncovered, "line") + " of tries that never finished carry no digest)";
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

}  // namespace

std::optional<std::string> audit_internal::first_difference(const nlohmann::json& a, const nlohmann::json& b,
                                                            const std::string& path) {
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

}  // namespace cascade::engine
