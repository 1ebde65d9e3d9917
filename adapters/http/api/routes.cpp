#include "adapters/http/api/routes.hpp"

#include "adapters/http/api/dashboard_routes.hpp"
#include "adapters/http/api/route_files.hpp"
#include "adapters/runtime/runtime.hpp"

namespace cascade::adapters::http::api {

ApiContext ApiContext::of(Runtime& runtime, EventHub& events, std::shared_ptr<metrics::MetricsRegistry> metrics,
                          const std::atomic<bool>& started, ApiOptions options) {
  if (options.artifacts_root.empty()) options.artifacts_root = runtime.data_dir() + "/artifacts";
  return ApiContext{runtime.service(), runtime.log(),        runtime.projections(), runtime.step_logs(),
                    runtime.log_follow(), events,           std::move(metrics),    started,
                    options,
                    [&runtime] { return runtime.engine().reactor_status(); }};
}

Result<Router> make_api_router(ApiContext context) {
  metrics::CounterFamily* commands = nullptr;
  if (context.metrics) {
    CASCADE_TRY(family, context.metrics->counter(
                            "cascade_commands_total",
                            "Commands received over the API, by command and outcome (ok or the error code).",
                            {"command", "outcome"}));
    commands = family;
  }
  const auto api = std::make_shared<const RouteContext>(RouteContext{std::move(context), commands});
  Router router;
  // Every {id} is a release's: its display name works wherever its id does,
  // for every release created before the request (a bounded wait for the
  // release list when the name is not in it yet).
  static constexpr std::chrono::milliseconds kNameCatchUp{2000};
  router.resolve_param("id", [api](const std::string& id_or_name, bool may_block) {
    return projections::release_id_of(api->log, api->projections.releases(), id_or_name,
                                      may_block ? kNameCatchUp : std::chrono::milliseconds(0));
  });
  CASCADE_TRY(add_operation_routes(router, api));
  CASCADE_TRY(add_pipeline_routes(router, api));
  CASCADE_TRY(add_release_routes(router, api));
  CASCADE_TRY(add_stage_command_routes(router, api));
  CASCADE_TRY(add_read_model_routes(router, api));
  // What the dashboard needs beyond the API: its files.
  CASCADE_TRY(add_dashboard_routes(router));
  return router;
}

}  // namespace cascade::adapters::http::api
