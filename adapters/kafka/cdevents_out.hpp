// What Cascade announces downstream: its recorded events mapped to CDEvents
// v0.5.1 (JSON objects with `context` and `subject`, each valid against the
// official schema of its type). Pure: no librdkafka, no storage; the egress
// reactor (egress.hpp) feeds it and sends what it returns.
//
//   ReleaseCreated                              → pipelinerun.queued
//   first DeploymentStarted of a release        → pipelinerun.started
//   every DeploymentStarted                     → taskrun.started
//   DeploymentSucceeded / Failed / Canceled     → taskrun.finished (outcome success | failure | cancel)
//   DeploymentSucceeded (partial included)      → service.deployed | upgraded | rolledback (see below)
//   the release's status becomes terminal       → pipelinerun.finished (outcome success | failure | cancel | error)
//
// Identities: a pipeline run is a release (subject.id = the release id); a
// task run is one deployment attempt (subject.id = <release>/<stage>/<attempt>);
// the service is the pipeline (subject.id = service/<pipeline>); its
// environment is the stage (environment.id = the stage, environment.source =
// <source>/<pipeline>, since stage names repeat across pipelines).
#pragma once

#include "engine/release.hpp"
#include "events/event.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace cascade::adapters::kafka {

inline constexpr std::string_view kCdEventsSpecVersion = "0.5.1";
inline constexpr std::string_view kPipelineRunQueued = "dev.cdevents.pipelinerun.queued.0.3.0";
inline constexpr std::string_view kPipelineRunStarted = "dev.cdevents.pipelinerun.started.0.3.0";
inline constexpr std::string_view kPipelineRunFinished = "dev.cdevents.pipelinerun.finished.0.3.0";
inline constexpr std::string_view kTaskRunStarted = "dev.cdevents.taskrun.started.0.3.0";
inline constexpr std::string_view kTaskRunFinished = "dev.cdevents.taskrun.finished.0.3.0";
inline constexpr std::string_view kServiceDeployed = "dev.cdevents.service.deployed.0.3.0";
inline constexpr std::string_view kServiceUpgraded = "dev.cdevents.service.upgraded.0.3.0";
inline constexpr std::string_view kServiceRolledBack = "dev.cdevents.service.rolledback.0.3.0";

struct CdEventsOptions {
  // context.source (a URI reference) of every CDEvent Cascade sends. Stable
  // and free of host names by default, so events keep their meaning when the
  // engine moves; set it per installation when several send to one topic.
  std::string source = "/cascade";
  // A pipeline run's subject.content.uri is this prefix followed by the
  // release id; the schema wants an absolute URI. Point it at the HTTP API
  // (e.g. "https://cascade.example.com/api/v1/releases/") where there is one.
  std::string release_uri_prefix = "urn:cascade:release:";
};

// A pipeline's stage: where a service runs.
struct EnvironmentKey {
  std::string pipeline;
  std::string stage;
  bool operator<(const EnvironmentKey& other) const {
    return std::tie(pipeline, stage) < std::tie(other.pipeline, other.stage);
  }
  bool operator==(const EnvironmentKey& other) const {
    return pipeline == other.pipeline && stage == other.stage;
  }
};

// What the CDEvents sent so far say runs in one environment.
struct ServiceInstance {
  std::int64_t release_number = 0;  // of the last successful deployment; 0: none yet
  std::string release_id;
  // The release number of the latest deployment that failed or was canceled
  // there since (it may have changed the environment halfway); 0: none.
  std::int64_t disturbed_by = 0;
  bool operator==(const ServiceInstance& other) const {
    return release_number == other.release_number && release_id == other.release_id &&
           disturbed_by == other.disturbed_by;
  }
};

// The environment knowledge the service events need: the only state of the
// mapping that spans releases. Small (one entry per pipeline stage).
using Environments = std::map<EnvironmentKey, ServiceInstance>;

// What the mapping compares across one event of a release.
struct ReleaseBefore {
  // At the start of the command that wrote the event: the events of one
  // command are one atomic append, and the release's status between two of
  // them (a deployment succeeded, its post-deployment approval not yet
  // requested) is nothing anyone could observe.
  bool existed = false;
  engine::ReleaseStatus status = engine::ReleaseStatus::kInProgress;
  // Just before the event: some deployment of the release had started.
  bool deployment_started = false;
};

// A release folded event by event with engine::evolve (the engine's own
// fold), remembering what a release's state does not: whether a deployment
// ever started, and the status when the current command began. Not
// thread-safe.
class FoldedRelease {
 public:
  // Folds `event` and returns what held before it.
  // REQUIRES: event.version == version() + 1, an event of one release stream.
  ReleaseBefore fold(const events::RecordedEvent& event);
  const engine::ReleaseState& state() const { return state_; }
  std::int64_t version() const { return state_.version; }

 private:
  engine::ReleaseState state_;
  bool deployment_started_ = false;
  std::string command_id_;  // of the last folded event
  bool command_existed_ = false;
  engine::ReleaseStatus command_status_ = engine::ReleaseStatus::kInProgress;
};

// The CDEvents that `event` announces, in the order to send them, updating
// `environments` for the service events. `after` is the release with `event`
// folded in and `before` what held before (FoldedRelease gives both): never a
// later state of the release, so an old event maps the same way whenever it
// is mapped. `ends_command`: no later event of the stream has the event's
// command id (the status is compared, for pipelinerun.finished, only where a
// command ends). Events of other streams (PipelineDefined) and events that
// announce nothing give an empty vector.
//
// Service events, on a successful deployment of release n in an environment:
// service.deployed when nothing was deployed there yet; service.upgraded when
// the release there is older than n; service.rolledback when it is newer.
// When n is already there (a redeploy of the same release) it is
// service.rolledback if a newer release's deployment failed or was canceled
// there since (redeploy_last_good), service.upgraded if an older one's did,
// and nothing otherwise.
//
// context.id = a UUID derived from the event's log position and the CDEvent
// type (a re-send is the same CDEvent); context.timestamp = recorded_at.
std::vector<nlohmann::json> to_cdevents(const events::RecordedEvent& event, const ReleaseBefore& before,
                                        const engine::ReleaseState& after, bool ends_command,
                                        Environments& environments, const CdEventsOptions& options);

// The release's artifact as a package URL: the artifact's own id when CI
// announced one, else pkg:generic/<pipeline>@<version> (the version
// percent-encoded; no @version when it is empty).
std::string artifact_purl(const engine::ReleaseState& release);

// The context.id of the CDEvent of `type` announcing the event at `position`.
std::string cdevent_id(std::uint64_t position, std::string_view type);

}  // namespace cascade::adapters::kafka
