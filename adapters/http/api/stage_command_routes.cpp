#include "adapters/http/api/route_files.hpp"

#include "adapters/http/api/fields.hpp"
#include "adapters/http/errors.hpp"
#include "adapters/http/json_body.hpp"
#include "adapters/http/request.hpp"
#include "adapters/http/api/event_json.hpp"
#include "engine/release.hpp"

namespace cascade::adapters::http::api {

using nlohmann::json;

namespace {

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
      approvals.push_back({{"phase", engine::to_string(record.phase)},
                           {"approver", record.approver},
                           {"on_behalf_of", record.on_behalf_of},
                           {"decision", engine::to_string(record.decision)},
                           {"override", record.override},
                           {"comment", record.comment},
                           {"at", record.at}});
    }
    stage_json["approvals"] = std::move(approvals);
    answer["stage"] = std::move(stage_json);
  }
  return answer;
}

}  // namespace

Status add_stage_command_routes(Router& router, const RouteContextPtr& api) {
  auto execute = [api](const Request& request, std::string_view name, const engine::Command& command,
                                const std::string& stage) -> Result<Response> {
    CASCADE_TRY(state, (counted(api->commands, name, api->service.execute(request.param("id"), command, invocation(request)))));
    return Response::json(command_answer(state, stage));
  };
  CASCADE_TRY(router.add("POST", kApiBase + "/releases/{id}/stages/{stage}/approvals", Role::kApprover,
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
  CASCADE_TRY(router.add("POST", kApiBase + "/releases/{id}/stages/{stage}/deploy", Role::kReleaser,
                         [execute](const Request& request) -> Result<Response> {
                           CASCADE_TRY(body, optional_object(request, {}));
                           (void)body;
                           return execute(request, "deploy", engine::DeployStage{request.param("stage")}, request.param("stage"));
                         }));
  CASCADE_TRY(router.add("POST", kApiBase + "/releases/{id}/stages/{stage}/redeploy", Role::kReleaser,
                         [execute](const Request& request) -> Result<Response> {
                           CASCADE_TRY(body, optional_object(request, {"reason"}));
                           std::vector<Problem> problems;
                           const std::string reason = string_field(body, "reason", "reason", problems);
                           CASCADE_TRY(check_problems(std::move(problems)));
                           return execute(request, "redeploy", engine::RedeployStage{request.param("stage"), reason}, request.param("stage"));
                         }));
  CASCADE_TRY(router.add("POST", kApiBase + "/releases/{id}/stages/{stage}/cancel", Role::kReleaser,
                         [execute](const Request& request) -> Result<Response> {
                           CASCADE_TRY(body, optional_object(request, {"reason"}));
                           std::vector<Problem> problems;
                           const std::string reason = string_field(body, "reason", "reason", problems);
                           CASCADE_TRY(check_problems(std::move(problems)));
                           return execute(request, "cancel", engine::CancelStage{request.param("stage"), reason}, request.param("stage"));
                         }));
  CASCADE_TRY(router.add("POST", kApiBase + "/releases/{id}/abandon", Role::kReleaser,
                         [execute](const Request& request) -> Result<Response> {
                           CASCADE_TRY(body, optional_object(request, {"reason"}));
                           std::vector<Problem> problems;
                           const std::string reason = string_field(body, "reason", "reason", problems);
                           CASCADE_TRY(check_problems(std::move(problems)));
                           return execute(request, "abandon", engine::AbandonRelease{reason}, "");
                         }));
  return success();
}

}  // namespace cascade::adapters::http::api
