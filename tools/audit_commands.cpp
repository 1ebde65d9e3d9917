// `cascade replay`, `cascade audit export|verify` and `cascade why`: the
// engine's audit functions (engine/audit.hpp) over a data directory or a
// bundle file. These commands never start the engine: they read the log as
// it stands and write nothing to it.
#include "engine/audit.hpp"
#include "projections/release_summary.hpp"
#include "tools/cli_support.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace cascade::tools {
namespace {

using engine::Evidence;
using engine::Verification;

struct AuditOptions {
  std::string release_id;
  std::string stage;
  std::string at;
  bool verify = false;
  std::string file;
};

std::string render_summary(const engine::ReleaseState& state) { return projections::summarize(state).dump(); }

int failed(const Error& error, const Common& common) { return report(error, common.json); }

Error not_found(const std::string& release_id) {
  return make_error(ErrorCode::kNotFound, "no release '" + release_id + "'");
}

// The stored summary of the release and the release version it reflects
// (the last one at or below the projection's checkpoint). None when the
// projection has not seen the release yet; empty text when it has, but holds
// no document of it.
Result<std::optional<engine::StoredSummary>> stored_summary(Runtime& runtime, const Evidence& evidence) {
  CASCADE_TRY(checkpoint, runtime.summaries().checkpoint());
  engine::StoredSummary stored;
  for (const events::RecordedEvent& e : evidence.release.events) {
    if (e.position <= checkpoint) stored.reflects_version = e.version;
  }
  auto text = runtime.summaries().summary(evidence.release_id);
  if (text) {
    stored.text = std::move(text).value();
  } else if (text.error().code != ErrorCode::kNotFound) {
    return text.error();
  } else if (stored.reflects_version == 0) {
    return std::optional<engine::StoredSummary>();
  }
  return std::optional<engine::StoredSummary>(std::move(stored));
}

Result<Evidence> live_evidence(Runtime& runtime, const std::string& release_id) {
  CASCADE_TRY(evidence, engine::collect_evidence(runtime.log(), runtime.step_logs(), release_id));
  CASCADE_TRY(summary, stored_summary(runtime, evidence));
  evidence.summary = std::move(summary);
  return std::move(evidence);
}

std::string location_text(const engine::Location& l) {
  std::vector<std::string> parts;
  if (!l.stream.empty()) {
    std::string part = "stream " + l.stream;
    if (l.version > 0) part += " version " + std::to_string(l.version);
    if (l.position > 0) part += " (log position " + std::to_string(l.position) + ")";
    parts.push_back(part);
  }
  if (!l.stage.empty()) {
    std::string part = "stage " + l.stage;
    if (l.attempt > 0) part += " attempt " + std::to_string(l.attempt);
    if (!l.step.empty()) part += " step " + l.step;
    if (l.try_number > 0) part += " (try " + std::to_string(l.try_number) + ")";
    parts.push_back(part);
  }
  if (!l.field.empty()) parts.push_back("at " + l.field);
  std::string out;
  for (const auto& part : parts) out += (out.empty() ? "" : ", ") + part;
  return out;
}

void print_verification(std::ostream& out, const Verification& v) {
  for (const engine::Check& check : v.checks) {
    const char* outcome = check.outcome == engine::CheckOutcome::kPassed   ? "ok"
                          : check.outcome == engine::CheckOutcome::kFailed ? "FAILED"
                                                                           : "skipped";
    out << "  " << std::left << std::setw(8) << outcome << std::setw(17) << check.name << check.detail << "\n";
  }
  if (v.ok()) {
    out << "verified: every check holds\n";
    return;
  }
  const engine::Finding& f = *v.failure;
  out << "first failure: " << engine::to_string(f.kind) << " at " << location_text(f.location) << "\n";
  if (!f.expected.empty() || !f.found.empty()) {
    out << "  expected: " << f.expected << "\n  found:    " << f.found << "\n";
  }
  out << "  " << f.message << "\n";
}

// Prints the verification and returns the exit code: 0, or 7 (kDataLoss).
int verification_exit(const Verification& v) {
  if (v.ok()) return 0;
  std::cerr << "cascade: verification failed: " << v.failure->message << "\n";
  return exit_code_for(ErrorCode::kDataLoss);
}

std::string stage_of(const events::RecordedEvent& event) {
  return std::visit(
      [](const auto& payload) -> std::string {
        if constexpr (events::kIsStageEvent<std::decay_t<decltype(payload)>>) {
          return payload.stage;
        } else {
          return "-";
        }
      },
      event.data);
}

// "--at" is a stream version (digits) or a UTC time such as
// 2026-11-29T02:00:00Z, 2026-11-29T02:00:00.250Z or 2026-11-29T02:00Z.
struct TravelTarget {
  std::optional<std::int64_t> version;
  std::optional<events::Timestamp> time;
};

Result<TravelTarget> parse_at(const std::string& text) {
  TravelTarget target;
  if (!text.empty() && std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); })) {
    if (text.size() > 18) return make_error(ErrorCode::kInvalidArgument, "--at " + text + ": version too large");
    target.version = std::stoll(text);
    if (*target.version < 1) return make_error(ErrorCode::kInvalidArgument, "--at: versions start at 1");
    return target;
  }
  auto time = parse_utc_time(text);
  if (!time) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--at '" + text + "' is neither a version nor a UTC time like 2026-11-29T02:00:00Z");
  }
  target.time = time.value();
  return target;
}

int replay(const Common& common, const AuditOptions& options) {
  TravelTarget target;
  if (!options.at.empty()) {
    auto parsed = parse_at(options.at);
    if (!parsed) return failed(parsed.error(), common);
    target = parsed.value();
  }
  auto runtime = open_existing_runtime(common.data_dir);
  if (!runtime) return failed(runtime.error(), common);
  Runtime& rt = *runtime.value();

  // Without --verify only the stream is read; with it, everything is.
  Evidence evidence;
  if (options.verify) {
    auto collected = live_evidence(rt, options.release_id);
    if (!collected) return failed(collected.error(), common);
    evidence = std::move(collected).value();
  } else {
    auto read = engine::read_stream(rt.log(), engine::release_stream(options.release_id));
    if (!read) return failed(read.error(), common);
    if (read.value().events.empty() && !read.value().failure) return failed(not_found(options.release_id), common);
    evidence.release_id = options.release_id;
    evidence.release = std::move(read).value();
  }
  const auto& events = evidence.release.events;
  nlohmann::json output = {{"release", options.release_id}};

  if (target.version || target.time) {
    const engine::ReleaseState state = engine::fold(events, target.version, target.time);
    const std::int64_t last = events.empty() ? 0 : events.back().version;
    if (target.version && *target.version > last) {
      return failed(make_error(ErrorCode::kInvalidArgument,
                               "release " + options.release_id + " has " + std::to_string(last) +
                                   " readable events; --at " + options.at + " is beyond its last version"),
                    common);
    }
    if (!state.exists()) {
      return failed(make_error(ErrorCode::kInvalidArgument,
                               "release " + options.release_id + " did not exist yet at " + options.at +
                                   " (created at " + (events.empty() ? "?" : iso_time(events.front().recorded_at)) +
                                   ")"),
                    common);
    }
    const events::RecordedEvent& reached = *std::find_if(
        events.begin(), events.end(), [&](const events::RecordedEvent& e) { return e.version == state.version; });
    const nlohmann::json summary = projections::summarize(state);
    if (common.json) {
      output["at"] = {{"version", state.version}, {"time", iso_time(reached.recorded_at)},
                      {"event", events::type_name(reached.data)}};
      output["summary"] = summary;
    } else {
      std::cout << "Release " << options.release_id << " as of version " << state.version << " of " << last << " ("
                << iso_time(reached.recorded_at) << ", " << events::type_name(reached.data) << ": "
                << describe(reached) << ")\n\n";
      print_summary(std::cout, summary);
    }
  } else if (common.json) {
    nlohmann::json list = nlohmann::json::array();
    for (const events::RecordedEvent& e : events) {
      nlohmann::json entry = event_json(e);
      entry["details"] = describe(e);
      list.push_back(std::move(entry));
    }
    output["events"] = std::move(list);
  } else {
    std::cout << std::right << std::setw(4) << "VER" << "  " << std::left << std::setw(26) << "TIME" << std::setw(22)
              << "ACTOR" << std::setw(21) << "EVENT" << std::setw(10) << "STAGE" << "DETAILS\n";
    for (const events::RecordedEvent& e : events) {
      std::cout << std::right << std::setw(4) << e.version << "  " << std::left << std::setw(26)
                << iso_time(e.recorded_at) << std::setw(22) << e.actor << std::setw(21) << events::type_name(e.data)
                << std::setw(10) << stage_of(e) << describe(e) << "\n";
    }
  }

  if (!options.verify) {
    if (evidence.release.failure) {
      // The damage is the error (as text, after the events before it).
      return failed(make_error(ErrorCode::kDataLoss, evidence.release.failure->message), common);
    }
    if (common.json) std::cout << output.dump(2) << "\n";
    return 0;
  }
  const Verification verification = engine::verify(evidence, render_summary);
  if (common.json) {
    output["verification"] = engine::to_json(verification);
    std::cout << output.dump(2) << "\n";
  } else {
    std::cout << "\nverification of release " << options.release_id << ":\n";
    print_verification(std::cout, verification);
  }
  return verification_exit(verification);
}

// Writes `path` through a temporary file renamed over it once complete, so
// that nobody finds half a bundle under its name.
Status write_file_atomically(const std::string& path, const std::function<Status(std::ostream&)>& write) {
  const std::string temporary = path + ".tmp";
  Status written = success();
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    written = write(out);
    out.flush();
    if (!out) written = make_error(ErrorCode::kInvalidArgument, "cannot write " + temporary);
  }
  std::error_code ec;
  if (!written) {
    std::filesystem::remove(temporary, ec);
    return written.error();
  }
  std::filesystem::rename(temporary, path, ec);
  if (ec) return make_error(ErrorCode::kInvalidArgument, "cannot write " + path + ": " + ec.message());
  return success();
}

int audit_export(const Common& common, const AuditOptions& options) {
  auto runtime = open_existing_runtime(common.data_dir);
  if (!runtime) return failed(runtime.error(), common);
  auto evidence = live_evidence(*runtime.value(), options.release_id);
  if (!evidence) return failed(evidence.error(), common);
  const Verification verification = engine::verify(evidence.value(), render_summary);
  const events::Timestamp now = engine::SystemClock().now();
  // Step logs go from the store to the file a line at a time: the bundle of
  // a release whose steps wrote hundreds of MiB is never held.
  auto written = write_file_atomically(options.file, [&](std::ostream& out) {
    return engine::write_bundle(out, evidence.value(), verification, now, common.actor);
  });
  if (!written) return failed(written.error(), common);

  const auto& release = evidence.value().release.events;
  const std::string head = release.empty() ? "" : release.back().hash;
  if (common.json) {
    std::cout << nlohmann::json{{"release", options.release_id},
                                {"file", options.file},
                                {"events", release.size()},
                                {"pipeline_events", evidence.value().pipeline.events.size()},
                                {"step_logs", evidence.value().step_logs.size()},
                                {"head_hash", head},
                                {"verification", engine::to_json(verification)}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << "wrote " << options.file << ": release " << options.release_id << ", " << release.size()
              << " events, " << evidence.value().pipeline.events.size() << " pipeline events, "
              << evidence.value().step_logs.size() << " step logs\n"
              << "release stream head hash: " << head << "\n"
              << "verification at export:\n";
    print_verification(std::cout, verification);
  }
  return verification_exit(verification);
}

int audit_verify(const Common& common, const AuditOptions& options) {
  std::ifstream in(options.file, std::ios::binary);
  if (!in) return failed(make_error(ErrorCode::kNotFound, "cannot read " + options.file), common);
  std::ostringstream text;
  text << in.rdbuf();
  auto bundle = engine::read_bundle(text.str());
  if (!bundle) return failed(bundle.error(), common);
  const Verification verification = engine::verify_bundle(bundle.value(), render_summary);
  const auto& release = bundle.value().evidence.release.events;
  if (common.json) {
    std::cout << nlohmann::json{{"file", options.file},
                                {"release", bundle.value().evidence.release_id},
                                {"exported_at", iso_time(bundle.value().exported_at)},
                                {"exported_by", bundle.value().exported_by},
                                {"head_hash", release.empty() ? "" : release.back().hash},
                                {"verification", engine::to_json(verification)}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << "bundle " << options.file << ": release " << bundle.value().evidence.release_id << ", exported at "
              << iso_time(bundle.value().exported_at) << " by " << bundle.value().exported_by << "\n"
              << "release stream head hash: " << (release.empty() ? "" : release.back().hash) << "\n";
    print_verification(std::cout, verification);
  }
  return verification_exit(verification);
}

int why(const Common& common, const AuditOptions& options) {
  auto runtime = open_existing_runtime(common.data_dir);
  if (!runtime) return failed(runtime.error(), common);
  auto read = engine::read_stream(runtime.value()->log(), engine::release_stream(options.release_id));
  if (!read) return failed(read.error(), common);
  if (read.value().failure) return failed(make_error(ErrorCode::kDataLoss, read.value().failure->message), common);
  if (read.value().events.empty()) return failed(not_found(options.release_id), common);
  const engine::ReleaseState state = engine::fold(read.value().events);
  const engine::StageRecord* stage = state.find_stage(options.stage);
  if (stage == nullptr) return failed(state.unknown_stage(options.stage), common);
  const std::string explanation = engine::explain_stage(state, options.stage);
  if (common.json) {
    std::cout << nlohmann::json{{"release", options.release_id},
                                {"stage", options.stage},
                                {"state", engine::to_string(stage->state())},
                                {"version", state.version},
                                {"explanation", explanation}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << explanation << "\n";
  }
  return 0;
}

}  // namespace

void add_audit_commands(CLI::App& app, Common& common, int& exit_code) {
  // CLI11 binds options to storage that must outlive this function; the
  // callbacks keep it alive.
  auto options = std::make_shared<AuditOptions>();

  auto* replay_command = app.add_subcommand("replay", "a release's timeline from its events; --at: its state then");
  replay_command->add_option("ID", options->release_id)->required();
  replay_command->add_option("--at", options->at, "a version (5) or a UTC time (2026-11-29T02:00:00Z)");
  replay_command->add_flag("--verify", options->verify,
                           "also check hash chains, step log digests and the stored summary (exit 7 on a failure)");
  add_common_options(replay_command, common);
  replay_command->callback([&common, &exit_code, options] { exit_code = replay(common, *options); });

  auto* audit = app.add_subcommand("audit", "evidence bundles")->require_subcommand(1);
  auto* export_command = audit->add_subcommand("export", "write a release's evidence bundle (cascade-audit/1)");
  export_command->add_option("ID", options->release_id)->required();
  export_command->add_option("--out", options->file, "the bundle file to write")->required();
  add_common_options(export_command, common);
  export_command->callback([&common, &exit_code, options] { exit_code = audit_export(common, *options); });

  auto* verify_command = audit->add_subcommand("verify", "check an evidence bundle offline (no data directory)");
  verify_command->add_option("FILE", options->file)->required();
  verify_command->add_flag("--json", common.json, "print JSON for scripts");
  verify_command->callback([&common, &exit_code, options] { exit_code = audit_verify(common, *options); });

  auto* why_command = app.add_subcommand("why", "why a stage of a release is in its state");
  why_command->add_option("ID", options->release_id)->required();
  why_command->add_option("STAGE", options->stage)->required();
  add_common_options(why_command, common);
  why_command->callback([&common, &exit_code, options] { exit_code = why(common, *options); });
}

}  // namespace cascade::tools
