#include "adapters/http/api/route_files.hpp"

#include "adapters/http/api/fields.hpp"
#include "adapters/http/errors.hpp"
#include "adapters/http/json_body.hpp"
#include "adapters/http/request.hpp"
#include "engine/pipeline.hpp"
#include "projections/pipeline_versions.hpp"

namespace cascade::adapters::http::api {

using nlohmann::json;

Status add_pipeline_routes(Router& router, const RouteContextPtr& api) {
  CASCADE_TRY(router.add("GET", kApiBase + "/pipelines", Role::kViewer, [api](const Request&) -> Result<Response> {
    CASCADE_TRY(latest, api->projections.pipelines().latest_versions());
    return Response::json(projections::pipelines_json(latest));
  }));
  CASCADE_TRY(router.add("GET", kApiBase + "/pipelines/{name}", Role::kViewer, [api](const Request& request) -> Result<Response> {
    if (request.query.get("version")) {  // an older version, from the read model
      CASCADE_TRY(number, required_version(request, "version"));
      CASCADE_TRY(stored, api->projections.pipelines().version(request.param("name"), number));
      return Response::json({{"name", stored.pipeline}, {"version", stored.version}, {"definition", stored.definition}});
    }
    CASCADE_TRY(stored, api->service.load_pipeline(request.param("name")));
    return Response::json(
        {{"name", stored.definition.name}, {"version", stored.version}, {"definition", engine::to_json(stored.definition)}});
  }));
  CASCADE_TRY(router.add("PUT", kApiBase + "/pipelines/{name}", Role::kAdmin, [api](const Request& request) -> Result<Response> {
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
    // Approvers nobody the server knows can act for: a warning, or with
    // ?strict=true a refusal (nothing is stored).
    std::vector<Problem> unreachable;
    if (request.directory != nullptr) {
      unreachable = engine::unreachable_approvers(
          definition.value(), [&](std::string_view name) { return request.directory->knows(name); });
    }
    if (!unreachable.empty() && request.query.get("strict").value_or("") == "true") {
      return http::error_response(
          make_error(ErrorCode::kInvalidArgument,
                     "pipeline '" + definition.value().name + "' names approvers nobody can act for (strict): " +
                         unreachable.front().path + ": " + unreachable.front().message,
                     unreachable),
          http::InvalidArgumentAs::kUnprocessableEntity);
    }
    CASCADE_TRY(version, (counted(api->commands, "ApplyPipeline",
                                         api->service.apply_pipeline(definition.value(), request.user->name))));
    json warnings = json::array();
    for (const Problem& problem : unreachable) warnings.push_back({{"path", problem.path}, {"message", problem.message}});
    return Response::json({{"name", definition.value().name}, {"version", version}, {"warnings", std::move(warnings)}});
  }));
  CASCADE_TRY(router.add("GET", kApiBase + "/pipelines/{name}/versions", Role::kViewer,
                         [api](const Request& request) -> Result<Response> {
                           CASCADE_TRY(versions, api->projections.pipelines().versions(request.param("name")));
                           json list = json::array();
                           for (const auto& version : versions) list.push_back(projections::to_json(version));
                           return Response::json({{"versions", std::move(list)}});
                         }));
  CASCADE_TRY(router.add("GET", kApiBase + "/pipelines/{name}/diff", Role::kViewer,
                         [api](const Request& request) -> Result<Response> {
                           CASCADE_TRY(from, required_version(request, "from"));
                           CASCADE_TRY(to, required_version(request, "to"));
                           const std::string& name = request.param("name");
                           CASCADE_TRY(changes, api->projections.pipelines().diff(name, from, to));
                           json list = json::array();
                           for (const auto& change : changes) list.push_back(projections::to_json(change));
                           return Response::json({{"pipeline", name}, {"from", from}, {"to", to}, {"changes", std::move(list)}});
                         }));
  return success();
}

}  // namespace cascade::adapters::http::api
