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
  created.name = "Release-7";
  created.artifact.version = "1.2.3";
  created.artifact.path = "/tmp/a b/ünïcode";
  created.artifact.built_at = 1'799'999'000'000;
  created.variables = {{"A", "1"}, {"B", "two"}};
  created.secret_variables = {{"TOKEN", std::string(64, 'c')}};
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
  requested.order = "sequential";
  requested.deadline = 1'800'000'000'000;
  ApprovalGranted granted;
  granted.stage = "prod";
  granted.phase = "pre";
  granted.approver = "bob";
  granted.on_behalf_of = "release-managers";
  granted.comment = "ship \"it\"\n";
  granted.defer_until = 1'800'000'100'000;
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
  ApprovalTimedOut timed_out;
  timed_out.stage = "prod";
  timed_out.phase = "post";
  timed_out.deadline = 1'800'000'000'000;
  ApprovalSkipped skipped;
  skipped.stage = "prod";
  skipped.phase = "pre";
  skipped.reason = "approved earlier by bob on qa";
  DeferralElapsed elapsed;
  elapsed.stage = "prod";
  elapsed.defer_until = 1'800'000'100'000;
  StepSkipped step_skipped;
  step_skipped.stage = "dev";
  step_skipped.step_index = 2;
  step_skipped.step = "cleanup";
  step_skipped.reason = "runs only after a failure";
  DeploymentCanceled deployment_canceled;
  deployment_canceled.stage = "dev";
  deployment_canceled.reason = "canceled by alice";
  StageCanceled stage_canceled;
  stage_canceled.stage = "prod";
  stage_canceled.reason = "superseded by SampleApp-9";
  ReleaseAbandoned abandoned;
  abandoned.reason = "bad build";
  RollbackChosen rollback;
  rollback.stage = "qa";
  rollback.attempt = 4;
  rollback.rollback_to = "SampleApp-6";
  rollback.reason = "the last release before SampleApp-7 that succeeded at qa";
  step_failed.will_retry = true;
  deployed.partial = true;
  return {pipeline, created, triggered, requested, granted, rejected, timed_out, skipped, elapsed, started,
          step_started, step_succeeded, step_failed, step_skipped, deployed, failed, deployment_canceled,
          stage_canceled, abandoned, rollback};
}

}  // namespace cascade::testing
