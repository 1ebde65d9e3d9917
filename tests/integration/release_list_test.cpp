// The releases list: newest first, per pipeline and across pipelines, by
// status, in pages that new releases never shift.
#include "tests/support/projections_harness.hpp"

#include <gtest/gtest.h>

namespace cascade::projections {
namespace {

constexpr const char* kApi = R"json({"name": "Api", "stages": [{"name": "deploy", "trigger": {"after_release": true},
  "steps": [{"name": "deploy", "run": "deploy $(CASCADE_ARTIFACT_VERSION)"}]}]})json";
constexpr const char* kWeb = R"json({"name": "Web", "stages": [{"name": "deploy", "trigger": {"after_release": true},
  "steps": [{"name": "deploy", "run": "deploy $(CASCADE_ARTIFACT_VERSION)"}]}]})json";

class ReleaseListTest : public testing::ProjectionsHarness {
 protected:
  void SetUp() override {
    ProjectionsHarness::SetUp();
    run();
    apply(kApi);
    apply(kWeb);
  }

  ReleasePage page(ReleaseQuery query) {
    auto listed = projections().releases().list(query);
    EXPECT_TRUE(listed) << listed.error().message;
    return listed ? listed.value() : ReleasePage{};
  }
  // Every page of a query, following the cursors.
  std::vector<std::string> all_pages(ReleaseQuery query) {
    std::vector<std::string> out;
    for (int pages = 0; pages < 100; ++pages) {
      const ReleasePage p = page(query);
      for (const std::string& id : ids(p.releases())) out.push_back(id);
      if (!p.next_cursor) break;
      query.cursor = *p.next_cursor;
    }
    return out;
  }
  static ReleaseQuery query(std::size_t limit, const std::string& cursor = "") {
    ReleaseQuery q;
    q.limit = limit;
    q.cursor = cursor;
    return q;
  }
};

TEST_F(ReleaseListTest, TheNextPageContinuesExactlyAfterThePreviousOneWhileNewReleasesArrive) {
  for (const char* pipeline : {"Api", "Web", "Api", "Web", "Api", "Web", "Api"}) create(pipeline);
  settle();
  const ReleasePage first = page(query(3));
  EXPECT_EQ(ids(first.releases()), (std::vector<std::string>{"Api-4", "Web-3", "Api-3"}));
  ASSERT_TRUE(first.next_cursor);

  // New releases arrive between the pages.
  create("Api");
  create("Web");
  settle();

  const ReleasePage second = page(query(3, *first.next_cursor));
  EXPECT_EQ(ids(second.releases()), (std::vector<std::string>{"Web-2", "Api-2", "Web-1"}));
  ASSERT_TRUE(second.next_cursor);
  const ReleasePage third = page(query(3, *second.next_cursor));
  EXPECT_EQ(ids(third.releases()), (std::vector<std::string>{"Api-1"}));
  EXPECT_FALSE(third.next_cursor) << "nothing older";

  // The newcomers are on a fresh first page.
  EXPECT_EQ(ids(page(query(2)).releases()), (std::vector<std::string>{"Web-4", "Api-5"}));
  EXPECT_EQ(all_pages(query(4)), (std::vector<std::string>{"Web-4", "Api-5", "Api-4", "Web-3", "Api-3", "Web-2",
                                                           "Api-2", "Web-1", "Api-1"}));
}

TEST_F(ReleaseListTest, APipelineAndAStatusFilterTheListAndPageTheSameWay) {
  scripted_.fail("deploy", "deploy 2.0.0", 1);
  create("Api", "1.0.0");
  create("Api", "2.0.0");
  create("Web", "1.0.0");
  create("Api", "3.0.0");
  create("Web", "2.0.0");
  settle();

  ReleaseQuery api = query(50);
  api.pipeline = "Api";
  EXPECT_EQ(ids(page(api).releases()), (std::vector<std::string>{"Api-3", "Api-2", "Api-1"}));
  api.limit = 2;
  EXPECT_EQ(all_pages(api), (std::vector<std::string>{"Api-3", "Api-2", "Api-1"}));

  ReleaseQuery failed = query(50);
  failed.status = "Failed";
  const ReleasePage failures = page(failed);
  EXPECT_EQ(ids(failures.releases()), (std::vector<std::string>{"Web-2", "Api-2"}));
  EXPECT_EQ(failures.releases()[0]["status"], "Failed") << "items are the summary documents";
  EXPECT_EQ(failures.releases()[0]["stages"][0]["failure_reason"], "step 'deploy' failed: exit code 1");
  failed.pipeline = "Api";
  EXPECT_EQ(ids(page(failed).releases()), (std::vector<std::string>{"Api-2"}));

  ReleaseQuery succeeded = query(1);
  succeeded.status = "Succeeded";
  const ReleasePage one = page(succeeded);
  EXPECT_EQ(ids(one.releases()), (std::vector<std::string>{"Api-3"}));
  ASSERT_TRUE(one.next_cursor);
  EXPECT_EQ(all_pages(succeeded), (std::vector<std::string>{"Api-3", "Web-1", "Api-1"}));

  ReleaseQuery unknown = query(50);
  unknown.pipeline = "Ap";  // a prefix of a pipeline's name matches nothing
  EXPECT_TRUE(page(unknown).releases().empty());
}

TEST_F(ReleaseListTest, BadLimitsStatusesAndCursorsAreInvalidArguments) {
  create("Api");
  settle();
  for (std::size_t limit : {std::size_t{0}, ReleaseQuery::kMaxLimit + 1}) {
    auto listed = projections().releases().list(query(limit));
    ASSERT_FALSE(listed) << limit;
    EXPECT_EQ(listed.error().code, ErrorCode::kInvalidArgument);
  }
  EXPECT_EQ(ids(page(query(ReleaseQuery::kMaxLimit)).releases()), (std::vector<std::string>{"Api-1"}));
  ReleaseQuery bogus = query(10);
  bogus.status = "Done";
  auto refused = projections().releases().list(bogus);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(refused.error().message.find("WaitingForApproval"), std::string::npos) << refused.error().message;
  for (const char* cursor : {"xyz", "c00000000000000zz", "c0"}) {
    auto listed = projections().releases().list(query(10, cursor));
    ASSERT_FALSE(listed) << cursor;
    EXPECT_EQ(listed.error().code, ErrorCode::kInvalidArgument);
  }
}

// Api and Web both name their releases Release-$(rev:r), the default.
TEST_F(ReleaseListTest, ADisplayNameResolvesToItsReleaseAndARepeatedOneIsRefusedWithItsIds) {
  const std::string api_1 = create("Api");
  const std::string api_2 = create("Api");
  const std::string web_1 = create("Web");
  settle();
  ASSERT_EQ(load(api_2).name, "Release-2");
  events::EventLog& log = store_->log();
  auto resolve = [&](const std::string& id_or_name) {
    return release_id_of(log, projections().releases(), id_or_name);
  };
  auto unique = resolve("Release-2");
  ASSERT_TRUE(unique) << unique.error().message;
  EXPECT_EQ(unique.value(), api_2) << "only Api has a second release";
  auto by_id = resolve(web_1);
  ASSERT_TRUE(by_id);
  EXPECT_EQ(by_id.value(), web_1);
  auto unknown = resolve("Release-9");
  ASSERT_TRUE(unknown) << "an unknown name is the caller's own 'no release'";
  EXPECT_EQ(unknown.value(), "Release-9");

  auto repeated = resolve("Release-1");
  ASSERT_FALSE(repeated);
  EXPECT_EQ(repeated.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(repeated.error().message.find("'Release-1' belongs to 2 releases (" + api_1 + ", " + web_1 + ")"),
            std::string::npos)
      << repeated.error().message;
  // "Release-1" is no prefix match for "Release-10" and the like.
  auto ids = projections().releases().ids_named("Release");
  ASSERT_TRUE(ids);
  EXPECT_TRUE(ids.value().empty());
}

TEST_F(ReleaseListTest, TheReleasesOfOneCiEventAreListedByItsIdAndOptionallyByPipeline) {
  auto from_ci = [&](const std::string& pipeline, const std::string& cdevent_id) {
    engine::NewRelease request;
    request.pipeline = pipeline;
    request.artifact = {"1.0.0", "/artifacts/1.0.0", 0, "", ""};
    request.trigger = "cdevent";
    request.trigger_cdevent = events::CdEventTrigger{cdevent_id, "/ci/shop", "dev.cdevents.artifact.published.0.2.0"};
    auto id = service().create_release(request, engine::Invocation{"ci", "", ""});
    EXPECT_TRUE(id) << id.error().message;
    return id ? id.value() : "";
  };
  const std::string api = from_ci("Api", "build-7");
  const std::string web = from_ci("Web", "build-7");
  from_ci("Api", "build-70");  // a longer id with the same beginning
  create("Web");               // by hand: no CDEvent
  settle();

  ReleaseQuery by_event = query(10);
  by_event.cdevent = "build-7";
  EXPECT_EQ(ids(page(by_event).releases()), (std::vector<std::string>{web, api}));
  by_event.pipeline = "Api";
  EXPECT_EQ(ids(page(by_event).releases()), (std::vector<std::string>{api}));
  by_event.cdevent = "build-8";
  by_event.pipeline.clear();
  EXPECT_TRUE(page(by_event).documents.empty());
}

}  // namespace
}  // namespace cascade::projections
