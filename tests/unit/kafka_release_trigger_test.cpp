// What the Kafka ingress added to the core: the pipeline's `artifact` trigger
// (validation with paths, canonical form, glob semantics) and the
// ReleaseCreated/Artifact fields — which must leave events sealed before them
// byte-for-byte decodable and verifiable.
#include "engine/pipeline.hpp"
#include "engine/release.hpp"
#include "events/codec.hpp"
#include "projections/release_summary.hpp"
#include "tests/support/release_fixture.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace cascade {
namespace {

using ::testing::ElementsAre;
using nlohmann::json;

json pipeline_with(const json& artifact) {
  json document = json::parse(R"({"name": "Shop", "stages": [
      {"name": "dev", "trigger": {"after_release": true}, "steps": [{"name": "deploy", "run": "true"}]}]})");
  document["artifact"] = artifact;
  return document;
}

std::vector<Problem> problems_of(const json& document) {
  auto parsed = engine::parse_pipeline(document);
  EXPECT_FALSE(parsed) << document.dump();
  if (parsed) return {};
  EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidArgument) << parsed.error().message;
  return parsed.error().details;
}

TEST(KafkaReleaseTriggerTest, ArtifactTriggerParsesAndRoundTripsCanonically) {
  auto parsed = engine::parse_pipeline(
      pipeline_with({{"source", "/ci/shop*"}, {"branch_filters", {"main", "release/*", "!release/old*"}}}));
  ASSERT_TRUE(parsed) << parsed.error().message;
  ASSERT_TRUE(parsed.value().artifact);
  EXPECT_EQ(parsed.value().artifact->source, "/ci/shop*");
  EXPECT_THAT(parsed.value().artifact->branch_filters, ElementsAre("main", "release/*", "!release/old*"));
  const json canonical = engine::to_json(parsed.value());
  EXPECT_EQ(canonical["artifact"],
            json({{"source", "/ci/shop*"}, {"branch_filters", {"main", "release/*", "!release/old*"}}}));
  auto again = engine::parse_pipeline(canonical);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(engine::to_json(again.value()), canonical);

  // Without filters the canonical form says so explicitly; without the
  // trigger there is no key at all, so older definitions keep their form.
  auto bare = engine::parse_pipeline(pipeline_with({{"source", "pkg:generic/shop"}}));
  ASSERT_TRUE(bare);
  EXPECT_EQ(engine::to_json(bare.value())["artifact"], json({{"source", "pkg:generic/shop"}, {"branch_filters", json::array()}}));
  json without = pipeline_with(nullptr);
  without.erase("artifact");
  auto none = engine::parse_pipeline(without);
  ASSERT_TRUE(none);
  EXPECT_FALSE(none.value().artifact);
  EXPECT_FALSE(engine::to_json(none.value()).contains("artifact"));
}

TEST(KafkaReleaseTriggerTest, EveryProblemOfTheArtifactTriggerIsReportedWithItsPath) {
  EXPECT_THAT(problems_of(pipeline_with("ci")), ElementsAre(Problem{"artifact", "expected an object, found string"}));
  EXPECT_THAT(problems_of(pipeline_with({{"branch_filter", {"main"}}})),
              ElementsAre(Problem{"artifact.branch_filter", "unknown field 'branch_filter' (did you mean 'branch_filters'?)"},
                          Problem{"artifact.source", "missing required field 'source'"}));
  EXPECT_THAT(problems_of(pipeline_with({{"source", " "}, {"branch_filters", "main"}})),
              ElementsAre(Problem{"artifact.source",
                                  "source is empty: give the CI source (or a pattern) whose builds create releases"},
                          Problem{"artifact.branch_filters", "expected an array, found string"}));
  EXPECT_THAT(problems_of(pipeline_with({{"source", "/ci"}, {"branch_filters", {"main", 5, "!", "main", "fe ature"}}})),
              ElementsAre(Problem{"artifact.branch_filters[1]", "expected a string, found number"},
                          Problem{"artifact.branch_filters[2]",
                                  "empty branch pattern: write e.g. \"main\", \"release/*\" or \"!release/old*\""},
                          Problem{"artifact.branch_filters[3]",
                                  "duplicate branch filter 'main' (first listed at artifact.branch_filters[0])"},
                          Problem{"artifact.branch_filters[4]",
                                  "branch pattern 'fe ature' contains whitespace, which no branch name has"}));
}

engine::ArtifactTrigger trigger(std::vector<std::string> filters) {
  return engine::ArtifactTrigger{"/ci/*", std::move(filters)};
}

TEST(KafkaReleaseTriggerTest, BranchFiltersIncludeExcludeAndExcludesWin) {
  const auto filters = trigger({"main", "release/*", "!release/old*"});
  EXPECT_TRUE(filters.matches_branch("main"));
  EXPECT_TRUE(filters.matches_branch("release/2.0"));
  EXPECT_FALSE(filters.matches_branch("release/old-1.0"));  // the exclude wins
  EXPECT_FALSE(filters.matches_branch("release/2.0/hotfix"));  // '*' stays within a segment
  EXPECT_FALSE(filters.matches_branch("feature/x"));
  EXPECT_FALSE(filters.matches_branch("mainline"));
  EXPECT_FALSE(filters.matches_branch(""));  // names no branch: includes cannot match

  const auto no_filters = trigger({});
  EXPECT_TRUE(no_filters.matches_branch("anything/at/all"));
  EXPECT_TRUE(no_filters.matches_branch(""));

  const auto only_excludes = trigger({"!dependabot/**"});
  EXPECT_TRUE(only_excludes.matches_branch("main"));
  EXPECT_TRUE(only_excludes.matches_branch(""));
  EXPECT_FALSE(only_excludes.matches_branch("dependabot/npm/lodash-4"));

  const auto deep = trigger({"release/**", "?ix"});
  EXPECT_TRUE(deep.matches_branch("release/2.0/hotfix"));
  EXPECT_TRUE(deep.matches_branch("fix"));
  EXPECT_FALSE(deep.matches_branch("/ix"));
}

TEST(KafkaReleaseTriggerTest, GlobsMatchLikeFnmatchWithPathSegments) {
  EXPECT_TRUE(engine::glob_match("/ci/*", "/ci/shop"));
  EXPECT_FALSE(engine::glob_match("/ci/*", "/ci/shop/main"));
  EXPECT_TRUE(engine::glob_match("/ci/**", "/ci/shop/main"));
  EXPECT_TRUE(engine::glob_match("https://ci.example.com/**", "https://ci.example.com/jobs/shop"));
  EXPECT_TRUE(engine::glob_match("pkg:oci/shop*", "pkg:oci/shop-api"));
  EXPECT_TRUE(engine::glob_match("*", ""));
  EXPECT_TRUE(engine::glob_match("a*b*c", "aXbYbZc"));
  EXPECT_FALSE(engine::glob_match("a*b*c", "aXbYbZ"));
  EXPECT_TRUE(engine::glob_match("exact", "exact"));
  EXPECT_FALSE(engine::glob_match("exact", "exactly"));
}

// Sealed by the codec as it was before the ingress existed (commit bfefe86):
// a ReleaseCreated and the StageTriggered after it.
constexpr const char* kSealedBefore[] = {
    R"({"actor":"alice","causation_id":"create-1","command_id":"create-1","correlation_id":"shop-1","data":{"artifact":{"built_at":1764319000000,"path":"/artifacts/1.2.3","version":"1.2.3"},"definition":{"name":"Shop"},"name":"Shop-1","pipeline":"Shop","pipeline_version":2,"release_id":"shop-1","requested_by":"alice","secret_variables":{},"trigger":"manual","variables":{"REGION":"eu"}},"event_id":"6f1c2a7e-0000-4000-8000-000000000001","hash":"22160c1447901fae7544d39d3aa4dba852cb168509e54e93ecae803f794d1925","prev_hash":"","recorded_at":1764320000000,"schema_version":1,"stream":"release-shop-1","type":"ReleaseCreated","version":1})",
    R"({"actor":"orchestrator","causation_id":"6f1c2a7e-0000-4000-8000-000000000001","command_id":"orchestrator/shop-1/dev/1","correlation_id":"shop-1","data":{"attempt":1,"reason":"release created","stage":"dev"},"event_id":"6f1c2a7e-0000-4000-8000-000000000002","hash":"b792e47e93717d56dce822544b88c50450ebaf858d066f141e2c2e1b44bf6e2a","prev_hash":"22160c1447901fae7544d39d3aa4dba852cb168509e54e93ecae803f794d1925","recorded_at":1764320000100,"schema_version":1,"stream":"release-shop-1","type":"StageTriggered","version":2})",
};

TEST(KafkaReleaseTriggerTest, EventsSealedBeforeTheNewFieldsStillDecodeAndVerify) {
  std::vector<events::RecordedEvent> chain;
  for (std::uint64_t i = 0; i < 2; ++i) {
    auto decoded = events::decode(kSealedBefore[i], 7 + i);
    ASSERT_TRUE(decoded) << decoded.error().message;
    chain.push_back(decoded.value());
  }
  const auto* created = std::get_if<events::ReleaseCreated>(&chain[0].data);
  ASSERT_NE(created, nullptr);
  EXPECT_FALSE(created->trigger_cdevent);
  EXPECT_EQ(created->artifact.id, "");
  EXPECT_EQ(created->artifact.uri, "");
  EXPECT_TRUE(events::verify_chain(chain));
  // Re-encoding gives the very bytes that were hashed.
  EXPECT_EQ(events::compute_hash(chain[0]), "22160c1447901fae7544d39d3aa4dba852cb168509e54e93ecae803f794d1925");
  EXPECT_EQ(events::compute_hash(chain[1]), "b792e47e93717d56dce822544b88c50450ebaf858d066f141e2c2e1b44bf6e2a");
}

TEST(KafkaReleaseTriggerTest, ReleaseCreatedRecordsTheTriggeringCdEventAndTheArtifactPurl) {
  events::RecordedEvent event;
  event.event_id = "e1";
  event.stream = "release-Shop-1";
  event.version = 1;
  events::ReleaseCreated created;
  created.release_id = "Shop-1";
  created.artifact = {"1.4.2", "", 1764319000000, "pkg:generic/shop@1.4.2", "https://artifacts.example.com/shop.tgz"};
  created.trigger = "ci: /ci/shop";
  created.trigger_cdevent = events::CdEventTrigger{"b6a1", "/ci/shop", "dev.cdevents.artifact.published.0.3.0"};
  event.data = created;
  const json canonical = json::parse(events::canonical_bytes(event));
  EXPECT_EQ(canonical["data"]["trigger_cdevent"],
            json({{"id", "b6a1"}, {"source", "/ci/shop"}, {"type", "dev.cdevents.artifact.published.0.3.0"}}));
  EXPECT_EQ(canonical["data"]["artifact"]["id"], "pkg:generic/shop@1.4.2");
  EXPECT_EQ(canonical["data"]["artifact"]["uri"], "https://artifacts.example.com/shop.tgz");
  const std::string stored = events::seal(event);
  auto decoded = events::decode(stored, 1);
  ASSERT_TRUE(decoded) << decoded.error().message;
  const auto* back = std::get_if<events::ReleaseCreated>(&decoded.value().data);
  ASSERT_NE(back, nullptr);
  ASSERT_TRUE(back->trigger_cdevent);
  EXPECT_EQ(back->trigger_cdevent->id, "b6a1");
  EXPECT_EQ(back->trigger_cdevent->type, "dev.cdevents.artifact.published.0.3.0");
  EXPECT_EQ(back->artifact.id, "pkg:generic/shop@1.4.2");
  EXPECT_EQ(back->artifact.uri, "https://artifacts.example.com/shop.tgz");
  EXPECT_TRUE(events::verify_chain({decoded.value()}));
}

TEST(KafkaReleaseTriggerTest, TheSummaryShowsTheArtifactPurlAndTheCdEventOnlyWhenThereAreAny) {
  engine::ReleaseState state;
  engine::CreateRelease create;
  create.release_id = "SampleApp-1";
  create.number = 1;
  create.name = "SampleApp-1";
  create.pipeline_version = 1;
  create.definition = testing::fork_join_pipeline();
  create.artifact = {"1.4.2", "", 0, "pkg:generic/shop@1.4.2", "https://artifacts.example.com/shop.tgz"};
  create.trigger_cdevent = events::CdEventTrigger{"b6a1", "/ci/shop", "dev.cdevents.artifact.published.0.3.0"};
  engine::ReleaseState manual = state;
  for (bool from_ci : {true, false}) {
    engine::ReleaseState& folded = from_ci ? state : manual;
    engine::CreateRelease command = create;
    if (!from_ci) {
      command.artifact = {"1.4.2", "/artifacts/1.4.2", 0, "", ""};
      command.trigger_cdevent.reset();
    }
    auto decided = engine::decide(folded, command, engine::CommandContext{"c1", "kafka-ingress", "c1", 1000});
    ASSERT_TRUE(decided) << decided.error().message;
    events::RecordedEvent recorded;
    recorded.version = 1;
    recorded.data = decided.value().front();
    engine::evolve(folded, recorded);
  }
  const json summary = projections::summarize(state);
  EXPECT_EQ(summary["artifact"]["id"], "pkg:generic/shop@1.4.2");
  EXPECT_EQ(summary["artifact"]["uri"], "https://artifacts.example.com/shop.tgz");
  EXPECT_EQ(summary["trigger_cdevent"]["id"], "b6a1");
  const json plain = projections::summarize(manual);
  EXPECT_FALSE(plain["artifact"].contains("id"));
  EXPECT_FALSE(plain.contains("trigger_cdevent"));
}

}  // namespace
}  // namespace cascade
