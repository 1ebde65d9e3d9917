// The HTTP adapter's pure parts: routing, query decoding, the error mapping
// and its JSON shape, strict JSON bodies.
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "adapters/http/errors.hpp"
#include "adapters/http/json_body.hpp"
#include "adapters/http/request.hpp"
#include "adapters/http/router.hpp"

namespace cascade {
// Readable failures for Problem lists.
inline void PrintTo(const Problem& problem, std::ostream* out) {
  *out << '{' << problem.path << ": " << problem.message << '}';
}
}  // namespace cascade

namespace cascade::adapters::http {
namespace {

Handler named(std::string name) {
  return [name](const Request&) -> Result<Response> { return Response::text(name); };
}

std::string call(const RouteMatch& match) {
  Request request;
  auto response = match.route->handler(request);
  return response ? response.value().body : "error";
}

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(router_.add_public("GET", "/healthz", named("healthz")));
    ASSERT_TRUE(router_.add("GET", "/api/v1/releases", Role::kViewer, named("list")));
    ASSERT_TRUE(router_.add("POST", "/api/v1/releases", Role::kReleaser, named("create")));
    ASSERT_TRUE(router_.add("GET", "/api/v1/releases/{id}", Role::kViewer, named("get")));
    ASSERT_TRUE(router_.add("GET", "/api/v1/releases/latest", Role::kViewer, named("latest")));
    ASSERT_TRUE(router_.add("DELETE", "/api/v1/releases/{id}", Role::kAdmin, named("delete")));
    ASSERT_TRUE(
        router_.add("POST", "/api/v1/releases/{id}/stages/{stage}/approvals", Role::kApprover, named("approve")));
  }
  RouteMatch match(std::string_view method, std::string_view path) {
    auto result = router_.match(method, path);
    EXPECT_TRUE(result) << path;
    return result ? result.value() : RouteMatch{};
  }
  Router router_;
};

TEST_F(RouterTest, MatchesLiteralRoutesAndCapturesParameters) {
  auto health = match("GET", "/healthz");
  ASSERT_EQ(health.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(call(health), "healthz");
  EXPECT_FALSE(health.route->required_role.has_value());

  auto approve = match("POST", "/api/v1/releases/SampleApp-3/stages/prod/approvals");
  ASSERT_EQ(approve.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(call(approve), "approve");
  EXPECT_EQ(approve.route->pattern, "/api/v1/releases/{id}/stages/{stage}/approvals");
  EXPECT_EQ(approve.route->required_role, Role::kApprover);
  EXPECT_EQ(approve.params.at("id"), "SampleApp-3");
  EXPECT_EQ(approve.params.at("stage"), "prod");
}

TEST_F(RouterTest, ALiteralSegmentBeatsAParameter) {
  EXPECT_EQ(call(match("GET", "/api/v1/releases/latest")), "latest");
  EXPECT_EQ(call(match("GET", "/api/v1/releases/SampleApp-1")), "get");
}

TEST_F(RouterTest, MethodSelectsAmongRoutesOfOnePath) {
  EXPECT_EQ(call(match("GET", "/api/v1/releases")), "list");
  EXPECT_EQ(call(match("POST", "/api/v1/releases")), "create");
  // DELETE exists only for {id}: the literal "latest" does not hide it.
  EXPECT_EQ(call(match("DELETE", "/api/v1/releases/latest")), "delete");
}

TEST_F(RouterTest, UnknownPathIsNotFound) {
  EXPECT_EQ(match("GET", "/api/v1/nothing").kind, RouteMatch::Kind::kNotFound);
  EXPECT_EQ(match("GET", "/healthz/").kind, RouteMatch::Kind::kNotFound);  // no trailing-slash folding
  EXPECT_EQ(match("GET", "/api/v1/releases//stages").kind, RouteMatch::Kind::kNotFound);
  EXPECT_EQ(match("GET", "/api/v1/releases/x/stages/y/approvals/z").kind, RouteMatch::Kind::kNotFound);
  EXPECT_EQ(match("GET", "*").kind, RouteMatch::Kind::kNotFound);
  EXPECT_EQ(match("GET", "").kind, RouteMatch::Kind::kNotFound);
}

TEST_F(RouterTest, KnownPathWithWrongMethodListsTheAllowedOnes) {
  auto put = match("PUT", "/api/v1/releases");
  EXPECT_EQ(put.kind, RouteMatch::Kind::kMethodNotAllowed);
  EXPECT_EQ(put.allowed_methods, (std::vector<std::string>{"GET", "POST"}));

  auto post = match("POST", "/api/v1/releases/x");
  EXPECT_EQ(post.kind, RouteMatch::Kind::kMethodNotAllowed);
  EXPECT_EQ(post.allowed_methods, (std::vector<std::string>{"DELETE", "GET"}));

  auto get = match("GET", "/api/v1/releases/x/stages/prod/approvals");
  EXPECT_EQ(get.kind, RouteMatch::Kind::kMethodNotAllowed);
  EXPECT_EQ(get.allowed_methods, (std::vector<std::string>{"POST"}));
}

TEST_F(RouterTest, PathSegmentsArePercentDecodedOneByOne) {
  auto encoded = match("GET", "/api/v1/releases/Sample%20App%2F3");
  ASSERT_EQ(encoded.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(encoded.params.at("id"), "Sample App/3");  // %2F stays inside the segment
  auto plus = match("GET", "/api/v1/releases/a+b");
  EXPECT_EQ(plus.params.at("id"), "a+b");  // '+' is only a space in query strings
  EXPECT_EQ(call(match("GET", "/api/v1/releases/%6C%61test")), "latest");

  auto bad = router_.match("GET", "/api/v1/releases/%zz");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  for (const char* path : {"/api/v1/releases/%00", "/api/v1/releases/abc%4"}) {
    auto refused = router_.match("GET", path);
    ASSERT_FALSE(refused) << path;
    EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument) << path;
  }
}

TEST_F(RouterTest, RejectsMalformedPatternsAndDuplicates) {
  auto code = [&](std::string_view method, std::string_view pattern) {
    auto status = router_.add(method, pattern, Role::kViewer, named("x"));
    return status ? std::string("ok") : std::string(to_string(status.error().code));
  };
  EXPECT_EQ(code("GET", "no-slash"), "invalid_argument");
  EXPECT_EQ(code("GET", "/a//b"), "invalid_argument");
  EXPECT_EQ(code("GET", "/a/"), "invalid_argument");
  EXPECT_EQ(code("GET", "/a/{}"), "invalid_argument");
  EXPECT_EQ(code("GET", "/a/{1x}"), "invalid_argument");
  EXPECT_EQ(code("GET", "/a/{x"), "invalid_argument");
  EXPECT_EQ(code("GET", "/a/x}"), "invalid_argument");
  EXPECT_EQ(code("GET", "/a/{x}/b/{x}"), "invalid_argument");
  EXPECT_EQ(code("GET", "/a/%20"), "invalid_argument");
  EXPECT_EQ(code("get", "/a"), "invalid_argument");
  EXPECT_EQ(code("GET", "/api/v1/releases/{other}"), "already_exists");  // same shape as {id}
  EXPECT_EQ(code("PUT", "/api/v1/releases/{other}"), "ok");
  auto no_handler = router_.add("GET", "/y", Role::kViewer, Handler());
  ASSERT_FALSE(no_handler);
  EXPECT_EQ(no_handler.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(no_handler.error().message, "GET /y: no handler");
}

TEST(RouterRootTest, RootPatternMatchesOnlyRoot) {
  Router router;
  ASSERT_TRUE(router.add_public("GET", "/", named("root")));
  EXPECT_EQ(router.match("GET", "/").value().kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(router.match("GET", "/x").value().kind, RouteMatch::Kind::kNotFound);
}

TEST(QueryTest, DecodesPairsInOrder) {
  auto query = parse_query("state=open&pipeline=Sample%20App&tag=a&tag=b+c&flag&&empty=&%C3%A9t%C3%A9=%E2%9C%93");
  ASSERT_TRUE(query);
  const auto& q = query.value();
  EXPECT_EQ(q.get("state"), "open");
  EXPECT_EQ(q.get("pipeline"), "Sample App");
  EXPECT_EQ(q.all("tag"), (std::vector<std::string>{"a", "b c"}));
  EXPECT_EQ(q.get("flag"), "");
  EXPECT_TRUE(q.has("flag"));
  EXPECT_EQ(q.get("empty"), "");
  EXPECT_EQ(q.get("été"), "✓");
  EXPECT_FALSE(q.get("missing").has_value());
  EXPECT_EQ(q.items().size(), 7u);
  EXPECT_EQ(q.items()[0].first, "state");
}

TEST(QueryTest, KeepsEqualsSignsInValuesAndRejectsBadEscapes) {
  EXPECT_EQ(parse_query("expr=a%3Db=c").value().get("expr"), "a=b=c");
  EXPECT_EQ(parse_query("").value().items().size(), 0u);
  for (std::string_view bad : {"a=%", "a=%4", "a=%G0", "%zz=1", "a=%00"}) {
    auto result = parse_query(bad);
    ASSERT_FALSE(result) << bad;
    EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument) << bad;
  }
}

TEST(PercentDecodeTest, PlusIsSpaceOnlyWhenAsked) {
  EXPECT_EQ(percent_decode("a+b%2B", true).value(), "a b+");
  EXPECT_EQ(percent_decode("a+b%2B", false).value(), "a+b+");
  EXPECT_EQ(percent_decode("%e2%9c%93", false).value(), "✓");
}

struct Mapping {
  ErrorCode code;
  int status;
  const char* name;
};

TEST(ErrorMappingTest, EachErrorCodeHasItsStatusAndTheCommonShape) {
  const std::vector<Mapping> mappings = {
      {ErrorCode::kInvalidArgument, 400, "invalid_argument"},
      {ErrorCode::kNotFound, 404, "not_found"},
      {ErrorCode::kAlreadyExists, 409, "already_exists"},
      {ErrorCode::kFailedPrecondition, 409, "failed_precondition"},
      {ErrorCode::kPermissionDenied, 403, "permission_denied"},
      {ErrorCode::kAborted, 409, "aborted"},
      {ErrorCode::kUnavailable, 503, "unavailable"},
      {ErrorCode::kDataLoss, 500, "data_loss"},
      {ErrorCode::kInternal, 500, "internal"},
  };
  for (const auto& m : mappings) {
    EXPECT_EQ(http_status(m.code), m.status) << m.name;
    auto response = error_response(make_error(m.code, "what went wrong", {{"stages[1].name", "duplicate"}}));
    EXPECT_EQ(response.status, m.status) << m.name;
    EXPECT_EQ(response.content_type, "application/json");
    auto body = nlohmann::json::parse(response.body);
    EXPECT_EQ(body, nlohmann::json::parse(std::string(R"({"error": {"code": ")") + m.name +
                                          R"(", "message": "what went wrong", "details": [)"
                                          R"({"path": "stages[1].name", "message": "duplicate"}]}})"))
        << m.name;
    bool has_retry_after = false;
    for (const auto& [name, value] : response.headers) has_retry_after |= name == "Retry-After";
    EXPECT_EQ(has_retry_after, m.code == ErrorCode::kUnavailable) << m.name;
  }
}

TEST(ErrorMappingTest, ValidationErrorsMayBeUnprocessableWhenTheHandlerSaysSo) {
  EXPECT_EQ(http_status(ErrorCode::kInvalidArgument, InvalidArgumentAs::kUnprocessableEntity), 422);
  // Only kInvalidArgument is affected.
  EXPECT_EQ(http_status(ErrorCode::kNotFound, InvalidArgumentAs::kUnprocessableEntity), 404);
  auto response =
      error_response(make_error(ErrorCode::kInvalidArgument, "bad"), InvalidArgumentAs::kUnprocessableEntity);
  EXPECT_EQ(response.status, 422);
  EXPECT_EQ(nlohmann::json::parse(response.body)["error"]["code"], "invalid_argument");
  EXPECT_EQ(nlohmann::json::parse(response.body)["error"]["details"], nlohmann::json::array());
}

TEST(ErrorMappingTest, UnauthenticatedCarriesABearerChallenge) {
  auto missing = unauthenticated_response("authentication required", false);
  EXPECT_EQ(missing.status, 401);
  ASSERT_EQ(missing.headers.size(), 1u);
  EXPECT_EQ(missing.headers[0].first, "WWW-Authenticate");
  EXPECT_EQ(missing.headers[0].second, "Bearer realm=\"cascade\"");
  EXPECT_EQ(nlohmann::json::parse(missing.body)["error"]["code"], "unauthenticated");

  auto invalid = unauthenticated_response("invalid token", true);
  EXPECT_EQ(invalid.headers[0].second, "Bearer realm=\"cascade\", error=\"invalid_token\"");
}

TEST(ErrorMappingTest, InvalidUtf8InAMessageDoesNotBreakTheBody) {
  auto response = error_response(400, "bad_request", std::string("bad \xff byte"));
  auto body = nlohmann::json::parse(response.body);
  EXPECT_EQ(body["error"]["message"], "bad \xEF\xBF\xBD byte");
}

TEST(JsonBodyTest, MalformedJsonNamesLineColumnAndByte) {
  auto result = parse_json_body("{\n  \"comment\": \"ok\",\n  }");
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(result.error().message.rfind("malformed JSON at line 3, column 3 (byte 23): ", 0), 0u)
      << result.error().message;
  ASSERT_EQ(result.error().details.size(), 1u);
  EXPECT_EQ(result.error().details[0].path, "body");

  auto truncated = parse_json_body("{\"a\": [1, 2");
  ASSERT_FALSE(truncated);
  EXPECT_EQ(truncated.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(truncated.error().message.rfind("malformed JSON at line 1, column 12 (byte 11): ", 0), 0u)
      << truncated.error().message;

  auto empty = parse_json_body("");
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(empty.error().message, "malformed JSON: the body is empty");

  auto trailing = parse_json_body("{} x");
  ASSERT_FALSE(trailing);
  EXPECT_EQ(trailing.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(trailing.error().message.rfind("malformed JSON at line 1, column 4 (byte 3): ", 0), 0u)
      << trailing.error().message;
}

TEST(JsonBodyTest, RefusesVeryDeepNesting) {
  auto deep = parse_json_body(std::string(10'000, '[') + std::string(10'000, ']'));
  ASSERT_FALSE(deep);
  EXPECT_EQ(deep.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(deep.error().message, "malformed JSON: nested deeper than 64 levels");
  EXPECT_TRUE(parse_json_body(std::string(60, '[') + std::string(60, ']')));
}

TEST(JsonBodyTest, UnknownFieldsAreRejectedWithASuggestion) {
  auto result = parse_json_object(R"({"commnt": "ship it", "defer_until": 5, "zzz": 1})", {"comment", "defer_until"});
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(result.error().message, "commnt: unknown field 'commnt' (did you mean 'comment'?) (and 1 more)");
  ASSERT_EQ(result.error().details.size(), 2u);
  EXPECT_EQ(result.error().details[0], (Problem{"commnt", "unknown field 'commnt' (did you mean 'comment'?)"}));
  EXPECT_EQ(result.error().details[1], (Problem{"zzz", "unknown field 'zzz' (allowed: comment, defer_until)"}));

  auto ok = parse_json_object(R"({"comment": "ship it"})", {"comment", "defer_until"});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok.value()["comment"], "ship it");

  auto not_object = parse_json_object("[1]", {"comment"});
  ASSERT_FALSE(not_object);
  EXPECT_EQ(not_object.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(not_object.error().message, "the body must be a JSON object");
}

TEST(JsonBodyTest, CheckFieldsPrefixesNestedPaths) {
  auto value = nlohmann::json::parse(R"({"artifact": {"verison": "1.0"}})");
  auto status = check_fields(value["artifact"], {"version", "path"}, "artifact");
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(status.error().details[0],
            (Problem{"artifact.verison", "unknown field 'verison' (did you mean 'version'?)"}));
  auto not_an_object = check_fields(nlohmann::json(3), {"a"}, "x");
  ASSERT_FALSE(not_an_object);
  EXPECT_EQ(not_an_object.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(not_an_object.error().message, "x: must be an object");
}

TEST(JsonBodyTest, DidYouMeanOnlySuggestsPlausibleTypos) {
  const std::vector<std::string_view> fields = {"comment", "defer_until", "on_behalf_of"};
  EXPECT_EQ(did_you_mean("commnet", fields), "comment");  // swapped neighbours
  EXPECT_EQ(did_you_mean("Comment", fields), "comment");
  EXPECT_EQ(did_you_mean("defer_untill", fields), "defer_until");
  EXPECT_EQ(did_you_mean("onbehalfof", fields), "on_behalf_of");
  EXPECT_FALSE(did_you_mean("reason", fields).has_value());
  EXPECT_FALSE(did_you_mean("x", fields).has_value());
  EXPECT_FALSE(did_you_mean(std::string(100'000, 'c'), fields).has_value());
}

}  // namespace
}  // namespace cascade::adapters::http
