// The web dashboard's files (adapters/http/dashboard/, built into the binary)
// as public routes of `cascade serve`: a browser loads the page without a
// token, signs in, and sends the token with every /api/v1 call it makes.
#pragma once

#include "adapters/http/router.hpp"
#include "events/result.hpp"

namespace cascade::adapters::http::api {

// Adds GET / (index.html) and GET /assets/{file}. Each answer carries a strong
// ETag, Cache-Control: no-cache (the browser revalidates: 304 when
// If-None-Match matches), X-Content-Type-Options: nosniff, and a
// Content-Security-Policy that lets the page load and fetch only from this
// server. An unknown file is a JSON 404. Errors: as Router::add_public.
Status add_dashboard_routes(Router& router);

}  // namespace cascade::adapters::http::api
