// Nobody but an admin decides what runs: whatever a releaser puts in a
// release — a settable variable, a secret, the artifact version — reaches the
// admin's steps as data and never as shell syntax, and what may not be set is
// refused before anything is stored. Real processes, a marker file that must
// never appear.
#include "adapters/process/process_step_runner.hpp"

#include "tests/support/engine_harness.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>

namespace cascade::engine {
namespace {

class StepInjectionTest : public testing::EngineHarness {
 protected:
  std::string marker() const { return dir_ / "marker"; }

  // Every value tries to create the marker, in every way a shell offers.
  std::vector<std::string> hostile_values() const {
    const std::string m = marker();
    return {"1;touch " + m + ";#",       "$(touch " + m + ")",   "`touch " + m + "`",
            "x; touch " + m + " #",      "'; touch " + m + "; '", "\"; touch " + m + "; \"",
            "a\ntouch " + m,             "# $(touch " + m + ")",  "a)\ntouch " + m + "\n(b"};
  }

  // A pipeline written the way the README teaches, with the macro in every
  // quoting context; each step appends what it printed to out.txt.
  void apply_pipeline() {
    apply(R"({"name": "Web", "variables": {"TARGET": {"value": "web-1", "settable": true},
                                           "TOKEN": {"value": "t", "secret": true, "settable": true}},
      "stages": [{"name": "dev", "trigger": {"after_release": true}, "steps": [
        {"name": "plain", "run": "echo deploying $(CASCADE_ARTIFACT_VERSION) to $(TARGET) >> out.txt"},
        {"name": "quoted", "run": "echo \"[$(TARGET)]\" >> out.txt; echo '[$(TARGET)]' >> out.txt"},
        {"name": "secret", "run": "printf '%s\\n' $(TOKEN) | wc -c >> out.txt"}]}]})");
  }

  std::string output_of(const std::string& release_id) {
    std::ifstream in(dir_ / ("work/" + release_id + "/dev/1/out.txt"));
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  SystemClock real_time_;
  adapters::ProcessStepRunner processes_{real_time_};
};

TEST_F(StepInjectionTest, HostileVariablesAndSecretsAreDataInEveryQuotingContext) {
  apply_pipeline();
  start(processes_);
  std::vector<std::pair<std::string, std::string>> releases;  // id, value
  for (const std::string& value : hostile_values()) {
    releases.emplace_back(create("Web", "1.0.0", {{"TARGET", value}}, {{"TOKEN", value}}), value);
  }
  settle();
  for (const auto& [id, value] : releases) {
    EXPECT_EQ(state_of(id, "dev"), StageState::kSucceeded) << value;
    EXPECT_EQ(output_of(id), "deploying 1.0.0 to " + value + "\n[" + value + "]\n[" + value + "]\n" +
                                 std::to_string(value.size() + 1) + "\n")
        << value;
  }
  EXPECT_FALSE(std::filesystem::exists(marker())) << "a release's value ran as code on the server";
}

TEST_F(StepInjectionTest, AHostileArtifactVersionIsRefusedBeforeAnythingIsStored) {
  apply_pipeline();
  start(processes_);
  const std::uint64_t head = store_->log().head();
  for (const std::string& version : {std::string("1;touch x;#"), std::string("$(touch x)"), std::string("`x`"),
                                     std::string("1 2"), std::string("1\n2"), std::string(129, '1'), std::string()}) {
    NewRelease request;
    request.pipeline = "Web";
    request.artifact.version = version;
    request.artifact.path = "/artifacts/x";
    request.secret_variables = {{"TOKEN", "never-stored-secret"}};
    auto created = service().create_release(request, Invocation{"rita", "", ""});
    ASSERT_FALSE(created) << version;
    EXPECT_EQ(created.error().code, ErrorCode::kInvalidArgument) << version;
    EXPECT_EQ(created.error().details.at(0).path, "artifact.version") << created.error().message;
  }
  EXPECT_EQ(store_->log().head(), head) << "a refused release wrote events";
}

TEST_F(StepInjectionTest, OnlySettableVariablesMayBeSetAndNeverOnesThatChangeHowProgramsStart) {
  apply_pipeline();
  start(processes_);
  const std::uint64_t head = store_->log().head();
  auto refused = [&](events::Variables variables, std::map<std::string, std::string> secrets) {
    NewRelease request;
    request.pipeline = "Web";
    request.artifact = {"1.0.0", "/artifacts/1.0.0", 0, "", ""};
    request.variables = std::move(variables);
    request.secret_variables = std::move(secrets);
    auto created = service().create_release(request, Invocation{"rita", "", ""});
    EXPECT_FALSE(created);
    return created ? Error{} : created.error();
  };
  const Error undeclared = refused({{"REGION", "eu"}}, {});
  EXPECT_EQ(undeclared.code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(undeclared.message,
            "variables.REGION: pipeline 'Web' does not declare 'REGION' settable at release time (settable: TARGET, "
            "TOKEN; an admin marks one with {\"value\": …, \"settable\": true})");
  for (const char* name : {"BASH_ENV", "PATH", "LD_PRELOAD", "IFS", "CASCADE_ARTIFACT_VERSION"}) {
    const Error startup = refused({{name, "/tmp/evil"}}, {});
    EXPECT_EQ(startup.code, ErrorCode::kInvalidArgument) << name;
    EXPECT_NE(startup.message.find(std::string("variables.") + name + ": variable name '" + name + "' is reserved"),
              std::string::npos)
        << startup.message;
  }
  EXPECT_EQ(refused({}, {{"DB_PASSWORD", "never-stored-secret"}}).details.at(0).path, "secrets.DB_PASSWORD");
  EXPECT_EQ(refused({{"bad name", "x"}}, {}).details.at(0).path, "variables.bad name");
  EXPECT_EQ(store_->log().head(), head) << "a refused release wrote events";

  // Pipelines may not declare them either.
  auto definition = parse_pipeline_text(R"({"name": "Bad", "variables": {"BASH_ENV": "/tmp/x"},
    "stages": [{"name": "dev", "trigger": {"after_release": true}, "steps": [{"name": "s", "run": "true"}]}]})");
  ASSERT_FALSE(definition);
  EXPECT_EQ(definition.error().code, ErrorCode::kInvalidArgument);
  ASSERT_EQ(definition.error().details.size(), 1u) << definition.error().message;
  EXPECT_EQ(definition.error().details[0].path, "variables.BASH_ENV");
  EXPECT_NE(definition.error().details[0].message.find("how programs start"), std::string::npos)
      << definition.error().details[0].message;
}

// Every process's arguments, as `ps` shows them to any user of the machine,
// and whether one process's environment holds `text`.
struct ProcessScan {
  std::vector<std::string> cmdlines_holding;  // "<pid>: <cmdline>"
  bool some_environment_holds = false;
};

ProcessScan scan_processes_for(const std::string& text) {
  ProcessScan scan;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string pid = entry.path().filename();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    auto read = [&](const char* name) {
      std::ifstream in(entry.path() / name, std::ios::binary);
      return std::string(std::istreambuf_iterator<char>(in), {});
    };
    const std::string cmdline = read("cmdline");
    if (cmdline.find(text) != std::string::npos) scan.cmdlines_holding.push_back(pid + ": " + cmdline);
    if (read("environ").find("=" + text) != std::string::npos) scan.some_environment_holds = true;
  }
  return scan;
}

TEST_F(StepInjectionTest, ASecretIsInNoProcesssArgumentsWhileItsStepRuns) {
  const std::string gate = dir_ / "gate";
  ASSERT_EQ(::mkfifo(gate.c_str(), 0600), 0);
  // The step uses the secret in its command line the way the README teaches,
  // then blocks on the gate, so it is surely running while the test looks.
  apply(R"({"name": "Db", "variables": {"DB_PASSWORD": {"value": "x", "secret": true, "settable": true}},
    "stages": [{"name": "dev", "trigger": {"after_release": true}, "steps": [
      {"name": "use", "run": "test -n $(DB_PASSWORD) && read go < )" + gate + R"( && echo done"}]}]})");
  start(processes_);
  const std::string secret = "pw-" + std::to_string(::getpid()) + "-never-in-argv";
  const std::string id = create("Db", "1.0.0", {}, {{"DB_PASSWORD", secret}});

  // Opening the FIFO for writing returns once the step opened it for reading.
  auto opened = std::async(std::launch::async, [&] { return ::open(gate.c_str(), O_WRONLY | O_CLOEXEC); });
  ASSERT_EQ(opened.wait_for(std::chrono::seconds(30)), std::future_status::ready) << "the step never reached the gate";
  const int writer = opened.get();
  ASSERT_GE(writer, 0);

  const ProcessScan scan = scan_processes_for(secret);
  EXPECT_TRUE(scan.some_environment_holds) << "the running step's environment holds the secret: the scan sees it";
  EXPECT_TRUE(scan.cmdlines_holding.empty()) << ::testing::PrintToString(scan.cmdlines_holding);

  ASSERT_EQ(::write(writer, "go\n", 3), 3);
  ::close(writer);
  settle();
  EXPECT_EQ(state_of(id, "dev"), StageState::kSucceeded);
}

}  // namespace
}  // namespace cascade::engine
