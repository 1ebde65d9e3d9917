#include "engine/pipeline.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

namespace cascade {
// Readable failures for EXPECT_EQ on problem lists.
void PrintTo(const Problem& problem, std::ostream* os) {
  *os << "{\"" << problem.path << "\", \"" << problem.message << "\"}";
}
}  // namespace cascade

namespace cascade::engine {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;

constexpr const char* kSampleText = R"({
  "name": "SampleApp",
  "description": "optional text",
  "variables": {"SITES_ROOT": "/srv/sites"},
  "stages": [
    {"name": "dev", "trigger": {"after_release": true},
     "variables": {"SITE": "SampleApp-Dev"},
     "steps": [{"name": "deploy", "run": "cp -R \"$CASCADE_ARTIFACT_PATH\"/. \"$SITES_ROOT/$SITE\"",
                "timeout_s": 60, "env": {"MODE": "fast"}},
               {"name": "smoke", "run": "curl -fsS http://localhost/$SITE"}]},
    {"name": "test", "trigger": {"after_stages": ["dev"]}, "steps": [{"name": "deploy", "run": "true"}]},
    {"name": "qa", "trigger": {"after_stages": ["dev"]}, "steps": [{"name": "deploy", "run": "true"}]},
    {"name": "prod", "trigger": {"after_stages": ["test", "qa"]},
     "pre_approval": {"approvers": ["release-manager"]},
     "steps": [{"name": "deploy", "run": "true"}]},
    {"name": "hotfix", "trigger": {"manual": true}, "steps": [{"name": "deploy", "run": "true"}]}
  ]
})";

json sample() { return json::parse(kSampleText); }

// A valid pipeline with one stage, for tests that add a single mistake.
json minimal() {
  return json::parse(R"({
    "name": "App",
    "stages": [{"name": "dev", "trigger": {"after_release": true}, "steps": [{"name": "deploy", "run": "true"}]}]
  })");
}

// A pipeline whose stages are {name, trigger}, each with one trivial step.
json with_stages(const std::vector<std::pair<std::string, json>>& stages) {
  json document = {{"name", "App"}, {"stages", json::array()}};
  for (const auto& [name, trigger] : stages) {
    document["stages"].push_back(
        {{"name", name}, {"trigger", trigger}, {"steps", {{{"name", "deploy"}, {"run", "true"}}}}});
  }
  return document;
}

const json kAfterRelease = {{"after_release", true}};
json after(std::vector<std::string> stages) { return {{"after_stages", std::move(stages)}}; }

// The problems of an invalid document; fails the test when it parses or the
// code is not kInvalidArgument.
std::vector<Problem> problems_of(const Result<PipelineDefinition>& result) {
  EXPECT_TRUE(result.has_error());
  if (!result.has_error()) return {};
  EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
  return result.error().details;
}
std::vector<Problem> problems_of(const json& document) { return problems_of(parse_pipeline(document)); }

std::vector<std::string> paths_of(const std::vector<Problem>& problems) {
  std::vector<std::string> paths;
  for (const Problem& problem : problems) paths.push_back(problem.path);
  return paths;
}

TEST(PipelineTest, ParsesSampleDocument) {
  Result<PipelineDefinition> result = parse_pipeline(sample());
  ASSERT_TRUE(result.has_value()) << result.error().message;
  const PipelineDefinition& pipeline = result.value();
  EXPECT_EQ(pipeline.name, "SampleApp");
  EXPECT_EQ(pipeline.description, "optional text");
  EXPECT_EQ(pipeline.variables, (Variables{{"SITES_ROOT", "/srv/sites"}}));
  ASSERT_EQ(pipeline.stages.size(), 5u);

  const StageDefinition& dev = pipeline.stages[0];
  EXPECT_EQ(dev.name, "dev");
  EXPECT_EQ(dev.trigger.kind, TriggerKind::kAfterRelease);
  EXPECT_TRUE(dev.trigger.after_stages.empty());
  EXPECT_FALSE(dev.pre_approval.has_value());
  EXPECT_EQ(dev.variables, (Variables{{"SITE", "SampleApp-Dev"}}));
  ASSERT_EQ(dev.steps.size(), 2u);
  EXPECT_EQ(dev.steps[0].name, "deploy");
  EXPECT_EQ(dev.steps[0].run, R"(cp -R "$CASCADE_ARTIFACT_PATH"/. "$SITES_ROOT/$SITE")");
  EXPECT_EQ(dev.steps[0].timeout_s, 60);
  EXPECT_EQ(dev.steps[0].env, (Variables{{"MODE", "fast"}}));
  EXPECT_EQ(dev.steps[1].name, "smoke");
  EXPECT_EQ(dev.steps[1].timeout_s, StepDefinition::kDefaultTimeoutSeconds);
  EXPECT_TRUE(dev.steps[1].env.empty());

  EXPECT_EQ(pipeline.stages[1].trigger.kind, TriggerKind::kAfterStages);
  EXPECT_EQ(pipeline.stages[1].trigger.after_stages, std::vector<std::string>{"dev"});
  EXPECT_TRUE(pipeline.stages[1].variables.empty());

  const StageDefinition& prod = pipeline.stages[3];
  EXPECT_EQ(prod.trigger.kind, TriggerKind::kAfterStages);
  EXPECT_EQ(prod.trigger.after_stages, (std::vector<std::string>{"test", "qa"}));
  ASSERT_TRUE(prod.pre_approval.has_value());
  EXPECT_EQ(prod.pre_approval->approvers, std::vector<std::string>{"release-manager"});

  EXPECT_EQ(pipeline.stages[4].name, "hotfix");
  EXPECT_EQ(pipeline.stages[4].trigger.kind, TriggerKind::kManual);
}

TEST(PipelineTest, MinimalDocumentGetsDefaults) {
  Result<PipelineDefinition> result = parse_pipeline(minimal());
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result.value().description, "");
  EXPECT_TRUE(result.value().variables.empty());
  EXPECT_EQ(result.value().stages[0].steps[0].timeout_s, 3600);
}

TEST(PipelineTest, FindStage) {
  Result<PipelineDefinition> result = parse_pipeline(sample());
  ASSERT_TRUE(result.has_value());
  const StageDefinition* qa = result.value().find_stage("qa");
  ASSERT_NE(qa, nullptr);
  EXPECT_EQ(qa->name, "qa");
  EXPECT_EQ(qa, &result.value().stages[2]);
  EXPECT_EQ(result.value().find_stage("staging"), nullptr);
  EXPECT_EQ(result.value().find_stage(""), nullptr);
}

TEST(PipelineTest, UnknownFieldSuggestsTheClosestKnownOne) {
  json document = minimal();
  document["stages"][0]["stepz"] = document["stages"][0]["steps"];
  document["stages"][0].erase("steps");
  EXPECT_THAT(problems_of(document),
              ElementsAre(Problem{"stages[0].stepz", "unknown field 'stepz' (did you mean 'steps'?)"},
                          Problem{"stages[0].steps", "missing required field 'steps'"}));
}

TEST(PipelineTest, UnknownFieldSuggestsAcrossATransposition) {
  json document = minimal();
  document["stages"][0]["steps"][0]["tiemout_s"] = 5;
  EXPECT_THAT(problems_of(document),
              ElementsAre(Problem{"stages[0].steps[0].tiemout_s",
                                  "unknown field 'tiemout_s' (did you mean 'timeout_s'?)"}));
}

TEST(PipelineTest, UnknownFieldWithNothingCloseHasNoSuggestion) {
  json document = minimal();
  document["owner"] = "team-a";
  EXPECT_THAT(problems_of(document), ElementsAre(Problem{"owner", "unknown field 'owner'"}));
}

TEST(PipelineTest, UnknownTriggerFieldDoesNotAlsoSayTheTriggerIsEmpty) {
  json document = minimal();
  document["stages"][0]["trigger"] = {{"after_releas", true}};
  EXPECT_THAT(problems_of(document),
              ElementsAre(Problem{"stages[0].trigger.after_releas",
                                  "unknown field 'after_releas' (did you mean 'after_release'?)"}));
}

TEST(PipelineTest, WrongTypesNameTheExpectedAndFoundType) {
  json document = minimal();
  document["name"] = 42;
  document["description"] = nullptr;
  document["variables"] = {{"PORT", 8080}};
  document["stages"][0]["steps"][0]["timeout_s"] = "60";
  document["stages"][0]["steps"][0]["env"] = json::array();
  document["stages"][0]["trigger"]["after_release"] = "yes";
  EXPECT_THAT(problems_of(document),
              ElementsAre(Problem{"name", "expected a string, found number"},
                          Problem{"description", "expected a string, found null"},
                          Problem{"variables.PORT", "expected a string, found number"},
                          Problem{"stages[0].trigger.after_release", "expected a boolean, found string"},
                          Problem{"stages[0].steps[0].timeout_s", "expected an integer, found string"},
                          Problem{"stages[0].steps[0].env", "expected an object, found array"}));
}

TEST(PipelineTest, WrongContainerTypes) {
  EXPECT_THAT(problems_of(json{{"name", "App"}, {"stages", {{"name", "dev"}}}}),
              ElementsAre(Problem{"stages", "expected an array, found object"}));
  json document = minimal();
  document["stages"].push_back("prod");
  document["stages"][0]["steps"] = "deploy.sh";
  EXPECT_THAT(problems_of(document), ElementsAre(Problem{"stages[0].steps", "expected an array, found string"},
                                                 Problem{"stages[1]", "expected an object, found string"}));
}

TEST(PipelineTest, DocumentThatIsNotAnObject) {
  Result<PipelineDefinition> result = parse_pipeline(json::array());
  EXPECT_THAT(problems_of(result), ElementsAre(Problem{"", "expected an object, found array"}));
  EXPECT_EQ(result.error().message, "pipeline is invalid: 1 problem");
}

TEST(PipelineTest, MissingRequiredFields) {
  json document = minimal();
  document.erase("name");
  document["stages"][0].erase("trigger");
  document["stages"][0]["steps"][0].erase("run");
  document["stages"][0]["steps"].push_back({{"run", "true"}});
  Result<PipelineDefinition> result = parse_pipeline(document);
  EXPECT_THAT(problems_of(result), ElementsAre(Problem{"name", "missing required field 'name'"},
                                               Problem{"stages[0].trigger", "missing required field 'trigger'"},
                                               Problem{"stages[0].steps[0].run", "missing required field 'run'"},
                                               Problem{"stages[0].steps[1].name", "missing required field 'name'"}));
  // Without a valid name the summary cannot name the pipeline.
  EXPECT_EQ(result.error().message, "pipeline is invalid: 4 problems");

  EXPECT_THAT(problems_of(json{{"name", "App"}}), ElementsAre(Problem{"stages", "missing required field 'stages'"}));
  json no_steps = minimal();
  no_steps["stages"][0].erase("steps");
  EXPECT_THAT(problems_of(no_steps), ElementsAre(Problem{"stages[0].steps", "missing required field 'steps'"}));
}

TEST(PipelineTest, EmptyStagesArray) {
  EXPECT_THAT(problems_of(json{{"name", "App"}, {"stages", json::array()}}),
              ElementsAre(Problem{"stages", "stages is empty: define at least one stage"}));
}

TEST(PipelineTest, BadNames) {
  const std::string rule = ": use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit";
  json document = minimal();
  document["name"] = "Sample App";
  document["stages"][0]["name"] = "-dev";
  document["stages"][0]["steps"][0]["name"] = std::string(65, 's');
  EXPECT_THAT(problems_of(document),
              ElementsAre(Problem{"name", "invalid pipeline name 'Sample App'" + rule},
                          Problem{"stages[0].name", "invalid stage name '-dev'" + rule},
                          Problem{"stages[0].steps[0].name", "invalid step name '" + std::string(65, 's') + "'" + rule}));

  json longest = minimal();
  longest["name"] = "A" + std::string(63, 'b');
  longest["stages"][0]["name"] = "0.dev_a-b";
  EXPECT_TRUE(parse_pipeline(longest).has_value());
}

TEST(PipelineTest, BadVariableNames) {
  json document = minimal();
  document["variables"] = {{"1BAD", "x"}, {"MY-VAR", "y"}, {"_OK1", "z"}};
  document["stages"][0]["steps"][0]["env"] = {{"has space", "x"}};
  EXPECT_THAT(problems_of(document),
              ElementsAre(Problem{"variables.1BAD",
                                  "invalid variable name '1BAD': use letters, digits and '_', not starting with a digit"},
                          Problem{"variables.MY-VAR",
                                  "invalid variable name 'MY-VAR': use letters, digits and '_', not starting with a digit"},
                          Problem{"stages[0].steps[0].env.has space",
                                  "invalid env variable name 'has space': use letters, digits and '_', not starting "
                                  "with a digit"}));
}

TEST(PipelineTest, ReservedCascadeVariables) {
  json document = minimal();
  document["variables"] = {{"CASCADE_ARTIFACT_PATH", "/tmp"}};
  document["stages"][0]["variables"] = {{"CASCADE_X", "1"}, {"cascade_lowercase_is_fine", "1"}};
  document["stages"][0]["steps"][0]["env"] = {{"CASCADE_", "1"}};
  EXPECT_THAT(problems_of(document),
              ElementsAre(Problem{"variables.CASCADE_ARTIFACT_PATH",
                                  "variable name 'CASCADE_ARTIFACT_PATH' is reserved: names starting with CASCADE_ "
                                  "are set by the engine"},
                          Problem{"stages[0].variables.CASCADE_X",
                                  "variable name 'CASCADE_X' is reserved: names starting with CASCADE_ are set by "
                                  "the engine"},
                          Problem{"stages[0].steps[0].env.CASCADE_",
                                  "env variable name 'CASCADE_' is reserved: names starting with CASCADE_ are set by "
                                  "the engine"}));
}

TEST(PipelineTest, TriggerWithTwoKinds) {
  json document = with_stages({{"dev", kAfterRelease}, {"prod", {{"manual", true}, {"after_stages", {"dev"}}}}});
  EXPECT_THAT(problems_of(document),
              ElementsAre(Problem{"stages[1].trigger", "a trigger has exactly one of 'after_release', "
                                                       "'after_stages' or 'manual', found 'after_stages' and 'manual'"}));
}

TEST(PipelineTest, TriggerWithNoKind) {
  json document = with_stages({{"dev", kAfterRelease}, {"prod", json::object()}});
  EXPECT_THAT(problems_of(document),
              ElementsAre(Problem{"stages[1].trigger", "a trigger needs one of \"after_release\": true, "
                                                       "\"after_stages\": [...] or \"manual\": true"}));
}

TEST(PipelineTest, FalseTriggerFlagsSayWhatToUseInstead) {
  json document = with_stages({{"dev", kAfterRelease}, {"qa", {{"after_release", false}}}, {"prod", {{"manual", false}}}});
  EXPECT_THAT(problems_of(document),
              ElementsAre(Problem{"stages[1].trigger.after_release",
                                  "\"after_release\": false is not a trigger; use \"after_stages\": [...] or "
                                  "\"manual\": true"},
                          Problem{"stages[2].trigger.manual",
                                  "\"manual\": false is not a trigger; use \"after_release\": true or "
                                  "\"after_stages\": [...]"}));
}

TEST(PipelineTest, EmptyAfterStages) {
  json document = with_stages({{"dev", kAfterRelease}, {"prod", after({})}});
  EXPECT_THAT(problems_of(document), ElementsAre(Problem{"stages[1].trigger.after_stages",
                                                         "after_stages is empty: list at least one stage"}));
}

TEST(PipelineTest, DuplicateAfterStagesEntry) {
  json document = with_stages({{"dev", kAfterRelease}, {"prod", after({"dev", "dev"})}});
  EXPECT_THAT(problems_of(document),
              ElementsAre(Problem{"stages[1].trigger.after_stages[1]",
                                  "duplicate stage 'dev' (first listed at stages[1].trigger.after_stages[0])"}));
}

TEST(PipelineTest, AfterStagesEntryThatIsNotAString) {
  json document = with_stages({{"dev", kAfterRelease}, {"prod", {{"after_stages", {"dev", 3}}}}});
  EXPECT_THAT(problems_of(document), ElementsAre(Problem{"stages[1].trigger.after_stages[1]",
                                                         "expected a string, found number"}));
}

TEST(PipelineTest, DuplicateStage) {
  json document = with_stages({{"dev", kAfterRelease}, {"test", after({"dev"})}, {"qa", after({"dev"})},
                               {"qa", after({"test"})}});
  EXPECT_THAT(problems_of(document),
              ElementsAre(Problem{"stages[3].name", "duplicate stage 'qa' (first defined at stages[2])"}));
}

TEST(PipelineTest, UnknownStageInAfterStages) {
  json document = with_stages({{"dev", kAfterRelease}, {"qa", after({"dev"})}, {"prod", after({"dev", "qaa"})}});
  EXPECT_THAT(problems_of(document),
              ElementsAre(Problem{"stages[2].trigger.after_stages[1]", "unknown stage 'qaa'"}));
}

TEST(PipelineTest, StageThatRunsAfterItself) {
  json document = with_stages({{"dev", kAfterRelease}, {"qa", after({"dev", "qa"})}});
  EXPECT_THAT(problems_of(document),
              ElementsAre(Problem{"stages[1].trigger.after_stages[1]", "stage 'qa' cannot run after itself"}));
}

TEST(PipelineTest, TwoStageCycle) {
  json document = with_stages({{"dev", kAfterRelease}, {"prod", after({"dev", "qa"})}, {"qa", after({"prod"})}});
  EXPECT_THAT(problems_of(document),
              ElementsAre(Problem{"stages[1].trigger", "cycle: prod \u2192 qa \u2192 prod"}));
}

TEST(PipelineTest, ThreeStageCycleFollowsTheFlowFromTheFirstStage) {
  // b runs after a, c after b, a after c: a → b → c → a.
  json document = with_stages({{"dev", kAfterRelease}, {"a", after({"c", "dev"})}, {"b", after({"a"})},
                               {"c", after({"b"})}});
  EXPECT_THAT(problems_of(document),
              ElementsAre(Problem{"stages[1].trigger", "cycle: a \u2192 b \u2192 c \u2192 a"}));
}

TEST(PipelineTest, EachKnotOfStagesIsReportedOnce) {
  // Two separate cycles, and a third stage tied into the second one.
  json document = with_stages({{"dev", kAfterRelease},
                               {"x", after({"y"})},
                               {"y", after({"x"})},
                               {"p", after({"r"})},
                               {"q", after({"p"})},
                               {"r", after({"q", "p"})}});
  EXPECT_THAT(problems_of(document), ElementsAre(Problem{"stages[1].trigger", "cycle: x \u2192 y \u2192 x"},
                                                 Problem{"stages[3].trigger", "cycle: p \u2192 r \u2192 p"}));
}

TEST(PipelineTest, ForkAndJoinIsNotACycle) {
  json document = with_stages({{"dev", kAfterRelease}, {"test", after({"dev"})}, {"qa", after({"dev"})},
                               {"prod", after({"test", "qa"})}});
  EXPECT_TRUE(parse_pipeline(document).has_value());
}

TEST(PipelineTest, StageWithNoSteps) {
  json document = with_stages({{"dev", kAfterRelease}, {"qa", after({"dev"})}});
  document["stages"][1]["steps"] = json::array();
  EXPECT_THAT(problems_of(document), ElementsAre(Problem{"stages[1].steps", "stage 'qa' has no steps"}));
}

TEST(PipelineTest, NoStageTriggeredByReleaseCreation) {
  json document = with_stages({{"dev", {{"manual", true}}}, {"qa", after({"dev"})}});
  EXPECT_THAT(problems_of(document),
              ElementsAre(Problem{"stages", "no stage is triggered by release creation (give one stage "
                                            "\"trigger\": {\"after_release\": true})"}));
}

TEST(PipelineTest, TimeoutOutOfRange) {
  json document = minimal();
  json& steps = document["stages"][0]["steps"];
  steps = {{{"name", "a"}, {"run", "true"}, {"timeout_s", 0}},
           {{"name", "b"}, {"run", "true"}, {"timeout_s", 86401}},
           {{"name", "c"}, {"run", "true"}, {"timeout_s", -5}},
           {{"name", "d"}, {"run", "true"}, {"timeout_s", 1.5}},
           {{"name", "e"}, {"run", "true"}, {"timeout_s", 18446744073709551615ull}},
           {{"name", "f"}, {"run", "true"}, {"timeout_s", 1}},
           {{"name", "g"}, {"run", "true"}, {"timeout_s", 86400}}};
  EXPECT_THAT(problems_of(document),
              ElementsAre(Problem{"stages[0].steps[0].timeout_s", "timeout_s must be between 1 and 86400 seconds, found 0"},
                          Problem{"stages[0].steps[1].timeout_s",
                                  "timeout_s must be between 1 and 86400 seconds, found 86401"},
                          Problem{"stages[0].steps[2].timeout_s",
                                  "timeout_s must be between 1 and 86400 seconds, found -5"},
                          Problem{"stages[0].steps[3].timeout_s", "expected an integer, found number 1.5"},
                          Problem{"stages[0].steps[4].timeout_s",
                                  "timeout_s must be between 1 and 86400 seconds, found 18446744073709551615"}));
}

TEST(PipelineTest, RunMustBeANonEmptyCommand) {
  json document = minimal();
  document["stages"][0]["steps"][0]["run"] = "  ";
  EXPECT_THAT(problems_of(document),
              ElementsAre(Problem{"stages[0].steps[0].run", "run is empty: give the shell command to run"}));
}

TEST(PipelineTest, DuplicateStepNames) {
  json document = minimal();
  document["stages"][0]["steps"] = {{{"name", "deploy"}, {"run", "a"}},
                                    {{"name", "smoke"}, {"run", "b"}},
                                    {{"name", "deploy"}, {"run", "c"}}};
  EXPECT_THAT(problems_of(document), ElementsAre(Problem{"stages[0].steps[2].name",
                                                         "duplicate step 'deploy' (first defined at stages[0].steps[0])"}));
}

TEST(PipelineTest, SameStepNameInDifferentStagesIsFine) {
  EXPECT_TRUE(parse_pipeline(sample()).has_value());  // every stage has a step "deploy"
}

TEST(PipelineTest, ApprovalProblems) {
  json document = with_stages({{"dev", kAfterRelease}, {"qa", after({"dev"})}, {"uat", after({"dev"})},
                               {"prod", after({"qa"})}, {"ops", after({"qa"})}});
  document["stages"][1]["pre_approval"] = {{"approvers", {"alice", "bob", "alice"}}};
  document["stages"][2]["pre_approval"] = {{"approvers", json::array()}};
  document["stages"][3]["pre_approval"] = {{"approvers", {"alice", ""}}};
  document["stages"][4]["pre_approval"] = {{"approver", {"alice"}}};
  EXPECT_THAT(problems_of(document),
              ElementsAre(Problem{"stages[1].pre_approval.approvers[2]",
                                  "duplicate approver 'alice' (first listed at stages[1].pre_approval.approvers[0])"},
                          Problem{"stages[2].pre_approval.approvers", "approvers is empty: list at least one approver"},
                          Problem{"stages[3].pre_approval.approvers[1]", "expected a non-empty string"},
                          Problem{"stages[4].pre_approval.approver",
                                  "unknown field 'approver' (did you mean 'approvers'?)"},
                          Problem{"stages[4].pre_approval.approvers", "missing required field 'approvers'"}));
}

TEST(PipelineTest, ReportsEveryProblemAtOnce) {
  json document = sample();
  document["stages"][0]["steps"][0]["timeout_s"] = 0;               // structural
  document["stages"][1]["trigger"] = after({"dev", "qaa"});         // unknown stage
  document["stages"][2]["stepz"] = json::array();                   // unknown field
  document["stages"][2]["steps"] = json::array();                   // no steps
  document["stages"][4]["name"] = "qa";                             // duplicate stage
  document["variables"]["1BAD"] = "x";                              // bad variable name
  Result<PipelineDefinition> result = parse_pipeline(document);
  const std::vector<Problem> problems = problems_of(result);
  EXPECT_THAT(paths_of(problems), ElementsAre("variables.1BAD", "stages[0].steps[0].timeout_s", "stages[2].stepz",
                                              "stages[1].trigger.after_stages[1]", "stages[2].steps",
                                              "stages[4].name"));
  EXPECT_EQ(result.error().message, "pipeline 'SampleApp' is invalid: 6 problems");
}

TEST(PipelineTest, SummaryUsesSingularForOneProblem) {
  json document = sample();
  document["stages"][2]["stepz"] = 1;
  Result<PipelineDefinition> result = parse_pipeline(document);
  EXPECT_EQ(problems_of(result).size(), 1u);
  EXPECT_EQ(result.error().message, "pipeline 'SampleApp' is invalid: 1 problem");
}

TEST(PipelineTest, BrokenTriggerSuppressesTheMissingReleaseStageProblem) {
  // The broken trigger may be the after_release one: report it alone.
  json document = with_stages({{"dev", {{"after_release", "true"}}}, {"qa", after({"dev"})}});
  EXPECT_THAT(paths_of(problems_of(document)), ElementsAre("stages[0].trigger.after_release"));
}

TEST(PipelineTest, TextParsesLikeTheDocument) {
  Result<PipelineDefinition> result = parse_pipeline_text(kSampleText);
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(to_json(result.value()), to_json(parse_pipeline(sample()).value()));
}

TEST(PipelineTest, MalformedJsonNamesLineAndColumn) {
  // Line 3 is missing the ':' after "stages"; the parser stops at the '['.
  const std::string text = "{\n  \"name\": \"App\",\n  \"stages\" [\n  ]\n}\n";
  Result<PipelineDefinition> result = parse_pipeline_text(text);
  const std::vector<Problem> problems = problems_of(result);
  const std::string prefix = "malformed JSON at line 3, column 12: ";
  EXPECT_EQ(result.error().message.substr(0, prefix.size()), prefix) << result.error().message;
  EXPECT_NE(result.error().message.find("syntax error"), std::string::npos) << result.error().message;
  EXPECT_EQ(result.error().message.find("json.exception"), std::string::npos) << result.error().message;
  EXPECT_THAT(problems, ElementsAre(Problem{"", result.error().message}));
}

TEST(PipelineTest, MalformedJsonAtEndOfInput) {
  Result<PipelineDefinition> result = parse_pipeline_text("{\"name\": \"App\",\n");
  ASSERT_TRUE(result.has_error());
  EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(result.error().message.rfind("malformed JSON at line 2, column 1: ", 0), 0u) << result.error().message;

  Result<PipelineDefinition> empty = parse_pipeline_text("");
  ASSERT_TRUE(empty.has_error());
  EXPECT_EQ(empty.error().message.rfind("malformed JSON at line 1, column 1: ", 0), 0u) << empty.error().message;
}

TEST(PipelineTest, TextThatIsNotAnObject) {
  EXPECT_THAT(problems_of(parse_pipeline_text("[1, 2]")), ElementsAre(Problem{"", "expected an object, found array"}));
}

TEST(PipelineTest, DuplicateKeysInTextAreReported) {
  const std::string text = R"({"name": "App", "stages": [
    {"name": "dev", "trigger": {"after_release": true},
     "steps": [{"name": "a", "run": "true"}], "steps": [{"name": "b", "run": "true", "run": "false"}]}
  ]})";
  Result<PipelineDefinition> result = parse_pipeline_text(text);
  EXPECT_THAT(problems_of(result),
              ElementsAre(Problem{"stages[0].steps", "duplicate field 'steps' (only the last one would be kept)"},
                          Problem{"stages[0].steps[0].run", "duplicate field 'run' (only the last one would be kept)"}));
  EXPECT_EQ(result.error().message, "pipeline 'App' is invalid: 2 problems");
}

TEST(PipelineTest, DuplicateKeysComeBeforeOtherProblems) {
  const std::string text = R"({"name": "App", "name": "App", "stages": []})";
  EXPECT_THAT(paths_of(problems_of(parse_pipeline_text(text))), ElementsAre("name", "stages"));
}

TEST(PipelineTest, CanonicalFormWritesEveryField) {
  json document = minimal();
  document["stages"][0]["pre_approval"] = {{"approvers", {"bob", "alice"}}};
  document["stages"].push_back({{"name", "qa"}, {"trigger", after({"dev"})}, {"steps", {{{"name", "t"}, {"run", "x"}}}}});
  Result<PipelineDefinition> result = parse_pipeline(document);
  ASSERT_TRUE(result.has_value()) << result.error().message;
  const json expected = json::parse(R"({
    "name": "App", "description": "", "variables": {},
    "stages": [
      {"name": "dev", "trigger": {"after_release": true}, "pre_approval": {"approvers": ["bob", "alice"]},
       "variables": {}, "steps": [{"name": "deploy", "run": "true", "timeout_s": 3600, "env": {}}]},
      {"name": "qa", "trigger": {"after_stages": ["dev"]},
       "variables": {}, "steps": [{"name": "t", "run": "x", "timeout_s": 3600, "env": {}}]}
    ]
  })");
  EXPECT_EQ(to_json(result.value()), expected);
  // Empty maps are objects, not null or arrays.
  EXPECT_TRUE(to_json(result.value())["variables"].is_object());
  EXPECT_TRUE(to_json(result.value())["stages"][0]["steps"][0]["env"].is_object());
}

TEST(PipelineTest, DefaultsAndKeyOrderDoNotChangeTheCanonicalForm) {
  const std::string terse = R"({"stages": [{"steps": [{"run": "true", "name": "deploy"}],
                                            "trigger": {"after_release": true}, "name": "dev"}],
                               "name": "App"})";
  const std::string explicit_defaults = R"({"name": "App", "description": "", "variables": {},
    "stages": [{"name": "dev", "trigger": {"after_release": true}, "variables": {},
                "steps": [{"name": "deploy", "run": "true", "timeout_s": 3600, "env": {}}]}]})";
  Result<PipelineDefinition> a = parse_pipeline_text(terse);
  Result<PipelineDefinition> b = parse_pipeline_text(explicit_defaults);
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_EQ(to_json(a.value()).dump(), to_json(b.value()).dump());
}

TEST(PipelineTest, CanonicalFormRoundTrips) {
  const json first = to_json(parse_pipeline(sample()).value());
  Result<PipelineDefinition> again = parse_pipeline(first);
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_EQ(to_json(again.value()).dump(), first.dump());
  EXPECT_EQ(again.value().stages[3].pre_approval->approvers, std::vector<std::string>{"release-manager"});
  EXPECT_FALSE(again.value().stages[0].pre_approval.has_value());
  EXPECT_FALSE(first["stages"][0].contains("pre_approval"));
  Result<PipelineDefinition> from_text = parse_pipeline_text(first.dump(2));
  ASSERT_TRUE(from_text.has_value());
  EXPECT_EQ(to_json(from_text.value()), first);
}

}  // namespace
}  // namespace cascade::engine
