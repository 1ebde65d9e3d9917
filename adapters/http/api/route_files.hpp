// Private to adapters/http/api: what the route files share.
#pragma once

#include "adapters/http/api/api_context.hpp"
#include "adapters/http/router.hpp"

#include <memory>
#include <string>

namespace cascade::adapters::http::api {

inline const std::string kApiBase = "/api/v1";

// The context the handlers capture (by shared pointer), with the metric
// families make_api_router created.
struct RouteContext : ApiContext {
  metrics::CounterFamily* commands = nullptr;  // cascade_commands_total; null without metrics
};
using RouteContextPtr = std::shared_ptr<const RouteContext>;

Status add_operation_routes(Router& router, const RouteContextPtr& api);    // operation_routes.cpp
Status add_pipeline_routes(Router& router, const RouteContextPtr& api);     // pipeline_routes.cpp
Status add_release_routes(Router& router, const RouteContextPtr& api);      // release_routes.cpp
Status add_stage_command_routes(Router& router, const RouteContextPtr& api);  // stage_command_routes.cpp
Status add_read_model_routes(Router& router, const RouteContextPtr& api);   // read_model_routes.cpp

}  // namespace cascade::adapters::http::api
