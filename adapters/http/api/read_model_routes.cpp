#include "adapters/http/api/route_files.hpp"

#include "adapters/http/api/fields.hpp"
#include "adapters/http/errors.hpp"
#include "adapters/http/json_body.hpp"
#include "adapters/http/request.hpp"
#include "projections/approval_inbox.hpp"
#include "projections/delivery_metrics.hpp"
#include "projections/environments.hpp"

namespace cascade::adapters::http::api {

using nlohmann::json;

Status add_read_model_routes(Router& router, const RouteContextPtr& api) {
  CASCADE_TRY(router.add("GET", kApiBase + "/approvals", Role::kViewer, [api](const Request& request) -> Result<Response> {
    // The caller's own inbox (their name and the pipeline groups they are a
    // member of), or one group's with ?group=.
    auto& inbox = api->projections.approvals();
    if (auto all = request.query.get("all")) {
      // Every pending approval, whoever it waits for: administrators only.
      if (*all != "true" && *all != "false") return invalid("all: must be true or false", {{"all", "must be true or false"}});
      if (*all == "true") {
        if (request.query.get("group")) return invalid("all: give either all or group", {{"all", "conflicts with group"}});
        if (!request.user->has_role(Role::kAdmin)) {
          return make_error(ErrorCode::kPermissionDenied, "every pending approval: " + request.user->missing_role(Role::kAdmin));
        }
        CASCADE_TRY(items, inbox.all_pending());
        return Response::json({{"all", true}, {"approvals", items}});
      }
    }
    if (auto group = request.query.get("group")) {
      if (group->empty()) return invalid("group: must not be empty", {{"group", "must not be empty"}});
      CASCADE_TRY(items, inbox.group_inbox(*group));
      return Response::json({{"group", *group}, {"approvals", items}});
    }
    // And what waits for the groups the credential names, each item once.
    CASCADE_TRY(items, inbox.inbox_of(request.user->name, request.user->groups));
    return Response::json({{"user", request.user->name}, {"approvals", items}});
  }));
  CASCADE_TRY(router.add("GET", kApiBase + "/environments", Role::kViewer, [api](const Request& request) -> Result<Response> {
    CASCADE_TRY(items, api->projections.environments().environments(request.query.get("pipeline").value_or("")));
    return Response::json({{"environments", items}});
  }));
  CASCADE_TRY(router.add("GET", kApiBase + "/environments/{pipeline}/{stage}", Role::kViewer,
                         [api](const Request& request) -> Result<Response> {
                           const auto& environments = api->projections.environments();
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
  CASCADE_TRY(router.add("GET", kApiBase + "/metrics/delivery", Role::kViewer, [api](const Request& request) -> Result<Response> {
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
    // ?bucket=day|week: each stage's figures per UTC day or week as well (`series`).
    std::optional<projections::DeliveryBucket> bucket;
    if (auto text = request.query.get("bucket")) {
      bucket = projections::parse_delivery_bucket(*text);
      if (!bucket) return invalid("bucket: must be day or week", {{"bucket", "must be day or week"}});
    }
    CASCADE_TRY(figures, api->projections.delivery_metrics().pipeline_metrics(*pipeline, from, to, bucket));
    json list = json::array();
    for (const auto& stage : figures) list.push_back(projections::to_json(stage));
    return Response::json({{"pipeline", *pipeline}, {"from", from}, {"to", to}, {"stages", std::move(list)}});
  }));
  return success();
}

}  // namespace cascade::adapters::http::api
