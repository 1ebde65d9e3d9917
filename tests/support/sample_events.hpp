// One filled-in example of every event type, for codec and log tests.
#pragma once

#include "events/event.hpp"

#include <vector>

namespace cascade::testing {

inline std::vector<events::Event> one_of_each_event() {
  using namespace cascade::events;
  PipelineDefined pipeline;
  pipeline.pipeline = "SampleApp";
  pipeline.version = 3;
  pipeline.definition = {{"name", "SampleApp"}, {"stages", nlohmann::json::array()}};
  ReleaseCreated created;
  created.release_id = "SampleApp-7";
  created.pipeline = "SampleApp";
  created.pipeline_version = 3;
  created.definition = pipeline.definition;
  created.artifact = {"1.2.3", "/tmp/a b/ünïcode"};
  created.variables = {{"A", "1"}, {"B", "two"}};
  created.trigger = "manual";
  created.requested_by = "alice";
  StageTriggered triggered;
  triggered.stage = "qa";
  triggered.reason = "after dev succeeded";
  triggered.attempt = 2;
  ApprovalRequested requested;
  requested.stage = "prod";
  requested.phase = "pre";
  requested.approvers = {"release-manager", "bob"};
  requested.required = 1;
  ApprovalGranted granted;
  granted.stage = "prod";
  granted.phase = "pre";
  granted.approver = "bob";
  granted.comment = "ship \"it\"\n";
  ApprovalRejected rejected;
  rejected.stage = "prod";
  rejected.phase = "pre";
  rejected.approver = "carol";
  rejected.comment = "not today";
  DeploymentStarted started;
  started.stage = "dev";
  started.attempt = 1;
  StepStarted step_started;
  step_started.stage = "dev";
  step_started.step_index = 1;
  step_started.step = "smoke";
  StepSucceeded step_succeeded;
  step_succeeded.stage = "dev";
  step_succeeded.step_index = 1;
  step_succeeded.step = "smoke";
  step_succeeded.duration_ms = 1234;
  step_succeeded.log_digest = std::string(64, 'a');
  StepFailed step_failed;
  step_failed.stage = "dev";
  step_failed.step = "smoke";
  step_failed.exit_code = 3;
  step_failed.duration_ms = 99;
  step_failed.log_digest = std::string(64, 'b');
  step_failed.reason = "exit code 3";
  DeploymentSucceeded deployed;
  deployed.stage = "dev";
  DeploymentFailed failed;
  failed.stage = "qa";
  failed.attempt = 4;
  failed.reason = "step 'smoke' failed: exit code 3";
  return {pipeline, created, triggered, requested, granted, rejected, started,
          step_started, step_succeeded, step_failed, deployed, failed};
}

}  // namespace cascade::testing
