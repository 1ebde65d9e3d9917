// `cascade replay`, `cascade audit export|verify` and `cascade why`: the
// engine's audit functions (engine/audit.hpp) over a data directory, a
// server or a bundle file. Offline these commands never start the engine:
// they read the log as it stands and write nothing to it. Either way the
// documents come from adapters/http/api/audit_documents.hpp — offline called
// here, over a server by its routes — and are printed by the same code.
#include "adapters/http/api/audit_documents.hpp"
#include "engine/audit.hpp"
#include "projections/release_summary.hpp"
#include "tools/cli_support.hpp"

#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>

namespace cascade::tools {
namespace {

using adapters::http::api::AuditPorts;
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

AuditPorts ports_of(Runtime& runtime) { return AuditPorts{runtime.log(), runtime.step_logs(), runtime.summaries()}; }

// The client when the command goes to a server (--server or CASCADE_SERVER,
// as every command that works either way: choose_mode), none offline.
Result<std::optional<ApiClient>> server_of(const Common& common) {
  CASCADE_TRY(mode, choose_mode(common));
  if (mode == Mode::kOffline) return std::optional<ApiClient>();
  CASCADE_TRY(client, api_client(common));
  return std::optional<ApiClient>(std::move(client));
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

// The release's stream version, time, actor, event, stage and details: one
// row of the timeline, from an event of the replay document.
void print_timeline_row(std::ostream& out, const nlohmann::json& event) {
  const nlohmann::json& data = event.at("data");
  const std::string stage = data.is_object() ? data.value("stage", std::string("-")) : "-";
  out << std::right << std::setw(4) << event.value("version", std::int64_t{0}) << "  " << std::left << std::setw(26)
      << event.value("time", "") << std::setw(22) << event.value("actor", "") << std::setw(21)
      << event.value("type", "") << std::setw(10) << stage << event.value("details", "") << "\n";
}

// Offline: the data directory's runtime (engine not started), with
// `release_id` turned from a display name into the id it stands for.
Result<std::unique_ptr<Runtime>> open_for_release(const Common& common, std::string& release_id) {
  CASCADE_TRY(runtime, open_existing_runtime(common.data_dir));
  CASCADE_TRY(id, release_id_of(*runtime, release_id));
  release_id = std::move(id);
  return std::move(runtime);
}

int replay(const Common& common, AuditOptions options) {
  // A bad --at is refused before the data directory or the server is asked.
  if (auto target = engine::parse_travel_target(options.at); !target) return failed(target.error(), common);
  auto server = server_of(common);
  if (!server) return failed(server.error(), common);
  Result<nlohmann::json> document = make_error(ErrorCode::kInternal, "replay: no document");
  if (server.value()) {
    std::string query;
    if (!options.at.empty()) query += "at=" + url_encode(options.at);
    if (options.verify) query += std::string(query.empty() ? "" : "&") + "verify=true";
    document = server.value()->get(release_path(options.release_id) + "/replay" + (query.empty() ? "" : "?" + query));
  } else {
    auto runtime = open_for_release(common, options.release_id);
    if (!runtime) return failed(runtime.error(), common);
    document = adapters::http::api::replay_document(ports_of(*runtime.value()), options.release_id,
                                                    {options.at, options.verify});
  }
  if (!document) return failed(document.error(), common);
  options.release_id = document.value().value("release", options.release_id);  // the id a display name stood for
  const nlohmann::json& output = document.value();

  if (!common.json) {
    if (output.contains("at")) {
      const nlohmann::json& at = output["at"];
      std::cout << "Release " << options.release_id << " as of version " << at.value("version", std::int64_t{0})
                << " of " << at.value("last_version", std::int64_t{0}) << " (" << at.value("time", "") << ", "
                << at.value("event", "") << ": " << at.value("details", "") << ")\n\n";
      print_summary(std::cout, output.at("summary"));
    } else {
      std::cout << std::right << std::setw(4) << "VER" << "  " << std::left << std::setw(26) << "TIME"
                << std::setw(22) << "ACTOR" << std::setw(21) << "EVENT" << std::setw(10) << "STAGE" << "DETAILS\n";
      for (const nlohmann::json& event : output.at("events")) print_timeline_row(std::cout, event);
    }
  }

  if (!options.verify) {
    if (output.contains("read_failure")) {
      // The damage is the error (as text, after the events before it).
      return failed(make_error(ErrorCode::kDataLoss, output["read_failure"].get<std::string>()), common);
    }
    if (common.json) std::cout << output.dump(2) << "\n";
    return 0;
  }
  auto verification = engine::verification_from_json(output.value("verification", nlohmann::json()));
  if (!verification) return failed(verification.error(), common);
  if (common.json) {
    std::cout << output.dump(2) << "\n";
  } else {
    std::cout << "\nverification of release " << options.release_id << ":\n";
    print_verification(std::cout, verification.value());
  }
  return verification_exit(verification.value());
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

int audit_export(const Common& common, AuditOptions options) {
  auto server = server_of(common);
  if (!server) return failed(server.error(), common);
  // What the report below says: the evidence exported and its verification.
  engine::Evidence evidence;
  Verification verification;
  std::unique_ptr<Runtime> runtime;  // offline: the store the evidence reads step logs from
  if (server.value()) {
    // The server's bundle (GET …/audit), written as it came: the same bytes
    // an offline export writes, exported by the token's user.
    std::string bundle_text;
    auto streamed = server.value()->stream(release_path(options.release_id) + "/audit", {}, {},
                                           [&bundle_text](std::string_view data) {
                                             bundle_text.append(data);
                                             return true;
                                           });
    if (!streamed) return failed(streamed.error(), common);
    auto bundle = engine::read_bundle(bundle_text);
    if (!bundle) return failed(bundle.error(), common);
    auto written = write_file_atomically(options.file, [&](std::ostream& out) -> Status {
      out << bundle_text;
      return success();
    });
    if (!written) return failed(written.error(), common);
    evidence = std::move(bundle.value().evidence);
    verification = std::move(bundle.value().at_export);
    options.release_id = evidence.release_id;  // the id a display name stood for
  } else {
    auto opened = open_for_release(common, options.release_id);
    if (!opened) return failed(opened.error(), common);
    runtime = std::move(opened).value();
    // Step logs go from the store to the file a line at a time: the bundle of
    // a release whose steps wrote hundreds of MiB is never held.
    auto written = write_file_atomically(options.file, [&](std::ostream& out) -> Status {
      CASCADE_TRY(exported, adapters::http::api::export_bundle(ports_of(*runtime), options.release_id, out,
                                                               engine::SystemClock().now(), common.actor));
      evidence = std::move(exported.evidence);
      verification = std::move(exported.verification);
      return success();
    });
    if (!written) return failed(written.error(), common);
  }

  const auto& release = evidence.release.events;
  const std::string head = release.empty() ? "" : release.back().hash;
  if (common.json) {
    std::cout << nlohmann::json{{"release", options.release_id},
                                {"file", options.file},
                                {"events", release.size()},
                                {"pipeline_events", evidence.pipeline.events.size()},
                                {"step_logs", evidence.step_logs.size()},
                                {"head_hash", head},
                                {"verification", engine::to_json(verification)}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << "wrote " << options.file << ": release " << options.release_id << ", " << release.size()
              << " events, " << evidence.pipeline.events.size() << " pipeline events, "
              << evidence.step_logs.size() << " step logs\n"
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

int why(const Common& common, AuditOptions options) {
  auto server = server_of(common);
  if (!server) return failed(server.error(), common);
  Result<nlohmann::json> document = make_error(ErrorCode::kInternal, "why: no document");
  if (server.value()) {
    document = server.value()->get(release_path(options.release_id) + "/why?stage=" + url_encode(options.stage));
  } else {
    auto runtime = open_for_release(common, options.release_id);
    if (!runtime) return failed(runtime.error(), common);
    document = adapters::http::api::why_document(runtime.value()->log(), options.release_id, options.stage);
  }
  if (!document) return failed(document.error(), common);
  if (common.json) {
    std::cout << document.value().dump(2) << "\n";
  } else {
    std::cout << document.value().value("explanation", "") << "\n";
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
  add_client_options(replay_command, common);
  replay_command->callback([&common, &exit_code, options] { exit_code = replay(common, *options); });

  auto* audit = app.add_subcommand("audit", "evidence bundles")->require_subcommand(1);
  auto* export_command = audit->add_subcommand("export", "write a release's evidence bundle (cascade-audit/1)");
  export_command->add_option("ID", options->release_id)->required();
  export_command->add_option("--out", options->file, "the bundle file to write")->required();
  add_client_options(export_command, common);
  export_command->callback([&common, &exit_code, options] { exit_code = audit_export(common, *options); });

  auto* verify_command = audit->add_subcommand("verify", "check an evidence bundle offline (no data directory)");
  verify_command->add_option("FILE", options->file)->required();
  verify_command->add_flag("--json", common.json, "print JSON for scripts");
  verify_command->callback([&common, &exit_code, options] { exit_code = audit_verify(common, *options); });

  auto* why_command = app.add_subcommand("why", "why a stage of a release is in its state");
  why_command->add_option("ID", options->release_id)->required();
  why_command->add_option("STAGE", options->stage)->required();
  add_client_options(why_command, common);
  why_command->callback([&common, &exit_code, options] { exit_code = why(common, *options); });
}

}  // namespace cascade::tools
