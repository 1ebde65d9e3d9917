#include "adapters/http/api/routes.hpp"

#include "adapters/http/errors.hpp"
#include "adapters/http/json_body.hpp"
#include "adapters/http/request.hpp"
#include "engine/audit.hpp"
#include "engine/release.hpp"
#include "projections/release_summary.hpp"
#include "adapters/http/api/dashboard_routes.hpp"
#include "adapters/http/api/event_json.hpp"

#include <chrono>
#include <algorithm>
#include <map>
#include <set>
#include <tuple>
#include <sstream>

namespace cascade::tools {

namespace http = adapters::http;
using nlohmann::json;
using http::api::event_json;
using http::api::parse_utc_time;

// ---- EventHub ----------------------------------------------------------------

Result<std::uint64_t> EventHub::resume_position() {
  std::lock_guard<std::mutex> lock(mutex_);
  delivered_ = log_.head();
  return delivered_;
}

bool send_event(http::SseStream& stream, const events::RecordedEvent& event) {
  return stream.send(std::to_string(event.position), events::type_name(event.data), event_json(event).dump());
}

Status EventHub::handle(const std::vector<events::RecordedEvent>& batch) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const events::RecordedEvent& event : batch) {
    if (event.position <= delivered_) continue;  // a retried batch
    for (auto it = subscribers_.begin(); it != subscribers_.end();) {
      if (event.position <= it->after || send_event(*it->stream, event)) {
        ++it;
      } else {
        it = subscribers_.erase(it);
      }
    }
    delivered_ = event.position;
  }
  return outcome::success();
}

Status EventHub::subscribe(std::shared_ptr<http::SseStream> stream, std::optional<std::uint64_t> after) {
  constexpr std::size_t kChunk = 256;
  if (after) {
    // Most of the backlog outside the lock, so live delivery does not wait.
    std::uint64_t position = *after;
    for (;;) {
      std::uint64_t delivered;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        delivered = delivered_;
      }
      if (position + kChunk >= delivered) break;
      CASCADE_TRY(events, log_.read_all(position + 1, kChunk));
      if (events.empty()) break;
      for (const events::RecordedEvent& event : events) {
        if (!send_event(*stream, event)) return outcome::success();
        position = event.position;
      }
    }
    std::lock_guard<std::mutex> lock(mutex_);
    while (position < delivered_) {
      CASCADE_TRY(events, log_.read_all(position + 1, kChunk));
      if (events.empty()) break;
      for (const events::RecordedEvent& event : events) {
        if (event.position > delivered_) break;
        if (!send_event(*stream, event)) return outcome::success();
        position = event.position;
      }
    }
    subscribers_.push_back({std::move(stream), position});
    return outcome::success();
  }
  std::lock_guard<std::mutex> lock(mutex_);
  subscribers_.push_back({std::move(stream), 0});
  return outcome::success();
}

void EventHub::close_all() {
  std::vector<Subscriber> subscribers;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    subscribers.swap(subscribers_);
  }
  for (Subscriber& subscriber : subscribers) subscriber.stream->close();
}

std::size_t EventHub::subscribers() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return subscribers_.size();
}

// ---- helpers -----------------------------------------------------------------

namespace {

Error invalid(std::string message, std::vector<Problem> details = {}) {
  return make_error(ErrorCode::kInvalidArgument, std::move(message), std::move(details));
}

engine::Invocation invocation(const http::Request& request) {
  std::string key;
  if (auto header = request.header("Idempotency-Key")) key = std::string(*header);
  if (!request.user) return engine::Invocation{"", key, ""};
  return engine::Invocation{request.user->name, key, "", request.user->groups};
}

Result<std::size_t> parse_size(const std::string& name, const std::string& text) {
  std::size_t value = 0;
  if (text.empty() || text.size() > 9) return invalid(name + ": expected a positive integer, got '" + text + "'");
  for (char c : text) {
    if (c < '0' || c > '9') return invalid(name + ": expected a positive integer, got '" + text + "'");
    value = value * 10 + static_cast<std::size_t>(c - '0');
  }
  return value;
}

// A pipeline version from the query: ?from=3.
Result<std::int64_t> required_version(const http::Request& request, const std::string& name) {
  auto text = request.query.get(name);
  if (!text) return invalid(name + ": required", {{name, "required"}});
  CASCADE_TRY(value, parse_size(name, *text));
  return static_cast<std::int64_t>(value);
}

// A time from the query: RFC 3339 UTC or milliseconds since the epoch.
Result<events::Timestamp> query_time(const std::string& name, const std::string& text) {
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos && text.size() <= 15) {
    return static_cast<events::Timestamp>(std::stoll(text));
  }
  auto at = parse_utc_time(text);
  if (!at) return invalid(name + ": " + at.error().message, {{name, at.error().message}});
  return at.value();
}

// Reads an optional string field; a problem when present but not a string.
std::string string_field(const json& object, const std::string& field, const std::string& path,
                         std::vector<Problem>& problems, bool required = false) {
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) {
    if (required) problems.push_back({path, "required"});
    return "";
  }
  if (!it->is_string()) {
    problems.push_back({path, "must be a string"});
    return "";
  }
  if (required && it->get<std::string>().empty()) problems.push_back({path, "must not be empty"});
  return it->get<std::string>();
}

std::map<std::string, std::string> string_map(const json& object, const std::string& field,
                                              std::vector<Problem>& problems) {
  std::map<std::string, std::string> out;
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return out;
  if (!it->is_object()) {
    problems.push_back({field, "must be an object of strings"});
    return out;
  }
  for (const auto& item : it->items()) {
    if (!item.value().is_string()) {
      problems.push_back({field + "." + item.key(), "must be a string"});
      continue;
    }
    out[item.key()] = item.value().get<std::string>();
  }
  return out;
}

Status check_problems(std::vector<Problem> problems) {
  if (problems.empty()) return outcome::success();
  std::string message = problems.front().path + ": " + problems.front().message;
  if (problems.size() > 1) message += " (and " + std::to_string(problems.size() - 1) + " more)";
  return invalid(std::move(message), std::move(problems));
}

// The body as an object with `allowed` fields; an empty body is {}.
Result<json> optional_object(const http::Request& request, const std::vector<std::string_view>& allowed) {
  if (request.body.find_first_not_of(" \t\r\n") == std::string::npos) return json::object();
  return http::parse_json_object(request.body, allowed);
}

// What a command answers: the release's state right after it.
json command_answer(const engine::ReleaseState& state, const std::string& stage_name) {
  json answer{{"id", state.id},
              {"name", state.name},
              {"status", std::string(engine::to_string(engine::release_status(state)))},
              {"version", state.version}};
  if (const engine::StageRecord* stage = state.find_stage(stage_name)) {
    json stage_json{{"name", stage->name},
                    {"state", std::string(engine::to_string(stage->state()))},
                    {"attempt", stage->attempt}};
    json approvals = json::array();
    for (const engine::ApprovalRecord& record : stage->approvals) {
      approvals.push_back({{"phase", record.phase},
                           {"approver", record.approver},
                           {"on_behalf_of", record.on_behalf_of},
                           {"decision", record.decision},
                           {"override", record.override},
                           {"comment", record.comment},
                           {"at", record.at}});
    }
    stage_json["approvals"] = std::move(approvals);
    answer["stage"] = std::move(stage_json);
  }
  return answer;
}

// How long a read waits for the summary of a release created a moment ago.
constexpr std::chrono::milliseconds kReadYourWritesTimeout{1000};

// The stored summary document, as JSON text.
Result<std::string> summary_of(adapters::Runtime& runtime, const std::string& release_id) {
  auto text = runtime.summaries().summary(release_id);
  if (text || text.error().code != ErrorCode::kNotFound) return text;
  // A release created a moment ago may not be summarised yet: wait until the
  // summary projection reflects the release's creation.
  CASCADE_TRY(created, runtime.log().read(engine::release_stream(release_id), 1, 1));
  if (created.empty()) {
    CASCADE_TRY(state, runtime.service().load(release_id));  // kNotFound for an unknown release
    (void)state;
    return text;
  }
  CASCADE_TRY(reached, runtime.summaries().wait_for(created.front().position, kReadYourWritesTimeout));
  (void)reached;  // if not, the summary is still missing: kNotFound
  return runtime.summaries().summary(release_id);
}

const std::string kJsonContentType = "application/json";

// Counts a command's outcome ("ok" or the error code) in
// cascade_commands_total{command,outcome}, when the server keeps metrics.
template <class T>
Result<T> counted(adapters::metrics::CounterFamily* commands, std::string_view command, Result<T> result) {
  if (commands != nullptr) {
    commands->with({std::string(command), result ? std::string("ok") : std::string(to_string(result.error().code))}).inc();
  }
  return result;
}

// A step log followed onto an event stream: each line a frame `event: line`
// (data {"step","at","stream","text"}), then `event: end` (data {"release",
// "stage","attempt"}) and the stream closes.
class SseLineSink final : public adapters::LineSink {
 public:
  explicit SseLineSink(std::shared_ptr<http::SseStream> stream) : stream_(std::move(stream)) {}
  bool line(const std::string& step, const engine::LogLine& line) override {
    return stream_->send("", "line",
                         json{{"step", step}, {"at", line.at}, {"stream", line.stream}, {"text", line.text}}.dump());
  }
  void end(const std::string& release_id, const std::string& stage, int attempt) override {
    stream_->send("", "end", json{{"release", release_id}, {"stage", stage}, {"attempt", attempt}}.dump());
    stream_->close();
  }
  bool closed() const override { return stream_->closed(); }

 private:
  std::shared_ptr<http::SseStream> stream_;
};

events::Timestamp now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// ---- routes ------------------------------------------------------------------

Result<http::Router> make_api_router(adapters::Runtime& runtime, EventHub& hub, std::shared_ptr<adapters::metrics::MetricsRegistry> metrics,
                                     const std::atomic<bool>& started, ApiOptions options) {
  using http::Request;
  using http::Response;
  using http::Role;
  http::Router router;
  adapters::Runtime* rt = &runtime;
  const std::atomic<bool>* is_started = &started;
  const std::string base = "/api/v1";
  adapters::metrics::CounterFamily* commands = nullptr;
  if (metrics) {
    CASCADE_TRY(family, metrics->counter("cascade_commands_total",
                                         "Commands received over the API, by command and outcome (ok or the error code).",
                                         {"command", "outcome"}));
    commands = family;
  }

  // ---- probes
  CASCADE_TRY(router.add_public("GET", base + "/healthz", [](const Request&) -> Result<Response> {
    return Response::json({{"status", "ok"}});
  }));
  CASCADE_TRY(router.add_public("GET", base + "/readyz", [rt, is_started, options](const Request&) -> Result<Response> {
    json body{{"engine_started", is_started->load()}};
    bool ready = is_started->load();
    auto status = rt->projections().status(rt->log().head());
    json lags = json::object();
    if (!status) {
      ready = false;
    } else {
      for (const auto& projection : status.value()) {
        lags[projection.name] = projection.lag;
        if (projection.lag > options.max_ready_lag) ready = false;
      }
    }
    body["projection_lag"] = std::move(lags);
    body["status"] = ready ? "ready" : "not ready";
    return Response::json(body, ready ? 200 : 503);
  }));

  // ---- pipelines
  CASCADE_TRY(router.add("GET", base + "/pipelines", Role::kViewer, [rt](const Request&) -> Result<Response> {
    CASCADE_TRY(latest, rt->projections().pipelines().latest_versions());
    json list = json::array();
    for (const projections::PipelineVersion& version : latest) {
      list.push_back({{"name", version.pipeline},
                      {"version", version.version},
                      {"defined_at", version.defined_at},
                      {"actor", version.actor}});
    }
    return Response::json({{"pipelines", std::move(list)}});
  }));
  CASCADE_TRY(router.add("GET", base + "/pipelines/{name}", Role::kViewer, [rt](const Request& request) -> Result<Response> {
    CASCADE_TRY(stored, rt->service().load_pipeline(request.param("name")));
    return Response::json(
        {{"name", stored.definition.name}, {"version", stored.version}, {"definition", engine::to_json(stored.definition)}});
  }));
  CASCADE_TRY(router.add("PUT", base + "/pipelines/{name}", Role::kAdmin, [rt, commands](const Request& request) -> Result<Response> {
    CASCADE_TRY(document, http::parse_json_body(request.body));
    if (document.is_object()) {
      auto name = document.find("name");
      if (name != document.end() && name->is_string() && name->get<std::string>() != request.param("name")) {
        return invalid("the pipeline's name '" + name->get<std::string>() + "' differs from the path's '" +
                           request.param("name") + "'",
                       {{"name", "must equal the name in the path"}});
      }
    }
    auto definition = engine::parse_pipeline(document);
    if (!definition) return http::error_response(definition.error(), http::InvalidArgumentAs::kUnprocessableEntity);
    if (definition.value().name != request.param("name")) {
      return invalid("the pipeline's name differs from the path's '" + request.param("name") + "'",
                     {{"name", "must equal the name in the path"}});
    }
    CASCADE_TRY(version, (counted(commands, "ApplyPipeline",
                                         rt->service().apply_pipeline(definition.value(), request.user->name))));
    return Response::json({{"name", definition.value().name}, {"version", version}});
  }));
  CASCADE_TRY(router.add("GET", base + "/pipelines/{name}/versions", Role::kViewer,
                         [rt](const Request& request) -> Result<Response> {
                           CASCADE_TRY(versions, rt->projections().pipelines().versions(request.param("name")));
                           json list = json::array();
                           for (const auto& version : versions) list.push_back(projections::to_json(version));
                           return Response::json({{"versions", std::move(list)}});
                         }));
  CASCADE_TRY(router.add("GET", base + "/pipelines/{name}/diff", Role::kViewer,
                         [rt](const Request& request) -> Result<Response> {
                           CASCADE_TRY(from, required_version(request, "from"));
                           CASCADE_TRY(to, required_version(request, "to"));
                           const std::string& name = request.param("name");
                           CASCADE_TRY(changes, rt->projections().pipelines().diff(name, from, to));
                           json list = json::array();
                           for (const auto& change : changes) list.push_back(projections::to_json(change));
                           return Response::json({{"pipeline", name}, {"from", from}, {"to", to}, {"changes", std::move(list)}});
                         }));

  // ---- releases
  CASCADE_TRY(router.add("POST", base + "/releases", Role::kReleaser, [rt, commands](const Request& request) -> Result<Response> {
    CASCADE_TRY(body, http::parse_json_object(request.body, {"pipeline", "artifact", "variables", "secrets"}));
    std::vector<Problem> problems;
    engine::NewRelease release;
    release.pipeline = string_field(body, "pipeline", "pipeline", problems, true);
    auto artifact = body.find("artifact");
    if (artifact == body.end() || !artifact->is_object()) {
      problems.push_back({"artifact", "required: an object with version and path"});
    } else {
      auto fields = http::check_fields(*artifact, {"version", "path", "built_at"}, "artifact");
      if (!fields) {
        for (const Problem& problem : fields.error().details) problems.push_back(problem);
      }
      release.artifact.version = string_field(*artifact, "version", "artifact.version", problems, true);
      release.artifact.path = string_field(*artifact, "path", "artifact.path", problems, true);
      if (!release.artifact.path.empty() && release.artifact.path.front() != '/') {
        problems.push_back({"artifact.path", "must be an absolute path on the server"});
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
    CASCADE_TRY(id, (counted(commands, "CreateRelease", rt->service().create_release(release, invocation(request)))));
    CASCADE_TRY(state, rt->service().load(id));
    Response response = Response::json({{"id", id}, {"name", state.name}}, 201);
    response.headers.emplace_back("Location", "/api/v1/releases/" + id);
    return response;
  }));
  CASCADE_TRY(router.add("GET", base + "/releases", Role::kViewer, [rt](const Request& request) -> Result<Response> {
    projections::ReleaseQuery query;
    query.pipeline = request.query.get("pipeline").value_or("");
    query.status = request.query.get("status").value_or("");
    query.cursor = request.query.get("cursor").value_or("");
    if (auto limit = request.query.get("limit")) {
      CASCADE_TRY(value, parse_size("limit", *limit));
      query.limit = value;
    }
    CASCADE_TRY(page, rt->projections().releases().list(query));
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
      "GET", base + "/releases/{id}", Role::kViewer,
      [rt](const Request& request) -> std::optional<Result<Response>> {
        auto text = rt->summaries().summary(request.param("id"));
        if (!text) return std::nullopt;
        return Result<Response>(Response::text(std::move(text).value(), kJsonContentType));
      },
      [rt](const Request& request) -> Result<Response> {
        CASCADE_TRY(summary, summary_of(*rt, request.param("id")));
        return Response::text(std::move(summary), kJsonContentType);
      }));
  CASCADE_TRY(router.add("GET", base + "/releases/{id}/events", Role::kViewer, [rt](const Request& request) -> Result<Response> {
    const std::string& id = request.param("id");
    CASCADE_TRY(stream, rt->log().read(engine::release_stream(id)));
    if (stream.empty()) return make_error(ErrorCode::kNotFound, "release '" + id + "' not found");
    json list = json::array();
    for (const events::RecordedEvent& event : stream) list.push_back(event_json(event));
    return Response::json({{"events", std::move(list)}});
  }));
  CASCADE_TRY(router.add(
      "GET", base + "/releases/{id}/stages/{stage}/logs", Role::kViewer, [rt](const Request& request) -> Result<Response> {
        const std::string& id = request.param("id");
        const std::string& stage_name = request.param("stage");
        CASCADE_TRY(release, rt->service().load(id));
        const engine::StageRecord* stage = release.find_stage(stage_name);
        const engine::StageDefinition* definition = release.definition.find_stage(stage_name);
        if (stage == nullptr || definition == nullptr) {
          return make_error(ErrorCode::kNotFound, "release " + id + " has no stage '" + stage_name + "'");
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
        if (follow == "true") {
          // An event stream: the lines so far, each new line, then `end`.
          if (attempt < 1 || attempt > stage->attempt) {
            return make_error(ErrorCode::kNotFound, "stage '" + stage_name + "' of release " + id + " has no attempt " +
                                                        std::to_string(attempt));
          }
          std::vector<std::string> step_names;
          for (const auto& step : definition->steps) step_names.push_back(step.name);
          auto stream = http::SseStream::create();
          CASCADE_TRY(rt->log_follow().follow(std::make_shared<SseLineSink>(stream), id, stage_name, attempt,
                                              std::move(step_names),
                                              [rt, id, stage_name, attempt]() -> Result<bool> {
                                                CASCADE_TRY(now, rt->service().load(id));
                                                const engine::StageRecord* current = now.find_stage(stage_name);
                                                return current == nullptr || current->attempt != attempt ||
                                                       engine::is_deployment_over(current->state());
                                              }));
          return Response::event_stream(stream);
        }
        json lines = json::array();
        for (std::size_t i = 0; attempt > 0 && i < definition->steps.size(); ++i) {
          CASCADE_TRY(step_lines, rt->step_logs().read({id, stage_name, attempt, static_cast<int>(i)}));
          for (const engine::LogLine& line : step_lines) {
            lines.push_back(
                {{"step", definition->steps[i].name}, {"at", line.at}, {"stream", line.stream}, {"text", line.text}});
          }
        }
        return Response::json({{"release", id}, {"stage", stage_name}, {"attempt", attempt}, {"lines", std::move(lines)}});
      }));

  auto execute = [rt, commands](const Request& request, std::string_view name, const engine::Command& command,
                                const std::string& stage) -> Result<Response> {
    CASCADE_TRY(state, (counted(commands, name, rt->service().execute(request.param("id"), command, invocation(request)))));
    return Response::json(command_answer(state, stage));
  };
  CASCADE_TRY(router.add("POST", base + "/releases/{id}/stages/{stage}/approvals", Role::kApprover,
                         [execute](const Request& request) -> Result<Response> {
                           CASCADE_TRY(body, http::parse_json_object(request.body, {"decision", "comment", "defer_until", "override"}));
                           std::vector<Problem> problems;
                           const std::string decision = string_field(body, "decision", "decision", problems, true);
                           const std::string comment = string_field(body, "comment", "comment", problems);
                           if (!decision.empty() && decision != "approve" && decision != "reject") {
                             problems.push_back({"decision", "must be 'approve' or 'reject'"});
                           }
                           events::Timestamp defer_until = 0;
                           auto defer = body.find("defer_until");
                           if (defer != body.end() && !defer->is_null()) {
                             if (decision == "reject") {
                               problems.push_back({"defer_until", "only an approval can defer the deployment"});
                             } else if (defer->is_number_integer()) {
                               defer_until = defer->get<events::Timestamp>();
                             } else if (defer->is_string()) {
                               auto at = parse_utc_time(defer->get<std::string>());
                               if (at) {
                                 defer_until = at.value();
                               } else {
                                 problems.push_back({"defer_until", at.error().message});
                               }
                             } else {
                               problems.push_back({"defer_until", "must be an RFC 3339 UTC time or milliseconds since the epoch"});
                             }
                           }
                           bool override = false;
                           auto override_field = body.find("override");
                           if (override_field != body.end() && !override_field->is_null()) {
                             if (override_field->is_boolean()) {
                               override = override_field->get<bool>();
                             } else {
                               problems.push_back({"override", "must be true or false"});
                             }
                           }
                           CASCADE_TRY(check_problems(std::move(problems)));
                           if (override && !request.user->has_role(Role::kAdmin)) {
                             return make_error(ErrorCode::kPermissionDenied,
                                               "'" + request.user->name + "' may not override an approval: that needs the admin role");
                           }
                           const std::string& stage = request.param("stage");
                           if (decision == "approve") {
                             return execute(request, override ? "approve override" : "approve",
                                            engine::ApproveStage{stage, comment, defer_until, override}, stage);
                           }
                           return execute(request, override ? "reject override" : "reject",
                                          engine::RejectStage{stage, comment, override}, stage);
                         }));
  CASCADE_TRY(router.add("POST", base + "/releases/{id}/stages/{stage}/deploy", Role::kReleaser,
                         [execute](const Request& request) -> Result<Response> {
                           CASCADE_TRY(body, optional_object(request, {}));
                           (void)body;
                           return execute(request, "deploy", engine::DeployStage{request.param("stage")}, request.param("stage"));
                         }));
  CASCADE_TRY(router.add("POST", base + "/releases/{id}/stages/{stage}/redeploy", Role::kReleaser,
                         [execute](const Request& request) -> Result<Response> {
                           CASCADE_TRY(body, optional_object(request, {"reason"}));
                           std::vector<Problem> problems;
                           const std::string reason = string_field(body, "reason", "reason", problems);
                           CASCADE_TRY(check_problems(std::move(problems)));
                           return execute(request, "redeploy", engine::RedeployStage{request.param("stage"), reason}, request.param("stage"));
                         }));
  CASCADE_TRY(router.add("POST", base + "/releases/{id}/stages/{stage}/cancel", Role::kReleaser,
                         [execute](const Request& request) -> Result<Response> {
                           CASCADE_TRY(body, optional_object(request, {"reason"}));
                           std::vector<Problem> problems;
                           const std::string reason = string_field(body, "reason", "reason", problems);
                           CASCADE_TRY(check_problems(std::move(problems)));
                           return execute(request, "cancel", engine::CancelStage{request.param("stage"), reason}, request.param("stage"));
                         }));
  CASCADE_TRY(router.add("POST", base + "/releases/{id}/abandon", Role::kReleaser,
                         [execute](const Request& request) -> Result<Response> {
                           CASCADE_TRY(body, optional_object(request, {"reason"}));
                           std::vector<Problem> problems;
                           const std::string reason = string_field(body, "reason", "reason", problems);
                           CASCADE_TRY(check_problems(std::move(problems)));
                           return execute(request, "abandon", engine::AbandonRelease{reason}, "");
                         }));

  // ---- read models
  CASCADE_TRY(router.add("GET", base + "/approvals", Role::kViewer, [rt](const Request& request) -> Result<Response> {
    // The caller's own inbox (their name and the pipeline groups they are a
    // member of), or one group's with ?group=.
    auto& inbox = rt->projections().approvals();
    if (auto group = request.query.get("group")) {
      if (group->empty()) return invalid("group: must not be empty", {{"group", "must not be empty"}});
      CASCADE_TRY(items, inbox.group_inbox(*group));
      return Response::json({{"group", *group}, {"approvals", items}});
    }
    // And what waits for the groups the credential names, each item once.
    CASCADE_TRY(items, inbox.inbox_of(request.user->name, request.user->groups));
    return Response::json({{"user", request.user->name}, {"approvals", items}});
  }));
  CASCADE_TRY(router.add("GET", base + "/environments", Role::kViewer, [rt](const Request& request) -> Result<Response> {
    CASCADE_TRY(items, rt->projections().environments().environments(request.query.get("pipeline").value_or("")));
    return Response::json({{"environments", items}});
  }));
  CASCADE_TRY(router.add("GET", base + "/environments/{pipeline}/{stage}", Role::kViewer,
                         [rt](const Request& request) -> Result<Response> {
                           const auto& environments = rt->projections().environments();
                           const std::string& pipeline = request.param("pipeline");
                           const std::string& stage = request.param("stage");
                           CASCADE_TRY(environment, environments.environment(pipeline, stage));
                           std::size_t limit = projections::EnvironmentProjection::kDefaultLimit;
                           if (auto text = request.query.get("limit")) {
                             CASCADE_TRY(value, parse_size("limit", *text));
                             limit = value;
                           }
                           CASCADE_TRY(page, environments.history(pipeline, stage, limit,
                                                                  request.query.get("cursor").value_or("")));
                           return Response::json({{"environment", std::move(environment)},
                                                  {"history", std::move(page.deployments)},
                                                  {"next_cursor", page.next_cursor ? json(*page.next_cursor) : json(nullptr)}});
                         }));
  CASCADE_TRY(router.add("GET", base + "/metrics/delivery", Role::kViewer, [rt](const Request& request) -> Result<Response> {
    auto pipeline = request.query.get("pipeline");
    if (!pipeline || pipeline->empty()) return invalid("pipeline: required", {{"pipeline", "required"}});
    // The window: ?from=&to= (RFC 3339 UTC or milliseconds since the epoch;
    // `to` defaults to now), or the last ?days= (default 30) before `to`.
    events::Timestamp to = now_ms();
    if (auto text = request.query.get("to")) {
      CASCADE_TRY(value, query_time("to", *text));
      to = value;
    }
    events::Timestamp from = 0;
    if (auto text = request.query.get("from")) {
      if (request.query.get("days")) return invalid("days: give either from or days", {{"days", "conflicts with from"}});
      CASCADE_TRY(value, query_time("from", *text));
      from = value;
    } else {
      std::size_t days = 30;
      if (auto text = request.query.get("days")) {
        CASCADE_TRY(value, parse_size("days", *text));
        days = value;
      }
      from = to - static_cast<events::Timestamp>(days) * 86'400'000;
    }
    if (from >= to) return invalid("from: must be before to", {{"from", "must be before to"}});
    CASCADE_TRY(figures, rt->projections().delivery_metrics().pipeline_metrics(*pipeline, from, to));
    json list = json::array();
    for (const auto& stage : figures) list.push_back(projections::to_json(stage));
    return Response::json({{"pipeline", *pipeline}, {"from", from}, {"to", to}, {"stages", std::move(list)}});
  }));

  // ---- event stream
  CASCADE_TRY(router.add("GET", base + "/stream", Role::kViewer, [&hub](const Request& request) -> Result<Response> {
    std::optional<std::uint64_t> after;
    if (auto last = request.last_event_id()) {
      CASCADE_TRY(value, parse_size("Last-Event-ID", std::string(*last)));
      after = value;
    }
    auto stream = http::SseStream::create();
    CASCADE_TRY(hub.subscribe(stream, after));
    return Response::event_stream(stream);
  }));

  // ---- Prometheus
  auto prometheus = [rt, metrics, &hub](const Request&) -> Result<Response> {
    std::ostringstream out;
    out << (metrics ? metrics->render() : std::string());
    const std::uint64_t head = rt->log().head();
    out << "# HELP cascade_events_appended Events in the log (the position of its head).\n"
        << "# TYPE cascade_events_appended gauge\n"
        << "cascade_events_appended " << head << "\n";
    out << "# HELP cascade_event_streams Open event streams.\n"
        << "# TYPE cascade_event_streams gauge\n"
        << "cascade_event_streams " << hub.subscribers() << "\n";
    if (auto status = rt->projections().status(head)) {
      out << "# HELP cascade_projection_lag Events a projection is behind the log's head.\n"
          << "# TYPE cascade_projection_lag gauge\n";
      for (const auto& projection : status.value()) {
        out << "cascade_projection_lag{projection=\"" << projection.name << "\"} " << projection.lag << "\n";
      }
    }
    return Response::text(out.str(), adapters::metrics::kMetricsContentType);
  };
  // Where Prometheus looks by default, and beside the rest of the API.
  CASCADE_TRY(router.add("GET", "/metrics", Role::kViewer, prometheus));
  CASCADE_TRY(router.add("GET", base + "/metrics", Role::kViewer, prometheus));
  // ---- what the dashboard needs: who is signed in, the audit check, its files
  CASCADE_TRY(router.add("GET", base + "/me", Role::kViewer, [](const Request& request) -> Result<Response> {
    Role highest = Role::kViewer;
    json roles = json::array();
    for (Role role : request.user->roles) {
      roles.push_back(std::string(http::to_string(role)));
      if (role > highest) highest = role;
    }
    return Response::json({{"name", request.user->name},
                           {"role", std::string(http::to_string(highest))},
                           {"roles", std::move(roles)},
                           {"groups", request.user->groups}});
  }));
  CASCADE_TRY(router.add("GET", base + "/releases/{id}/verify", Role::kViewer, [rt](const Request& request) -> Result<Response> {
    // The checks of `cascade replay --verify`, on the live store. The summary
    // is read before the events, so the events cover every version it reflects.
    const std::string& id = request.param("id");
    std::optional<engine::StoredSummary> stored;
    if (auto text = rt->summaries().summary(id)) {
      const json summary = json::parse(text.value(), nullptr, false);
      stored = engine::StoredSummary{text.value(), summary.is_object() ? summary.value("version", std::int64_t{0}) : 0};
    } else if (text.error().code != ErrorCode::kNotFound) {
      return text.error();
    }
    CASCADE_TRY(evidence, engine::collect_evidence(rt->log(), rt->step_logs(), id));
    evidence.summary = std::move(stored);
    const engine::Verification verification = engine::verify(
        evidence, [](const engine::ReleaseState& state) { return projections::summarize(state).dump(); });
    json body = engine::to_json(verification);
    body["release"] = id;
    return Response::json(body);
  }));
  CASCADE_TRY(add_dashboard_routes(router));
  return router;
}

}  // namespace cascade::tools
