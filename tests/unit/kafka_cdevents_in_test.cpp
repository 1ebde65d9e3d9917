// Reading build announcements: the hand-written v0.5.1 schema validator, proven
// against python jsonschema on a corpus of valid and deliberately invalid
// documents, and what an announcement carries (artifact, version, branch, uri).
#include "adapters/kafka/cdevents_in.hpp"

#include "tests/support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

namespace cascade::adapters::kafka {
namespace {

using nlohmann::json;

const std::string kSchemasDir = std::string(CASCADE_SOURCE_DIR) + "/../shared/cdevents/schemas";
const std::string kConformanceDir = std::string(CASCADE_SOURCE_DIR) + "/../shared/cdevents/conformance";

json artifact_published() {
  return json::parse(R"({
    "context": {"specversion": "0.5.1", "id": "b6a1", "source": "/ci/shop",
                "type": "dev.cdevents.artifact.published.0.3.0", "timestamp": "2026-11-28T10:00:00.250Z"},
    "subject": {"id": "pkg:generic/shop@1.4.2", "content": {}}})");
}

json artifact_published_full() {
  return json::parse(R"({
    "context": {"specversion": "0.5.1", "id": "b6a2", "source": "https://ci.example.com/shop", "chainId": "c1",
                "type": "dev.cdevents.artifact.published.0.3.0", "timestamp": "2026-11-28T10:00:00+01:00",
                "schemaUri": "https://example.com/schema/custom",
                "links": [{"linkType": "RELATION", "linkKind": "TRIGGER", "target": {"contextId": "x"}, "tags": {"a": "b"}},
                          {"linkType": "PATH", "from": {"contextId": "y"}},
                          {"linkType": "END", "from": {"contextId": "z"}, "tags": {}}]},
    "subject": {"id": "pkg:oci/shop@sha256%3Aabc?repository_url=registry.example.com", "source": "/ci/shop",
                "content": {"sbom": {"uri": "https://sbom.example.com/shop.sbom"}, "user": "ci-bot"}},
    "customData": {"branch": "release/2.0", "uri": "https://artifacts.example.com/shop-1.4.2.tgz"},
    "customDataContentType": "application/json"})");
}

json build_finished() {
  return json::parse(R"({
    "context": {"specversion": "0.5.1", "id": "bf1", "source": "/ci/shop",
                "type": "dev.cdevents.build.finished.0.3.0", "timestamp": "2026-11-28T10:00:00Z"},
    "subject": {"id": "build-77", "source": "/ci/shop", "content": {"artifactId": "pkg:npm/%40acme/shop@2.0.0"}},
    "customData": {"branch": "main"}})");
}

json pipelinerun_finished() {
  return json::parse(R"({
    "context": {"specversion": "0.5.1", "id": "pr1", "source": "/ci/shop",
                "type": "dev.cdevents.pipelinerun.finished.0.3.0", "timestamp": "2026-11-28T10:00:00Z"},
    "subject": {"id": "run-9", "content": {"pipelineName": "shop-ci", "uri": "https://ci.example.com/runs/9",
                                           "outcome": "success", "errors": ""}},
    "customData": {"artifactId": "pkg:generic/shop@3.1.0", "branch": "main"}})");
}

// ---- the corpus --------------------------------------------------------------

struct CorpusEntry {
  std::string name;
  ConsumedType type;
  json document;
  bool valid;                 // the verdict both validators must give
  bool uri_format_only = false;  // invalid only by format uri/uri-reference
};

std::string schema_file(ConsumedType type) {
  switch (type) {
    case ConsumedType::kArtifactPublished: return "artifactpublished";
    case ConsumedType::kBuildFinished: return "buildfinished";
    case ConsumedType::kPipelineRunFinished: return "pipelinerunfinished";
  }
  return "";
}

std::vector<CorpusEntry> corpus() {
  std::vector<CorpusEntry> out;
  const std::vector<std::pair<ConsumedType, json>> bases = {
      {ConsumedType::kArtifactPublished, artifact_published()},
      {ConsumedType::kArtifactPublished, artifact_published_full()},
      {ConsumedType::kBuildFinished, build_finished()},
      {ConsumedType::kPipelineRunFinished, pipelinerun_finished()}};
  auto add = [&](const std::string& name, ConsumedType type, json doc, bool valid, bool uri_only = false) {
    out.push_back({name, type, std::move(doc), valid, uri_only});
  };
  using Mutation = std::function<void(json&)>;
  const std::vector<std::tuple<std::string, Mutation, bool, bool>> mutations = {
      {"as is", [](json&) {}, true, false},
      {"no context", [](json& d) { d.erase("context"); }, false, false},
      {"no subject", [](json& d) { d.erase("subject"); }, false, false},
      {"no context.specversion", [](json& d) { d["context"].erase("specversion"); }, false, false},
      {"no context.id", [](json& d) { d["context"].erase("id"); }, false, false},
      {"no context.source", [](json& d) { d["context"].erase("source"); }, false, false},
      {"no context.type", [](json& d) { d["context"].erase("type"); }, false, false},
      {"no context.timestamp", [](json& d) { d["context"].erase("timestamp"); }, false, false},
      {"no subject.id", [](json& d) { d["subject"].erase("id"); }, false, false},
      {"no subject.content", [](json& d) { d["subject"].erase("content"); }, false, false},
      {"extra root field", [](json& d) { d["extra"] = 1; }, false, false},
      {"extra context field", [](json& d) { d["context"]["time"] = "2026-11-28T10:00:00Z"; }, false, false},
      {"extra subject field", [](json& d) { d["subject"]["type"] = "artifact"; }, false, false},
      {"extra content field", [](json& d) { d["subject"]["content"]["unexpected"] = "x"; }, false, false},
      {"empty context.id", [](json& d) { d["context"]["id"] = ""; }, false, false},
      {"empty specversion", [](json& d) { d["context"]["specversion"] = ""; }, false, false},
      {"numeric context.id", [](json& d) { d["context"]["id"] = 5; }, false, false},
      {"empty chainId", [](json& d) { d["context"]["chainId"] = ""; }, false, false},
      {"other minor version", [](json& d) {
         std::string t = d["context"]["type"];
         d["context"]["type"] = t.substr(0, t.size() - 5) + "0.2.0";
       }, false, false},
      {"other patch version", [](json& d) {
         std::string t = d["context"]["type"];
         d["context"]["type"] = t.substr(0, t.size() - 5) + "0.3.1";
       }, false, false},
      {"timestamp seconds Z", [](json& d) { d["context"]["timestamp"] = "2023-03-20T14:27:05Z"; }, true, false},
      {"timestamp lower case t z", [](json& d) { d["context"]["timestamp"] = "2023-03-20t14:27:05z"; }, true, false},
      {"timestamp nanoseconds", [](json& d) { d["context"]["timestamp"] = "2023-03-20T14:27:05.123456789Z"; }, true, false},
      {"timestamp offset", [](json& d) { d["context"]["timestamp"] = "2023-03-20T14:27:05-07:30"; }, true, false},
      {"timestamp leap day", [](json& d) { d["context"]["timestamp"] = "2024-02-29T00:00:00Z"; }, true, false},
      {"timestamp with space", [](json& d) { d["context"]["timestamp"] = "2023-03-20 14:27:05Z"; }, false, false},
      {"timestamp Feb 30", [](json& d) { d["context"]["timestamp"] = "2023-02-30T00:00:00Z"; }, false, false},
      {"timestamp Feb 29 of 2023", [](json& d) { d["context"]["timestamp"] = "2023-02-29T00:00:00Z"; }, false, false},
      {"timestamp without zone", [](json& d) { d["context"]["timestamp"] = "2023-03-20T14:27:05"; }, false, false},
      {"timestamp hour 24", [](json& d) { d["context"]["timestamp"] = "2023-03-20T24:00:00Z"; }, false, false},
      {"timestamp second 60", [](json& d) { d["context"]["timestamp"] = "2023-03-20T14:27:60Z"; }, false, false},
      {"timestamp year 0", [](json& d) { d["context"]["timestamp"] = "0000-01-01T00:00:00Z"; }, false, false},
      {"timestamp date only", [](json& d) { d["context"]["timestamp"] = "2023-03-20"; }, false, false},
      {"timestamp empty dot", [](json& d) { d["context"]["timestamp"] = "2023-03-20T14:27:05.Z"; }, false, false},
      {"timestamp number", [](json& d) { d["context"]["timestamp"] = 1700000000; }, false, false},
      {"customData null", [](json& d) { d["customData"] = nullptr; }, false, false},
      {"customData number", [](json& d) { d["customData"] = 5; }, false, false},
      {"customData array", [](json& d) { d["customData"] = json::array(); }, false, false},
      {"customData base64 string", [](json& d) { d["customData"] = "aGVsbG8="; }, true, false},
      {"customData empty object", [](json& d) { d["customData"] = json::object(); }, true, false},
      {"customDataContentType number", [](json& d) { d["customDataContentType"] = 5; }, false, false},
      {"links empty", [](json& d) { d["context"]["links"] = json::array(); }, true, false},
      {"links not an array", [](json& d) { d["context"]["links"] = json::object(); }, false, false},
      {"link a string", [](json& d) { d["context"]["links"] = {"x"}; }, false, false},
      {"link without linkType", [](json& d) { d["context"]["links"] = {{{"from", {{"contextId", "a"}}}}}; }, false, false},
      {"link of unknown type", [](json& d) { d["context"]["links"] = {{{"linkType", "FOO"}}}; }, false, false},
      {"relation without target", [](json& d) {
         d["context"]["links"] = {{{"linkType", "RELATION"}, {"linkKind", "TRIGGER"}}};
       }, false, false},
      {"relation target without contextId", [](json& d) {
         d["context"]["links"] = {{{"linkType", "RELATION"}, {"linkKind", "TRIGGER"}, {"target", json::object()}}};
       }, true, false},
      {"path without from", [](json& d) { d["context"]["links"] = {{{"linkType", "PATH"}}}; }, false, false},
      {"end alone", [](json& d) { d["context"]["links"] = {{{"linkType", "END"}}}; }, true, false},
      {"end from without contextId", [](json& d) {
         d["context"]["links"] = {{{"linkType", "END"}, {"from", json::object()}}};
       }, false, false},
      {"link from with extra member", [](json& d) {
         d["context"]["links"] = {{{"linkType", "PATH"}, {"from", {{"contextId", "a"}, {"more", 1}}}}};
       }, true, false},
      {"link with extra member", [](json& d) {
         d["context"]["links"] = {{{"linkType", "END"}, {"extra", true}}};
       }, false, false},
      {"link tags not an object", [](json& d) { d["context"]["links"] = {{{"linkType", "END"}, {"tags", "x"}}}; },
       false, false},
      {"subject.source number", [](json& d) { d["subject"]["source"] = 5; }, false, false},
      {"subject.source empty", [](json& d) { d["subject"]["source"] = ""; }, false, false},
      {"root an array", [](json& d) { d = json::array({d}); }, false, false},
      {"content not an object", [](json& d) { d["subject"]["content"] = "x"; }, false, false},
      {"schemaUri relative", [](json& d) { d["context"]["schemaUri"] = "/relative/only"; }, false, true},
      {"source with a space", [](json& d) { d["context"]["source"] = "/ci/my shop"; }, false, true},
      {"source bad percent", [](json& d) { d["context"]["source"] = "/ci/%zz"; }, false, true},
  };
  int base_index = 0;
  for (const auto& [type, base] : bases) {
    for (const auto& [name, mutate, valid, uri_only] : mutations) {
      json doc = base;
      mutate(doc);
      add("base" + std::to_string(base_index) + ": " + name, type, std::move(doc), valid, uri_only);
    }
    ++base_index;
  }
  // Type-specific content.
  auto with = [](json doc, const std::function<void(json&)>& mutate) {
    mutate(doc);
    return doc;
  };
  add("artifactId number", ConsumedType::kBuildFinished,
      with(build_finished(), [](json& d) { d["subject"]["content"]["artifactId"] = 5; }), false);
  add("artifactId empty (no minLength)", ConsumedType::kBuildFinished,
      with(build_finished(), [](json& d) { d["subject"]["content"]["artifactId"] = ""; }), true);
  add("build content empty", ConsumedType::kBuildFinished,
      with(build_finished(), [](json& d) { d["subject"]["content"] = json::object(); }), true);
  add("outcome unknown", ConsumedType::kPipelineRunFinished,
      with(pipelinerun_finished(), [](json& d) { d["subject"]["content"]["outcome"] = "maybe"; }), false);
  add("errors number", ConsumedType::kPipelineRunFinished,
      with(pipelinerun_finished(), [](json& d) { d["subject"]["content"]["errors"] = 5; }), false);
  add("pipelinerun uri relative", ConsumedType::kPipelineRunFinished,
      with(pipelinerun_finished(), [](json& d) { d["subject"]["content"]["uri"] = "runs/9"; }), false, true);
  add("sbom without uri", ConsumedType::kArtifactPublished,
      with(artifact_published(), [](json& d) { d["subject"]["content"]["sbom"] = json::object(); }), false);
  add("sbom extra", ConsumedType::kArtifactPublished,
      with(artifact_published(), [](json& d) { d["subject"]["content"]["sbom"] = {{"uri", "/x"}, {"size", 1}}; }), false);
  add("user empty", ConsumedType::kArtifactPublished,
      with(artifact_published(), [](json& d) { d["subject"]["content"]["user"] = ""; }), false);
  add("artifactId in artifact.published content", ConsumedType::kArtifactPublished,
      with(artifact_published(), [](json& d) { d["subject"]["content"]["artifactId"] = "pkg:generic/x@1"; }), false);
  add("build.finished with outcome (not in 0.3.0)", ConsumedType::kBuildFinished,
      with(build_finished(), [](json& d) { d["subject"]["content"]["outcome"] = "success"; }), false);
  if (std::filesystem::is_directory(kConformanceDir)) {
    for (const auto& [file, type] : std::vector<std::pair<std::string, ConsumedType>>{
             {"artifact_published.json", ConsumedType::kArtifactPublished},
             {"build_finished.json", ConsumedType::kBuildFinished},
             {"pipelinerun_finished.json", ConsumedType::kPipelineRunFinished}}) {
      std::ifstream in(std::string(kConformanceDir) + "/" + file);
      add("conformance " + file, type, json::parse(in), true);
    }
  }
  return out;
}

TEST(KafkaCdEventsInTest, TheValidatorGivesTheDesignedVerdictOnEveryCorpusDocument) {
  for (const CorpusEntry& entry : corpus()) {
    const std::vector<Problem> problems = schema_problems(entry.document, entry.type);
    std::string found;
    for (const Problem& p : problems) found += p.path + ": " + p.message + "; ";
    EXPECT_EQ(problems.empty(), entry.valid) << entry.name << " → " << found;
  }
}

// The official schemas, by $id in a referencing.Registry, with the format
// checker: one verdict line per corpus line.
constexpr const char* kOracle = R"PY(
import json, pathlib, sys
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
schemas = pathlib.Path(sys.argv[1])
resources = []
for path in list(schemas.glob("*.json")) + list(schemas.glob("links/*.json")):
    document = json.loads(path.read_text())
    resources.append((document["$id"], Resource.from_contents(document)))
registry = Registry().with_resources(resources)
checker = Draft202012Validator.FORMAT_CHECKER
print(json.dumps({"checks_uri": "uri" in checker.checkers and "uri-reference" in checker.checkers}))
for line in open(sys.argv[2]):
    entry = json.loads(line)
    schema = json.loads((schemas / (entry["schema"] + ".json")).read_text())
    validator = Draft202012Validator(schema, registry=registry, format_checker=checker)
    errors = sorted(validator.iter_errors(entry["document"]), key=lambda e: list(e.absolute_path))
    print(json.dumps({"valid": not errors, "first": errors[0].message if errors else ""}))
)PY";

TEST(KafkaCdEventsInTest, TheValidatorAgreesWithPythonJsonschemaOnTheOfficialSchemas) {
  if (!std::filesystem::is_directory(kSchemasDir)) GTEST_SKIP() << kSchemasDir << " is absent";
  testing::TempDir dir;
  const std::vector<CorpusEntry> entries = corpus();
  {
    std::ofstream script(dir / "oracle.py");
    script << kOracle;
    std::ofstream lines(dir / "corpus.jsonl");
    for (const CorpusEntry& entry : entries) {
      lines << json{{"schema", schema_file(entry.type)}, {"document", entry.document}}.dump() << "\n";
    }
  }
  const std::string command =
      "python3 " + (dir / "oracle.py") + " " + kSchemasDir + " " + (dir / "corpus.jsonl") + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[4096];
  while (std::size_t n = fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  ASSERT_EQ(pclose(pipe), 0) << output;
  std::istringstream in(output);
  std::string line;
  ASSERT_TRUE(std::getline(in, line)) << output;
  const bool python_checks_uri = json::parse(line)["checks_uri"].get<bool>();
  int compared = 0, invalid_compared = 0;
  for (const CorpusEntry& entry : entries) {
    ASSERT_TRUE(std::getline(in, line)) << "python gave fewer verdicts than documents:\n" << output;
    const json verdict = json::parse(line);
    const bool cpp_valid = schema_problems(entry.document, entry.type).empty();
    if (entry.uri_format_only && !python_checks_uri) {
      // This python has no uri checker (rfc3987 is not installed): it can
      // only confirm the document is otherwise valid.
      EXPECT_TRUE(verdict["valid"].get<bool>()) << entry.name << ": " << verdict["first"];
      EXPECT_FALSE(cpp_valid) << entry.name;
      continue;
    }
    EXPECT_EQ(cpp_valid, verdict["valid"].get<bool>())
        << entry.name << ": python says " << (verdict["valid"].get<bool>() ? "valid" : "invalid: ")
        << verdict["first"].get<std::string>() << "\n"
        << entry.document.dump();
    ++compared;
    if (!cpp_valid) ++invalid_compared;
  }
  EXPECT_GT(compared, 200);
  EXPECT_GT(invalid_compared, 150);
}

// ---- announcements ----------------------------------------------------------

TEST(KafkaCdEventsInTest, ArtifactPublishedAnnouncesItsSubjectPurl) {
  const Reading r = read_build_announcement(artifact_published_full());
  ASSERT_EQ(r.kind, Reading::Kind::kAnnouncement) << r.reason << ": " << r.detail;
  const BuildAnnouncement& a = r.announcement;
  EXPECT_EQ(a.cdevent.id, "b6a2");
  EXPECT_EQ(a.cdevent.source, "https://ci.example.com/shop");
  EXPECT_EQ(a.cdevent.type, "dev.cdevents.artifact.published.0.3.0");
  EXPECT_EQ(a.artifact_id, "pkg:oci/shop@sha256%3Aabc?repository_url=registry.example.com");
  EXPECT_EQ(a.artifact.version, "sha256:abc");
  EXPECT_EQ(a.artifact.base, "pkg:oci/shop");
  EXPECT_EQ(a.branch, "release/2.0");
  EXPECT_EQ(a.artifact_uri, "https://artifacts.example.com/shop-1.4.2.tgz");
  EXPECT_EQ(a.subject_source, "/ci/shop");
  EXPECT_EQ(a.built_at, 1795860000000 - 3600 * 1000);  // 10:00 at +01:00 is 09:00Z
}

TEST(KafkaCdEventsInTest, BuildFinishedAnnouncesTheContentArtifactId) {
  const Reading r = read_build_announcement(build_finished());
  ASSERT_EQ(r.kind, Reading::Kind::kAnnouncement) << r.detail;
  EXPECT_EQ(r.announcement.artifact_id, "pkg:npm/%40acme/shop@2.0.0");
  EXPECT_EQ(r.announcement.artifact.version, "2.0.0");
  EXPECT_EQ(r.announcement.artifact.base, "pkg:npm/%40acme/shop");
  EXPECT_EQ(r.announcement.branch, "main");
  EXPECT_EQ(r.announcement.built_at, 1795860000000);

  json no_artifact = build_finished();
  no_artifact["subject"]["content"] = json::object();
  EXPECT_EQ(read_build_announcement(no_artifact).reason, "no_artifact");
}

TEST(KafkaCdEventsInTest, PipelineRunFinishedNeedsSuccessAndCustomDataArtifactId) {
  const Reading r = read_build_announcement(pipelinerun_finished());
  ASSERT_EQ(r.kind, Reading::Kind::kAnnouncement) << r.detail;
  EXPECT_EQ(r.announcement.artifact.version, "3.1.0");

  json failed = pipelinerun_finished();
  failed["subject"]["content"]["outcome"] = "failure";
  EXPECT_EQ(read_build_announcement(failed).kind, Reading::Kind::kSkipped);
  EXPECT_EQ(read_build_announcement(failed).reason, "not_successful");
  json no_outcome = pipelinerun_finished();
  no_outcome["subject"]["content"].erase("outcome");
  EXPECT_EQ(read_build_announcement(no_outcome).reason, "not_successful");
  json no_artifact = pipelinerun_finished();
  no_artifact["customData"].erase("artifactId");
  EXPECT_EQ(read_build_announcement(no_artifact).reason, "no_artifact");
}

TEST(KafkaCdEventsInTest, OtherTypesAreSkippedAndBrokenOnesInvalid) {
  json deployed = artifact_published();
  deployed["context"]["type"] = "dev.cdevents.service.deployed.0.3.0";
  EXPECT_EQ(read_build_announcement(deployed).kind, Reading::Kind::kSkipped);
  EXPECT_EQ(read_build_announcement(deployed).reason, "unsupported_type");
  json next_major = artifact_published();
  next_major["context"]["type"] = "dev.cdevents.artifact.published.1.0.0";
  EXPECT_EQ(read_build_announcement(next_major).reason, "unsupported_type");

  json old_minor = artifact_published();
  old_minor["context"]["type"] = "dev.cdevents.artifact.published.0.2.0";
  const Reading invalid = read_build_announcement(old_minor);
  EXPECT_EQ(invalid.kind, Reading::Kind::kInvalid);
  EXPECT_EQ(invalid.reason, "schema");
  EXPECT_NE(invalid.detail.find("/context/type"), std::string::npos) << invalid.detail;

  json extra = artifact_published();
  extra["subject"]["content"]["foo"] = 1;
  EXPECT_NE(read_build_announcement(extra).detail.find("/subject/content/foo: unknown field 'foo'"), std::string::npos)
      << read_build_announcement(extra).detail;

  json not_purl = artifact_published();
  not_purl["subject"]["id"] = "shop-1.4.2.tgz";
  EXPECT_EQ(read_build_announcement(not_purl).reason, "artifact_id");
  json no_version = artifact_published();
  no_version["subject"]["id"] = "pkg:generic/shop";
  EXPECT_EQ(read_build_announcement(no_version).reason, "artifact_id");
  EXPECT_NE(read_build_announcement(no_version).detail.find("has no @version"), std::string::npos);
  // The version is checked after percent-decoding: %3B is a ';'.
  for (const char* hostile : {"pkg:generic/shop@1%3Btouch%20x%3B%23", "pkg:generic/shop@%24(touch%20x)",
                              "pkg:generic/shop@%60touch%20x%60", "pkg:generic/shop@1%0Atouch", "pkg:generic/shop@1%00"}) {
    json bad_version = artifact_published();
    bad_version["subject"]["id"] = hostile;
    const Reading refused = read_build_announcement(bad_version);
    EXPECT_EQ(refused.kind, Reading::Kind::kInvalid) << hostile;
    EXPECT_EQ(refused.reason, "artifact_id") << hostile;
    EXPECT_NE(refused.detail.find("after percent-decoding"), std::string::npos) << refused.detail;
  }

  json bad_branch = artifact_published();
  bad_branch["customData"] = {{"branch", 5}};
  EXPECT_EQ(read_build_announcement(bad_branch).reason, "custom_data");
  json bad_uri = artifact_published();
  bad_uri["customData"] = {{"uri", "http://exa mple.com/x"}};
  EXPECT_EQ(read_build_announcement(bad_uri).reason, "custom_data");

  EXPECT_EQ(read_build_announcement(json::parse(R"({"hello": "world"})")).reason, "schema");
}

TEST(KafkaCdEventsInTest, PackageUrlsAreSplitPerTheSpec) {
  auto purl = parse_purl("pkg:maven/org.apache/commons-lang3@3.12.0?type=jar#src/main");
  ASSERT_TRUE(purl) << purl.error().message;
  EXPECT_EQ(purl.value().type, "maven");
  EXPECT_EQ(purl.value().base, "pkg:maven/org.apache/commons-lang3");
  EXPECT_EQ(purl.value().version, "3.12.0");
  EXPECT_EQ(parse_purl("PKG:Generic/shop@1%2B2").value().version, "1+2");
  EXPECT_EQ(parse_purl("pkg:Generic/shop@1").value().base, "pkg:generic/shop");
  EXPECT_EQ(parse_purl("pkg:npm/%40scope/name@1.0.0").value().base, "pkg:npm/%40scope/name");
  EXPECT_EQ(parse_purl("pkg:generic/shop").value().version, "");
  for (const char* bad : {"shop@1", "pkg:", "pkg:generic", "pkg:/shop@1", "pkg:generic/@1", "pkg:1x/shop@1",
                          "pkg:generic/shop@", "pkg:generic/sh op@1"}) {
    auto parsed = parse_purl(bad);
    EXPECT_FALSE(parsed) << bad;
    if (!parsed) {
      EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidArgument);
    }
  }
}

TEST(KafkaCdEventsInTest, DispatchIsOnSubjectPredicateAndMajor) {
  EXPECT_EQ(consumed_type("dev.cdevents.build.finished.0.3.0"), ConsumedType::kBuildFinished);
  EXPECT_EQ(consumed_type("dev.cdevents.build.finished.0.9.1"), ConsumedType::kBuildFinished);
  EXPECT_EQ(consumed_type("dev.cdevents.pipelinerun.finished.0.3.0"), ConsumedType::kPipelineRunFinished);
  EXPECT_EQ(consumed_type("dev.cdevents.build.finished.1.0.0"), std::nullopt);
  EXPECT_EQ(consumed_type("dev.cdevents.build.started.0.3.0"), std::nullopt);
  EXPECT_EQ(consumed_type("com.example.build.finished.0.3.0"), std::nullopt);
  EXPECT_EQ(consumed_type("dev.cdevents.build.finished"), std::nullopt);
}

}  // namespace
}  // namespace cascade::adapters::kafka
