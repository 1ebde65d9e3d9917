// The mapping of Cascade's events to CDEvents: which CDEvents a scripted
// history announces, in which order, with which key fields; deployed vs
// upgraded vs rolled back; stable ids; every one valid against the official
// v0.5.1 schema.

#include "adapters/kafka/cdevents_out.hpp"

#include "events/codec.hpp"
#include "events/time.hpp"
#include "tests/support/cdevents_validation.hpp"
#include "tests/support/release_fixture.hpp"
#include "tests/support/temp_dir.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

namespace cascade::adapters::kafka {
namespace {

using engine::ApproveStage;
using engine::Command;
using nlohmann::json;
using ::testing::ElementsAre;

// Releases decided and recorded as the engine would: one global position,
// per-stream versions, the manual clock's time.
class ScriptedLog {
 public:
  std::string create(int number, const std::string& version = "1.0.0",
                     const engine::PipelineDefinition& definition = testing::fork_join_pipeline()) {
    engine::CreateRelease create;
    create.release_id = definition.name + "-" + std::to_string(number);
    create.number = number;
    create.name = "Release-" + std::to_string(number);
    create.pipeline_version = 1;
    create.definition = definition;
    create.artifact = {version, "/artifacts/" + version, 0, "", ""};
    when(create.release_id, create, "alice");
    return create.release_id;
  }

  void when(const std::string& release, const Command& command, const std::string& actor) {
    engine::ReleaseState& state = states_[release];
    engine::CommandContext context;
    context.command_id = "cmd-" + std::to_string(++commands_);
    context.actor = actor;
    context.now = now_ += 1000;
    auto decided = engine::decide(state, command, context);
    ASSERT_TRUE(decided) << decided.error().message;
    for (const events::Event& e : decided.value()) {
      events::RecordedEvent recorded;
      recorded.event_id = events::uuid_from_seed(context.command_id + std::to_string(state.version));
      recorded.stream = engine::release_stream(release);
      recorded.version = state.version + 1;
      recorded.position = ++position_;
      recorded.recorded_at = context.now;
      recorded.actor = actor;
      recorded.command_id = context.command_id;
      recorded.data = e;
      engine::evolve(state, recorded);
      events_.push_back(recorded);
    }
  }

  void trigger(const std::string& release, const std::string& stage) {
    when(release, engine::TriggerStage{stage, "scripted"}, "orchestrator");
  }

  // A deployment of the stage's current attempt, its two steps run.
  void deploy(const std::string& release, const std::string& stage, bool succeed = true) {
    const int attempt = states_[release].find_stage(stage)->attempt;
    when(release, engine::StartDeployment{stage}, "executor");
    for (int i = 0; i < 2; ++i) {
      when(release, engine::RecordStepStarted{stage, attempt, i}, "executor");
      engine::RecordStepFinished finished;
      finished.stage = stage;
      finished.attempt = attempt;
      finished.step_index = i;
      finished.succeeded = i == 0 || succeed;
      finished.exit_code = finished.succeeded ? 0 : 3;
      finished.reason = finished.succeeded ? "" : "exit code 3";
      when(release, finished, "executor");
    }
    when(release, engine::FinishDeployment{stage, attempt}, "executor");
  }

  // dev, test, qa deployed; prod triggered, waiting for its approval.
  void to_prod_approval(const std::string& release) {
    trigger(release, "dev");
    deploy(release, "dev");
    for (const char* stage : {"test", "qa"}) {
      trigger(release, stage);
      deploy(release, stage);
    }
    trigger(release, "prod");
  }

  void through_prod(const std::string& release) {
    to_prod_approval(release);
    when(release, ApproveStage{"prod", "", 0}, "release-manager");
    deploy(release, "prod");
  }

  const std::vector<events::RecordedEvent>& events() const { return events_; }

 private:
  std::map<std::string, engine::ReleaseState> states_;
  std::vector<events::RecordedEvent> events_;
  std::uint64_t position_ = 0;
  int commands_ = 0;
  events::Timestamp now_ = 1'800'000'000'000;
};

// Whether no later event of its stream has the command id of log[i].
bool ends_command(const std::vector<events::RecordedEvent>& log, std::size_t i) {
  for (std::size_t j = i + 1; j < log.size(); ++j) {
    if (log[j].stream == log[i].stream) return log[j].command_id != log[i].command_id;
  }
  return true;
}

// Maps a whole log from scratch, as the egress does (one fold per release).
std::vector<json> map_all(const std::vector<events::RecordedEvent>& log, Environments& environments,
                          const CdEventsOptions& options = {}) {
  std::map<std::string, FoldedRelease> folds;
  std::vector<json> out;
  for (std::size_t i = 0; i < log.size(); ++i) {
    FoldedRelease& release = folds[log[i].stream];
    const ReleaseBefore before = release.fold(log[i]);
    for (json& cdevent : to_cdevents(log[i], before, release.state(), ends_command(log, i), environments, options)) {
      out.push_back(std::move(cdevent));
    }
  }
  return out;
}

std::vector<json> map_all(const std::vector<events::RecordedEvent>& log) {
  Environments environments;
  return map_all(log, environments);
}

// "taskrun.finished SampleApp-1/dev/1 success": the short type, the subject
// and the field that tells the events of one type apart.
std::string describe(const json& cdevent) {
  std::string type = cdevent["context"]["type"];
  type = type.substr(std::string("dev.cdevents.").size());
  type = type.substr(0, type.size() - std::string(".0.3.0").size());
  const json& content = cdevent["subject"]["content"];
  std::string out = type + " " + cdevent["subject"]["id"].get<std::string>();
  if (content.contains("environment")) out += " " + content["environment"]["id"].get<std::string>();
  if (content.contains("artifactId")) out += " " + content["artifactId"].get<std::string>();
  if (content.contains("outcome")) out += " " + content["outcome"].get<std::string>();
  return out;
}

std::vector<std::string> describe_all(const std::vector<json>& cdevents) {
  std::vector<std::string> out;
  for (const json& cdevent : cdevents) out.push_back(describe(cdevent));
  return out;
}

TEST(CdEventsOutTest, AReleaseThroughEveryStageAnnouncesItsRunTasksAndServices) {
  ScriptedLog log;
  const std::string release = log.create(1);
  log.through_prod(release);

  EXPECT_THAT(describe_all(map_all(log.events())),
              ElementsAre("pipelinerun.queued SampleApp-1",
                          "pipelinerun.started SampleApp-1",
                          "taskrun.started SampleApp-1/dev/1",
                          "taskrun.finished SampleApp-1/dev/1 success",
                          "service.deployed service/SampleApp dev pkg:generic/SampleApp@1.0.0",
                          "taskrun.started SampleApp-1/test/1",
                          "taskrun.finished SampleApp-1/test/1 success",
                          "service.deployed service/SampleApp test pkg:generic/SampleApp@1.0.0",
                          "taskrun.started SampleApp-1/qa/1",
                          "taskrun.finished SampleApp-1/qa/1 success",
                          "service.deployed service/SampleApp qa pkg:generic/SampleApp@1.0.0",
                          "taskrun.started SampleApp-1/prod/1",
                          "taskrun.finished SampleApp-1/prod/1 success",
                          "service.deployed service/SampleApp prod pkg:generic/SampleApp@1.0.0",
                          "pipelinerun.finished SampleApp-1 success"));
}

TEST(CdEventsOutTest, KeyFieldsOfEachKind) {
  ScriptedLog log;
  const std::string release = log.create(1);
  log.trigger(release, "dev");
  log.deploy(release, "dev");
  CdEventsOptions options;
  options.source = "/cascade/eu-1";
  options.release_uri_prefix = "https://cascade.example.com/api/v1/releases/";
  Environments environments;
  const std::vector<json> cdevents = map_all(log.events(), environments, options);
  ASSERT_EQ(cdevents.size(), 5u);

  const json& queued = cdevents[0];
  const events::RecordedEvent& created = log.events()[0];
  EXPECT_EQ(queued["context"]["specversion"], "0.5.1");
  EXPECT_EQ(queued["context"]["source"], "/cascade/eu-1");
  EXPECT_EQ(queued["context"]["id"], cdevent_id(created.position, kPipelineRunQueued));
  EXPECT_EQ(queued["context"]["timestamp"], events::format_rfc3339(created.recorded_at));
  EXPECT_EQ(queued["subject"],
            json::parse(R"({"id": "SampleApp-1", "source": "/cascade/eu-1",
                            "content": {"pipelineName": "SampleApp",
                                        "uri": "https://cascade.example.com/api/v1/releases/SampleApp-1"}})"));

  EXPECT_EQ(cdevents[2]["subject"],
            json::parse(R"({"id": "SampleApp-1/dev/1", "source": "/cascade/eu-1",
                            "content": {"taskName": "dev",
                                        "pipelineRun": {"id": "SampleApp-1", "source": "/cascade/eu-1"}}})"));
  EXPECT_EQ(cdevents[4]["subject"],
            json::parse(R"({"id": "service/SampleApp", "source": "/cascade/eu-1",
                            "content": {"environment": {"id": "dev", "source": "/cascade/eu-1/SampleApp"},
                                        "artifactId": "pkg:generic/SampleApp@1.0.0"}})"));
  // The taskrun.finished and the service event of one DeploymentSucceeded
  // share its time but not their ids.
  EXPECT_EQ(cdevents[3]["context"]["timestamp"], cdevents[4]["context"]["timestamp"]);
  EXPECT_NE(cdevents[3]["context"]["id"], cdevents[4]["context"]["id"]);
  EXPECT_EQ(environments.at(EnvironmentKey{"SampleApp", "dev"}), (ServiceInstance{1, "SampleApp-1", 0}));
}

TEST(CdEventsOutTest, NewerReleasesUpgradeOlderOnesRollBack) {
  ScriptedLog log;
  const std::string first = log.create(1, "1.0.0");
  log.trigger(first, "dev");
  log.deploy(first, "dev");
  const std::string second = log.create(2, "1.1.0");
  log.trigger(second, "dev");
  log.deploy(second, "dev");
  log.when(first, engine::RedeployStage{"dev", ""}, "alice");  // the rollback
  log.deploy(first, "dev");
  log.when(second, engine::RedeployStage{"dev", ""}, "alice");
  log.deploy(second, "dev");
  log.when(second, engine::RedeployStage{"dev", ""}, "alice");  // the same release again
  log.deploy(second, "dev");

  std::vector<std::string> service_events;
  for (const std::string& line : describe_all(map_all(log.events()))) {
    if (line.rfind("service.", 0) == 0) service_events.push_back(line);
  }
  EXPECT_THAT(service_events, ElementsAre("service.deployed service/SampleApp dev pkg:generic/SampleApp@1.0.0",
                                          "service.upgraded service/SampleApp dev pkg:generic/SampleApp@1.1.0",
                                          "service.rolledback service/SampleApp dev pkg:generic/SampleApp@1.0.0",
                                          "service.upgraded service/SampleApp dev pkg:generic/SampleApp@1.1.0"));
}

TEST(CdEventsOutTest, RedeployingTheLastGoodReleaseAfterAFailureIsARollback) {
  ScriptedLog log;
  const std::string good = log.create(1, "1.0.0");
  log.trigger(good, "dev");
  log.deploy(good, "dev");
  const std::string bad = log.create(2, "2.0.0");
  log.trigger(bad, "dev");
  log.deploy(bad, "dev", /*succeed=*/false);
  log.when(good, engine::RedeployStage{"dev", "redeploy_last_good after SampleApp-2 failed"}, "orchestrator");
  log.deploy(good, "dev");

  const std::vector<json> cdevents = map_all(log.events());
  std::vector<std::string> lines = describe_all(cdevents);
  const std::vector<std::string> tail(lines.end() - 6, lines.end());
  // Release 1 stays in progress (test and qa are due after dev): no second finish.
  EXPECT_THAT(tail, ElementsAre("taskrun.started SampleApp-2/dev/1",
                                "taskrun.finished SampleApp-2/dev/1 failure",
                                "pipelinerun.finished SampleApp-2 failure",
                                "taskrun.started SampleApp-1/dev/2",
                                "taskrun.finished SampleApp-1/dev/2 success",
                                "service.rolledback service/SampleApp dev pkg:generic/SampleApp@1.0.0"));
  const json& failed_run = cdevents[cdevents.size() - 4];
  EXPECT_EQ(failed_run["subject"]["content"]["errors"], "dev: step 'smoke' failed: exit code 3")
      << failed_run.dump();
  const json& failed_task = cdevents[cdevents.size() - 5];
  EXPECT_EQ(failed_task["subject"]["content"]["errors"], "step 'smoke' failed: exit code 3")
      << failed_task.dump();
}

// A release that ran to its end runs again when a stage is redeployed, and
// finishes again.
TEST(CdEventsOutTest, AFinishedReleaseRedeployedFinishesAgain) {
  ScriptedLog log;
  const std::string release = log.create(1);
  log.through_prod(release);
  log.when(release, engine::RedeployStage{"dev", ""}, "alice");
  log.deploy(release, "dev", /*succeed=*/false);
  const std::vector<std::string> lines = describe_all(map_all(log.events()));
  const std::vector<std::string> tail(lines.end() - 3, lines.end());
  EXPECT_THAT(tail, ElementsAre("taskrun.started SampleApp-1/dev/2", "taskrun.finished SampleApp-1/dev/2 failure",
                                "pipelinerun.finished SampleApp-1 failure"));
}

// A post-deployment approval is requested in the same append as the
// deployment's success: the release never looked finished in between.
TEST(CdEventsOutTest, AStageAwaitingItsPostApprovalDoesNotFinishTheRun) {
  auto definition = engine::parse_pipeline_text(R"({
    "name": "Gate",
    "stages": [{"name": "prod", "trigger": {"after_release": true},
                "post_approval": {"approvers": ["release-manager"]},
                "steps": [{"name": "deploy", "run": "true"}, {"name": "smoke", "run": "true"}]}]})");
  ASSERT_TRUE(definition) << definition.error().message;
  ScriptedLog log;
  const std::string release = log.create(1, "1.0.0", definition.value());
  log.trigger(release, "prod");
  log.deploy(release, "prod");
  EXPECT_THAT(describe_all(map_all(log.events())),
              ElementsAre("pipelinerun.queued Gate-1", "pipelinerun.started Gate-1", "taskrun.started Gate-1/prod/1",
                          "taskrun.finished Gate-1/prod/1 success",
                          "service.deployed service/Gate prod pkg:generic/Gate@1.0.0"));
  log.when(release, ApproveStage{"prod", "", 0}, "release-manager");
  const std::vector<json> all = map_all(log.events());
  EXPECT_EQ(describe(all.back()), "pipelinerun.finished Gate-1 success");
}

TEST(CdEventsOutTest, RejectedAndAbandonedReleasesFinishWithTheirOutcome) {
  ScriptedLog log;
  const std::string rejected = log.create(1);
  log.to_prod_approval(rejected);
  log.when(rejected, engine::RejectStage{"prod", "not today"}, "release-manager");
  const std::string abandoned = log.create(2);
  log.trigger(abandoned, "dev");
  log.when(abandoned, engine::AbandonRelease{"bad build"}, "alice");

  std::vector<json> finished;
  for (const json& cdevent : map_all(log.events())) {
    if (cdevent["context"]["type"] == kPipelineRunFinished) finished.push_back(cdevent["subject"]["content"]);
  }
  ASSERT_EQ(finished.size(), 2u);
  EXPECT_EQ(finished[0]["outcome"], "failure");
  EXPECT_THAT(finished[0]["errors"].get<std::string>(), ::testing::StartsWith("prod: "));
  EXPECT_EQ(finished[1]["outcome"], "cancel");
  EXPECT_EQ(finished[1]["errors"], "abandoned: bad build") << "judged where the abandon command ends";
}

TEST(CdEventsOutTest, WaitingForApprovalIsNotFinished) {
  ScriptedLog log;
  const std::string release = log.create(1);
  log.to_prod_approval(release);
  for (const json& cdevent : map_all(log.events())) {
    EXPECT_NE(cdevent["context"]["type"], kPipelineRunFinished) << cdevent.dump();
  }
}

TEST(CdEventsOutTest, IdsAreStableAcrossRunsAndUniqueWithinOne) {
  ScriptedLog log;
  const std::string first = log.create(1);
  log.through_prod(first);
  const std::string second = log.create(2, "1.1.0");
  log.trigger(second, "dev");
  log.deploy(second, "dev", false);

  const std::vector<json> once = map_all(log.events());
  const std::vector<json> again = map_all(log.events());
  EXPECT_EQ(once, again);
  std::set<std::string> ids;
  for (const json& cdevent : once) ids.insert(cdevent["context"]["id"].get<std::string>());
  EXPECT_EQ(ids.size(), once.size());
}

// An old event maps against the release as it was then: mapping the tail of
// the log after folding only its prefix gives what mapping it all gave.
TEST(CdEventsOutTest, MappingFromTheMiddleGivesTheSameEvents) {
  ScriptedLog log;
  const std::string release = log.create(1);
  log.through_prod(release);
  const std::vector<json> whole = map_all(log.events());

  const std::size_t cut = log.events().size() / 2;
  Environments environments;
  std::map<std::string, FoldedRelease> folds;
  std::vector<json> head;
  for (std::size_t i = 0; i < log.events().size(); ++i) {
    FoldedRelease& folded = folds[log.events()[i].stream];
    const ReleaseBefore before = folded.fold(log.events()[i]);
    auto out = to_cdevents(log.events()[i], before, folded.state(), ends_command(log.events(), i), environments, {});
    if (i >= cut) head.insert(head.end(), out.begin(), out.end());
  }
  const std::vector<json> tail(whole.end() - static_cast<std::ptrdiff_t>(head.size()), whole.end());
  EXPECT_EQ(head, tail);
}

TEST(CdEventsOutTest, PipelineEventsAnnounceNothing) {
  events::RecordedEvent defined;
  defined.stream = "pipeline-SampleApp";
  defined.version = 1;
  defined.position = 1;
  defined.data = events::PipelineDefined{"SampleApp", 1, json::object()};
  FoldedRelease folded;
  Environments environments;
  EXPECT_TRUE(to_cdevents(defined, {}, folded.state(), true, environments, {}).empty());
}

TEST(CdEventsOutTest, ArtifactPurlAndTimestamps) {
  engine::ReleaseState release;
  release.pipeline = "Shop.web";
  release.artifact.version = "1.0.0+build 5/x";
  EXPECT_EQ(artifact_purl(release), "pkg:generic/Shop.web@1.0.0%2Bbuild%205%2Fx");
  release.artifact.version = "";
  EXPECT_EQ(artifact_purl(release), "pkg:generic/Shop.web");
}

TEST(CdEventsOutTest, EveryEmittedEventValidatesAgainstTheOfficialSchema) {
  if (!testing::have_cdevents_schemas()) GTEST_SKIP() << "no " << testing::cdevents_schemas_dir();
  ScriptedLog log;
  const std::string first = log.create(1);
  log.through_prod(first);
  const std::string second = log.create(2, "2.0.0-rc.1+build.7");
  log.trigger(second, "dev");
  log.deploy(second, "dev");
  log.when(first, engine::RedeployStage{"dev", ""}, "alice");
  log.deploy(first, "dev", false);
  log.when(first, engine::RedeployStage{"dev", ""}, "alice");
  log.deploy(first, "dev");
  const std::string rejected = log.create(3);
  log.to_prod_approval(rejected);
  log.when(rejected, engine::RejectStage{"prod", "no"}, "release-manager");
  const std::string abandoned = log.create(4);
  log.trigger(abandoned, "dev");
  log.when(abandoned, engine::AbandonRelease{"bad build"}, "alice");

  std::vector<json> cdevents = map_all(log.events());
  CdEventsOptions options;
  options.source = "https://cascade.example.com/";
  options.release_uri_prefix = "https://cascade.example.com/api/v1/releases/";
  Environments environments;
  for (json& cdevent : map_all(log.events(), environments, options)) cdevents.push_back(std::move(cdevent));
  std::set<std::string> types;
  for (const json& cdevent : cdevents) types.insert(cdevent["context"]["type"].get<std::string>());
  EXPECT_EQ(types.size(), 8u) << "every type Cascade emits is covered";

  testing::TempDir dir;
  const testing::CdEventsValidation validation = testing::validate_cdevents(cdevents, dir / "cdevents.jsonl");
  EXPECT_EQ(validation.exit_code, 0) << validation.output;
  EXPECT_EQ(validation.valid, cdevents.size()) << validation.output;
}

// The validator itself rejects what the schema forbids, so a pass means something.
TEST(CdEventsOutTest, TheValidatorRejectsAnEventTheSchemaForbids) {
  if (!testing::have_cdevents_schemas()) GTEST_SKIP() << "no " << testing::cdevents_schemas_dir();
  ScriptedLog log;
  log.create(1);
  std::vector<json> cdevents = map_all(log.events());
  ASSERT_EQ(cdevents.size(), 1u);
  json extra = cdevents[0];
  extra["subject"]["content"]["outcome"] = "success";  // queued has no outcome
  json relative_uri = cdevents[0];
  relative_uri["subject"]["content"]["uri"] = "/releases/SampleApp-1";
  json bad_time = cdevents[0];
  bad_time["context"]["timestamp"] = "2026-11-28 15:00:00";
  testing::TempDir dir;
  const testing::CdEventsValidation validation =
      testing::validate_cdevents({cdevents[0], extra, relative_uri, bad_time}, dir / "cdevents.jsonl");
  EXPECT_EQ(validation.exit_code, 1) << validation.output;
  EXPECT_EQ(validation.valid, 1u) << validation.output;
  EXPECT_THAT(validation.output, ::testing::HasSubstr("line 2: INVALID"));
  EXPECT_THAT(validation.output, ::testing::HasSubstr("line 3: INVALID"));
  EXPECT_THAT(validation.output, ::testing::HasSubstr("line 4: INVALID"));
}

}  // namespace
}  // namespace cascade::adapters::kafka
