// The /api/v1 application of `cascade serve`: each handler parses the
// request, calls ReleaseService or a read-model query, and renders the
// answer. No decisions live here (they are the engine's). One route file
// per resource: pipeline_routes.cpp, release_routes.cpp (releases, their
// events, logs and the event stream), stage_command_routes.cpp,
// read_model_routes.cpp (approvals, environments, delivery metrics),
// operation_routes.cpp (probes, /metrics, /me, verify), dashboard_routes.cpp.
#pragma once

#include "adapters/http/api/api_context.hpp"
#include "adapters/http/router.hpp"

namespace cascade::adapters::http::api {

// Every route of the API and the dashboard's files. Errors: a route the
// router refuses, or a metric family the registry refuses.
Result<Router> make_api_router(ApiContext context);

}  // namespace cascade::adapters::http::api
