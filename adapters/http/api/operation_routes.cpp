#include "adapters/http/api/route_files.hpp"

#include "adapters/http/api/fields.hpp"
#include "adapters/http/errors.hpp"
#include "adapters/http/json_body.hpp"
#include "adapters/http/request.hpp"
#include "engine/audit.hpp"
#include "projections/release_summary.hpp"

#include <sstream>

namespace cascade::adapters::http::api {

using nlohmann::json;

Status add_operation_routes(Router& router, const RouteContextPtr& api) {
  // ---- probes, at the root (where probes look) and beside the rest of the API
  auto healthz = [](const Request&) -> Result<Response> { return Response::json({{"status", "ok"}}); };
  auto readyz = [api](const Request&) -> Result<Response> {
    json body{{"engine_started", api->started.load()}};
    bool ready = api->started.load();
    auto status = api->projections.status(api->log.head());
    json lags = json::object();
    if (!status) {
      ready = false;
    } else {
      for (const auto& projection : status.value()) {
        lags[projection.name] = projection.lag;
        if (projection.lag > api->options.max_ready_lag) ready = false;
      }
    }
    body["projection_lag"] = std::move(lags);
    // A log that cannot write makes the node unready: its commands would all
    // answer 503, and a load balancer should send them elsewhere.
    const Status writable = api->log.writable();
    body["log_writable"] = static_cast<bool>(writable);
    if (!writable) {
      ready = false;
      body["log_error"] = writable.error().message;
    }
    // Neither a quarantined release nor a failing reactor makes the node
    // unready: every node reads the same log, so taking this one out of a
    // load balancer would mend nothing. Counted here, where anyone may look;
    // which and why (release names, errors) only in the authenticated
    // GET /api/v1/health.
    body["quarantined"] = api->service.quarantine().size();
    json failing = json::array();
    if (api->reactor_status) {
      for (const engine::ReactorStatus& reactor : api->reactor_status()) {
        if (reactor.failing) failing.push_back(reactor.name);
      }
    }
    body["reactors_failing"] = std::move(failing);
    body["status"] = ready ? "ready" : "not ready";
    return Response::json(body, ready ? 200 : 503);
  };
  for (const std::string& base : {std::string(), kApiBase}) {
    CASCADE_TRY(router.add_public("GET", base + "/healthz", healthz));
    CASCADE_TRY(router.add_public("GET", base + "/readyz", readyz));
  }

  // ---- what an operator needs when a probe or an alert says something is wrong
  CASCADE_TRY(router.add("GET", kApiBase + "/health", Role::kViewer, [api](const Request&) -> Result<Response> {
    json quarantined = json::array();
    for (const engine::QuarantinedStream& entry : api->service.quarantine().list()) {
      quarantined.push_back({{"stream", entry.stream}, {"reason", entry.reason}, {"since", entry.since}});
    }
    json reactors = json::object();
    if (api->reactor_status) {
      for (const engine::ReactorStatus& reactor : api->reactor_status()) {
        reactors[reactor.name] = {{"position", reactor.position}, {"lag", reactor.lag}, {"errors", reactor.errors},
                                  {"failing", reactor.failing}, {"last_error", reactor.last_error}};
      }
    }
    const Status writable = api->log.writable();
    json body{{"head", api->log.head()}, {"log_writable", static_cast<bool>(writable)},
              {"quarantined", std::move(quarantined)}, {"reactors", std::move(reactors)}};
    if (!writable) body["log_error"] = writable.error().message;
    return Response::json(body);
  }));

  // ---- Prometheus
  auto prometheus = [api](const Request&) -> Result<Response> {
    std::ostringstream out;
    out << (api->metrics ? api->metrics->render() : std::string());
    const std::uint64_t head = api->log.head();
    out << "# HELP cascade_events_appended Events in the log (the position of its head).\n"
        << "# TYPE cascade_events_appended gauge\n"
        << "cascade_events_appended " << head << "\n";
    out << "# HELP cascade_event_streams Open event streams.\n"
        << "# TYPE cascade_event_streams gauge\n"
        << "cascade_event_streams " << api->events.subscribers() << "\n";
    if (auto status = api->projections.status(head)) {
      out << "# HELP cascade_projection_lag Events a projection is behind the log's head.\n"
          << "# TYPE cascade_projection_lag gauge\n";
      for (const auto& projection : status.value()) {
        out << "cascade_projection_lag{projection=\"" << projection.name << "\"} " << projection.lag << "\n";
      }
    }
    out << "# HELP cascade_log_writable 1 while the event log accepts appends; 0 once a write failed (a full or "
           "failing disk): commands answer 503 until serve restarts.\n"
        << "# TYPE cascade_log_writable gauge\n"
        << "cascade_log_writable " << (api->log.writable() ? 1 : 0) << "\n";
    out << "# HELP cascade_quarantined_streams Streams (releases) whose stored history failed verification or "
           "decoding: they answer data_loss until repaired offline (GET /api/v1/health says which and why).\n"
        << "# TYPE cascade_quarantined_streams gauge\n"
        << "cascade_quarantined_streams " << api->service.quarantine().size() << "\n";
    if (api->reactor_status) {
      const std::vector<engine::ReactorStatus> reactors = api->reactor_status();
      out << "# HELP cascade_reactor_lag Events between a reactor and the log's head.\n"
          << "# TYPE cascade_reactor_lag gauge\n";
      for (const auto& reactor : reactors) {
        out << "cascade_reactor_lag{reactor=\"" << reactor.name << "\"} " << reactor.lag << "\n";
      }
      out << "# HELP cascade_reactor_errors_total Batches a reactor failed to handle (retried); the last error is in "
             "GET /api/v1/health.\n"
          << "# TYPE cascade_reactor_errors_total counter\n";
      for (const auto& reactor : reactors) {
        out << "cascade_reactor_errors_total{reactor=\"" << reactor.name << "\"} " << reactor.errors << "\n";
      }
      out << "# HELP cascade_reactor_failing 1 while a reactor's last batch failed and waits for a retry.\n"
          << "# TYPE cascade_reactor_failing gauge\n";
      for (const auto& reactor : reactors) {
        out << "cascade_reactor_failing{reactor=\"" << reactor.name << "\"} " << (reactor.failing ? 1 : 0) << "\n";
      }
    }
    return Response::text(out.str(), metrics::kMetricsContentType);
  };
  // Where Prometheus looks by default, and beside the rest of the API.
  CASCADE_TRY(router.add("GET", "/metrics", Role::kViewer, prometheus));
  CASCADE_TRY(router.add("GET", kApiBase + "/metrics", Role::kViewer, prometheus));
  // ---- what the dashboard needs: who is signed in, the audit check, its files
  CASCADE_TRY(router.add("GET", kApiBase + "/me", Role::kViewer, [](const Request& request) -> Result<Response> {
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
  CASCADE_TRY(router.add("GET", kApiBase + "/releases/{id}/verify", Role::kViewer, [api](const Request& request) -> Result<Response> {
    // The checks of `cascade replay --verify`, on the live store. The summary
    // is read before the events, so the events cover every version it reflects.
    const std::string& id = request.param("id");
    std::optional<engine::StoredSummary> stored;
    if (auto text = api->projections.summaries().summary(id)) {
      const json summary = json::parse(text.value(), nullptr, false);
      stored = engine::StoredSummary{text.value(), summary.is_object() ? summary.value("version", std::int64_t{0}) : 0};
    } else if (text.error().code != ErrorCode::kNotFound) {
      return text.error();
    }
    CASCADE_TRY(evidence, engine::collect_evidence(api->log, api->step_logs, id));
    evidence.summary = std::move(stored);
    const engine::Verification verification = engine::verify(
        evidence, [](const engine::ReleaseState& state) { return projections::summarize(state).dump(); });
    json body = engine::to_json(verification);
    body["release"] = id;
    return Response::json(body);
  }));
  return success();
}

}  // namespace cascade::adapters::http::api
