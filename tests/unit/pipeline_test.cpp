#include "engine/pipeline.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
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
// Never prints a secret's value, as the code under test never writes one.
void PrintTo(const VariableValue& variable, std::ostream* os) {
  if (variable.secret) {
    *os << "{secret, value " << (variable.value.empty() ? "empty" : "set") << ", digest \"" << variable.secret_digest
        << "\"}";
  } else {
    *os << "\"" << variable.value << "\"";
  }
}

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
  EXPECT_EQ(pipeline.variables, (VariableMap{{"SITES_ROOT", VariableValue{"/srv/sites", false, ""}}}));
  ASSERT_EQ(pipeline.stages.size(), 5u);

  const StageDefinition& dev = pipeline.stages[0];
  EXPECT_EQ(dev.name, "dev");
  EXPECT_EQ(dev.trigger.kind, TriggerKind::kAfterRelease);
  EXPECT_TRUE(dev.trigger.after_stages.empty());
  EXPECT_FALSE(dev.pre_approval.has_value());
  EXPECT_EQ(dev.variables, (VariableMap{{"SITE", VariableValue{"SampleApp-Dev", false, ""}}}));
  ASSERT_EQ(dev.steps.size(), 2u);
  EXPECT_EQ(dev.steps[0].name, "deploy");
  EXPECT_EQ(dev.steps[0].run, R"(cp -R "$CASCADE_ARTIFACT_PATH"/. "$SITES_ROOT/$SITE")");
  EXPECT_EQ(dev.steps[0].timeout_s, 60);
  EXPECT_EQ(dev.steps[0].env, (std::map<std::string, std::string>{{"MODE", "fast"}}));
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
                          Problem{"variables.PORT", "expected a string or an object, found number"},
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
  EXPECT_EQ(empty.error().code, ErrorCode::kInvalidArgument);
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
  const json expected = json::parse(R"json({
    "name": "App", "description": "", "release_name_format": "Release-$(rev:r)", "variables": {}, "groups": {},
    "stages": [
      {"name": "dev", "trigger": {"after_release": true},
       "pre_approval": {"approvers": ["bob", "alice"], "required": 1, "order": "any", "timeout": "30d",
                        "requester_cannot_approve": false, "skip_if_approved_earlier": false},
       "variables": {}, "max_parallel": 0, "on_new_release": "queue_all",
       "steps": [{"name": "deploy", "run": "true", "timeout_s": 3600, "env": {}, "continue_on_error": false,
                  "retries": {"count": 0, "delay_s": 0}, "condition": "succeeded"}]},
      {"name": "qa", "trigger": {"after_stages": ["dev"], "on_partial_success": false},
       "variables": {}, "max_parallel": 0, "on_new_release": "queue_all",
       "steps": [{"name": "t", "run": "x", "timeout_s": 3600, "env": {}, "continue_on_error": false,
                  "retries": {"count": 0, "delay_s": 0}, "condition": "succeeded"}]}
    ]
  })json");
  EXPECT_EQ(to_json(result.value()), expected);
  // Empty maps are objects, not null or arrays.
  EXPECT_TRUE(to_json(result.value())["variables"].is_object());
  EXPECT_TRUE(to_json(result.value())["stages"][0]["steps"][0]["env"].is_object());
  EXPECT_TRUE(to_json(result.value())["groups"].is_object());
}

TEST(PipelineTest, DefaultsAndKeyOrderDoNotChangeTheCanonicalForm) {
  const std::string terse = R"({"stages": [{"steps": [{"run": "true", "name": "deploy"}],
                                            "trigger": {"after_release": true}, "name": "dev"}],
                               "name": "App"})";
  const std::string explicit_defaults = R"json({"name": "App", "description": "",
    "release_name_format": "Release-$(rev:r)", "variables": {}, "groups": {},
    "stages": [{"name": "dev", "trigger": {"after_release": true}, "variables": {}, "max_parallel": 0,
                "on_new_release": "queue_all",
                "steps": [{"name": "deploy", "run": "true", "timeout_s": 3600, "env": {}, "continue_on_error": false,
                           "retries": {"count": 0, "delay_s": 0}, "condition": "succeeded"}]}]})json";
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

// ---------------------------------------------------------------------------
// Release names, groups, secrets, approval policies and step and stage options.

const std::string kDigest(64, 'a');
const std::string kOtherDigest = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

// Every option of the format, each away from its default.
constexpr const char* kFullText = R"json({
  "name": "Shop",
  "description": "every option",
  "release_name_format": "Shop-$(date:yyyy-MM-dd).$(rev:r)",
  "variables": {"REGION": "eu", "PLAIN": {"value": "p", "secret": false},
                "DB_PASSWORD": {"value": "hunter2-pipeline", "secret": true},
                "API_TOKEN": {"secret": true,
                              "digest": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}},
  "groups": {"release-managers": ["alice", "bob"], "sre": ["carol"]},
  "stages": [
    {"name": "dev", "trigger": {"after_release": true}, "max_parallel": 2, "on_new_release": "deploy_latest",
     "steps": [{"name": "deploy", "run": "deploy $(REGION)", "continue_on_error": true, "retries": 3,
                "condition": "always"},
               {"name": "notify", "run": "true", "retries": {"count": 2, "delay_s": 30}, "condition": "failed"}]},
    {"name": "prod", "trigger": {"after_stages": ["dev"], "on_partial_success": true},
     "pre_approval": {"approvers": ["release-managers", "dave"], "required": "all", "order": "sequential",
                      "timeout": "36h", "requester_cannot_approve": true, "skip_if_approved_earlier": true},
     "post_approval": {"approvers": ["sre", "erin"], "required": 2, "timeout": "90m"},
     "variables": {"DB_HOST": "db", "STAGE_SECRET": {"value": "hunter2-stage", "secret": true}},
     "on_failure": "redeploy_last_good",
     "steps": [{"name": "deploy", "run": "true", "timeout_s": 600, "env": {"MODE": "safe"}}]}
  ]
})json";

json full() { return json::parse(kFullText); }

// What ReleaseService does before writing a definition: secrets move to the
// secret store, leaving their digest.
void store_secrets(VariableMap& variables) {
  for (auto& [name, variable] : variables) {
    if (!variable.secret || !variable.secret_digest.empty()) continue;
    variable.secret_digest = std::string(64, name.size() % 2 == 0 ? 'b' : 'c');
    variable.value.clear();
  }
}
void store_secrets(PipelineDefinition& definition) {
  store_secrets(definition.variables);
  for (StageDefinition& stage : definition.stages) store_secrets(stage.variables);
}

// minimal() with a pre_approval of the given fields (approvers alice and bob unless given).
json with_approval(json policy, const std::string& field = "pre_approval") {
  if (!policy.contains("approvers")) policy["approvers"] = {"alice", "bob"};
  json document = minimal();
  document["stages"][0][field] = std::move(policy);
  return document;
}

// The approval policy parsed from with_approval(policy); fails the test when invalid.
ApprovalPolicy approval_of(json policy) {
  Result<PipelineDefinition> result = parse_pipeline(with_approval(std::move(policy)));
  EXPECT_TRUE(result.has_value()) << result.error().message;
  if (!result.has_value() || !result.value().stages[0].pre_approval) return {};
  return *result.value().stages[0].pre_approval;
}

TEST(PipelineTest, NewOptionsHaveTheirDefaults) {
  json document = minimal();
  document["stages"][0]["pre_approval"] = {{"approvers", {"alice"}}};
  document["stages"].push_back({{"name", "qa"}, {"trigger", after({"dev"})}, {"steps", {{{"name", "t"}, {"run", "x"}}}}});
  Result<PipelineDefinition> result = parse_pipeline(document);
  ASSERT_TRUE(result.has_value()) << result.error().message;
  const PipelineDefinition& pipeline = result.value();
  EXPECT_EQ(pipeline.release_name_format, "Release-$(rev:r)");
  EXPECT_TRUE(pipeline.groups.empty());

  const StageDefinition& dev = pipeline.stages[0];
  EXPECT_FALSE(dev.trigger.on_partial_success);
  EXPECT_FALSE(pipeline.stages[1].trigger.on_partial_success);
  EXPECT_FALSE(dev.post_approval.has_value());
  EXPECT_EQ(dev.max_parallel, 0);
  EXPECT_EQ(dev.on_new_release, OnNewRelease::kQueueAll);
  EXPECT_EQ(dev.on_failure, OnFailure::kNothing);

  ASSERT_TRUE(dev.pre_approval.has_value());
  const ApprovalPolicy& policy = *dev.pre_approval;
  EXPECT_EQ(policy.required, 1);
  EXPECT_EQ(policy.required_count(), 1);
  EXPECT_EQ(policy.order, ApprovalOrder::kAny);
  EXPECT_EQ(policy.timeout_ms, 30LL * 24 * 3600 * 1000);
  EXPECT_FALSE(policy.requester_cannot_approve);
  EXPECT_FALSE(policy.skip_if_approved_earlier);

  const StepDefinition& step = dev.steps[0];
  EXPECT_FALSE(step.continue_on_error);
  EXPECT_EQ(step.retries, 0);
  EXPECT_EQ(step.retry_delay_s, 0);
  EXPECT_EQ(step.condition, StepCondition::kSucceeded);
}

TEST(PipelineTest, ParsesEveryNewOption) {
  Result<PipelineDefinition> result = parse_pipeline_text(kFullText);
  ASSERT_TRUE(result.has_value()) << result.error().message;
  const PipelineDefinition& pipeline = result.value();
  EXPECT_EQ(pipeline.release_name_format, "Shop-$(date:yyyy-MM-dd).$(rev:r)");
  EXPECT_EQ(pipeline.variables,
            (VariableMap{{"REGION", VariableValue{"eu", false, ""}},
                         {"PLAIN", VariableValue{"p", false, ""}},
                         {"DB_PASSWORD", VariableValue{"hunter2-pipeline", true, ""}},
                         {"API_TOKEN", VariableValue{"", true, kOtherDigest}}}));
  EXPECT_EQ(pipeline.groups, (std::map<std::string, std::vector<std::string>>{
                                 {"release-managers", {"alice", "bob"}}, {"sre", {"carol"}}}));

  const StageDefinition& dev = pipeline.stages[0];
  EXPECT_EQ(dev.max_parallel, 2);
  EXPECT_EQ(dev.on_new_release, OnNewRelease::kDeployLatest);
  EXPECT_EQ(dev.on_failure, OnFailure::kNothing);
  EXPECT_TRUE(dev.steps[0].continue_on_error);
  EXPECT_EQ(dev.steps[0].retries, 3);
  EXPECT_EQ(dev.steps[0].retry_delay_s, 0);
  EXPECT_EQ(dev.steps[0].condition, StepCondition::kAlways);
  EXPECT_FALSE(dev.steps[1].continue_on_error);
  EXPECT_EQ(dev.steps[1].retries, 2);
  EXPECT_EQ(dev.steps[1].retry_delay_s, 30);
  EXPECT_EQ(dev.steps[1].condition, StepCondition::kFailed);

  const StageDefinition& prod = pipeline.stages[1];
  EXPECT_EQ(prod.trigger.kind, TriggerKind::kAfterStages);
  EXPECT_TRUE(prod.trigger.on_partial_success);
  ASSERT_TRUE(prod.pre_approval.has_value());
  EXPECT_EQ(prod.pre_approval->approvers, (std::vector<std::string>{"release-managers", "dave"}));
  EXPECT_EQ(prod.pre_approval->required, 0);
  EXPECT_EQ(prod.pre_approval->required_count(), 2);
  EXPECT_EQ(prod.pre_approval->order, ApprovalOrder::kSequential);
  EXPECT_EQ(prod.pre_approval->timeout_ms, 36LL * 3600 * 1000);
  EXPECT_TRUE(prod.pre_approval->requester_cannot_approve);
  EXPECT_TRUE(prod.pre_approval->skip_if_approved_earlier);
  ASSERT_TRUE(prod.post_approval.has_value());
  EXPECT_EQ(prod.post_approval->approvers, (std::vector<std::string>{"sre", "erin"}));
  EXPECT_EQ(prod.post_approval->required, 2);
  EXPECT_EQ(prod.post_approval->order, ApprovalOrder::kAny);
  EXPECT_EQ(prod.post_approval->timeout_ms, 90LL * 60 * 1000);
  EXPECT_FALSE(prod.post_approval->requester_cannot_approve);
  EXPECT_FALSE(prod.post_approval->skip_if_approved_earlier);
  EXPECT_EQ(prod.variables, (VariableMap{{"DB_HOST", VariableValue{"db", false, ""}},
                                         {"STAGE_SECRET", VariableValue{"hunter2-stage", true, ""}}}));
  EXPECT_EQ(prod.max_parallel, 0);
  EXPECT_EQ(prod.on_new_release, OnNewRelease::kQueueAll);
  EXPECT_EQ(prod.on_failure, OnFailure::kRedeployLastGood);
  EXPECT_EQ(prod.steps[0].timeout_s, 600);
}

TEST(PipelineTest, ReleaseNameFormatsThatAreValid) {
  for (const char* format : {"Release-$(rev:r)", "$(rev:r)", "App_$(date:yyyyMMdd).$(rev:r)",
                             "$(date:yyyy-MM-dd)-$(build)-$(rev:r)", "r$(rev:r)-$(date:yy.M.d)"}) {
    json document = minimal();
    document["release_name_format"] = format;
    Result<PipelineDefinition> result = parse_pipeline(document);
    ASSERT_TRUE(result.has_value()) << format << ": " << result.error().message;
    EXPECT_EQ(result.value().release_name_format, format);
  }
}

TEST(PipelineTest, ReleaseNameFormatProblems) {
  const auto problems_with = [](const json& format) {
    json document = minimal();
    document["release_name_format"] = format;
    return problems_of(document);
  };
  const std::string tokens = ": use $(rev:r), $(build) or $(date:yyyyMMdd)";
  EXPECT_THAT(problems_with("Release-$(build)"),
              ElementsAre(Problem{"release_name_format",
                                  "release_name_format must contain $(rev:r), so that every release gets its own "
                                  "name"}));
  EXPECT_THAT(problems_with("R-$(rev)-$(Build)-$(rev:r)"),
              ElementsAre(Problem{"release_name_format", "unknown token '$(rev)'" + tokens},
                          Problem{"release_name_format", "unknown token '$(Build)'" + tokens}));
  EXPECT_THAT(problems_with("R-$(date:yyyy/MM)-$(date:)-$(rev:r)"),
              ElementsAre(Problem{"release_name_format", "unknown token '$(date:yyyy/MM)'" + tokens},
                          Problem{"release_name_format", "unknown token '$(date:)'" + tokens}));
  EXPECT_THAT(problems_with("R-$(rev:r"),
              ElementsAre(Problem{"release_name_format", "unterminated token '$(rev:r'"},
                          Problem{"release_name_format",
                                  "release_name_format must contain $(rev:r), so that every release gets its own "
                                  "name"}));
  EXPECT_THAT(problems_with("My Release/$(rev:r)"),
              ElementsAre(Problem{"release_name_format",
                                  "character ' ' is not allowed: outside of tokens use letters, digits, '.', '_' or "
                                  "'-'"}));
  EXPECT_THAT(problems_with("-$(rev:r)"),
              ElementsAre(Problem{"release_name_format",
                                  "release_name_format must start with a letter, a digit or a token"}));
  EXPECT_THAT(problems_with(7), ElementsAre(Problem{"release_name_format", "expected a string, found number"}));
}

TEST(PipelineTest, GroupsAndActsFor) {
  json document = minimal();
  document["groups"] = {{"release-managers", {"alice", "bob"}}, {"sre", {"carol"}}};
  document["stages"][0]["pre_approval"] = {{"approvers", {"release-managers", "dave"}}};
  Result<PipelineDefinition> result = parse_pipeline(document);
  ASSERT_TRUE(result.has_value()) << result.error().message;
  const PipelineDefinition& pipeline = result.value();
  // A user acts for themself and for each group they belong to.
  EXPECT_TRUE(pipeline.acts_for("dave", "dave"));
  EXPECT_TRUE(pipeline.acts_for("alice", "release-managers"));
  EXPECT_TRUE(pipeline.acts_for("bob", "release-managers"));
  EXPECT_FALSE(pipeline.acts_for("carol", "release-managers"));
  EXPECT_TRUE(pipeline.acts_for("carol", "sre"));
  EXPECT_FALSE(pipeline.acts_for("alice", "dave"));
  EXPECT_FALSE(pipeline.acts_for("alice", "admins"));  // no such group, and not alice
  EXPECT_TRUE(pipeline.acts_for("release-managers", "release-managers"));
  EXPECT_FALSE(pipeline.acts_for("", ""));
  // A group that no approval names is fine.
  EXPECT_EQ(pipeline.groups.count("sre"), 1u);
}

TEST(PipelineTest, GroupProblems) {
  json document = minimal();
  document["groups"] = {{"bad name", {"alice"}},
                        {"empty", json::array()},
                        {"dups", {"alice", "bob", "alice"}},
                        {"blank", {"alice", " "}},
                        {"typed", {"alice", 7}},
                        {"flat", "alice"}};
  EXPECT_THAT(problems_of(document),
              ElementsAre(Problem{"groups.bad name",
                                  "invalid group name 'bad name': use 1 to 64 letters, digits, '.', '_' or '-', "
                                  "starting with a letter or digit"},
                          Problem{"groups.blank[1]", "expected a non-empty string"},
                          Problem{"groups.dups[2]", "duplicate member 'alice' (first listed at groups.dups[0])"},
                          Problem{"groups.empty", "group 'empty' is empty: list at least one member"},
                          Problem{"groups.flat", "expected an array, found string"},
                          Problem{"groups.typed[1]", "expected a string, found number"}));
  json not_an_object = minimal();
  not_an_object["groups"] = json::array();
  EXPECT_THAT(problems_of(not_an_object), ElementsAre(Problem{"groups", "expected an object, found array"}));
}

TEST(PipelineTest, SecretVariableForms) {
  json document = minimal();
  document["variables"] = {{"USER_FORM", {{"value", "hunter2"}, {"secret", true}}},
                           {"STORED_FORM", {{"secret", true}, {"digest", kDigest}}},
                           {"EXPLICIT", {{"value", "x"}, {"secret", false}}},
                           {"OBJECT", {{"value", ""}}},
                           {"TEXT", "t"}};
  document["stages"][0]["variables"] = {{"STAGE_SECRET", {{"secret", true}, {"value", "s3cr3t"}}}};
  Result<PipelineDefinition> result = parse_pipeline(document);
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result.value().variables, (VariableMap{{"USER_FORM", VariableValue{"hunter2", true, ""}},
                                                   {"STORED_FORM", VariableValue{"", true, kDigest}},
                                                   {"EXPLICIT", VariableValue{"x", false, ""}},
                                                   {"OBJECT", VariableValue{"", false, ""}},
                                                   {"TEXT", VariableValue{"t", false, ""}}}));
  EXPECT_EQ(result.value().stages[0].variables, (VariableMap{{"STAGE_SECRET", VariableValue{"s3cr3t", true, ""}}}));
}

TEST(PipelineTest, VariableValueEquality) {
  EXPECT_EQ((VariableValue{"a", true, kDigest}), (VariableValue{"a", true, kDigest}));
  EXPECT_FALSE((VariableValue{"a", false, ""}) == (VariableValue{"b", false, ""}));
  EXPECT_FALSE((VariableValue{"a", false, ""}) == (VariableValue{"a", true, ""}));
  EXPECT_FALSE((VariableValue{"", true, kDigest}) == (VariableValue{"", true, kOtherDigest}));
}

TEST(PipelineTest, SecretVariableProblems) {
  json document = minimal();
  document["variables"] = {{"NO_VALUE", {{"secret", true}}},
                           {"NOT_SECRET", {{"secret", false}}},
                           {"EMPTY", json::object()},
                           {"DIGEST_ONLY", {{"digest", kDigest}}},
                           {"BOTH", {{"secret", true}, {"value", "v"}, {"digest", kDigest}}},
                           {"SHORT", {{"secret", true}, {"digest", "abc"}}},
                           {"UPPER", {{"secret", true}, {"digest", std::string(64, 'A')}}},
                           {"TYPO", {{"secrt", true}, {"value", "v"}}},
                           {"FLAG", {{"secret", "yes"}, {"value", "v"}}},
                           {"NUMBER", {{"value", 5}}},
                           {"BLANK", {{"value", ""}, {"secret", true}}},
                           {"NUL", {{"value", std::string("a\0b", 3)}, {"secret", true}}}};
  document["stages"][0]["variables"] = {{"DB_PASSWORD", {{"secret", true}}}};
  EXPECT_THAT(problems_of(document),
              ElementsAre(Problem{"variables.BLANK.value", "a secret's value is empty"},
                          Problem{"variables.BOTH.digest", "a secret has either 'value' or 'digest', not both"},
                          Problem{"variables.DIGEST_ONLY.digest", "digest applies to secrets only"},
                          Problem{"variables.DIGEST_ONLY.value", "missing required field 'value'"},
                          Problem{"variables.EMPTY.value", "missing required field 'value'"},
                          Problem{"variables.FLAG.secret", "expected a boolean, found string"},
                          Problem{"variables.NOT_SECRET.value", "missing required field 'value'"},
                          Problem{"variables.NO_VALUE.value", "missing required field 'value'"},
                          Problem{"variables.NUL.value",
                                  "contains a NUL character, which an environment variable cannot hold"},
                          Problem{"variables.NUMBER.value", "expected a string, found number"},
                          Problem{"variables.SHORT.digest", "expected 64 lowercase hex digits"},
                          Problem{"variables.TYPO.secrt", "unknown field 'secrt' (did you mean 'secret'?)"},
                          Problem{"variables.UPPER.digest", "expected 64 lowercase hex digits"},
                          Problem{"stages[0].variables.DB_PASSWORD.value", "missing required field 'value'"}));
}

TEST(PipelineTest, CanonicalFormNeverContainsASecretValue) {
  Result<PipelineDefinition> result = parse_pipeline_text(kFullText);
  ASSERT_TRUE(result.has_value()) << result.error().message;
  // Straight from the user's file, before the service has stored the secrets:
  // still no value, only an empty digest.
  const json unstored = to_json(result.value());
  EXPECT_EQ(unstored.dump().find("hunter2"), std::string::npos) << unstored.dump();
  EXPECT_EQ(unstored["variables"]["DB_PASSWORD"], json::parse(R"({"secret": true, "digest": ""})"));
  EXPECT_EQ(unstored["stages"][1]["variables"]["STAGE_SECRET"], json::parse(R"({"secret": true, "digest": ""})"));
  EXPECT_EQ(unstored["variables"]["API_TOKEN"], (json{{"secret", true}, {"digest", kOtherDigest}}));

  // A secret that has both (the service sets the digest, then clears the value).
  PipelineDefinition definition = result.value();
  definition.variables["DB_PASSWORD"].secret_digest = kDigest;
  const json stored = to_json(definition);
  EXPECT_EQ(stored.dump().find("hunter2"), std::string::npos) << stored.dump();
  EXPECT_EQ(stored["variables"]["DB_PASSWORD"], (json{{"secret", true}, {"digest", kDigest}}));
  EXPECT_EQ(stored["variables"]["REGION"], "eu");
  EXPECT_EQ(stored["variables"]["PLAIN"], "p");  // a non-secret is plain text however it was written

  // The empty digest does not parse back: the canonical form is written after the secrets are stored.
  EXPECT_THAT(paths_of(problems_of(unstored)),
              ElementsAre("variables.DB_PASSWORD.digest", "stages[1].variables.STAGE_SECRET.digest"));
}

TEST(PipelineTest, ApprovalRequired) {
  EXPECT_EQ(approval_of({{"required", 2}}).required, 2);
  EXPECT_EQ(approval_of({{"required", 1}}).required_count(), 1);
  const ApprovalPolicy all = approval_of({{"required", "all"}, {"approvers", {"a", "b", "c"}}});
  EXPECT_EQ(all.required, 0);
  EXPECT_EQ(all.required_count(), 3);

  json document = minimal();
  document["stages"] = json::array();
  const std::vector<json> values = {0, 3, "most", 1.5, nullptr, -1, 18446744073709551615ull};
  for (std::size_t i = 0; i < values.size(); ++i) {
    document["stages"].push_back({{"name", "s" + std::to_string(i)},
                                  {"trigger", kAfterRelease},
                                  {"pre_approval", {{"approvers", {"alice", "bob"}}, {"required", values[i]}}},
                                  {"steps", {{{"name", "deploy"}, {"run", "true"}}}}});
  }
  document["stages"].push_back({{"name", "one"},
                                {"trigger", kAfterRelease},
                                {"post_approval", {{"approvers", {"alice"}}, {"required", 2}}},
                                {"steps", {{{"name", "deploy"}, {"run", "true"}}}}});
  EXPECT_THAT(problems_of(document),
              ElementsAre(Problem{"stages[0].pre_approval.required", "required must be at least 1, found 0"},
                          Problem{"stages[1].pre_approval.required", "required is 3 but only 2 approvers are listed"},
                          Problem{"stages[2].pre_approval.required", "expected an integer or \"all\", found \"most\""},
                          Problem{"stages[3].pre_approval.required", "expected an integer or \"all\", found number 1.5"},
                          Problem{"stages[4].pre_approval.required", "expected an integer or \"all\", found null"},
                          Problem{"stages[5].pre_approval.required", "required must be at least 1, found -1"},
                          Problem{"stages[6].pre_approval.required",
                                  "required is 18446744073709551615 but only 2 approvers are listed"},
                          Problem{"stages[7].post_approval.required", "required is 2 but only 1 approver is listed"}));
}

TEST(PipelineTest, ApprovalTimeoutsAreParsedAndNormalised) {
  const std::vector<std::pair<std::string, std::int64_t>> cases = {
      {"30d", 30LL * 24 * 60}, {"36h", 36 * 60},      {"90m", 90},          {"1m", 1},
      {"48h", 48 * 60},        {"1440m", 24 * 60},    {"365d", 365LL * 24 * 60}, {"8760h", 365LL * 24 * 60},
      {"007d", 7 * 24 * 60}};
  const std::map<std::string, std::string> canonical = {{"30d", "30d"},   {"36h", "36h"},     {"90m", "90m"},
                                                        {"1m", "1m"},     {"48h", "2d"},      {"1440m", "1d"},
                                                        {"365d", "365d"}, {"8760h", "365d"}, {"007d", "7d"}};
  for (const auto& [text, minutes] : cases) {
    json document = with_approval({{"timeout", text}});
    Result<PipelineDefinition> result = parse_pipeline(document);
    ASSERT_TRUE(result.has_value()) << text << ": " << result.error().message;
    EXPECT_EQ(result.value().stages[0].pre_approval->timeout_ms, minutes * 60 * 1000) << text;
    EXPECT_EQ(to_json(result.value())["stages"][0]["pre_approval"]["timeout"], canonical.at(text)) << text;
  }
}

TEST(PipelineTest, ApprovalTimeoutProblems) {
  json document = minimal();
  document["stages"] = json::array();
  const std::vector<json> values = {"0d", "366d", "5x", "", "12", "h", "-5m", "1.5h", " 5m", "525601m",
                                    "99999999999999999999d", 30};
  for (std::size_t i = 0; i < values.size(); ++i) {
    document["stages"].push_back({{"name", "s" + std::to_string(i)},
                                  {"trigger", kAfterRelease},
                                  {"pre_approval", {{"approvers", {"alice"}}, {"timeout", values[i]}}},
                                  {"steps", {{{"name", "deploy"}, {"run", "true"}}}}});
  }
  const auto invalid = [](const std::string& text) {
    return "invalid timeout '" + text + "': use a whole number followed by m, h or d, e.g. \"45m\", \"12h\" or \"30d\"";
  };
  EXPECT_THAT(problems_of(document),
              ElementsAre(Problem{"stages[0].pre_approval.timeout", "timeout must be more than 0"},
                          Problem{"stages[1].pre_approval.timeout", "timeout must be at most 365d"},
                          Problem{"stages[2].pre_approval.timeout", invalid("5x")},
                          Problem{"stages[3].pre_approval.timeout", invalid("")},
                          Problem{"stages[4].pre_approval.timeout", invalid("12")},
                          Problem{"stages[5].pre_approval.timeout", invalid("h")},
                          Problem{"stages[6].pre_approval.timeout", invalid("-5m")},
                          Problem{"stages[7].pre_approval.timeout", invalid("1.5h")},
                          Problem{"stages[8].pre_approval.timeout", invalid(" 5m")},
                          Problem{"stages[9].pre_approval.timeout", "timeout must be at most 365d"},
                          Problem{"stages[10].pre_approval.timeout", "timeout must be at most 365d"},
                          Problem{"stages[11].pre_approval.timeout", "expected a string, found number"}));
}

TEST(PipelineTest, ApprovalOrderAndFlags) {
  const ApprovalPolicy policy = approval_of({{"order", "sequential"}, {"requester_cannot_approve", true},
                                            {"skip_if_approved_earlier", true}});
  EXPECT_EQ(policy.order, ApprovalOrder::kSequential);
  EXPECT_TRUE(policy.requester_cannot_approve);
  EXPECT_TRUE(policy.skip_if_approved_earlier);
  EXPECT_EQ(approval_of({{"order", "any"}}).order, ApprovalOrder::kAny);

  json document = with_approval({{"order", "random"}, {"requester_cannot_approve", "no"},
                                 {"skip_if_approved_earlier", 1}});
  document["stages"][0]["post_approval"] = {{"approvers", {"carol"}}, {"order", 2},
                                            {"skip_if_approved_earlier", false}, {"requester_cannot_approve", true}};
  EXPECT_THAT(problems_of(document),
              ElementsAre(Problem{"stages[0].pre_approval.order", "expected \"any\" or \"sequential\", found \"random\""},
                          Problem{"stages[0].pre_approval.requester_cannot_approve", "expected a boolean, found string"},
                          Problem{"stages[0].pre_approval.skip_if_approved_earlier", "expected a boolean, found number"},
                          Problem{"stages[0].post_approval.order", "expected a string, found number"},
                          Problem{"stages[0].post_approval.skip_if_approved_earlier",
                                  "skip_if_approved_earlier applies to pre_approval only"}));
}

TEST(PipelineTest, PostApprovalHasTheShapeOfPreApproval) {
  json document = with_approval({{"approvers", json::array()}, {"aprovers", {"x"}}}, "post_approval");
  EXPECT_THAT(problems_of(document),
              ElementsAre(Problem{"stages[0].post_approval.aprovers",
                                  "unknown field 'aprovers' (did you mean 'approvers'?)"},
                          Problem{"stages[0].post_approval.approvers",
                                  "approvers is empty: list at least one approver"}));
  json missing = minimal();
  missing["stages"][0]["post_approval"] = {{"timeout", "1d"}};
  EXPECT_THAT(problems_of(missing),
              ElementsAre(Problem{"stages[0].post_approval.approvers", "missing required field 'approvers'"}));
}

TEST(PipelineTest, TriggerOnPartialSuccess) {
  json document = with_stages({{"dev", kAfterRelease},
                               {"qa", {{"after_stages", {"dev"}}, {"on_partial_success", true}}},
                               {"uat", {{"after_stages", {"dev"}}, {"on_partial_success", false}}}});
  Result<PipelineDefinition> result = parse_pipeline(document);
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_TRUE(result.value().stages[1].trigger.on_partial_success);
  EXPECT_FALSE(result.value().stages[2].trigger.on_partial_success);

  json wrong = with_stages({{"dev", {{"after_release", true}, {"on_partial_success", true}}},
                            {"hotfix", {{"manual", true}, {"on_partial_success", false}}},
                            {"qa", {{"after_stages", {"dev"}}, {"on_partial_success", "yes"}}},
                            {"uat", {{"after_stages", {"dev"}}, {"on_partial_sucess", true}}}});
  // The broken after_release trigger also suppresses "no stage is triggered by release creation".
  EXPECT_THAT(problems_of(wrong),
              ElementsAre(Problem{"stages[0].trigger.on_partial_success",
                                  "on_partial_success applies to after_stages only"},
                          Problem{"stages[1].trigger.on_partial_success",
                                  "on_partial_success applies to after_stages only"},
                          Problem{"stages[2].trigger.on_partial_success", "expected a boolean, found string"},
                          Problem{"stages[3].trigger.on_partial_sucess",
                                  "unknown field 'on_partial_sucess' (did you mean 'on_partial_success'?)"}));
}

TEST(PipelineTest, StageOptionProblems) {
  json document = minimal();
  document["stages"] = json::array();
  const std::vector<std::pair<std::string, json>> options = {
      {"max_parallel", -1},           {"max_parallel", 1.5},
      {"max_parallel", "2"},          {"max_parallel", 4294967296LL},
      {"on_new_release", "latest"},   {"on_new_release", true},
      {"on_failure", "nothing"},      {"on_failure", "rollback"}};
  for (std::size_t i = 0; i < options.size(); ++i) {
    document["stages"].push_back({{"name", "s" + std::to_string(i)},
                                  {"trigger", kAfterRelease},
                                  {options[i].first, options[i].second},
                                  {"steps", {{{"name", "deploy"}, {"run", "true"}}}}});
  }
  EXPECT_THAT(problems_of(document),
              ElementsAre(Problem{"stages[0].max_parallel", "max_parallel must be at least 1 (0 or absent: unlimited), "
                                                            "found -1"},
                          Problem{"stages[1].max_parallel", "expected an integer, found number 1.5"},
                          Problem{"stages[2].max_parallel", "expected an integer, found string"},
                          Problem{"stages[3].max_parallel", "max_parallel must be at most 2147483647, found 4294967296"},
                          Problem{"stages[4].on_new_release",
                                  "expected \"queue_all\" or \"deploy_latest\", found \"latest\""},
                          Problem{"stages[5].on_new_release", "expected a string, found boolean"},
                          Problem{"stages[6].on_failure", "expected \"redeploy_last_good\", found \"nothing\""},
                          Problem{"stages[7].on_failure", "expected \"redeploy_last_good\", found \"rollback\""}));

  // 0 is the canonical form's "unlimited" and reads back as such.
  json unlimited = minimal();
  unlimited["stages"][0]["max_parallel"] = 0;
  Result<PipelineDefinition> result = parse_pipeline(unlimited);
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result.value().stages[0].max_parallel, 0);
}

TEST(PipelineTest, StepOptionProblems) {
  json document = minimal();
  document["stages"][0]["steps"] = {
      {{"name", "a"}, {"run", "true"}, {"retries", 11}},
      {{"name", "b"}, {"run", "true"}, {"retries", -1}},
      {{"name", "c"}, {"run", "true"}, {"retries", {{"count", 11}, {"delay_s", 3601}}}},
      {{"name", "d"}, {"run", "true"}, {"retries", {{"delay_s", 5}}}},
      {{"name", "e"}, {"run", "true"}, {"retries", {{"count", 1}, {"delay", 5}}}},
      {{"name", "f"}, {"run", "true"}, {"retries", "3"}},
      {{"name", "g"}, {"run", "true"}, {"retries", 2.5}},
      {{"name", "h"}, {"run", "true"}, {"condition", "sometimes"}},
      {{"name", "i"}, {"run", "true"}, {"continue_on_error", "yes"}},
      {{"name", "j"}, {"run", "true"}, {"retries", {{"count", 10}, {"delay_s", 3600}}}, {"condition", "failed"}}};
  EXPECT_THAT(problems_of(document),
              ElementsAre(Problem{"stages[0].steps[0].retries", "retries must be between 0 and 10, found 11"},
                          Problem{"stages[0].steps[1].retries", "retries must be between 0 and 10, found -1"},
                          Problem{"stages[0].steps[2].retries.count", "count must be between 0 and 10, found 11"},
                          Problem{"stages[0].steps[2].retries.delay_s",
                                  "delay_s must be between 0 and 3600 seconds, found 3601"},
                          Problem{"stages[0].steps[3].retries.count", "missing required field 'count'"},
                          Problem{"stages[0].steps[4].retries.delay",
                                  "unknown field 'delay' (did you mean 'delay_s'?)"},
                          Problem{"stages[0].steps[5].retries", "expected an integer or an object, found string"},
                          Problem{"stages[0].steps[6].retries", "expected an integer or an object, found number 2.5"},
                          Problem{"stages[0].steps[7].condition",
                                  "expected \"succeeded\", \"failed\" or \"always\", found \"sometimes\""},
                          Problem{"stages[0].steps[8].continue_on_error", "expected a boolean, found string"}));
}

TEST(PipelineTest, UnknownFieldsSuggestTheNewFieldNames) {
  json document = minimal();
  document["release_name_fromat"] = "x";
  document["grups"] = json::object();
  json& stage = document["stages"][0];
  stage["post_aproval"] = {{"approvers", {"a"}}};
  stage["max_paralel"] = 2;
  stage["on_new_relase"] = "queue_all";
  stage["on_failur"] = "redeploy_last_good";
  stage["pre_approval"] = {{"approvers", {"a"}}, {"requred", 1}, {"timout", "1d"}, {"ordr", "any"}};
  json& step = stage["steps"][0];
  step["retires"] = 1;
  step["conditon"] = "always";
  step["continue_on_eror"] = true;
  EXPECT_THAT(problems_of(document),
              ElementsAre(Problem{"grups", "unknown field 'grups' (did you mean 'groups'?)"},
                          Problem{"release_name_fromat",
                                  "unknown field 'release_name_fromat' (did you mean 'release_name_format'?)"},
                          Problem{"stages[0].max_paralel", "unknown field 'max_paralel' (did you mean 'max_parallel'?)"},
                          Problem{"stages[0].on_failur", "unknown field 'on_failur' (did you mean 'on_failure'?)"},
                          Problem{"stages[0].on_new_relase",
                                  "unknown field 'on_new_relase' (did you mean 'on_new_release'?)"},
                          Problem{"stages[0].post_aproval",
                                  "unknown field 'post_aproval' (did you mean 'post_approval'?)"},
                          Problem{"stages[0].pre_approval.ordr", "unknown field 'ordr' (did you mean 'order'?)"},
                          Problem{"stages[0].pre_approval.requred", "unknown field 'requred' (did you mean 'required'?)"},
                          Problem{"stages[0].pre_approval.timout", "unknown field 'timout' (did you mean 'timeout'?)"},
                          Problem{"stages[0].steps[0].conditon",
                                  "unknown field 'conditon' (did you mean 'condition'?)"},
                          Problem{"stages[0].steps[0].continue_on_eror",
                                  "unknown field 'continue_on_eror' (did you mean 'continue_on_error'?)"},
                          Problem{"stages[0].steps[0].retires", "unknown field 'retires' (did you mean 'retries'?)"}));
}

TEST(PipelineTest, ReportsNewProblemsAtOnceWithTheirPaths) {
  json document = full();
  document["release_name_format"] = "Shop-$(build)";
  document["variables"]["DB_PASSWORD"].erase("value");
  document["groups"]["sre"] = json::array();
  document["stages"][0]["steps"][1]["retries"]["count"] = 20;
  document["stages"][1]["pre_approval"]["timeout"] = "400d";
  document["stages"][1]["post_approval"]["required"] = 3;
  document["stages"][1]["on_failure"] = "nothing";
  Result<PipelineDefinition> result = parse_pipeline(document);
  EXPECT_THAT(paths_of(problems_of(result)),
              ElementsAre("release_name_format", "variables.DB_PASSWORD.value", "groups.sre",
                          "stages[0].steps[1].retries.count", "stages[1].pre_approval.timeout",
                          "stages[1].post_approval.required", "stages[1].on_failure"));
  EXPECT_EQ(result.error().message, "pipeline 'Shop' is invalid: 7 problems");
}

TEST(PipelineTest, CanonicalFormOfEveryOption) {
  Result<PipelineDefinition> result = parse_pipeline_text(kFullText);
  ASSERT_TRUE(result.has_value()) << result.error().message;
  PipelineDefinition definition = result.value();
  definition.variables["DB_PASSWORD"] = VariableValue{"", true, kDigest};
  definition.stages[1].variables["STAGE_SECRET"] = VariableValue{"", true, kDigest};
  const json expected = json::parse(R"json({
    "name": "Shop", "description": "every option", "release_name_format": "Shop-$(date:yyyy-MM-dd).$(rev:r)",
    "variables": {"REGION": "eu", "PLAIN": "p",
                  "DB_PASSWORD": {"secret": true,
                                  "digest": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
                  "API_TOKEN": {"secret": true,
                                "digest": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}},
    "groups": {"release-managers": ["alice", "bob"], "sre": ["carol"]},
    "stages": [
      {"name": "dev", "trigger": {"after_release": true}, "variables": {}, "max_parallel": 2,
       "on_new_release": "deploy_latest",
       "steps": [{"name": "deploy", "run": "deploy $(REGION)", "timeout_s": 3600, "env": {},
                  "continue_on_error": true, "retries": {"count": 3, "delay_s": 0}, "condition": "always"},
                 {"name": "notify", "run": "true", "timeout_s": 3600, "env": {}, "continue_on_error": false,
                  "retries": {"count": 2, "delay_s": 30}, "condition": "failed"}]},
      {"name": "prod", "trigger": {"after_stages": ["dev"], "on_partial_success": true},
       "pre_approval": {"approvers": ["release-managers", "dave"], "required": "all", "order": "sequential",
                        "timeout": "36h", "requester_cannot_approve": true, "skip_if_approved_earlier": true},
       "post_approval": {"approvers": ["sre", "erin"], "required": 2, "order": "any", "timeout": "90m",
                         "requester_cannot_approve": false},
       "variables": {"DB_HOST": "db",
                     "STAGE_SECRET": {"secret": true,
                                      "digest": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}},
       "max_parallel": 0, "on_new_release": "queue_all", "on_failure": "redeploy_last_good",
       "steps": [{"name": "deploy", "run": "true", "timeout_s": 600, "env": {"MODE": "safe"},
                  "continue_on_error": false, "retries": {"count": 0, "delay_s": 0}, "condition": "succeeded"}]}
    ]
  })json");
  EXPECT_EQ(to_json(definition), expected);
}

TEST(PipelineTest, CanonicalRoundTripOfEveryOption) {
  Result<PipelineDefinition> result = parse_pipeline_text(kFullText);
  ASSERT_TRUE(result.has_value()) << result.error().message;
  PipelineDefinition definition = result.value();
  store_secrets(definition);
  const json first = to_json(definition);

  Result<PipelineDefinition> again = parse_pipeline(first);
  ASSERT_TRUE(again.has_value()) << again.error().message;
  const PipelineDefinition& back = again.value();
  // Every field survives (to_json writes every field; the variables, the one
  // part it writes only in part, are compared whole).
  EXPECT_EQ(to_json(back), first);
  EXPECT_EQ(to_json(back).dump(), first.dump());
  EXPECT_EQ(back.variables, definition.variables);
  EXPECT_EQ(back.stages[1].variables, definition.stages[1].variables);
  EXPECT_EQ(back.groups, definition.groups);
  EXPECT_EQ(back.release_name_format, definition.release_name_format);
  EXPECT_EQ(back.stages[1].pre_approval->required, 0);
  EXPECT_EQ(back.stages[1].pre_approval->timeout_ms, definition.stages[1].pre_approval->timeout_ms);
  EXPECT_EQ(back.stages[1].post_approval->timeout_ms, definition.stages[1].post_approval->timeout_ms);
  EXPECT_FALSE(first["stages"][1]["post_approval"].contains("skip_if_approved_earlier"));
  EXPECT_FALSE(first["stages"][0].contains("on_failure"));

  // Through text too, and stable.
  Result<PipelineDefinition> from_text = parse_pipeline_text(first.dump(2));
  ASSERT_TRUE(from_text.has_value()) << from_text.error().message;
  EXPECT_EQ(to_json(from_text.value()).dump(), first.dump());
}

TEST(PipelineTest, CanonicalTimeoutOfATimeoutSetInCode) {
  // Only code can set a timeout that is not whole minutes; it is written
  // rounded up, so that it still parses and never waits less.
  PipelineDefinition definition = parse_pipeline(minimal()).value();
  definition.stages[0].pre_approval = ApprovalPolicy{{"alice"}};
  definition.stages[0].pre_approval->timeout_ms = 90 * 1000;
  EXPECT_EQ(to_json(definition)["stages"][0]["pre_approval"]["timeout"], "2m");
}

}  // namespace
}  // namespace cascade::engine
