// Environments: for each pipeline and stage, what is deployed there now and
// the history of the deployments that ran there, across releases.
#pragma once

#include "projections/projection.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace cascade::projections {

struct DeploymentHistoryPage {
  // Finished deployment attempts, newest first:
  //   {release, release_name, artifact_version, attempt, outcome
  //    ("Succeeded" | "PartiallySucceeded" | "Failed" | "Canceled"),
  //    trigger_reason, started_at, finished_at, reason (why it failed or was
  //    canceled; empty otherwise)}
  std::vector<nlohmann::json> deployments;
  std::optional<std::string> next_cursor;  // set when older deployments remain
};

// Family "environments": pipeline '\0' stage → {pipeline, stage, order (the
// stage's index in the definition), current, last}, where current is what
// the latest successful deployment (partial included) put there —
// {release, release_name, artifact_version, deployed_at, trigger_reason,
// attempt, status ("Succeeded" | "PartiallySucceeded")} — or null while
// nothing has succeeded there, and last is the latest finished attempt (a
// history item). Family "deployment_history": pipeline '\0' stage '\0'
// BE64(position of the finishing event) → history item. A stage appears
// once a deployment has finished there.
class EnvironmentProjection final : public Projection {
 public:
  static constexpr const char* kName = "environments";
  static constexpr const char* kCurrentFamily = "environments";
  static constexpr const char* kHistoryFamily = "deployment_history";
  static constexpr std::size_t kDefaultLimit = 50;
  static constexpr std::size_t kMaxLimit = 500;

  EnvironmentProjection(std::shared_ptr<ProjectionStore> store, events::EventLog& log);

  // The environments of `pipeline` (empty: of every pipeline), by pipeline
  // and then in the stages' definition order.
  Result<std::vector<nlohmann::json>> environments(const std::string& pipeline) const;
  // One environment; kNotFound when nothing finished deploying there.
  Result<nlohmann::json> environment(const std::string& pipeline, const std::string& stage) const;
  // Its deployment history, newest first, `limit` (1…kMaxLimit) at a time;
  // `cursor` is a previous page's next_cursor. kInvalidArgument for a bad
  // limit or cursor.
  Result<DeploymentHistoryPage> history(const std::string& pipeline, const std::string& stage,
                                        std::size_t limit = kDefaultLimit, const std::string& cursor = "") const;

 protected:
  Status apply(const std::vector<events::RecordedEvent>& batch, ProjectionWrite& write) override;
};

}  // namespace cascade::projections
