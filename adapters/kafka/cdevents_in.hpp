// The CDEvents v0.5.1 that announce a finished build, as Cascade's CI ingress
// reads them: strict validation against the official schemas of the three
// consumed types, and the announcement (artifact, version, branch) they carry.
// Pure JSON: no librdkafka, no engine.
//
// Consumed types, dispatched on subject + predicate + major version:
//   dev.cdevents.artifact.published.0.3.0   artifact = subject.id (a purl)
//   dev.cdevents.build.finished.0.3.0       artifact = subject.content.artifactId
//   dev.cdevents.pipelinerun.finished.0.3.0 outcome "success" only; the
//     schema has no artifact, so it must be in customData.artifactId
// From customData (an object; free-form in every schema): branch, uri (the
// download location, for CASCADE_ARTIFACT_URI) and, for pipelinerun,
// artifactId. The version of the release is the purl's @version.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/event.hpp"
#include "events/result.hpp"

namespace cascade::adapters::kafka {

enum class ConsumedType { kArtifactPublished, kBuildFinished, kPipelineRunFinished };

// The exact type strings the v0.5.1 schemas accept.
inline constexpr std::string_view kArtifactPublishedType = "dev.cdevents.artifact.published.0.3.0";
inline constexpr std::string_view kBuildFinishedType = "dev.cdevents.build.finished.0.3.0";
inline constexpr std::string_view kPipelineRunFinishedType = "dev.cdevents.pipelinerun.finished.0.3.0";

// Which consumed type `type` belongs to by subject, predicate and major
// version ("dev.cdevents.build.finished.0.2.0" → kBuildFinished, which then
// fails validation: only 0.3.0 is accepted). nullopt for anything else.
std::optional<ConsumedType> consumed_type(std::string_view type);

// Every way `cdevent` breaks the official v0.5.1 JSON Schema of `type`
// (draft 2020-12 with formats date-time, uri and uri-reference checked), each
// with a JSON Pointer path ("/subject/content/artifactId"). Empty when valid.
// tests/unit/kafka_cdevents_in_test.cpp proves the verdict equals python
// jsonschema's on a corpus.
std::vector<Problem> schema_problems(const nlohmann::json& cdevent, ConsumedType type);

// A package URL (https://github.com/package-url/purl-spec), split.
struct PackageUrl {
  std::string type;       // lower-cased
  std::string base;       // "pkg:<type>/<namespace>/<name>": no version, qualifiers or subpath
  std::string version;    // percent-decoded; empty when there is none
};
// kInvalidArgument naming what is wrong.
Result<PackageUrl> parse_purl(std::string_view text);

bool is_uri(std::string_view text);            // RFC 3986 URI: a scheme, then URI characters
bool is_uri_reference(std::string_view text);  // RFC 3986 URI-reference

// What a consumed CDEvent announces.
struct BuildAnnouncement {
  events::CdEventTrigger cdevent;  // context.id, context.source, context.type
  std::string subject_id;
  std::string subject_source;      // empty when absent
  PackageUrl artifact;
  std::string artifact_id;         // the purl as written
  std::string artifact_uri;        // customData.uri; empty when absent
  std::string branch;              // customData.branch; empty when absent
  events::Timestamp built_at = 0;  // context.timestamp
};

// What reading one CDEvent gives. `reason` is a short word for metrics labels
// and the DLQ header; `detail` says what exactly.
struct Reading {
  enum class Kind { kAnnouncement, kSkipped, kInvalid };
  Kind kind = Kind::kInvalid;
  BuildAnnouncement announcement;  // kAnnouncement only
  std::string reason;              // kSkipped: unsupported_type, not_successful, no_artifact; kInvalid: schema, artifact_id, custom_data
  std::string detail;
};
Reading read_build_announcement(const nlohmann::json& cdevent);

}  // namespace cascade::adapters::kafka
