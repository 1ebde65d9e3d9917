// What a release must carry for its pipeline's steps (`needs_artifact`,
// engine/pipeline.hpp), decided when the release is created: an empty path
// never reaches a step that copies `$(CASCADE_ARTIFACT_PATH)/.` (issue 15: a
// CI build without --uri deployed the root filesystem).
#include "engine/artifact_version.hpp"
#include "engine/pipeline.hpp"
#include "tests/support/engine_harness.hpp"

#include <gtest/gtest.h>

namespace cascade::testing {
namespace {

std::string pipeline_needing(const std::string& name, const std::string& need) {
  return R"({"name": ")" + name + R"(",)" + (need.empty() ? "" : R"("needs_artifact": ")" + need + R"(",)") +
         R"("stages": [{"name": "dev", "trigger": {"after_release": true}, "steps": [{"name": "deploy", "run": "deploy"}]}]})";
}

class ArtifactNeedTest : public EngineHarness {
 protected:
  Result<std::string> create(const std::string& pipeline, const std::string& path, const std::string& uri = "") {
    engine::NewRelease request;
    request.pipeline = pipeline;
    request.artifact.version = "1.0";
    request.artifact.path = path;
    request.artifact.uri = uri;
    return service().create_release(request, engine::Invocation{"dave", "", ""});
  }
};

TEST_F(ArtifactNeedTest, APipelineNeedsAnAbsolutePathByDefault) {
  apply(pipeline_needing("Site", ""));
  auto without = create("Site", "");
  ASSERT_FALSE(without);
  EXPECT_EQ(without.error().code, ErrorCode::kInvalidArgument);
  ASSERT_EQ(without.error().details.size(), 1u);
  EXPECT_EQ(without.error().details[0].path, "artifact.path");
  EXPECT_NE(without.error().message.find("pipeline 'Site' needs the artifact's path on the server, and none is given"),
            std::string::npos)
      << without.error().message;

  // A download location is not enough for steps that read a path.
  auto only_uri = create("Site", "", "https://artifacts.example.com/site-1.0.tgz");
  ASSERT_FALSE(only_uri);
  EXPECT_NE(only_uri.error().message.find("only the URI https://artifacts.example.com/site-1.0.tgz is given"),
            std::string::npos)
      << only_uri.error().message;

  auto relative = create("Site", "build/site");
  ASSERT_FALSE(relative);
  EXPECT_NE(relative.error().message.find("must be an absolute path, not 'build/site'"), std::string::npos);

  EXPECT_TRUE(create("Site", "/artifacts/site-1.0"));
  // Nothing of the refused requests was recorded: the one release is number 1.
  EXPECT_TRUE(service().load("Site-1"));
  EXPECT_FALSE(service().load("Site-2"));
}

TEST_F(ArtifactNeedTest, APipelineThatDownloadsTakesAUriAndOneThatNeedsNothingTakesNothing) {
  apply(pipeline_needing("Fetch", "uri"));
  apply(pipeline_needing("Infra", "none"));
  EXPECT_FALSE(create("Fetch", ""));
  EXPECT_TRUE(create("Fetch", "", "https://artifacts.example.com/fetch-1.0.tgz"));
  EXPECT_TRUE(create("Fetch", "/artifacts/fetch-1.0"));
  EXPECT_TRUE(create("Infra", ""));
}

TEST_F(ArtifactNeedTest, TheNeedIsPartOfTheCanonicalDefinitionOnlyWhenNotTheDefault) {
  auto path = engine::parse_pipeline_text(pipeline_needing("Site", ""));
  auto explicit_path = engine::parse_pipeline_text(pipeline_needing("Site", "path"));
  auto none = engine::parse_pipeline_text(pipeline_needing("Site", "none"));
  ASSERT_TRUE(path && explicit_path && none);
  // Definitions written before the field existed keep their canonical bytes.
  EXPECT_EQ(engine::to_json(path.value()), engine::to_json(explicit_path.value()));
  EXPECT_FALSE(engine::to_json(path.value()).contains("needs_artifact"));
  EXPECT_EQ(engine::to_json(none.value())["needs_artifact"], "none");

  auto misspelt = engine::parse_pipeline_text(pipeline_needing("Site", "url"));
  ASSERT_FALSE(misspelt);
  ASSERT_EQ(misspelt.error().details.size(), 1u);
  EXPECT_EQ(misspelt.error().details[0].path, "needs_artifact");
  EXPECT_EQ(misspelt.error().details[0].message, R"(expected "path", "uri" or "none", found "url")");
}

TEST(MissingArtifactTest, NamesThePathThatIsNotThere) {
  TempDir dir;
  EXPECT_EQ(engine::missing_artifact(dir.path()), std::nullopt);
  const std::string gone = dir.path() + "/gone";
  EXPECT_EQ(engine::missing_artifact(gone), "no file or directory at " + gone + " on the server");
}

}  // namespace
}  // namespace cascade::testing
