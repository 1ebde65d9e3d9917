// The `cascade` command line. It parses arguments and either talks to a
// running `cascade serve` over HTTP (tools/api_client.hpp) or, with --data,
// wires a Runtime, issues commands through ReleaseService and prints; all
// decisions live in engine/. Both ways print the same documents and tables.
#include "tools/cli_support.hpp"
#include "tools/format.hpp"
#include "adapters/runtime/runtime.hpp"
#include "tools/kafka_wiring.hpp"
#include "tools/sample_pipeline.hpp"
#include "adapters/http/auth.hpp"
#include "engine/artifact_version.hpp"
#include "events/did_you_mean.hpp"
#include "events/overloaded.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

namespace cascade::tools {
namespace {

using events::Overloaded;
using nlohmann::json;

Result<nlohmann::json> settled_summary(Runtime& runtime, const std::string& release_id) {
  runtime.settle();
  CASCADE_TRY(text, runtime.summaries().summary(release_id));
  return nlohmann::json::parse(text);
}

// A release's summary document as every command that changes a release ends:
// JSON, or a blank line and the summary table.
int print_summary_document(const Result<json>& summary, const Common& common) {
  if (!summary) return report(summary.error(), common.json);
  if (common.json) {
    std::cout << summary.value().dump(2) << "\n";
  } else {
    std::cout << "\n";
    print_summary(std::cout, summary.value());
  }
  return 0;
}

int print_release(Runtime& runtime, const std::string& release_id, const Common& common) {
  return print_summary_document(settled_summary(runtime, release_id), common);
}

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kInvalidArgument, "cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

Result<events::Variables> parse_variables(const std::vector<std::string>& assignments) {
  events::Variables variables;
  for (const std::string& assignment : assignments) {
    const auto equals = assignment.find('=');
    if (equals == std::string::npos || equals == 0) {
      return make_error(ErrorCode::kInvalidArgument, "--var '" + assignment + "': expected NAME=VALUE");
    }
    variables[assignment.substr(0, equals)] = assignment.substr(equals + 1);
  }
  return variables;
}

// The mode and, over a server, its client.
struct Target {
  Mode mode = Mode::kOffline;
  std::optional<ApiClient> client;
};

Result<Target> target_of(Common& common, bool actor_required = false) {
  CASCADE_TRY(mode, choose_mode(common, actor_required));
  Target target{mode, std::nullopt};
  if (mode == Mode::kServer) {
    CASCADE_TRY(client, api_client(common));
    target.client.emplace(std::move(client));
  }
  return target;
}

// Approver entries nobody can act for, as the server (or, offline, the data
// directory's users.json) knows its users: printed as warnings; --strict
// refuses the definition.
int report_unreachable_approvers(const std::vector<Problem>& unreachable, const std::string& pipeline, bool strict,
                                 bool as_json) {
  if (unreachable.empty()) return 0;
  if (strict) {
    return report(make_error(ErrorCode::kInvalidArgument,
                             "pipeline '" + pipeline + "' names approvers nobody can act for (strict)", unreachable),
                  as_json);
  }
  for (const Problem& problem : unreachable) std::cerr << "cascade: warning: " << problem.path << ": " << problem.message << "\n";
  return 0;
}

int apply_pipeline(Common& common, const std::string& file, bool strict) {
  auto text = read_file(file);
  if (!text) return report(text.error(), common.json);
  // Validated here in both modes, so a bad file reads the same either way.
  auto definition = engine::parse_pipeline_text(text.value());
  if (!definition) return report(definition.error(), common.json);
  auto target = target_of(common);
  if (!target) return report(target.error(), common.json);
  std::int64_t version = 0;
  if (target.value().client) {
    auto answer = target.value().client->put("/api/v1/pipelines/" + url_encode(definition.value().name) +
                                                 (strict ? "?strict=true" : ""),
                                             json::parse(text.value()));
    if (!answer) return report(answer.error(), common.json);
    version = answer.value().value("version", std::int64_t{0});
    std::vector<Problem> unreachable;
    for (const json& warning : answer.value().value("warnings", json::array())) {
      unreachable.push_back({warning.value("path", ""), warning.value("message", "")});
    }
    report_unreachable_approvers(unreachable, definition.value().name, /*strict=*/false, common.json);
  } else {
    // Offline the users are those of the data directory's users.json, when there is one.
    if (auto users = adapters::http::load_users_file(common.data_dir + "/users.json")) {
      const adapters::http::Authenticator directory(std::move(users).value());
      const int refused = report_unreachable_approvers(
          engine::unreachable_approvers(definition.value(), [&](std::string_view name) { return directory.knows(name); }),
          definition.value().name, strict, common.json);
      if (refused != 0) return refused;
    }
    auto session = Session::start(common, DataDir::kCreate);
    if (!session) return report(session.error(), common.json);
    auto applied = session.value()->runtime().service().apply_pipeline(definition.value(), common.actor);
    if (!applied) return report(applied.error(), common.json);
    session.value()->runtime().settle();
    version = applied.value();
  }
  if (common.json) {
    std::cout << nlohmann::json{{"pipeline", definition.value().name}, {"version", version}}.dump(2) << "\n";
  } else {
    std::cout << "pipeline " << definition.value().name << " is at version " << version << "\n";
  }
  return 0;
}

int create_release(Common& common, const std::string& pipeline, const std::string& version,
                   const std::string& artifact, const std::vector<std::string>& assignments,
                   const std::vector<std::string>& secret_assignments) {
  auto variables = parse_variables(assignments);
  if (!variables) return report(variables.error(), common.json);
  auto secrets = parse_variables(secret_assignments);
  if (!secrets) return report(secrets.error(), common.json);
  auto target = target_of(common);
  if (!target) return report(target.error(), common.json);
  // The server runs the steps on this machine's paths: send an absolute one.
  const std::string artifact_path = std::filesystem::absolute(artifact).lexically_normal().string();
  if (target.value().client) {
    ApiClient& client = *target.value().client;
    json body{{"pipeline", pipeline}, {"artifact", {{"version", version}, {"path", artifact_path}}}};
    body["variables"] = variables.value();
    body["secrets"] = secrets.value();
    auto created = client.post("/api/v1/releases", body, common.command_id);
    if (!created) return report(created.error(), common.json);
    return print_summary_document(summary_at_least(client, created.value().value("id", ""), 1), common);
  }
  // The server checks its own machine; offline this one is where steps run.
  if (auto missing = engine::missing_artifact(artifact_path)) {
    return report(make_error(ErrorCode::kInvalidArgument, "--artifact: " + *missing), common.json);
  }
  auto session = Session::start(common);
  if (!session) return report(session.error(), common.json);
  Runtime& runtime = session.value()->runtime();
  engine::NewRelease request;
  request.pipeline = pipeline;
  request.artifact.version = version;
  request.artifact.path = artifact_path;
  request.variables = variables.value();
  request.secret_variables = secrets.value();
  auto id = runtime.service().create_release(request, engine::Invocation{common.actor, common.command_id, ""});
  if (!id) return report(id.error(), common.json);
  return print_release(runtime, id.value(), common);
}

// The API call that carries a person's command: the path under the release
// and the body.
std::pair<std::string, json> remote_command(const engine::Command& command) {
  auto stage_path = [](const std::string& stage, const char* action) {
    return "/stages/" + url_encode(stage) + "/" + action;
  };
  return std::visit(
      Overloaded{
          [&](const engine::ApproveStage& c) {
            json body{{"decision", "approve"}, {"comment", c.comment}};
            if (c.defer_until != 0) body["defer_until"] = c.defer_until;
            if (c.override) body["override"] = true;
            return std::make_pair(stage_path(c.stage, "approvals"), body);
          },
          [&](const engine::RejectStage& c) {
            json body{{"decision", "reject"}, {"comment", c.comment}};
            if (c.override) body["override"] = true;
            return std::make_pair(stage_path(c.stage, "approvals"), body);
          },
          [&](const engine::DeployStage& c) { return std::make_pair(stage_path(c.stage, "deploy"), json::object()); },
          [&](const engine::RedeployStage& c) {
            return std::make_pair(stage_path(c.stage, "redeploy"), json{{"reason", c.reason}});
          },
          [&](const engine::CancelStage& c) {
            return std::make_pair(stage_path(c.stage, "cancel"), json{{"reason", c.reason}});
          },
          [&](const engine::AbandonRelease& c) { return std::make_pair(std::string("/abandon"), json{{"reason", c.reason}}); },
          [&](const auto&) { return std::make_pair(std::string(), json()); },  // not a person's command
      },
      command);
}

int release_command(Common& common, std::string release_id, const engine::Command& command) {
  auto target = target_of(common, /*actor_required=*/true);
  if (!target) return report(target.error(), common.json);
  if (target.value().client) {
    ApiClient& client = *target.value().client;
    auto [path, body] = remote_command(command);
    auto answer = client.post(release_path(release_id) + path, body, common.command_id);
    if (!answer) return report(answer.error(), common.json);
    return print_summary_document(summary_at_least(client, release_id, answer.value().value("version", std::int64_t{0})),
                                  common);
  }
  auto session = Session::start(common);
  if (!session) return report(session.error(), common.json);
  Runtime& runtime = session.value()->runtime();
  runtime.settle();  // finish what an earlier command left before deciding
  if (auto resolved = release_id_of(runtime, release_id); !resolved) {
    return report(resolved.error(), common.json);
  } else {
    release_id = std::move(resolved).value();
  }
  auto done = runtime.service().execute(release_id, command, engine::Invocation{common.actor, common.command_id, ""});
  if (!done) return report(done.error(), common.json);
  return print_release(runtime, release_id, common);
}

int show_release(Common& common, const std::string& release_id) {
  auto target = target_of(common);
  if (!target) return report(target.error(), common.json);
  if (target.value().client) return print_summary_document(target.value().client->get(release_path(release_id)), common);
  auto session = Session::start(common);
  if (!session) return report(session.error(), common.json);
  session.value()->runtime().settle();  // a display name resolves once the release list has the release
  auto id = release_id_of(session.value()->runtime(), release_id);
  if (!id) return report(id.error(), common.json);
  return print_release(session.value()->runtime(), id.value(), common);
}

// Prints one log line as it arrives over --follow: JSON lines with --json.
void print_streamed_line(const json& line, const Common& common) {
  if (common.json) {
    std::cout << line.dump() << "\n";
  } else {
    print_log_line(std::cout, line);
  }
  std::cout.flush();
}

// `logs --follow` over a server: GET …/logs?follow=true streams the
// attempt's lines as Server-Sent Events (`line`, then `end` once its
// deployment finished).
int follow_logs(ApiClient& client, const Common& common, const std::string& target) {
  std::string content_type, whole;
  ServerEventParser events;
  auto streamed = client.stream(
      target, {{"Accept", "text/event-stream"}},
      [&](std::string_view type) {
        content_type = std::string(type);
        return true;
      },
      [&](std::string_view data) {
        if (content_type.rfind("text/event-stream", 0) != 0) {
          whole.append(data.data(), data.size());  // not streamed: one answer
          return true;
        }
        return events.feed(data, [&](const ServerEvent& event) {
          if (event.type != "line") return event.type != "end";
          const json line = json::parse(event.data, nullptr, false);
          if (!line.is_discarded()) print_streamed_line(line, common);
          return true;
        });
      });
  if (!streamed) return report(streamed.error(), common.json);
  const json answer = json::parse(whole, nullptr, false);
  if (answer.is_object() && answer.contains("lines")) {
    for (const json& line : answer["lines"]) print_streamed_line(line, common);
  }
  return 0;
}

int show_logs(Common& common, const std::string& release_id, const std::string& stage_name, int attempt, bool follow) {
  auto target = target_of(common);
  if (!target) return report(target.error(), common.json);
  if (target.value().client) {
    ApiClient& client = *target.value().client;
    std::string path = release_path(release_id) + "/stages/" + url_encode(stage_name) + "/logs";
    std::string query = attempt > 0 ? "attempt=" + std::to_string(attempt) : "";
    if (follow) return follow_logs(client, common, path + "?" + query + (query.empty() ? "" : "&") + "follow=true");
    // Page after page (the server answers at most 10,000 lines at once),
    // printing each as it comes.
    json all = json::array();
    std::string after;
    do {
      std::string page_query = query + (query.empty() ? "" : "&") + "limit=10000";
      if (!after.empty()) page_query += "&after=" + url_encode(after);
      auto answer = client.get(path + "?" + page_query);
      if (!answer) return report(answer.error(), common.json);
      for (const json& line : answer.value()["lines"]) {
        if (common.json) {
          all.push_back(line);
        } else {
          print_log_line(std::cout, line);
        }
      }
      after = answer.value().value("next", "");
    } while (!after.empty());
    if (common.json) std::cout << all.dump(2) << "\n";
    return 0;
  }
  // Offline the command runs the engine itself until the release settles, so
  // every deployment it could follow has finished: --follow prints it all.
  auto session = Session::start(common);
  if (!session) return report(session.error(), common.json);
  Runtime& runtime = session.value()->runtime();
  runtime.settle();
  auto id = release_id_of(runtime, release_id);
  if (!id) return report(id.error(), common.json);
  auto release = runtime.service().load(id.value());
  if (!release) return report(release.error(), common.json);
  const engine::StageRecord* stage = release.value().find_stage(stage_name);
  if (stage == nullptr) {
    return report(release.value().unknown_stage(stage_name), common.json);
  }
  if (attempt == 0) attempt = stage->attempt;
  nlohmann::json lines = nlohmann::json::array();
  const engine::StageDefinition* definition = release.value().definition.find_stage(stage_name);
  for (std::size_t i = 0; definition != nullptr && i < definition->steps.size(); ++i) {
    auto step_lines = runtime.step_logs().read({release_id, stage_name, attempt, static_cast<int>(i)});
    if (!step_lines) return report(step_lines.error(), common.json);
    for (const engine::LogLine& line : step_lines.value()) {
      const json entry{{"step", definition->steps[i].name}, {"at", line.at}, {"stream", line.stream}, {"text", line.text}};
      if (common.json) {
        lines.push_back(entry);
      } else {
        print_log_line(std::cout, entry);
      }
    }
  }
  if (common.json) std::cout << lines.dump(2) << "\n";
  return 0;
}

int show_events(Common& common, const std::string& release_id) {
  auto target = target_of(common);
  if (!target) return report(target.error(), common.json);
  nlohmann::json list = nlohmann::json::array();
  std::vector<events::RecordedEvent> stream;
  if (target.value().client) {
    auto answer = target.value().client->get(release_path(release_id) + "/events");
    if (!answer) return report(answer.error(), common.json);
    list = answer.value()["events"];
    if (!common.json) {
      for (const json& item : list) {
        auto event = event_from_json(item);
        if (!event) return report(event.error(), common.json);
        stream.push_back(std::move(event).value());
      }
    }
  } else {
    Common quiet = common;
    quiet.json = true;  // no live timeline
    auto session = Session::start(quiet);
    if (!session) return report(session.error(), common.json);
    Runtime& runtime = session.value()->runtime();
    runtime.settle();
    auto id = release_id_of(runtime, release_id);
    if (!id) return report(id.error(), common.json);
    auto read = runtime.log().read(engine::release_stream(id.value()));
    if (!read) return report(read.error(), common.json);
    if (read.value().empty()) return report(make_error(ErrorCode::kNotFound, "no release '" + release_id + "'"), common.json);
    stream = std::move(read).value();
    for (const events::RecordedEvent& event : stream) list.push_back(event_json(event));
  }
  if (common.json) {
    std::cout << list.dump(2) << "\n";
  } else {
    for (const events::RecordedEvent& event : stream) print_event_line(std::cout, event);
  }
  return 0;
}

// ---- watch and wait ------------------------------------------------------------

// `watch`: every new event as a timeline line (or one JSON object per line),
// of one release or all, until the server closes the stream or `count` events
// were shown. Over a server only: offline, nothing else moves the log.
int watch(Common& common, std::string release_id, std::optional<std::uint64_t> after, std::size_t count) {
  auto target = target_of(common);
  if (!target) return report(target.error(), common.json);
  if (!target.value().client) {
    return report(make_error(ErrorCode::kInvalidArgument,
                             "watch follows a running server (--server); offline, `cascade events ID` lists the events"),
                  common.json);
  }
  if (!release_id.empty()) {
    // The stream names releases by id: a display name is resolved first.
    auto summary = target.value().client->get(release_path(release_id));
    if (!summary) return report(summary.error(), common.json);
    release_id = summary.value().value("id", release_id);
  }
  std::size_t shown = 0;
  Error failure;
  bool failed = false;
  auto streamed = target.value().client->events(
      "/api/v1/stream", after ? std::optional<std::string>(std::to_string(*after)) : std::nullopt, nullptr,
      [&](const ServerEvent& frame) {
        const json data = json::parse(frame.data, nullptr, false);
        if (data.is_discarded()) return true;
        if (!release_id.empty() && data.value("stream", "") != engine::release_stream(release_id)) return true;
        if (common.json) {
          std::cout << data.dump() << "\n";
        } else {
          auto event = event_from_json(data);
          if (!event) {
            failure = event.error();
            failed = true;
            return false;
          }
          print_timeline_line(std::cout, event.value());
        }
        std::cout.flush();
        return count == 0 || ++shown < count;
      });
  if (failed) return report(failure, common.json);
  if (!streamed) return report(streamed.error(), common.json);
  if (streamed.value() == StreamEnd::kClosed) {
    return report(make_error(ErrorCode::kUnavailable, "the server closed the event stream (is it stopping?)"), common.json);
  }
  return 0;
}

// What `release wait --until` waits for: a stage's state, or the release's status.
struct WaitCondition {
  std::string stage;  // empty: `state` is a release status
  std::string state;  // empty: the release settles (no longer InProgress)

  static WaitCondition parse(const std::string& until) {
    WaitCondition condition;
    if (const auto equals = until.find('='); equals != std::string::npos) {
      condition.stage = until.substr(0, equals);
      condition.state = until.substr(equals + 1);
    } else {
      condition.state = until;
    }
    return condition;
  }
  std::string text() const {
    if (state.empty()) return "the release to settle";
    return stage.empty() ? "status " + state : stage + "=" + state;
  }
  bool met(const json& summary) const {
    const std::string status = summary.value("status", "");
    if (stage.empty()) return state.empty() ? status != "InProgress" : status == state;
    for (const json& s : summary["stages"]) {
      if (s.value("name", "") == stage) return s.value("status", "") == state;
    }
    return false;
  }
  // When the release can no longer get there without someone acting on it.
  static bool finished(const json& summary) {
    const std::string status = summary.value("status", "");
    return status != "InProgress" && status != "WaitingForApproval";
  }
  // A release that ended this way is a failure for a script that did not
  // wait for exactly that.
  static bool ended_badly(const json& summary) {
    const std::string status = summary.value("status", "");
    return status == "Failed" || status == "Rejected" || status == "Canceled" || status == "Abandoned";
  }
};

std::vector<std::string> stage_state_names() {
  std::vector<std::string> names;
  for (int state = 0; state <= static_cast<int>(engine::StageState::kCanceled); ++state) {
    names.emplace_back(engine::to_string(static_cast<engine::StageState>(state)));
  }
  return names;
}

std::vector<std::string> release_status_names() {
  std::vector<std::string> names;
  for (int status = 0; status <= static_cast<int>(engine::ReleaseStatus::kAbandoned); ++status) {
    names.emplace_back(engine::to_string(static_cast<engine::ReleaseStatus>(status)));
  }
  return names;
}

// "'x' (did you mean 'y'?)" or "'x' (one of: a, b, c)".
std::string unknown_name(const std::string& given, const std::vector<std::string>& known) {
  const std::vector<std::string_view> candidates(known.begin(), known.end());
  if (auto guess = events::did_you_mean(given, candidates)) return "'" + given + "' (did you mean '" + *guess + "'?)";
  std::string list;
  for (const std::string& name : known) list += (list.empty() ? "" : ", ") + name;
  return "'" + given + "' (one of: " + list + ")";
}

// Refuses, before any waiting, a condition the release can never meet as
// written: a stage it does not have, a state or status that does not exist.
Status check_wait_condition(const WaitCondition& condition, const std::string& release_id, const json& summary) {
  if (condition.state.empty()) return success();
  if (condition.stage.empty()) {
    const auto statuses = release_status_names();
    if (std::find(statuses.begin(), statuses.end(), condition.state) != statuses.end()) return success();
    const auto states = stage_state_names();
    if (std::find(states.begin(), states.end(), condition.state) != states.end()) {
      return make_error(ErrorCode::kInvalidArgument, "--until: '" + condition.state +
                                                         "' is a stage state, not a release status: write STAGE=" +
                                                         condition.state + " (e.g. prod=" + condition.state + ")");
    }
    return make_error(ErrorCode::kInvalidArgument,
                      "--until: " + unknown_name(condition.state, statuses) + " is not a release status");
  }
  std::vector<std::string> stages;
  for (const json& stage : summary["stages"]) stages.push_back(stage.value("name", ""));
  if (std::find(stages.begin(), stages.end(), condition.stage) == stages.end()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--until: release " + release_id + " has no stage " + unknown_name(condition.stage, stages));
  }
  const auto states = stage_state_names();
  if (std::find(states.begin(), states.end(), condition.state) == states.end()) {
    return make_error(ErrorCode::kInvalidArgument, "--until: " + unknown_name(condition.state, states) +
                                                       " is not a stage state");
  }
  return success();
}

Result<std::chrono::milliseconds> parse_duration(const std::string& text) {
  std::size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  const std::string unit = text.substr(digits);
  if (digits == 0 || digits > 9 || (unit != "" && unit != "s" && unit != "m" && unit != "h")) {
    return make_error(ErrorCode::kInvalidArgument, "--timeout '" + text + "': expected a duration like 90s, 10m or 1h");
  }
  const std::int64_t n = std::stoll(text.substr(0, digits));
  const std::int64_t seconds = unit == "h" ? n * 3600 : unit == "m" ? n * 60 : n;
  return std::chrono::milliseconds(seconds * 1000);
}

// 90s, 10m, 1h: a parsed --timeout as a person reads it.
std::string duration_text(std::chrono::milliseconds duration) {
  const std::int64_t seconds = std::chrono::duration_cast<std::chrono::seconds>(duration).count();
  if (seconds != 0 && seconds % 3600 == 0) return std::to_string(seconds / 3600) + "h";
  if (seconds != 0 && seconds % 60 == 0) return std::to_string(seconds / 60) + "m";
  return std::to_string(seconds) + "s";
}

int wait_for_release(Common& common, std::string release_id, const std::string& until, const std::string& timeout) {
  const WaitCondition condition = WaitCondition::parse(until);
  auto limit = parse_duration(timeout);
  if (!limit) return report(limit.error(), common.json);
  auto target = target_of(common);
  if (!target) return report(target.error(), common.json);

  // The summary it stopped at: what was asked (exit 0, or 4 when the release
  // ended badly and that was not what was asked), or a state from which it
  // cannot get there alone (4).
  auto outcome = [&](const json& summary) -> int {
    if (condition.met(summary)) {
      const int shown = print_summary_document(summary, common);
      if (shown != 0 || !condition.state.empty() || !WaitCondition::ended_badly(summary)) return shown;
      const Error ended = make_error(ErrorCode::kFailedPrecondition,
                                     "release " + release_id + " ended " + summary.value("status", ""));
      return common.json ? exit_code_for(ended.code) : report(ended, false);
    }
    std::string now = "status " + summary.value("status", "");
    for (const json& s : summary["stages"]) {
      if (s.value("name", "") == condition.stage) now = condition.stage + " is " + s.value("status", "");
    }
    return report(make_error(ErrorCode::kFailedPrecondition, "release " + release_id + " will not reach " +
                                                                 condition.text() + " on its own: " + now),
                  common.json);
  };
  if (!target.value().client) {
    // Offline this process runs the engine: once it settles nothing else moves.
    auto session = Session::start(common);
    if (!session) return report(session.error(), common.json);
    session.value()->runtime().settle();
    auto id = release_id_of(session.value()->runtime(), release_id);
    if (!id) return report(id.error(), common.json);
    release_id = id.value();
    auto summary = settled_summary(session.value()->runtime(), release_id);
    if (!summary) return report(summary.error(), common.json);
    if (auto checked = check_wait_condition(condition, release_id, summary.value()); !checked) {
      return report(checked.error(), common.json);
    }
    return outcome(summary.value());
  }

  ApiClient& client = *target.value().client;
  auto reader = api_client(common);  // a second connection for reads while the stream is open
  if (!reader) return report(reader.error(), common.json);
  {
    auto first = reader.value().get(release_path(release_id));
    if (!first) return report(first.error(), common.json);
    release_id = first.value().value("id", release_id);  // the stream names releases by id, not by display name
    if (auto checked = check_wait_condition(condition, release_id, first.value()); !checked) {
      return report(checked.error(), common.json);
    }
  }
  const auto deadline = ApiClient::Clock::now() + limit.value();
  std::optional<json> last;
  std::optional<Error> failure;
  // Is it there yet? Reads the summary at least at `version` and records it.
  auto check = [&](std::int64_t version) {
    auto summary = summary_at_least(reader.value(), release_id, version);
    if (!summary) {
      failure = summary.error();
      return false;
    }
    last = summary.value();
    return !(condition.met(*last) || WaitCondition::finished(*last));
  };
  // Subscribe first, then read: no transition can fall between the two.
  bool keep_going = true;
  auto streamed = client.events(
      "/api/v1/stream", std::nullopt,
      [&] {
        // The summary may trail the log: wait until it holds every event of
        // the release appended before the subscription (later ones arrive on
        // the stream), or a transition in that gap would never be seen.
        auto history = reader.value().get("/api/v1/releases/" + url_encode(release_id) + "/events");
        if (!history) {
          failure = history.error();
          return keep_going = false;
        }
        const json& events = history.value()["events"];
        keep_going = check(events.empty() ? 0 : events.back().value("version", std::int64_t{0}));
        return keep_going;
      },
      [&](const ServerEvent& frame) {
        if (!keep_going) return false;
        const json data = json::parse(frame.data, nullptr, false);
        if (data.is_discarded() || data.value("stream", "") != engine::release_stream(release_id)) return true;
        keep_going = check(data.value("version", std::int64_t{0}));
        return keep_going;
      },
      deadline);
  if (failure) return report(*failure, common.json);
  if (!streamed) return report(streamed.error(), common.json);
  if (last && (condition.met(*last) || WaitCondition::finished(*last))) return outcome(*last);
  if (streamed.value() == StreamEnd::kDeadline) {
    return report(make_error(ErrorCode::kUnavailable, "timed out after " + duration_text(limit.value()) + " waiting for " + release_id +
                                                          " to reach " + condition.text()),
                  common.json);
  }
  return report(make_error(ErrorCode::kUnavailable, "the server closed the event stream while waiting for " +
                                                        release_id + " to reach " + condition.text()),
                common.json);
}

// The sample scenario: SampleApp goes dev → test and qa in parallel →
// approval → prod, each deploying a freshly built site into its own folder.
int demo(const Common& common, const std::string& approver) {
  auto definition = engine::parse_pipeline_text(kSamplePipeline);
  if (!definition) return report(definition.error(), false);
  auto session = Session::start(common, DataDir::kCreate);
  if (!session) return report(session.error(), false);
  Runtime& runtime = session.value()->runtime();
  engine::SystemClock clock;

  auto version = runtime.service().apply_pipeline(definition.value(), common.actor);
  if (!version) return report(version.error(), false);

  // The build: an index.html stamped with the build version.
  const events::Timestamp now = clock.now();
  const std::string build_version = "1.0.0+" + iso_time(now).substr(0, 19);
  std::string safe_version = build_version;
  for (char& c : safe_version) c = (std::isalnum(static_cast<unsigned char>(c)) || c == '.') ? c : '-';
  const std::string artifact_dir = runtime.data_dir() + "/artifacts/SampleApp-" + safe_version + "-" + std::to_string(now % 1000);
  std::filesystem::create_directories(artifact_dir);
  std::ofstream(artifact_dir + "/index.html")
      << "<!doctype html>\n<html><head><title>SampleApp</title></head>\n<body><h1>SampleApp</h1>\n<p>build "
      << build_version << "</p></body></html>\n";
  std::cout << "built SampleApp " << build_version << " into " << artifact_dir << "\n";

  engine::NewRelease request;
  request.pipeline = "SampleApp";
  request.artifact.version = build_version;
  request.artifact.path = artifact_dir;
  request.artifact.built_at = now;
  request.variables = {{"SITES_ROOT", runtime.data_dir() + "/sites"}};
  auto release_id = runtime.service().create_release(request, engine::Invocation{common.actor, "", ""});
  if (!release_id) return report(release_id.error(), false);
  runtime.settle();

  auto waiting = runtime.service().load(release_id.value());
  if (!waiting) return report(waiting.error(), false);
  const engine::StageRecord* prod = waiting.value().find_stage("prod");
  if (prod == nullptr || prod->state() != engine::StageState::kAwaitingPreApproval) {
    std::cerr << "cascade: demo: prod is not awaiting approval; the release stopped early\n";
    print_release(runtime, release_id.value(), common);
    return 1;
  }
  std::cout << "\n" << approver << " approves prod\n";
  auto approved = runtime.service().execute(release_id.value(), engine::ApproveStage{"prod", "demo: looks good"},
                                            engine::Invocation{approver, "", ""});
  if (!approved) return report(approved.error(), false);
  int shown = print_release(runtime, release_id.value(), common);
  if (shown != 0) return shown;
  auto final_state = runtime.service().load(release_id.value());
  std::cout << "\nsites: " << runtime.data_dir() << "/sites/SampleApp-{Dev,Test,QA,Prod}/index.html\n";
  return final_state && engine::release_status(final_state.value()) == engine::ReleaseStatus::kSucceeded ? 0 : 1;
}

}  // namespace
}  // namespace cascade::tools

int main(int argc, char** argv) {
  using namespace cascade::tools;
  CLI::App app{"Cascade — a multi-stage continuous-deployment release engine"};
  app.require_subcommand(1);
  app.footer(
      "Commands that act on releases or read models talk to a running `cascade serve` (--server, default "
      "$CASCADE_SERVER or http://127.0.0.1:8080, with --token or $CASCADE_TOKEN); with --data DIR (or "
      "$CASCADE_DATA) they work offline on a directory no server holds. replay, audit, why, projections and "
      "demo work offline only.");
  Common common;
  common.data_dir = default_data_dir();
  common.actor = default_actor();
  auto with_client = [&](CLI::App* command) { add_client_options(command, common); };
  int result = 0;

  std::string approver = "release-manager";
  auto* demo_command = app.add_subcommand("demo", "run the SampleApp release end to end (offline)");
  demo_command->add_option("--data", common.data_dir, "data directory")->default_val("var/demo");
  demo_command->add_option("--approve-as", approver, "who approves prod")->capture_default_str();
  demo_command->callback([&] { result = demo(common, approver); });

  auto* pipeline = app.add_subcommand("pipeline", "pipeline definitions")->require_subcommand(1);
  std::string file;
  bool strict = false;
  auto* apply = pipeline->add_subcommand("apply", "validate a definition file and store it as the next version");
  apply->add_option("FILE", file, "the pipeline JSON")->required();
  apply->add_flag("--strict", strict,
                  "refuse approvers that name no user or group the server knows (default: a warning)");
  with_client(apply);
  apply->callback([&] { result = apply_pipeline(common, file, strict); });

  auto* release = app.add_subcommand("release", "releases")->require_subcommand(1);
  std::string pipeline_name, version, artifact, release_id, stage, comment;
  std::vector<std::string> variables, secret_variables;
  std::string defer_until, reason;
  int attempt = 0;
  bool follow = false, override_policy = false;
  auto* create = release->add_subcommand("create", "create a release of a pipeline from an artifact");
  create->add_option("PIPELINE", pipeline_name)->required();
  create->add_option("--version", version, "the artifact's version")->required();
  create->add_option("--artifact", artifact, "path of the artifact (on the server's machine)")->required();
  create->add_option("--var", variables, "release variable NAME=VALUE (repeatable)");
  create->add_option("--secret", secret_variables,
                     "secret release variable NAME=VALUE (repeatable; kept out of the log, masked in step logs)");
  with_client(create);
  create->add_option("--idempotency-key", common.command_id,
                     "repeating the command with this key creates no second release");
  create->callback(
      [&] { result = create_release(common, pipeline_name, version, artifact, variables, secret_variables); });

  auto* show = release->add_subcommand("show", "a release's summary");
  show->add_option("ID", release_id)->required();
  with_client(show);
  show->callback([&] { result = show_release(common, release_id); });

  auto* logs = release->add_subcommand("logs", "the step logs of a stage");
  logs->add_option("ID", release_id)->required();
  logs->add_option("STAGE", stage)->required();
  logs->add_option("--attempt", attempt, "attempt (default: the latest)");
  logs->add_flag("--follow,-f", follow, "keep printing lines as the deployment writes them (JSON lines with --json)");
  with_client(logs);
  logs->callback([&] { result = show_logs(common, release_id, stage, attempt, follow); });

  std::string until, timeout = "10m";
  auto* wait = release->add_subcommand(
      "wait", "wait until a release reaches a state, then print its summary (over a server: as it happens)");
  wait->add_option("ID", release_id)->required();
  wait->add_option("--until", until,
                   "STAGE=STATE (e.g. prod=AwaitingPreApproval) or a release status (e.g. Succeeded); "
                   "default: until the release settles (done, or waiting for a person)");
  wait->add_option("--timeout", timeout, "give up after this long (90s, 10m, 1h)")->capture_default_str();
  with_client(wait);
  wait->callback([&] { result = wait_for_release(common, release_id, until, timeout); });

  auto stage_command = [&](const char* name, const char* help, auto make_command) {
    auto* command = app.add_subcommand(name, help);
    command->add_option("ID", release_id)->required();
    command->add_option("STAGE", stage)->required();
    with_client(command);
    command->add_option("--idempotency-key", common.command_id, "repeating the command with this key changes nothing");
    command->callback([&, make_command] {
      auto made = make_command();
      result = made ? release_command(common, release_id, made.value()) : report(made.error(), common.json);
    });
    return command;
  };
  using cascade::engine::Command;
  auto* approve = stage_command("approve", "approve a stage's pending approval", [&]() -> cascade::Result<Command> {
    cascade::engine::ApproveStage command{stage, comment, 0};
    command.override = override_policy;
    if (!defer_until.empty()) {
      auto at = parse_utc_time(defer_until);
      if (!at) return at.error();
      command.defer_until = at.value();
    }
    return Command{command};
  });
  approve->add_option("--comment", comment);
  approve->add_option("--defer-until", defer_until, "deploy at this time (RFC 3339, UTC), pre-deployment only");
  const char* override_help = "decide as an administrator in place of the approvers (over a server: needs the admin role)";
  approve->add_flag("--override", override_policy, override_help);
  auto* reject = stage_command("reject", "reject a stage's pending approval", [&]() -> cascade::Result<Command> {
    cascade::engine::RejectStage command{stage, comment};
    command.override = override_policy;
    return Command{command};
  });
  reject->add_option("--comment", comment);
  reject->add_flag("--override", override_policy, override_help);
  stage_command("deploy", "deploy a manual stage", [&]() -> cascade::Result<Command> {
    return Command{cascade::engine::DeployStage{stage}};
  });
  stage_command("redeploy", "a new attempt of a finished stage (an older release: a rollback)",
                [&]() -> cascade::Result<Command> { return Command{cascade::engine::RedeployStage{stage, ""}}; });
  stage_command("cancel", "cancel a running deployment (its processes are killed) or a waiting stage",
                [&]() -> cascade::Result<Command> { return Command{cascade::engine::CancelStage{stage, reason}}; })
      ->add_option("--reason", reason);

  auto* abandon = app.add_subcommand("abandon", "abandon a release: cancel what runs and waits, trigger nothing more");
  abandon->add_option("ID", release_id)->required();
  abandon->add_option("--reason", reason);
  with_client(abandon);
  abandon->add_option("--idempotency-key", common.command_id, "repeating the command with this key changes nothing");
  abandon->callback([&] { result = release_command(common, release_id, Command{cascade::engine::AbandonRelease{reason}}); });

  for (CLI::App* parent : {&app, release}) {
    auto* events_command = parent->add_subcommand("events", "a release's events, oldest first");
    events_command->add_option("ID", release_id)->required();
    with_client(events_command);
    events_command->callback([&] { result = show_events(common, release_id); });
  }

  std::uint64_t after = 0;
  std::size_t count = 0;
  auto* watch_command = app.add_subcommand(
      "watch", "print every new event as it happens (over a server), of one release or all, until Ctrl-C");
  watch_command->add_option("ID", release_id, "only this release's events");
  auto* after_option = watch_command->add_option("--after", after, "first replay the events after this log position");
  watch_command->add_option("--count", count, "stop after this many events");
  with_client(watch_command);
  watch_command->callback([&] {
    result = watch(common, release_id, after_option->count() > 0 ? std::optional<std::uint64_t>(after) : std::nullopt,
                   count);
  });

  add_projection_commands(app, common, result);
  add_audit_commands(app, common, result);
  add_doctor_command(app, common, result);
  add_serve_command(app, common, result);
  add_users_commands(app, common, result);
  add_kafka_commands(app, common, result);
  for (const char* offline_only : {"projections"}) {
    for (CLI::App* command : app.get_subcommands([&](CLI::App* c) { return c->get_name() == offline_only; })) {
      command->description(command->get_description() + " (offline only: reads --data DIR)");
    }
  }

  app.name("cascade");
  if (auto refused = parse_command_line(app, argc, argv)) return *refused;
  return result;
}
