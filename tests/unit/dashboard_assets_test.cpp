// The dashboard built into the binary: the generated asset table, entity-tag
// matching, and the public routes that serve it.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "adapters/http/router.hpp"
#include "adapters/http/static_assets.hpp"
#include "adapters/http/api/dashboard_routes.hpp"

namespace cascade::tools {
namespace {

namespace http = adapters::http;

std::string source_file(const std::string& name) {
  std::ifstream in(std::string(CASCADE_SOURCE_DIR) + "/adapters/http/dashboard/" + name, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string header(const http::Response& response, const std::string& name) {
  for (const auto& [field, value] : response.headers) {
    if (field == name) return value;
  }
  return "";
}

TEST(DashboardAssetsTest, EveryFileIsBuiltInByteForByteWithItsType) {
  const http::StaticAsset* index = http::find_static_asset("index.html");
  ASSERT_NE(index, nullptr);
  EXPECT_EQ(index->bytes, source_file("index.html"));
  EXPECT_EQ(index->content_type, "text/html; charset=utf-8");
  const http::StaticAsset* app = http::find_static_asset("app.js");
  ASSERT_NE(app, nullptr);
  EXPECT_EQ(app->bytes, source_file("app.js"));
  EXPECT_EQ(app->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(http::find_static_asset("style.css")->content_type, "text/css; charset=utf-8");
  EXPECT_EQ(http::find_static_asset("icon.svg")->content_type, "image/svg+xml");
  EXPECT_NE(index->etag, app->etag);
  EXPECT_EQ(http::find_static_asset("README.md"), nullptr) << "the folder's documentation is not served";
  EXPECT_EQ(http::find_static_asset("../api_routes.cpp"), nullptr);
}

TEST(DashboardAssetsTest, IfNoneMatchUsesTheWeakComparison) {
  EXPECT_TRUE(http::etag_matches("\"abc\"", "\"abc\""));
  EXPECT_TRUE(http::etag_matches("W/\"abc\"", "\"abc\""));
  EXPECT_TRUE(http::etag_matches("\"x\", \"abc\"", "\"abc\""));
  EXPECT_TRUE(http::etag_matches(" * ", "\"abc\""));
  EXPECT_FALSE(http::etag_matches("\"abd\"", "\"abc\""));
  EXPECT_FALSE(http::etag_matches("abc", "\"abc\""));
  EXPECT_FALSE(http::etag_matches("", "\"abc\""));
}

class DashboardRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(http::api::add_dashboard_routes(router_)); }

  Result<http::Response> get(const std::string& path, const std::string& if_none_match = "") {
    auto match = router_.match("GET", path);
    if (!match) return match.error();
    if (match.value().kind != http::RouteMatch::Kind::kFound) return make_error(ErrorCode::kNotFound, "no route");
    EXPECT_FALSE(match.value().route->required_role.has_value()) << path << " is public";
    http::Request request;
    request.method = "GET";
    request.path = path;
    request.params = match.value().params;
    if (!if_none_match.empty()) request.headers.add("If-None-Match", if_none_match);
    return match.value().route->handler(request);
  }

  http::Router router_;
};

TEST_F(DashboardRoutesTest, RootServesIndexWithTheSecurityHeaders) {
  auto response = get("/");
  ASSERT_TRUE(response);
  EXPECT_EQ(response.value().status, 200);
  EXPECT_EQ(response.value().body, source_file("index.html"));
  EXPECT_EQ(response.value().content_type, "text/html; charset=utf-8");
  EXPECT_EQ(header(response.value(), "ETag"), http::find_static_asset("index.html")->etag);
  EXPECT_EQ(header(response.value(), "Cache-Control"), "no-cache");
  EXPECT_EQ(header(response.value(), "X-Content-Type-Options"), "nosniff");
  EXPECT_NE(header(response.value(), "Content-Security-Policy").find("default-src 'self'"), std::string::npos);
}

TEST_F(DashboardRoutesTest, AMatchingETagAnswers304WithoutABody) {
  const std::string etag(http::find_static_asset("app.js")->etag);
  auto response = get("/assets/app.js", etag);
  ASSERT_TRUE(response);
  EXPECT_EQ(response.value().status, 304);
  EXPECT_TRUE(response.value().body.empty());
  EXPECT_EQ(header(response.value(), "ETag"), etag);
  auto changed = get("/assets/app.js", "\"stale\"");
  ASSERT_TRUE(changed);
  EXPECT_EQ(changed.value().status, 200);
  EXPECT_EQ(changed.value().body, source_file("app.js"));
}

TEST_F(DashboardRoutesTest, AnUnknownFileIsNotFound) {
  auto response = get("/assets/missing.js");
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().code, ErrorCode::kNotFound);
  EXPECT_NE(response.error().message.find("missing.js"), std::string::npos);
  auto escaped = get("/assets/%2E%2E%2Fserver.cpp");
  ASSERT_FALSE(escaped) << "an encoded path cannot leave the table";
  EXPECT_EQ(escaped.error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace cascade::tools
