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
    json list = json::array();
    for (const projections::PipelineVersion& version : latest) {
      list.push_back({{"name", version.pipeline},
                      {"version", version.version},
                      {"defined_at", version.defined_at},
                      {"actor", version.actor}});
    }
    return Response::json({{"pipelines", std::move(list)}});
  }));
  CASCADE_TRY(router.add("GET", kApiBase + "/pipelines/{name}", Role::kViewer, [api](const Request& request) -> Result<Response> {
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
    CASCADE_TRY(version, (counted(api->commands, "ApplyPipeline",
                                         api->service.apply_pipeline(definition.value(), request.user->name))));
    return Response::json({{"name", definition.value().name}, {"version", version}});
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
