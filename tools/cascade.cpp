// The `cascade` command line. It parses arguments, wires a Runtime, issues
// commands through ReleaseService and prints; all decisions live in engine/.
#include "tools/cli_support.hpp"
#include "tools/format.hpp"
#include "tools/runtime.hpp"
#include "tools/sample_pipeline.hpp"

#include <CLI/CLI.hpp>

#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>

namespace cascade::tools {
namespace {

Result<nlohmann::json> settled_summary(Runtime& runtime, const std::string& release_id) {
  runtime.settle();
  CASCADE_TRY(text, runtime.summaries().summary(release_id));
  return nlohmann::json::parse(text);
}

int print_release(Runtime& runtime, const std::string& release_id, const Common& common) {
  auto summary = settled_summary(runtime, release_id);
  if (!summary) return report(summary.error(), common.json);
  if (common.json) {
    std::cout << summary.value().dump(2) << "\n";
  } else {
    std::cout << "\n";
    print_summary(std::cout, summary.value());
  }
  return 0;
}

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kInvalidArgument, "cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

Result<events::Variables> parse_variables(const std::vector<std::string>& assignments) {
  events::Variables variables;
  for (const std::string& assignment : assignments) {
    const auto equals = assignment.find('=');
    if (equals == std::string::npos || equals == 0) {
      return make_error(ErrorCode::kInvalidArgument, "--var '" + assignment + "': expected NAME=VALUE");
    }
    variables[assignment.substr(0, equals)] = assignment.substr(equals + 1);
  }
  return variables;
}

int apply_pipeline(const Common& common, const std::string& file) {
  auto text = read_file(file);
  if (!text) return report(text.error(), common.json);
  auto definition = engine::parse_pipeline_text(text.value());
  if (!definition) return report(definition.error(), common.json);
  auto session = Session::start(common);
  if (!session) return report(session.error(), common.json);
  auto version = session.value()->runtime().service().apply_pipeline(definition.value(), common.actor);
  if (!version) return report(version.error(), common.json);
  session.value()->runtime().settle();
  if (common.json) {
    std::cout << nlohmann::json{{"pipeline", definition.value().name}, {"version", version.value()}}.dump(2) << "\n";
  } else {
    std::cout << "pipeline " << definition.value().name << " is at version " << version.value() << "\n";
  }
  return 0;
}

int create_release(const Common& common, const std::string& pipeline, const std::string& version,
                   const std::string& artifact, const std::vector<std::string>& assignments,
                   const std::vector<std::string>& secret_assignments) {
  auto variables = parse_variables(assignments);
  if (!variables) return report(variables.error(), common.json);
  auto secrets = parse_variables(secret_assignments);
  if (!secrets) return report(secrets.error(), common.json);
  auto session = Session::start(common);
  if (!session) return report(session.error(), common.json);
  Runtime& runtime = session.value()->runtime();
  engine::NewRelease request;
  request.pipeline = pipeline;
  request.artifact = {version, std::filesystem::absolute(artifact).lexically_normal().string(), 0};
  request.variables = variables.value();
  request.secret_variables = secrets.value();
  auto id = runtime.service().create_release(request, engine::Invocation{common.actor, common.command_id, ""});
  if (!id) return report(id.error(), common.json);
  return print_release(runtime, id.value(), common);
}

int release_command(const Common& common, const std::string& release_id, const engine::Command& command) {
  auto session = Session::start(common);
  if (!session) return report(session.error(), common.json);
  Runtime& runtime = session.value()->runtime();
  runtime.settle();  // finish what an earlier command left before deciding
  auto done = runtime.service().execute(release_id, command, engine::Invocation{common.actor, common.command_id, ""});
  if (!done) return report(done.error(), common.json);
  return print_release(runtime, release_id, common);
}

int show_release(const Common& common, const std::string& release_id) {
  auto session = Session::start(common);
  if (!session) return report(session.error(), common.json);
  return print_release(session.value()->runtime(), release_id, common);
}

int show_logs(const Common& common, const std::string& release_id, const std::string& stage_name, int attempt) {
  auto session = Session::start(common);
  if (!session) return report(session.error(), common.json);
  Runtime& runtime = session.value()->runtime();
  runtime.settle();
  auto release = runtime.service().load(release_id);
  if (!release) return report(release.error(), common.json);
  const engine::StageRecord* stage = release.value().find_stage(stage_name);
  if (stage == nullptr) {
    return report(make_error(ErrorCode::kNotFound, "release " + release_id + " has no stage '" + stage_name + "'"),
                  common.json);
  }
  if (attempt == 0) attempt = stage->attempt;
  nlohmann::json lines = nlohmann::json::array();
  const engine::StageDefinition* definition = release.value().definition.find_stage(stage_name);
  for (std::size_t i = 0; definition != nullptr && i < definition->steps.size(); ++i) {
    auto step_lines = runtime.step_logs().read({release_id, stage_name, attempt, static_cast<int>(i)});
    if (!step_lines) return report(step_lines.error(), common.json);
    for (const engine::LogLine& line : step_lines.value()) {
      if (common.json) {
        lines.push_back({{"step", definition->steps[i].name}, {"at", line.at}, {"stream", line.stream}, {"text", line.text}});
      } else {
        std::cout << clock_time(line.at) << "  " << std::left << std::setw(20) << definition->steps[i].name
                  << (line.stream == "stderr" ? "! " : "  ") << line.text << "\n";
      }
    }
  }
  if (common.json) std::cout << lines.dump(2) << "\n";
  return 0;
}

int show_events(const Common& common, const std::string& release_id) {
  auto session = Session::start(Common{common.data_dir, true, common.actor, ""});  // no live timeline
  if (!session) return report(session.error(), common.json);
  Runtime& runtime = session.value()->runtime();
  runtime.settle();
  auto stream = runtime.log().read(engine::release_stream(release_id));
  if (!stream) return report(stream.error(), common.json);
  if (stream.value().empty()) return report(make_error(ErrorCode::kNotFound, "no release '" + release_id + "'"), common.json);
  nlohmann::json list = nlohmann::json::array();
  for (const events::RecordedEvent& event : stream.value()) {
    if (common.json) {
      list.push_back(event_json(event));
    } else {
      std::cout << std::right << std::setw(4) << event.version << "  " << iso_time(event.recorded_at) << "  "
                << std::left << std::setw(22) << event.actor << std::setw(20) << events::type_name(event.data)
                << describe(event) << "\n";
    }
  }
  if (common.json) std::cout << list.dump(2) << "\n";
  return 0;
}

// The sample scenario: SampleApp goes dev → test and qa in parallel →
// approval → prod, each deploying a freshly built site into its own folder.
int demo(const Common& common, const std::string& approver) {
  auto definition = engine::parse_pipeline_text(kSamplePipeline);
  if (!definition) return report(definition.error(), false);
  auto session = Session::start(common);
  if (!session) return report(session.error(), false);
  Runtime& runtime = session.value()->runtime();
  engine::SystemClock clock;

  auto version = runtime.service().apply_pipeline(definition.value(), common.actor);
  if (!version) return report(version.error(), false);

  // The build: an index.html stamped with the build version.
  const events::Timestamp now = clock.now();
  const std::string build_version = "1.0.0+" + iso_time(now).substr(0, 19);
  std::string safe_version = build_version;
  for (char& c : safe_version) c = (std::isalnum(static_cast<unsigned char>(c)) || c == '.') ? c : '-';
  const std::string artifact_dir = runtime.data_dir() + "/artifacts/SampleApp-" + safe_version + "-" + std::to_string(now % 1000);
  std::filesystem::create_directories(artifact_dir);
  std::ofstream(artifact_dir + "/index.html")
      << "<!doctype html>\n<html><head><title>SampleApp</title></head>\n<body><h1>SampleApp</h1>\n<p>build "
      << build_version << "</p></body></html>\n";
  std::cout << "built SampleApp " << build_version << " into " << artifact_dir << "\n";

  engine::NewRelease request;
  request.pipeline = "SampleApp";
  request.artifact = {build_version, artifact_dir, now};
  request.variables = {{"SITES_ROOT", runtime.data_dir() + "/sites"}};
  auto release_id = runtime.service().create_release(request, engine::Invocation{common.actor, "", ""});
  if (!release_id) return report(release_id.error(), false);
  runtime.settle();

  auto waiting = runtime.service().load(release_id.value());
  if (!waiting) return report(waiting.error(), false);
  const engine::StageRecord* prod = waiting.value().find_stage("prod");
  if (prod == nullptr || prod->state() != engine::StageState::kAwaitingPreApproval) {
    std::cerr << "cascade: demo: prod is not awaiting approval; the release stopped early\n";
    print_release(runtime, release_id.value(), common);
    return 1;
  }
  std::cout << "\n" << approver << " approves prod\n";
  auto approved = runtime.service().execute(release_id.value(), engine::ApproveStage{"prod", "demo: looks good"},
                                            engine::Invocation{approver, "", ""});
  if (!approved) return report(approved.error(), false);
  int shown = print_release(runtime, release_id.value(), common);
  if (shown != 0) return shown;
  auto final_state = runtime.service().load(release_id.value());
  std::cout << "\nsites: " << runtime.data_dir() << "/sites/SampleApp-{Dev,Test,QA,Prod}/index.html\n";
  return final_state && engine::release_status(final_state.value()) == engine::ReleaseStatus::kSucceeded ? 0 : 1;
}

}  // namespace
}  // namespace cascade::tools

int main(int argc, char** argv) {
  using namespace cascade::tools;
  CLI::App app{"Cascade — a multi-stage continuous-deployment release engine"};
  app.require_subcommand(1);
  Common common;
  common.data_dir = default_data_dir();
  common.actor = default_actor();
  auto with_common = [&](CLI::App* command, bool actor_required = false) {
    add_common_options(command, common, actor_required);
  };
  int result = 0;

  std::string approver = "release-manager";
  auto* demo_command = app.add_subcommand("demo", "run the SampleApp release end to end");
  demo_command->add_option("--data", common.data_dir, "data directory")->default_val("var/demo");
  demo_command->add_option("--approve-as", approver, "who approves prod")->capture_default_str();
  demo_command->callback([&] { result = demo(common, approver); });

  auto* pipeline = app.add_subcommand("pipeline", "pipeline definitions")->require_subcommand(1);
  std::string file;
  auto* apply = pipeline->add_subcommand("apply", "validate a definition file and store it as the next version");
  apply->add_option("FILE", file, "the pipeline JSON")->required();
  with_common(apply);
  apply->callback([&] { result = apply_pipeline(common, file); });

  auto* release = app.add_subcommand("release", "releases")->require_subcommand(1);
  std::string pipeline_name, version, artifact, release_id, stage, comment;
  std::vector<std::string> variables, secret_variables;
  std::string defer_until, reason;
  int attempt = 0;
  auto* create = release->add_subcommand("create", "create a release of a pipeline from an artifact");
  create->add_option("PIPELINE", pipeline_name)->required();
  create->add_option("--version", version, "the artifact's version")->required();
  create->add_option("--artifact", artifact, "path of the artifact")->required();
  create->add_option("--var", variables, "release variable NAME=VALUE (repeatable)");
  create->add_option("--secret", secret_variables,
                     "secret release variable NAME=VALUE (repeatable; kept out of the log, masked in step logs)");
  with_common(create);
  create->add_option("--idempotency-key", common.command_id,
                     "repeating the command with this key creates no second release");
  create->callback(
      [&] { result = create_release(common, pipeline_name, version, artifact, variables, secret_variables); });

  auto* show = release->add_subcommand("show", "a release's summary");
  show->add_option("ID", release_id)->required();
  with_common(show);
  show->callback([&] { result = show_release(common, release_id); });

  auto* logs = release->add_subcommand("logs", "the step logs of a stage");
  logs->add_option("ID", release_id)->required();
  logs->add_option("STAGE", stage)->required();
  logs->add_option("--attempt", attempt, "attempt (default: the latest)");
  with_common(logs);
  logs->callback([&] { result = show_logs(common, release_id, stage, attempt); });

  auto stage_command = [&](const char* name, const char* help, auto make_command) {
    auto* command = app.add_subcommand(name, help);
    command->add_option("ID", release_id)->required();
    command->add_option("STAGE", stage)->required();
    with_common(command, /*actor_required=*/true);
    command->add_option("--idempotency-key", common.command_id, "repeating the command with this key changes nothing");
    command->callback([&, make_command] {
      auto made = make_command();
      result = made ? release_command(common, release_id, made.value()) : report(made.error(), common.json);
    });
    return command;
  };
  using cascade::engine::Command;
  auto* approve = stage_command("approve", "approve a stage's pending approval", [&]() -> cascade::Result<Command> {
    cascade::engine::ApproveStage command{stage, comment, 0};
    if (!defer_until.empty()) {
      auto at = parse_utc_time(defer_until);
      if (!at) return at.error();
      command.defer_until = at.value();
    }
    return Command{command};
  });
  approve->add_option("--comment", comment);
  approve->add_option("--defer-until", defer_until, "deploy at this time (RFC 3339, UTC), pre-deployment only");
  stage_command("reject", "reject a stage's pending approval", [&]() -> cascade::Result<Command> {
    return Command{cascade::engine::RejectStage{stage, comment}};
  })->add_option("--comment", comment);
  stage_command("deploy", "deploy a manual stage", [&]() -> cascade::Result<Command> {
    return Command{cascade::engine::DeployStage{stage}};
  });
  stage_command("redeploy", "a new attempt of a finished stage (an older release: a rollback)",
                [&]() -> cascade::Result<Command> { return Command{cascade::engine::RedeployStage{stage, ""}}; });
  stage_command("cancel", "cancel a running deployment (its processes are killed) or a waiting stage",
                [&]() -> cascade::Result<Command> { return Command{cascade::engine::CancelStage{stage, reason}}; })
      ->add_option("--reason", reason);

  auto* abandon = app.add_subcommand("abandon", "abandon a release: cancel what runs and waits, trigger nothing more");
  abandon->add_option("ID", release_id)->required();
  abandon->add_option("--reason", reason);
  with_common(abandon, /*actor_required=*/true);
  abandon->add_option("--idempotency-key", common.command_id, "repeating the command with this key changes nothing");
  abandon->callback([&] { result = release_command(common, release_id, Command{cascade::engine::AbandonRelease{reason}}); });

  auto* events_command = app.add_subcommand("events", "a release's events, oldest first");
  events_command->add_option("ID", release_id)->required();
  with_common(events_command);
  events_command->callback([&] { result = show_events(common, release_id); });

  add_projection_commands(app, common, result);
  add_audit_commands(app, common, result);
  add_serve_command(app, common, result);

  CLI11_PARSE(app, argc, argv);
  return result;
}
