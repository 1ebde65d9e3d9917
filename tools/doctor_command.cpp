// `cascade doctor --data DIR`: an offline check of a whole data directory —
// the log's indexes against its events, every stream's hash chain, each
// release's step logs against their digests, and the read models against a
// copy folded afresh from the log. One line per problem, naming where and
// what to do, then a summary line; exit 0 when healthy, 7 when a problem was
// found, 8 when the store cannot even be opened because it is corrupt.
//
// Nothing here is a second verifier: the indexes are checked by the store
// (RocksStore::check_indexes), release streams and step logs by the engine's
// verification (engine::verify, as `cascade replay --verify`), other streams
// by the log's verified read (EventLog::read_each_verified), and projections
// by their own fold (Projection::handle) and stored bytes (contents()). The
// engine is never started, so nothing is written to the log.
#include "engine/audit.hpp"
#include "tools/cli_support.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <random>

namespace cascade::tools {
namespace {

using nlohmann::json;

struct DoctorProblem {
  std::string subject;  // "release SampleApp-1", "stream pipeline-SampleApp", "projection environments", "log index"
  std::string message;  // what is wrong, naming versions, positions or keys
  std::string action;   // what to do
};

struct Report {
  std::vector<DoctorProblem> problems;
  std::vector<std::string> notes;  // worth knowing, not wrong
  std::size_t releases = 0;
  std::size_t other_streams = 0;
  std::uint64_t events = 0;
  std::uint64_t index_entries = 0;
  std::size_t projections = 0;
};

constexpr const char* kReleasePrefix = "release-";

std::string restore_advice(const std::string& data_dir) {
  return "keep a copy of " + data_dir + " as it is and restore the data directory from a backup";
}

// The key's bytes for a line of text: printable ASCII as it is, the rest as \xNN.
std::string printable(const std::string& bytes) {
  std::string out;
  for (const char c : bytes) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f && c != '\\') {
      out += c;
    } else {
      char escaped[5];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", u);
      out += escaped;
    }
  }
  return out;
}

std::string shortened(const std::string& text) { return text.size() > 120 ? text.substr(0, 120) + "…" : text; }

Status check_indexes(Runtime& runtime, const std::string& data_dir, Report& report,
                     std::vector<std::string>& streams) {
  CASCADE_TRY(check, runtime.store().check_indexes());
  report.events = check.events;
  report.index_entries = check.index_entries;
  for (const adapters::IndexProblem& p : check.problems) {
    report.problems.push_back({p.stream.empty() ? "log index" : "stream " + p.stream, p.message,
                               "the log's indexes disagree with its events: " + restore_advice(data_dir)});
  }
  streams = std::move(check.streams);
  return success();
}

// A release: engine::verify over its evidence, the stored summary left out
// (the projections are compared as a whole below).
Status check_release(Runtime& runtime, const std::string& data_dir, const std::string& release_id, Report& report) {
  auto evidence = engine::collect_evidence(runtime.log(), runtime.step_logs(), release_id);
  if (!evidence) {
    // A release stream whose first event cannot be read still names a release.
    if (evidence.error().code == ErrorCode::kNotFound) return success();
    return evidence.error();
  }
  const engine::Verification verification =
      engine::verify(evidence.value(), [](const engine::ReleaseState&) { return std::string(); });
  if (verification.ok()) return success();
  const engine::Finding& f = *verification.failure;
  report.problems.push_back({"release " + release_id, std::string(engine::to_string(f.kind)) + ": " + f.message,
                             "`cascade replay " + release_id + " --verify --data " + data_dir +
                                 "` shows the evidence; " + restore_advice(data_dir)});
  return success();
}

// Any other stream (a pipeline's): its chain as the log's verified read sees it.
Status check_stream(Runtime& runtime, const std::string& data_dir, const std::string& stream, Report& report) {
  std::int64_t expected_version = 1;
  const Status read = runtime.log().read_each_verified(stream, 1, "", [&](const events::RecordedEvent& e) -> Status {
    if (e.version != expected_version) {
      return make_error(ErrorCode::kDataLoss, "stream " + stream + " version " + std::to_string(expected_version) +
                                                  " is missing: the next stored is version " +
                                                  std::to_string(e.version));
    }
    ++expected_version;
    return success();
  });
  if (read) return success();
  if (read.error().code != ErrorCode::kDataLoss) return read.error();
  report.problems.push_back({"stream " + stream, read.error().message, restore_advice(data_dir)});
  return success();
}

// A scratch directory of our own, removed with this object.
class ScratchDir {
 public:
  ScratchDir() {
    std::random_device random;
    path_ = std::filesystem::temp_directory_path() /
            ("cascade-doctor-" + std::to_string(::getpid()) + "-" + std::to_string(random()));
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

// The first entry where `stored` and `folded` differ, as a sentence.
std::optional<std::string> first_difference(const std::vector<projections::Projection::StoredEntry>& stored,
                                            const std::vector<projections::Projection::StoredEntry>& folded) {
  for (std::size_t i = 0; i < std::max(stored.size(), folded.size()); ++i) {
    if (i >= stored.size()) {
      return "missing " + folded[i].family + " key " + printable(folded[i].key) + " (" +
             std::to_string(folded.size() - stored.size()) + " entries fewer than the log gives)";
    }
    if (i >= folded.size()) {
      return "extra " + stored[i].family + " key " + printable(stored[i].key) + " that the log does not explain";
    }
    const auto& s = stored[i];
    const auto& f = folded[i];
    if (s.family != f.family || s.key != f.key) {
      return "stored " + s.family + " key " + printable(s.key) + " where the log gives " + f.family + " key " +
             printable(f.key);
    }
    if (s.value != f.value) {
      return s.family + " key " + printable(s.key) + ": stored " + shortened(printable(s.value)) +
             ", the log gives " + shortened(printable(f.value));
    }
  }
  return std::nullopt;
}

// Folds a reference copy of every read model from the log in a scratch
// database, each up to the stored one's checkpoint, and compares the bytes.
void check_projections(Runtime& runtime, const std::string& data_dir, Report& report) {
  const auto rebuild = [&](const std::string& name) {
    return "run `cascade projections rebuild " + name + " --data " + data_dir + "`";
  };
  const std::vector<projections::Projection*>& stored = runtime.projections().all();
  report.projections = stored.size();
  const ScratchDir scratch;
  auto reference = projections::ProjectionSet::open(scratch.path(), runtime.log());
  if (!reference) {
    report.notes.push_back("projections not compared: cannot make a scratch copy in " + scratch.path() + ": " +
                           reference.error().message);
    return;
  }
  const std::vector<projections::Projection*>& folded = reference.value()->all();
  const std::uint64_t head = runtime.log().head();
  // Each stored projection's checkpoint; nullopt once it cannot be compared.
  std::vector<std::optional<std::uint64_t>> targets;
  for (const projections::Projection* projection : stored) {
    auto checkpoint = projection->checkpoint();
    if (!checkpoint) {
      report.problems.push_back({"projection " + projection->name(), checkpoint.error().message,
                                 rebuild(projection->name())});
      targets.emplace_back();
    } else if (checkpoint.value() > head) {
      report.problems.push_back(
          {"projection " + projection->name(),
           "reflects log position " + std::to_string(checkpoint.value()) + ", beyond the log's end at " +
               std::to_string(head),
           rebuild(projection->name())});
      targets.emplace_back();
    } else {
      if (checkpoint.value() < head) {
        report.notes.push_back("projection " + projection->name() + " is " + std::to_string(head - checkpoint.value()) +
                               " events behind the log (a server catches it up when it starts); compared as far "
                               "as it reflects");
      }
      targets.emplace_back(checkpoint.value());
    }
  }
  std::uint64_t last = 0;
  for (const auto& target : targets) last = std::max(last, target.value_or(0));
  for (std::uint64_t from = 1; from <= last;) {
    auto batch = runtime.log().read_all(from, 512);
    if (!batch) {
      report.problems.push_back({"projections",
                                 "not compared: the log cannot be read from " + std::to_string(from) + ": " +
                                     batch.error().message,
                                 restore_advice(data_dir)});
      return;
    }
    if (batch.value().empty()) break;
    for (std::size_t i = 0; i < folded.size(); ++i) {
      if (!targets[i]) continue;
      std::vector<events::RecordedEvent> upto;
      for (const events::RecordedEvent& e : batch.value()) {
        if (e.position <= *targets[i]) upto.push_back(e);
      }
      if (Status handled = folded[i]->handle(upto); !handled) {
        report.problems.push_back({"projection " + stored[i]->name(),
                                   "not compared: folding the log failed: " + handled.error().message,
                                   restore_advice(data_dir)});
        targets[i].reset();
      }
    }
    from = batch.value().back().position + 1;
  }
  for (std::size_t i = 0; i < stored.size(); ++i) {
    if (!targets[i]) continue;
    auto kept = stored[i]->contents();
    auto expected = folded[i]->contents();
    if (!kept || !expected) {
      report.problems.push_back({"projection " + stored[i]->name(),
                                 "cannot be read: " + (!kept ? kept.error() : expected.error()).message,
                                 rebuild(stored[i]->name())});
      continue;
    }
    if (auto differs = first_difference(kept.value(), expected.value())) {
      report.problems.push_back(
          {"projection " + stored[i]->name(), "differs from the log: " + *differs, rebuild(stored[i]->name())});
    }
  }
}

std::string counted(std::size_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

int doctor(const Common& common) {
  auto opened = open_existing_runtime(common.data_dir);
  if (!opened) {
    Error error = opened.error();
    if (error.code == ErrorCode::kUnavailable && error.message.find("held by a running server") != std::string::npos) {
      error.message = common.data_dir + " is held by a running server (or another cascade command): cascade doctor "
                                        "checks a data directory offline; stop the server first";
    }
    return report(error, common.json);
  }
  Runtime& runtime = *opened.value();
  const std::string& data_dir = common.data_dir;
  Report found;
  std::vector<std::string> streams;
  auto checked = [&]() -> Status {
    CASCADE_TRY(check_indexes(runtime, data_dir, found, streams));
    for (const std::string& stream : streams) {
      if (stream.rfind(kReleasePrefix, 0) == 0) {
        ++found.releases;
        CASCADE_TRY(check_release(runtime, data_dir, stream.substr(std::string(kReleasePrefix).size()), found));
      } else {
        ++found.other_streams;
        CASCADE_TRY(check_stream(runtime, data_dir, stream, found));
      }
    }
    check_projections(runtime, data_dir, found);
    return success();
  }();
  if (!checked) return report(checked.error(), common.json);

  const std::string summary = counted(found.releases, "release") + " and " +
                              counted(found.other_streams, "other stream") + " (" + counted(found.events, "event") +
                              ", " + std::to_string(found.index_entries) + (found.index_entries == 1 ? " index entry" : " index entries") + "), " +
                              counted(found.projections, "projection") + " checked: " +
                              (found.problems.empty() ? "no problems" : counted(found.problems.size(), "problem"));
  if (common.json) {
    json problems = json::array();
    for (const DoctorProblem& p : found.problems) {
      problems.push_back({{"subject", p.subject}, {"message", p.message}, {"action", p.action}});
    }
    std::cout << json{{"data_dir", data_dir},
                      {"healthy", found.problems.empty()},
                      {"problems", problems},
                      {"notes", found.notes},
                      {"checked",
                       {{"releases", found.releases},
                        {"other_streams", found.other_streams},
                        {"events", found.events},
                        {"index_entries", found.index_entries},
                        {"projections", found.projections}}},
                      {"summary", summary}}
                     .dump(2)
              << "\n";
  } else {
    for (const DoctorProblem& p : found.problems) {
      std::cout << "problem: " << p.subject << ": " << p.message << " — " << p.action << "\n";
    }
    for (const std::string& note : found.notes) std::cout << "note: " << note << "\n";
    std::cout << "cascade doctor: " << data_dir << ": " << summary << "\n";
  }
  return found.problems.empty() ? 0 : exit_code_for(ErrorCode::kDataLoss);
}

}  // namespace

void add_doctor_command(CLI::App& app, Common& common, int& exit_code) {
  auto* command = app.add_subcommand(
      "doctor",
      "check a data directory offline: the log's indexes, every hash chain, step logs, projections; exit 0 healthy, "
      "7 problems found, 8 the store is corrupt");
  add_common_options(command, common);
  command->callback([&common, &exit_code] { exit_code = doctor(common); });
}

}  // namespace cascade::tools
