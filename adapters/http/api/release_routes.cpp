#include "adapters/http/api/route_files.hpp"

#include "adapters/http/api/fields.hpp"
#include "adapters/http/errors.hpp"
#include "adapters/http/json_body.hpp"
#include "adapters/http/request.hpp"
#include "adapters/http/api/audit_documents.hpp"
#include "adapters/http/api/event_json.hpp"
#include "adapters/http/api/log_follow.hpp"
#include "engine/artifact_version.hpp"
#include "engine/release.hpp"
#include "projections/release_list.hpp"
#include "projections/release_summary.hpp"

#include <chrono>
#include <filesystem>
#include <optional>
#include <sstream>

namespace cascade::adapters::http::api {

using nlohmann::json;

namespace {

// How long a read waits for the summary of a release created a moment ago.
constexpr std::chrono::milliseconds kReadYourWritesTimeout{1000};
// Lines in one page of GET …/logs: by default, and at most (?limit=).
constexpr std::size_t kDefaultLogPage = 1000;
constexpr std::size_t kMaxLogPage = 10000;

// data_loss for a release in quarantine: its stored summary was folded from
// a history that can no longer be trusted.
std::optional<Error> quarantined_release(const ApiContext& api, const std::string& release_id) {
  if (api.service.quarantine().size() == 0) return std::nullopt;
  auto entry = api.service.quarantine().find(engine::release_stream(release_id));
  if (!entry) return std::nullopt;
  return make_error(ErrorCode::kDataLoss, "release " + release_id + " is quarantined: " + entry->reason);
}

// The stored summary document, as JSON text.
Result<std::string> summary_of(const ApiContext& api, const std::string& release_id) {
  auto text = api.projections.summaries().summary(release_id);
  if (text || text.error().code != ErrorCode::kNotFound) return text;
  // A release created a moment ago may not be summarised yet: wait until the
  // summary projection reflects the release's creation.
  CASCADE_TRY(created, api.log.read(engine::release_stream(release_id), 1, 1));
  if (created.empty()) {
    CASCADE_TRY(state, api.service.load(release_id));  // kNotFound for an unknown release
    (void)state;
    return text;
  }
  CASCADE_TRY(reached, api.projections.summaries().wait_for(created.front().position, kReadYourWritesTimeout));
  if (reached) return api.projections.summaries().summary(release_id);
  // The projection did not get there — it cannot write (a full disk) or is
  // far behind — but the release is in the log, acknowledged: summarised
  // from the log, as the projection will, rather than answered as unknown.
  CASCADE_TRY(state, api.service.load(release_id));
  return projections::summarize(state).dump();
}

// Why `path` is not an artifact this server may deploy, or nullopt: it must be
// absolute and, with symbolic links resolved, lie inside `root`, so a
// releaser cannot have the server deploy (copy, serve) any file it can read.
std::optional<std::string> outside_artifacts_root(const std::string& path, const std::string& root) {
  if (path.front() != '/') return "must be an absolute path inside the artifacts root " + root;
  std::error_code ec;
  const std::filesystem::path resolved = std::filesystem::weakly_canonical(path, ec);
  const std::filesystem::path resolved_root = std::filesystem::weakly_canonical(root, ec);
  if (ec) return "cannot be checked against the artifacts root " + root + ": " + ec.message();
  const std::string inside = resolved_root.string() + "/";
  if (resolved.string().compare(0, inside.size(), inside) != 0) {
    return "must lie inside the artifacts root " + root + " (serve --artifacts-root)";
  }
  return std::nullopt;
}

}  // namespace

Status add_release_routes(Router& router, const RouteContextPtr& api) {
  CASCADE_TRY(router.add("POST", kApiBase + "/releases", Role::kReleaser, [api](const Request& request) -> Result<Response> {
    CASCADE_TRY(body, http::parse_json_object(request.body, {"pipeline", "artifact", "variables", "secrets"}));
    std::vector<Problem> problems;
    engine::NewRelease release;
    release.pipeline = string_field(body, "pipeline", "pipeline", problems, true);
    auto artifact = body.find("artifact");
    if (artifact == body.end() || !artifact->is_object()) {
      problems.push_back({"artifact", "required: an object with version and path"});
    } else {
      auto fields = http::check_fields(*artifact, {"version", "path", "uri", "built_at"}, "artifact");
      if (!fields) {
        for (const Problem& problem : fields.error().details) problems.push_back(problem);
      }
      release.artifact.version = string_field(*artifact, "version", "artifact.version", problems, true);
      // Whether the pipeline needs a path (the default) the engine decides.
      release.artifact.path = string_field(*artifact, "path", "artifact.path", problems, false);
      release.artifact.uri = string_field(*artifact, "uri", "artifact.uri", problems, false);
      if (!release.artifact.path.empty()) {
        if (auto problem = outside_artifacts_root(release.artifact.path, api->options.artifacts_root)) {
          problems.push_back({"artifact.path", *problem});
        } else if (auto missing = engine::missing_artifact(release.artifact.path)) {
          problems.push_back({"artifact.path", *missing});
        }
      }
      auto built_at = artifact->find("built_at");
      if (built_at != artifact->end() && !built_at->is_null()) {
        if (!built_at->is_number_integer()) {
          problems.push_back({"artifact.built_at", "must be milliseconds since the epoch"});
        } else {
          release.artifact.built_at = built_at->get<events::Timestamp>();
        }
      }
    }
    for (auto& [name, value] : string_map(body, "variables", problems)) release.variables[name] = value;
    release.secret_variables = string_map(body, "secrets", problems);
    CASCADE_TRY(check_problems(std::move(problems)));
    CASCADE_TRY(id, (counted(api->commands, "CreateRelease", api->service.create_release(release, invocation(request)))));
    CASCADE_TRY(state, api->service.load(id));
    Response response = Response::json({{"id", id}, {"name", state.name}}, 201);
    response.headers.emplace_back("Location", "/api/v1/releases/" + id);
    return response;
  }));
  CASCADE_TRY(router.add("GET", kApiBase + "/releases", Role::kViewer, [api](const Request& request) -> Result<Response> {
    projections::ReleaseQuery query;
    query.pipeline = request.query.get("pipeline").value_or("");
    query.status = request.query.get("status").value_or("");
    query.cdevent = request.query.get("cdevent").value_or("");
    query.cursor = request.query.get("cursor").value_or("");
    if (auto limit = request.query.get("limit")) {
      CASCADE_TRY(value, parse_size("limit", *limit));
      query.limit = value;
    }
    CASCADE_TRY(page, api->projections.releases().list(query));
    // The stored documents as they are: parsing and re-writing them was
    // most of this route's time (issue 7, figure 6).
    std::string body = "{\"next_cursor\":" + (page.next_cursor ? json(*page.next_cursor).dump() : "null") + ",\"releases\":[";
    for (std::size_t i = 0; i < page.documents.size(); ++i) {
      if (i > 0) body += ',';
      body += page.documents[i];
    }
    body += "]}";
    return Response::text(std::move(body), kJsonContentType);
  }));
  // A summary is one RocksDB read: answered on the I/O thread when it is
  // there; a release created a moment ago waits for it on a worker.
  CASCADE_TRY(router.add_with_quick_path(
      "GET", kApiBase + "/releases/{id}", Role::kViewer,
      [api](const Request& request) -> std::optional<Result<Response>> {
        if (auto quarantined = quarantined_release(*api, request.param("id"))) return Result<Response>(*quarantined);
        auto text = api->projections.summaries().summary(request.param("id"));
        if (!text) return std::nullopt;
        return Result<Response>(Response::text(std::move(text).value(), kJsonContentType));
      },
      [api](const Request& request) -> Result<Response> {
        if (auto quarantined = quarantined_release(*api, request.param("id"))) return *quarantined;
        CASCADE_TRY(summary, summary_of(*api, request.param("id")));
        return Response::text(std::move(summary), kJsonContentType);
      }));
  CASCADE_TRY(router.add("GET", kApiBase + "/releases/{id}/events", Role::kViewer, [api](const Request& request) -> Result<Response> {
    const std::string& id = request.param("id");
    CASCADE_TRY(stream, api->log.read(engine::release_stream(id)));
    if (stream.empty()) return make_error(ErrorCode::kNotFound, "release '" + id + "' not found");
    json list = json::array();
    for (const events::RecordedEvent& event : stream) list.push_back(event_json(event));
    return Response::json({{"events", std::move(list)}});
  }));
  // The read-only audit commands over HTTP (audit_documents.hpp builds each
  // document for the CLI offline and for these routes alike), so a dashboard
  // or a script need not reach the data directory.
  auto audit_ports = [api]() {
    return AuditPorts{api->log, api->step_logs, api->projections.summaries()};
  };
  CASCADE_TRY(router.add("GET", kApiBase + "/releases/{id}/why", Role::kViewer, [audit_ports](const Request& request) -> Result<Response> {
    const std::optional<std::string> stage = request.query.get("stage");
    if (!stage || stage->empty()) {
      return invalid("stage: required, the name of the stage to explain (…/why?stage=NAME)",
                     {{"stage", "required"}});
    }
    CASCADE_TRY(document, why_document(audit_ports().log, request.param("id"), *stage));
    return Response::json(document);
  }));
  CASCADE_TRY(router.add("GET", kApiBase + "/releases/{id}/replay", Role::kViewer, [audit_ports](const Request& request) -> Result<Response> {
    ReplayRequest replay;
    replay.at = request.query.get("at").value_or("");
    const std::string verify = request.query.get("verify").value_or("false");
    if (verify != "true" && verify != "false") {
      return invalid("verify: expected true or false, got '" + verify + "'", {{"verify", "expected true or false"}});
    }
    replay.verify = verify == "true";
    CASCADE_TRY(document, replay_document(audit_ports(), request.param("id"), replay));
    return Response::json(document);
  }));
  CASCADE_TRY(router.add("GET", kApiBase + "/releases/{id}/audit", Role::kViewer, [audit_ports](const Request& request) -> Result<Response> {
    // The bundle `cascade audit export` writes, byte for byte, exported by
    // the caller. Held in memory to be sent whole (the transport has no
    // streamed bodies but event streams).
    std::ostringstream bundle;
    auto exported =
        export_bundle(audit_ports(), request.param("id"), bundle, engine::SystemClock().now(), request.user->name);
    if (!exported) return exported.error();
    return Response::text(std::move(bundle).str(), kJsonContentType);
  }));
  CASCADE_TRY(router.add(
      "GET", kApiBase + "/releases/{id}/stages/{stage}/logs", Role::kViewer, [api](const Request& request) -> Result<Response> {
        const std::string& id = request.param("id");
        const std::string& stage_name = request.param("stage");
        CASCADE_TRY(release, api->service.load(id));
        const engine::StageRecord* stage = release.find_stage(stage_name);
        const engine::StageDefinition* definition = release.definition.find_stage(stage_name);
        if (stage == nullptr || definition == nullptr) {
          return release.unknown_stage(stage_name);
        }
        int attempt = stage->attempt;
        if (auto text = request.query.get("attempt")) {
          CASCADE_TRY(value, parse_size("attempt", *text));
          attempt = static_cast<int>(value);
        }
        const std::string follow = request.query.get("follow").value_or("false");
        if (follow != "true" && follow != "false") {
          return invalid("follow: expected true or false, got '" + follow + "'", {{"follow", "expected true or false"}});
        }
        // Where to start: after the line a page's `next` or a stream's
        // Last-Event-ID names ("<step>:<line>").
        LogCursor from;
        std::optional<std::string> after = request.query.get("after");
        if (!after && follow == "true") {
          if (auto last = request.last_event_id()) after = std::string(*last);
        }
        if (after) {
          auto cursor = LogCursor::after(*after);
          if (!cursor) {
            return invalid("after: expected the '<step>:<line>' of a line (a page's next, or a stream event's id), got '" +
                               *after + "'",
                           {{"after", "expected <step>:<line>"}});
          }
          from = *cursor;
        }
        if (follow == "true") {
          // An event stream: the lines so far, paged as the client reads,
          // each new line, then `end`.
          if (attempt < 1 || attempt > stage->attempt) {
            return make_error(ErrorCode::kNotFound, "stage '" + stage_name + "' of release " + id + " has no attempt " +
                                                        std::to_string(attempt));
          }
          std::vector<std::string> step_names;
          for (const auto& step : definition->steps) step_names.push_back(step.name);
          auto stream = http::SseStream::create();
          auto next_page = api->log_follow.follow(std::make_shared<SseLineSink>(stream), id, stage_name, attempt,
                                                  std::move(step_names),
                                                  [api, id, stage_name, attempt]() -> Result<bool> {
                                                    CASCADE_TRY(now, api->service.load(id));
                                                    const engine::StageRecord* current = now.find_stage(stage_name);
                                                    return current == nullptr || current->attempt != attempt ||
                                                           engine::is_deployment_over(current->state());
                                                  },
                                                  from);
          std::weak_ptr<SseStream> weak = stream;
          stream->page_from([next_page = std::move(next_page), weak]() {
            auto more = next_page();
            if (more) return more.value();
            // A storage error: the stream ends and the client resumes from
            // its Last-Event-ID.
            if (auto stream = weak.lock()) stream->close();
            return false;
          });
          return Response::event_stream(stream);
        }
        std::size_t limit = kDefaultLogPage;
        if (auto text = request.query.get("limit")) {
          CASCADE_TRY(value, parse_size("limit", *text));
          if (value < 1 || value > kMaxLogPage) {
            return invalid("limit: expected 1 to " + std::to_string(kMaxLogPage) + " lines, got " + *text,
                           {{"limit", "expected 1 to " + std::to_string(kMaxLogPage)}});
          }
          limit = value;
        }
        // One page: lines from the cursor on, step after step. `next` names
        // the page's last line when the page is full (more may follow).
        json lines = json::array();
        LogCursor cursor = from;
        while (attempt > 0 && lines.size() < limit && static_cast<std::size_t>(cursor.step) < definition->steps.size()) {
          const std::size_t wanted = limit - lines.size();
          CASCADE_TRY(step_lines, api->step_logs.read_page({id, stage_name, attempt, cursor.step}, cursor.line, wanted));
          for (const engine::LogLine& line : step_lines) {
            lines.push_back({{"step", definition->steps[static_cast<std::size_t>(cursor.step)].name},
                             {"at", line.at},
                             {"stream", line.stream},
                             {"text", line.text}});
            ++cursor.line;
          }
          if (step_lines.size() == wanted) break;
          cursor = LogCursor{cursor.step + 1, 0};
        }
        json page{{"release", id}, {"stage", stage_name}, {"attempt", attempt}, {"lines", std::move(lines)}};
        if (page["lines"].size() == limit) page["next"] = cursor.id_of_previous();
        return Response::json(std::move(page));
      }));

  // ---- event stream
  CASCADE_TRY(router.add("GET", kApiBase + "/stream", Role::kViewer, [api](const Request& request) -> Result<Response> {
    std::optional<std::uint64_t> after;
    if (auto last = request.last_event_id()) {
      CASCADE_TRY(value, parse_size("Last-Event-ID", std::string(*last)));
      after = value;
    }
    auto stream = http::SseStream::create();
    CASCADE_TRY(api->events.subscribe(stream, after));
    return Response::event_stream(stream);
  }));
  return success();
}

}  // namespace cascade::adapters::http::api
