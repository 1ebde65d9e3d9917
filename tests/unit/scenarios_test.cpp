// Declarative release scenarios: every tests/scenarios/*.json is one test
// (named after its file) of the release aggregate — given these events, when
// this command, then these events or this error. The format is described in
// tests/scenarios/README.md. A scenario file that cannot be read fails its
// test with the file's name and the problem; it never crashes the runner.
#include "engine/pipeline.hpp"
#include "engine/release.hpp"
#include "events/codec.hpp"

#include "tests/support/release_fixture.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace cascade::engine {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr events::Timestamp kScenarioStart = 1'800'000'000'000;  // as ReleaseHistory: 2027-01-15T08:00:00Z

struct Expected {
  std::string type;
  json fields;  // the members that matter, compared with the event's payload JSON
};

struct Scenario {
  std::string file;  // as shown in messages: tests/scenarios/<name>.json
  PipelineDefinition definition;
  std::vector<events::RecordedEvent> given;
  Command command;
  CommandContext context;
  std::optional<std::vector<Expected>> then;
  std::optional<std::map<std::string, std::string>> then_due;      // stage → automatic trigger reason
  std::optional<std::map<std::string, std::string>> then_stages;   // stage → state name
  std::optional<ErrorCode> error_code;
  std::string error_message;  // a substring of the refusal's message
};

// An error naming where in the file the problem is.
Error problem(const std::string& path, const std::string& message) {
  return make_error(ErrorCode::kInvalidArgument, path + ": " + message);
}

// Reads the members of one JSON object, each with its type checked, and
// refuses members nobody asked for (a misspelt field must not be ignored).
class Members {
 public:
  Members(const json& object, std::string path) : object_(object), path_(std::move(path)) {}

  template <class T>
  Status optional(const char* key, T& out) {
    read_.insert(key);
    auto it = object_.find(key);
    if (it == object_.end()) return success();
    try {
      it->get_to(out);
    } catch (const json::exception& e) {
      return problem(path_ + "." + key, std::string("wrong type: ") + e.what());
    }
    return success();
  }
  template <class T>
  Status required(const char* key, T& out) {
    if (!object_.contains(key)) return problem(path_, std::string("missing \"") + key + "\"");
    return optional(key, out);
  }
  Status done() const {
    for (const auto& [key, value] : object_.items()) {
      if (read_.count(key) == 0) return problem(path_ + "." + key, "unknown member");
    }
    return success();
  }

 private:
  const json& object_;
  std::string path_;
  std::set<std::string> read_;
};

Result<ErrorCode> error_code_named(const std::string& name, const std::string& path) {
  for (ErrorCode code : {ErrorCode::kInvalidArgument, ErrorCode::kNotFound, ErrorCode::kAlreadyExists,
                         ErrorCode::kFailedPrecondition, ErrorCode::kPermissionDenied, ErrorCode::kAborted,
                         ErrorCode::kUnavailable, ErrorCode::kDataLoss, ErrorCode::kInternal}) {
    if (to_string(code) == name) return code;
  }
  return problem(path, "unknown error code '" + name + "' (e.g. failed_precondition, permission_denied)");
}

// The payload JSON of a default-constructed event of `type`: the members a
// compact given event leaves out keep these values.
template <std::size_t I = 0>
std::optional<json> default_payload(std::string_view type) {
  if constexpr (I == std::variant_size_v<events::Event>) {
    return std::nullopt;
  } else {
    using Payload = std::variant_alternative_t<I, events::Event>;
    if (type == Payload::kType) return events::payload_to_json(events::Event{Payload{}});
    return default_payload<I + 1>(type);
  }
}

template <std::size_t I = 0>
int schema_version_of(std::string_view type) {
  if constexpr (I == std::variant_size_v<events::Event>) {
    return 0;
  } else {
    using Payload = std::variant_alternative_t<I, events::Event>;
    return type == Payload::kType ? Payload::kSchemaVersion : schema_version_of<I + 1>(type);
  }
}

// Payload members written only when set (events/README.md): a default
// payload's JSON lacks them, yet a scenario may name them.
bool optional_member(const std::string& type, const std::string& key) {
  return (key == "override" && (type == events::ApprovalGranted::kType || type == events::ApprovalRejected::kType)) ||
         (key == "trigger_cdevent" && type == events::ReleaseCreated::kType) ||
         (key == "rollback_of" && type == events::StageTriggered::kType);
}

// One given event: {"type": …, payload members…, optional "at", "actor", "command_id"}.
Result<events::RecordedEvent> given_event(const json& item, const std::string& path, const PipelineDefinition& definition,
                                          std::int64_t version, events::Timestamp default_at) {
  if (!item.is_object()) return problem(path, "an event is an object with a \"type\"");
  if (!item.contains("type") || !item["type"].is_string()) return problem(path, "missing \"type\" (a string)");
  const std::string type = item["type"];
  std::optional<json> payload = type == events::ReleaseCreated::kType
                                    ? events::payload_to_json(testing::release_created(definition))
                                    : default_payload(type);
  if (!payload) return problem(path + ".type", "unknown event type '" + type + "'");
  events::RecordedEvent event;
  event.version = version;
  event.recorded_at = default_at;
  event.actor = "given";
  for (const auto& [key, value] : item.items()) {
    try {
      if (key == "type") continue;
      if (key == "at") {
        event.recorded_at = value.get<events::Timestamp>();
      } else if (key == "actor") {
        event.actor = value.get<std::string>();
      } else if (key == "command_id") {
        event.command_id = value.get<std::string>();
      } else if (!payload->contains(key) && !optional_member(type, key)) {
        return problem(path + "." + key, "unknown member of " + type);
      } else {
        (*payload)[key] = value;
      }
    } catch (const json::exception& e) {
      return problem(path + "." + key, std::string("wrong type: ") + e.what());
    }
  }
  auto decoded = events::payload_from_json(type, schema_version_of(type), *payload);
  if (!decoded) return problem(path, decoded.error().message);
  event.data = std::move(decoded).value();
  return event;
}

template <class C>
using CommandReader = std::function<Status(Members&, C&)>;

template <class C>
Result<Command> read_command(Members& members, const CommandReader<C>& read) {
  C command;
  CASCADE_TRY(read(members, command));
  CASCADE_TRY(members.done());
  return Command{std::move(command)};
}

// {"command": "<struct name>", the struct's members…, optional "actor", "at", "command_id", "actor_groups"}.
Result<Command> when_command(const std::string& command, Members& m, const PipelineDefinition& definition) {
  if (command == "CreateRelease") {
    return read_command<CreateRelease>(m, [&](Members& m, CreateRelease& c) -> Status {
      c.release_id = definition.name + "-1";
      c.number = 1;
      c.name = "Release-1";
      c.pipeline_version = 1;
      c.definition = definition;
      c.artifact = {"1.0.0", "/artifacts/1.0.0", 0, "", ""};
      CASCADE_TRY(m.optional("release_id", c.release_id));
      CASCADE_TRY(m.optional("number", c.number));
      CASCADE_TRY(m.optional("name", c.name));
      CASCADE_TRY(m.optional("artifact_version", c.artifact.version));
      CASCADE_TRY(m.optional("variables", c.variables));
      return m.optional("trigger", c.trigger);
    });
  }
  if (command == "TriggerStage") {
    return read_command<TriggerStage>(m, [](Members& m, TriggerStage& c) -> Status {
      CASCADE_TRY(m.required("stage", c.stage));
      return m.optional("reason", c.reason);
    });
  }
  if (command == "DeployStage") {
    return read_command<DeployStage>(m, [](Members& m, DeployStage& c) { return m.required("stage", c.stage); });
  }
  if (command == "RedeployStage") {
    return read_command<RedeployStage>(m, [](Members& m, RedeployStage& c) -> Status {
      CASCADE_TRY(m.required("stage", c.stage));
      CASCADE_TRY(m.optional("reason", c.reason));
      return m.optional("rollback_of", c.rollback_of);
    });
  }
  if (command == "ChooseRollback") {
    return read_command<ChooseRollback>(m, [](Members& m, ChooseRollback& c) -> Status {
      c.attempt = 1;
      CASCADE_TRY(m.required("stage", c.stage));
      CASCADE_TRY(m.optional("attempt", c.attempt));
      CASCADE_TRY(m.optional("rollback_to", c.rollback_to));
      return m.optional("reason", c.reason);
    });
  }
  if (command == "ApproveStage") {
    return read_command<ApproveStage>(m, [](Members& m, ApproveStage& c) -> Status {
      CASCADE_TRY(m.required("stage", c.stage));
      CASCADE_TRY(m.optional("comment", c.comment));
      CASCADE_TRY(m.optional("defer_until", c.defer_until));
      return m.optional("override", c.override);
    });
  }
  if (command == "RejectStage") {
    return read_command<RejectStage>(m, [](Members& m, RejectStage& c) -> Status {
      CASCADE_TRY(m.required("stage", c.stage));
      CASCADE_TRY(m.optional("comment", c.comment));
      return m.optional("override", c.override);
    });
  }
  if (command == "ExpireApproval") {
    return read_command<ExpireApproval>(m, [](Members& m, ExpireApproval& c) { return m.required("stage", c.stage); });
  }
  if (command == "EndDeferral") {
    return read_command<EndDeferral>(m, [](Members& m, EndDeferral& c) { return m.required("stage", c.stage); });
  }
  if (command == "CancelStage") {
    return read_command<CancelStage>(m, [](Members& m, CancelStage& c) -> Status {
      CASCADE_TRY(m.required("stage", c.stage));
      return m.optional("reason", c.reason);
    });
  }
  if (command == "SupersedeStage") {
    return read_command<SupersedeStage>(m, [](Members& m, SupersedeStage& c) -> Status {
      CASCADE_TRY(m.required("stage", c.stage));
      return m.required("newer_release", c.newer_release);
    });
  }
  if (command == "AbandonRelease") {
    return read_command<AbandonRelease>(m, [](Members& m, AbandonRelease& c) { return m.optional("reason", c.reason); });
  }
  if (command == "StartDeployment") {
    return read_command<StartDeployment>(m, [](Members& m, StartDeployment& c) -> Status {
      CASCADE_TRY(m.required("stage", c.stage));
      return m.optional("attempt", c.attempt);
    });
  }
  if (command == "RecordStepStarted") {
    return read_command<RecordStepStarted>(m, [](Members& m, RecordStepStarted& c) -> Status {
      c.attempt = 1;
      CASCADE_TRY(m.required("stage", c.stage));
      CASCADE_TRY(m.optional("attempt", c.attempt));
      return m.required("step_index", c.step_index);
    });
  }
  if (command == "RecordStepFinished") {
    return read_command<RecordStepFinished>(m, [](Members& m, RecordStepFinished& c) -> Status {
      c.attempt = 1;
      CASCADE_TRY(m.required("stage", c.stage));
      CASCADE_TRY(m.optional("attempt", c.attempt));
      CASCADE_TRY(m.required("step_index", c.step_index));
      CASCADE_TRY(m.required("succeeded", c.succeeded));
      CASCADE_TRY(m.optional("exit_code", c.exit_code));
      CASCADE_TRY(m.optional("duration_ms", c.duration_ms));
      CASCADE_TRY(m.optional("log_digest", c.log_digest));
      CASCADE_TRY(m.optional("reason", c.reason));
      return m.optional("will_retry", c.will_retry);
    });
  }
  if (command == "RecordStepSkipped") {
    return read_command<RecordStepSkipped>(m, [](Members& m, RecordStepSkipped& c) -> Status {
      c.attempt = 1;
      CASCADE_TRY(m.required("stage", c.stage));
      CASCADE_TRY(m.optional("attempt", c.attempt));
      CASCADE_TRY(m.required("step_index", c.step_index));
      return m.optional("reason", c.reason);
    });
  }
  if (command == "FinishDeployment") {
    return read_command<FinishDeployment>(m, [](Members& m, FinishDeployment& c) -> Status {
      c.attempt = 1;
      CASCADE_TRY(m.required("stage", c.stage));
      return m.optional("attempt", c.attempt);
    });
  }
  if (command == "AbortDeployment") {
    return read_command<AbortDeployment>(m, [](Members& m, AbortDeployment& c) -> Status {
      c.attempt = 1;
      CASCADE_TRY(m.required("stage", c.stage));
      CASCADE_TRY(m.optional("attempt", c.attempt));
      return m.optional("reason", c.reason);
    });
  }
  return problem("when.command", "unknown command '" + command + "' (one of engine/release.hpp's command structs)");
}

Result<PipelineDefinition> scenario_pipeline(const json& pipeline) {
  json document = pipeline;
  if (pipeline.is_string()) {
    const fs::path path = fs::path(CASCADE_SOURCE_DIR) / pipeline.get<std::string>();
    std::ifstream in(path);
    if (!in) return problem("pipeline", "cannot read " + pipeline.get<std::string>());
    document = json::parse(in, nullptr, false);
    if (document.is_discarded()) return problem("pipeline", pipeline.get<std::string>() + " is not JSON");
  } else if (!pipeline.is_object()) {
    return problem("pipeline", "a pipeline definition (object) or a path from the source root (string)");
  }
  auto parsed = parse_pipeline(document);
  if (!parsed) {
    std::string message = parsed.error().message;
    for (const Problem& p : parsed.error().details) message += "; " + p.path + ": " + p.message;
    return problem("pipeline", message);
  }
  return parsed;
}

Result<std::map<std::string, std::string>> string_map(const json& object, const std::string& path) {
  if (!object.is_object()) return problem(path, "an object of strings");
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : object.items()) {
    if (!value.is_string()) return problem(path + "." + key, "a string");
    out[key] = value.get<std::string>();
  }
  return out;
}

Result<Scenario> parse_scenario(const std::string& text) {
  json document;
  try {
    document = json::parse(text);
  } catch (const json::exception& e) {
    return make_error(ErrorCode::kInvalidArgument, std::string("not JSON: ") + e.what());
  }
  if (!document.is_object()) return make_error(ErrorCode::kInvalidArgument, "a scenario is a JSON object");
  Scenario s;
  Members top(document, "scenario");
  std::string description;
  CASCADE_TRY(top.optional("description", description));
  json pipeline, given, when, then, then_due, then_stages, error;
  CASCADE_TRY(top.required("pipeline", pipeline));
  CASCADE_TRY(top.required("given", given));
  CASCADE_TRY(top.required("when", when));
  CASCADE_TRY(top.optional("then", then));
  CASCADE_TRY(top.optional("then_due", then_due));
  CASCADE_TRY(top.optional("then_stages", then_stages));
  CASCADE_TRY(top.optional("error", error));
  CASCADE_TRY(top.done());
  if (then.is_null() == error.is_null()) {
    return problem("scenario", "exactly one of \"then\" (the expected events) and \"error\" (the expected refusal)");
  }
  if (!error.is_null() && (!then_due.is_null() || !then_stages.is_null())) {
    return problem("scenario", "\"then_due\" and \"then_stages\" go with \"then\", not with \"error\"");
  }

  CASCADE_TRY(definition, scenario_pipeline(pipeline));
  s.definition = definition;

  if (!given.is_array()) return problem("given", "a list of events");
  events::Timestamp at = kScenarioStart;
  for (std::size_t i = 0; i < given.size(); ++i) {
    CASCADE_TRY(event, given_event(given[i], "given[" + std::to_string(i) + "]", s.definition,
                                   static_cast<std::int64_t>(i + 1), at + 1000));
    at = event.recorded_at;
    s.given.push_back(std::move(event));
  }

  if (!when.is_object()) return problem("when", "a command object with a \"command\"");
  Members m(when, "when");
  std::string command;
  CASCADE_TRY(m.required("command", command));
  s.context.actor = "alice";
  s.context.command_id = "scenario";
  s.context.now = at + 1000;
  CASCADE_TRY(m.optional("actor", s.context.actor));
  CASCADE_TRY(m.optional("at", s.context.now));
  CASCADE_TRY(m.optional("command_id", s.context.command_id));
  CASCADE_TRY(m.optional("actor_groups", s.context.actor_groups));
  CASCADE_TRY(decided, when_command(command, m, s.definition));
  s.command = decided;

  if (!then.is_null()) {
    if (!then.is_array()) return problem("then", "a list of expected events");
    s.then.emplace();
    for (std::size_t i = 0; i < then.size(); ++i) {
      const std::string path = "then[" + std::to_string(i) + "]";
      if (!then[i].is_object() || !then[i].contains("type") || !then[i]["type"].is_string()) {
        return problem(path, "an expected event is an object with a \"type\"");
      }
      Expected expected{then[i]["type"], then[i]};
      expected.fields.erase("type");
      auto payload = default_payload(expected.type);
      if (!payload) return problem(path + ".type", "unknown event type '" + expected.type + "'");
      for (const auto& [key, value] : expected.fields.items()) {
        if (!payload->contains(key) && !optional_member(expected.type, key)) {
          return problem(path + "." + key, "unknown member of " + expected.type);
        }
      }
      s.then->push_back(std::move(expected));
    }
  }
  if (!then_due.is_null()) {
    CASCADE_TRY(due, string_map(then_due, "then_due"));
    s.then_due = due;
  }
  if (!then_stages.is_null()) {
    CASCADE_TRY(stages, string_map(then_stages, "then_stages"));
    s.then_stages = stages;
  }
  if (!error.is_null()) {
    if (!error.is_object()) return problem("error", "an object with \"code\" and \"message\"");
    Members e(error, "error");
    std::string code;
    CASCADE_TRY(e.required("code", code));
    CASCADE_TRY(e.required("message", s.error_message));
    CASCADE_TRY(e.done());
    CASCADE_TRY(named, error_code_named(code, "error.code"));
    s.error_code = named;
  }
  return s;
}

// Reads and parses one scenario file; every error names the file.
Result<Scenario> load_scenario(const fs::path& path) {
  const std::string shown = "tests/scenarios/" + path.filename().string();
  std::ifstream in(path);
  if (!in) return make_error(ErrorCode::kNotFound, shown + ": cannot be read");
  std::stringstream text;
  text << in.rdbuf();
  auto scenario = parse_scenario(text.str());
  if (!scenario) return make_error(scenario.error().code, shown + ": " + scenario.error().message);
  scenario.value().file = shown;
  return scenario;
}

// Runs the scenario; returns what differs from its expectations (empty: it passed).
std::vector<std::string> run_scenario(const Scenario& s) {
  std::vector<std::string> differences;
  ReleaseState state;
  for (const events::RecordedEvent& event : s.given) {
    auto folded = testing::fold_given(state, event);
    if (!folded) {
      differences.push_back("given[" + std::to_string(event.version - 1) + "]: " + folded.error().message);
      return differences;
    }
  }
  auto decided = decide(state, s.command, s.context);
  if (s.error_code) {
    if (decided) {
      std::string types;
      for (const auto& e : decided.value()) types += (types.empty() ? "" : ", ") + std::string(events::type_name(e));
      differences.push_back("expected error " + std::string(to_string(*s.error_code)) + ", but the command was accepted: [" +
                            types + "]");
      return differences;
    }
    if (decided.error().code != *s.error_code) {
      differences.push_back("expected error " + std::string(to_string(*s.error_code)) + ", got " +
                            std::string(to_string(decided.error().code)) + ": " + decided.error().message);
    }
    if (decided.error().message.find(s.error_message) == std::string::npos) {
      differences.push_back("the error message \"" + decided.error().message + "\" does not contain \"" +
                            s.error_message + "\"");
    }
    return differences;
  }
  if (!decided) {
    differences.push_back("expected events, got error " + std::string(to_string(decided.error().code)) + ": " +
                          decided.error().message);
    return differences;
  }
  const std::vector<events::Event>& actual = decided.value();
  const std::vector<Expected>& expected = *s.then;
  for (std::size_t i = 0; i < std::max(actual.size(), expected.size()); ++i) {
    const std::string at = "then[" + std::to_string(i) + "]";
    if (i >= actual.size()) {
      differences.push_back(at + ": expected " + expected[i].type + ", but no more events were produced");
      continue;
    }
    const json payload = events::payload_to_json(actual[i]);
    const std::string type(events::type_name(actual[i]));
    if (i >= expected.size()) {
      differences.push_back(at + ": unexpected " + type + " " + payload.dump());
      continue;
    }
    if (type != expected[i].type) {
      differences.push_back(at + ": expected " + expected[i].type + ", got " + type + " " + payload.dump());
      continue;
    }
    for (const auto& [key, value] : expected[i].fields.items()) {
      const json found = payload.contains(key) ? payload[key] : json();
      if (found != value) {
        differences.push_back(at + "." + key + ": expected " + value.dump() + ", got " + found.dump());
      }
    }
  }
  std::int64_t version = state.version;
  for (const events::Event& event : actual) {
    events::RecordedEvent recorded;
    recorded.version = ++version;
    recorded.recorded_at = s.context.now;
    recorded.actor = s.context.actor;
    recorded.command_id = s.context.command_id;
    recorded.data = event;
    evolve(state, recorded);
  }
  if (s.then_due) {
    std::map<std::string, std::string> due;
    for (const StageRecord& stage : state.stages) {
      if (auto reason = automatic_trigger_reason(state, stage)) due[stage.name] = *reason;
    }
    if (due != *s.then_due) {
      differences.push_back("then_due: expected " + json(*s.then_due).dump() + ", got " + json(due).dump());
    }
  }
  if (s.then_stages) {
    for (const auto& [name, expected_state] : *s.then_stages) {
      const StageRecord* stage = state.find_stage(name);
      const std::string found = stage == nullptr ? "(no such stage)" : std::string(to_string(stage->state()));
      if (found != expected_state) {
        differences.push_back("then_stages." + name + ": expected " + expected_state + ", got " + found);
      }
    }
  }
  return differences;
}

// A scenario file; printed (in test listings, hence in ctest's names) as its file name.
struct ScenarioFile {
  fs::path path;
};
void PrintTo(const ScenarioFile& file, std::ostream* out) { *out << file.path.filename().string(); }

std::vector<ScenarioFile> scenario_files() {
  std::vector<ScenarioFile> files;
  const fs::path dir = fs::path(CASCADE_SOURCE_DIR) / "tests" / "scenarios";
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(dir, error)) {
    if (entry.path().extension() == ".json") files.push_back({entry.path()});
  }
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
  return files;
}

std::string test_name(const ::testing::TestParamInfo<ScenarioFile>& info) {
  std::string name = info.param.path.stem().string();
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

class ScenarioTest : public ::testing::TestWithParam<ScenarioFile> {};

TEST_P(ScenarioTest, Holds) {
  auto scenario = load_scenario(GetParam().path);
  ASSERT_TRUE(scenario) << scenario.error().message;
  std::string report;
  for (const std::string& difference : run_scenario(scenario.value())) report += "\n  " + difference;
  EXPECT_TRUE(report.empty()) << scenario.value().file << ":" << report;
}

INSTANTIATE_TEST_SUITE_P(Scenarios, ScenarioTest, ::testing::ValuesIn(scenario_files()), test_name);

// ---- The runner itself ------------------------------------------------------

TEST(ScenarioFilesTest, AreFoundAndNamedUniquely) {
  const auto files = scenario_files();
  EXPECT_GE(files.size(), 12u);
  std::set<std::string> names;
  for (const ScenarioFile& file : files) {
    EXPECT_TRUE(names.insert(test_name({file, 0})).second) << file.path << " has the test name of another file";
  }
}

constexpr const char* kMinimal = R"({
  "pipeline": "tools/examples/sampleapp.json",
  "given": [{"type": "ReleaseCreated"}],
  "when": {"command": "TriggerStage", "stage": "dev"},
  "then": [{"type": "StageTriggered", "stage": "dev"}]
})";

// The problem a scenario text is refused for, or "" when it parses.
std::string refusal_of(const std::string& text) {
  auto parsed = parse_scenario(text);
  return parsed ? "" : parsed.error().message;
}

std::string with(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return text.replace(at, from.size(), to);
}

TEST(ScenarioFormatTest, AMinimalScenarioParsesAndRuns) {
  auto scenario = parse_scenario(kMinimal);
  ASSERT_TRUE(scenario) << scenario.error().message;
  EXPECT_TRUE(run_scenario(scenario.value()).empty());
}

TEST(ScenarioFormatTest, AMalformedScenarioIsRefusedWithItsProblem) {
  EXPECT_EQ(refusal_of("{\"pipeline\": ").rfind("not JSON: ", 0), 0u) << refusal_of("{\"pipeline\": ");
  EXPECT_EQ(refusal_of(with(kMinimal, "\"TriggerStage\"", "\"TrigerStage\"")),
            "when.command: unknown command 'TrigerStage' (one of engine/release.hpp's command structs)");
  EXPECT_EQ(refusal_of(with(kMinimal, "\"stage\": \"dev\"}", "\"stge\": \"dev\"}")), "when: missing \"stage\"");
  EXPECT_EQ(refusal_of(with(kMinimal, "\"ReleaseCreated\"", "\"ReleaseMade\"")),
            "given[0].type: unknown event type 'ReleaseMade'");
  EXPECT_EQ(refusal_of(with(kMinimal, "{\"type\": \"ReleaseCreated\"}", "{\"type\": \"ReleaseCreated\", \"colour\": 1}")),
            "given[0].colour: unknown member of ReleaseCreated");
  EXPECT_EQ(refusal_of(with(kMinimal, "\"then\"", "\"them\"")), "scenario.them: unknown member");
  EXPECT_EQ(refusal_of(with(kMinimal, "\"then\": [", "\"error\": {\"code\": \"nope\", \"message\": \"\"}, \"then\": [")),
            "scenario: exactly one of \"then\" (the expected events) and \"error\" (the expected refusal)");
  EXPECT_EQ(refusal_of(with(kMinimal, "\"tools/examples/sampleapp.json\"", "\"tools/examples/none.json\"")),
            "pipeline: cannot read tools/examples/none.json");
  EXPECT_NE(refusal_of(with(kMinimal, "\"stage\": \"dev\"}", "\"stage\": 3}")).find("when.stage: wrong type"),
            std::string::npos);
}

TEST(ScenarioFormatTest, AFileThatCannotBeReadIsNamed) {
  const fs::path missing = fs::path(CASCADE_SOURCE_DIR) / "tests" / "scenarios" / "no-such-scenario.json";
  auto loaded = load_scenario(missing);
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(loaded.error().message, "tests/scenarios/no-such-scenario.json: cannot be read");
}

TEST(ScenarioFormatTest, AnImpossibleHistoryOrAWrongExpectationIsReported) {
  auto impossible = parse_scenario(with(kMinimal, "[{\"type\": \"ReleaseCreated\"}]",
                                        R"([{"type": "ReleaseCreated"}, {"type": "DeploymentStarted", "stage": "dev"}])"));
  ASSERT_TRUE(impossible) << impossible.error().message;
  EXPECT_EQ(run_scenario(impossible.value()),
            std::vector<std::string>{"given[1]: DeploymentStarted of stage 'dev' cannot happen: stage is NotStarted"});

  auto wrong = parse_scenario(with(kMinimal, "{\"type\": \"StageTriggered\", \"stage\": \"dev\"}",
                                   R"({"type": "StageTriggered", "stage": "dev", "attempt": 2})"));
  ASSERT_TRUE(wrong) << wrong.error().message;
  EXPECT_EQ(run_scenario(wrong.value()), std::vector<std::string>{"then[0].attempt: expected 2, got 1"});

  auto refused = parse_scenario(with(kMinimal, R"("then": [{"type": "StageTriggered", "stage": "dev"}])",
                                     R"("error": {"code": "failed_precondition", "message": "x"})"));
  ASSERT_TRUE(refused) << refused.error().message;
  EXPECT_EQ(run_scenario(refused.value()),
            std::vector<std::string>{"expected error failed_precondition, but the command was accepted: [StageTriggered]"});
}

}  // namespace
}  // namespace cascade::engine
