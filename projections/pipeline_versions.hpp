// Pipeline definitions: every version of every pipeline, the releases
// created from each, and what changed between two versions.
#pragma once

#include "projections/projection.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace cascade::projections {

// One difference between two JSON documents. `path` is a JSON pointer
// (RFC 6901). For "remove" it addresses `from` in the old document; for
// "add" and "replace" it addresses `to` in the new one (the same place in
// both unless elements matched by name moved).
struct DefinitionChange {
  std::string op;    // "add" | "remove" | "replace"
  std::string path;
  nlohmann::json from;  // null for "add"
  nlohmann::json to;    // null for "remove"
  // The same place as a person names it, elements matched by name by their
  // name: "stages[prod].steps[deploy].run" for /stages/3/steps/0/run.
  std::string where;
};
bool operator==(const DefinitionChange& a, const DefinitionChange& b);
nlohmann::json to_json(const DefinitionChange& change);

// A recursive diff: objects key by key (in key order); arrays whose elements
// are all objects with a distinct string "name" (stages, steps) element by
// name — removals in the old order, then additions and changes in the new
// order — and other arrays index by index. When elements matched by name
// were reordered, the order itself is a change and the whole array is
// replaced. Scalars, or values of different types, that differ are replaced.
std::vector<DefinitionChange> diff_json(const nlohmann::json& from, const nlohmann::json& to);

struct PipelineVersion {
  std::string pipeline;
  std::int64_t version = 0;
  events::Timestamp defined_at = 0;
  std::string actor;
  nlohmann::json definition;          // canonical, secrets as digests
  std::vector<std::string> releases;  // created from this version, oldest first
};
nlohmann::json to_json(const PipelineVersion& version);
// {"pipelines": [{name, version, defined_at, actor}…]}: the pipelines list
// (GET /api/v1/pipelines, `cascade pipeline list`) from latest_versions().
nlohmann::json pipelines_json(const std::vector<PipelineVersion>& latest);

// Families "pipeline_versions" (pipeline '\0' BE64(version) → {pipeline,
// version, defined_at, actor, definition}) and "pipeline_releases" (pipeline
// '\0' BE64(version) BE64(position of ReleaseCreated) → release id).
class PipelineProjection final : public Projection {
 public:
  static constexpr const char* kName = "pipelines";
  static constexpr const char* kVersionsFamily = "pipeline_versions";
  static constexpr const char* kReleasesFamily = "pipeline_releases";

  PipelineProjection(std::shared_ptr<ProjectionStore> store, events::EventLog& log);

  // Every version, oldest first, each with its releases. kNotFound when the
  // pipeline was never defined.
  Result<std::vector<PipelineVersion>> versions(const std::string& pipeline) const;
  // One version with its releases; kNotFound when there is no such version.
  Result<PipelineVersion> version(const std::string& pipeline, std::int64_t version) const;
  // The newest version of every pipeline, by pipeline name, as of one
  // snapshot; without their releases. Empty when none was defined.
  Result<std::vector<PipelineVersion>> latest_versions() const;
  // What changed from version `from` to version `to` (diff_json of the
  // canonical definitions). kNotFound when either version does not exist.
  Result<std::vector<DefinitionChange>> diff(const std::string& pipeline, std::int64_t from, std::int64_t to) const;

 protected:
  Status apply(const std::vector<events::RecordedEvent>& batch, ProjectionWrite& write) override;
};

}  // namespace cascade::projections
