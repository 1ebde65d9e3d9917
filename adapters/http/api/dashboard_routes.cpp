#include "adapters/http/api/dashboard_routes.hpp"

#include "adapters/http/static_assets.hpp"

#include <string>

namespace cascade::adapters::http::api {
namespace {

// Scripts, styles, images and fetches from this origin only; no inline
// script, no framing, no <base> or form posts elsewhere.
constexpr const char* kContentSecurityPolicy =
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

Result<Response> serve_asset(const Request& request, const std::string& path) {
  const StaticAsset* asset = find_static_asset(path);
  if (asset == nullptr) return make_error(ErrorCode::kNotFound, "the dashboard has no file '" + path + "'");
  Response response;
  response.headers = {{"ETag", std::string(asset->etag)},
                      {"Cache-Control", "no-cache"},
                      {"X-Content-Type-Options", "nosniff"},
                      {"Content-Security-Policy", kContentSecurityPolicy},
                      {"Referrer-Policy", "no-referrer"}};
  if (auto if_none_match = request.header("If-None-Match"); if_none_match && etag_matches(*if_none_match, asset->etag)) {
    response.status = 304;
    response.content_type.clear();
    return response;
  }
  response.content_type = std::string(asset->content_type);
  response.body = std::string(asset->bytes);
  return response;
}

}  // namespace

Status add_dashboard_routes(Router& router) {
  CASCADE_TRY(router.add_public("GET", "/", [](const Request& request) { return serve_asset(request, "index.html"); }));
  return router.add_public("GET", "/assets/{file}",
                           [](const Request& request) { return serve_asset(request, request.param("file")); });
}

}  // namespace cascade::adapters::http::api
