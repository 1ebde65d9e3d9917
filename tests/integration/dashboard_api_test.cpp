// The routes the dashboard adds to the API, on a real data directory with the
// engine running: who is signed in (GET /api/v1/me) and the audit checks of
// `cascade replay --verify` on the live store (GET /api/v1/releases/{id}/verify
// and …/replay?verify=true).
#include "adapters/http/api/routes.hpp"
#include "adapters/http/request.hpp"
#include "adapters/runtime/runtime.hpp"

#include "engine/pipeline.hpp"
#include "tests/support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <atomic>

namespace cascade::tools {
namespace {

namespace http = adapters::http;
using nlohmann::json;

// Three stages with a few steps each, so a release runs for a while.
constexpr const char* kPipeline = R"({
  "name": "Shop",
  "stages": [
    {"name": "dev", "trigger": {"after_release": true},
     "steps": [{"name": "one", "run": "echo one"}, {"name": "two", "run": "echo two; echo err >&2"}]},
    {"name": "test", "trigger": {"after_stages": ["dev"]},
     "steps": [{"name": "one", "run": "echo one"}, {"name": "two", "run": "echo two"}]},
    {"name": "prod", "trigger": {"after_stages": ["test"]},
     "steps": [{"name": "one", "run": "echo one"}, {"name": "two", "run": "echo two"}]}
  ]
})";

class DashboardApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto runtime = adapters::Runtime::open(dir_ / "data");
    ASSERT_TRUE(runtime) << runtime.error().message;
    runtime_ = std::move(runtime.value());
    hub_ = std::make_unique<http::api::EventHub>(runtime_->log());
    runtime_->add_observer(*hub_);
    auto router = http::api::make_api_router(http::api::ApiContext::of(*runtime_, *hub_, nullptr, started_));
    ASSERT_TRUE(router) << router.error().message;
    router_ = std::move(router.value());
    runtime_->start();
    started_ = true;
    auto definition = engine::parse_pipeline_text(kPipeline);
    ASSERT_TRUE(definition) << definition.error().message;
    ASSERT_TRUE(runtime_->service().apply_pipeline(definition.value(), "admin"));
  }

  void TearDown() override {
    if (hub_) hub_->close_all();
    if (runtime_) runtime_->stop();
  }

  std::string create_release() {
    engine::NewRelease release;
    release.pipeline = "Shop";
    release.artifact.version = "1.0.0";
    release.artifact.path = dir_.path();
    auto id = runtime_->service().create_release(release, engine::Invocation{"admin", "", ""});
    EXPECT_TRUE(id) << id.error().message;
    return id ? id.value() : "";
  }

  // Calls the route as `user` with `roles`; an error Result as the handler returns it.
  Result<json> get(const std::string& path, const std::string& user = "alice",
                   std::vector<http::Role> roles = {http::Role::kViewer}, std::vector<std::string> groups = {}) {
    const std::size_t question = path.find('?');
    const std::string route = path.substr(0, question);
    auto match = router_.match("GET", route);
    EXPECT_TRUE(match && match.value().kind == http::RouteMatch::Kind::kFound) << path;
    if (!match || match.value().kind != http::RouteMatch::Kind::kFound) return make_error(ErrorCode::kNotFound, path);
    EXPECT_EQ(match.value().route->required_role, http::Role::kViewer) << "every viewer may read it";
    http::Request request;
    request.method = "GET";
    request.path = route;
    if (question != std::string::npos) {
      CASCADE_TRY(query, http::parse_query(path.substr(question + 1)));
      request.query = std::move(query);
    }
    request.params = match.value().params;
    request.user = http::User{user, std::move(roles), std::move(groups)};
    CASCADE_TRY(response, match.value().route->handler(request));
    EXPECT_EQ(response.status, 200);
    return json::parse(response.body);
  }

  testing::TempDir dir_;
  std::unique_ptr<adapters::Runtime> runtime_;
  std::unique_ptr<http::api::EventHub> hub_;
  std::atomic<bool> started_{false};
  http::Router router_;
};

TEST_F(DashboardApiTest, MeIsTheTokensUserWithTheHighestRole) {
  auto me = get("/api/v1/me", "release-manager", {http::Role::kViewer, http::Role::kApprover}, {"release-managers"});
  ASSERT_TRUE(me) << me.error().message;
  EXPECT_EQ(me.value(), (json{{"name", "release-manager"},
                              {"role", "approver"},
                              {"roles", {"viewer", "approver"}},
                              {"groups", {"release-managers"}}}));
}

TEST_F(DashboardApiTest, VerifyRunsEveryCheckOfReplayVerify) {
  const std::string id = create_release();
  runtime_->settle();
  auto verification = get("/api/v1/releases/" + id + "/verify");
  ASSERT_TRUE(verification) << verification.error().message;
  const json& body = verification.value();
  EXPECT_EQ(body["release"], id);
  EXPECT_EQ(body["ok"], true) << body.dump(2);
  EXPECT_TRUE(body["failure"].is_null());
  std::vector<std::string> names;
  for (const json& check : body["checks"]) {
    names.push_back(check["name"]);
    EXPECT_EQ(check["outcome"], "ok") << check.dump();
  }
  EXPECT_EQ(names, (std::vector<std::string>{"release stream", "pipeline stream", "step logs", "summary"}));
  EXPECT_NE(body["checks"][2]["detail"].get<std::string>().find("6 step logs"), std::string::npos) << body.dump(2);
}

TEST_F(DashboardApiTest, VerifyPassesWhileTheReleaseRunsAndTheSummaryLags) {
  // The summary projection trails the log: the route must compare it with
  // the events it reflects, never report a running release as tampered.
  const std::string id = create_release();
  int calls = 0;
  for (;;) {
    auto verification = get("/api/v1/releases/" + id + "/verify");
    ASSERT_TRUE(verification) << verification.error().message;
    ASSERT_EQ(verification.value()["ok"], true) << "call " << calls << ": " << verification.value().dump(2);
    ++calls;
    auto summary = runtime_->summaries().summary(id);
    if (summary && json::parse(summary.value())["status"] == "Succeeded") break;
    ASSERT_LT(calls, 100000) << "the release never finished";
  }
  EXPECT_GT(calls, 1);
}

TEST_F(DashboardApiTest, ReplayVerifyPassesWhileTheReleaseRunsAndTheSummaryLags) {
  // GET …/replay?verify=true (and …/audit, which collects the same evidence)
  // on a running engine: the stored summary is compared with the version it
  // names, never reported as tampered because the projection moved on.
  const std::string id = create_release();
  int calls = 0;
  for (;;) {
    auto replay = get("/api/v1/releases/" + id + "/replay?verify=true");
    ASSERT_TRUE(replay) << replay.error().message;
    ASSERT_EQ(replay.value()["verification"]["ok"], true) << "call " << calls << ": " << replay.value().dump(2);
    ++calls;
    auto summary = runtime_->summaries().summary(id);
    if (summary && json::parse(summary.value())["status"] == "Succeeded") break;
    ASSERT_LT(calls, 100000) << "the release never finished";
  }
  EXPECT_GT(calls, 1);
}

TEST_F(DashboardApiTest, VerifyOfAnUnknownReleaseIsNotFound) {
  auto verification = get("/api/v1/releases/Nope-1/verify");
  ASSERT_FALSE(verification);
  EXPECT_EQ(verification.error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace cascade::tools
