// `cascade serve --step-user`: steps run as an unprivileged user who cannot
// read or write the engine's own data (the log, secret.key, the projections,
// users.json) but can write its own work dir; serve started as root refuses
// to run steps as root. Needs root (only root can switch users); CI runs as
// root and tools/dev creates the user cascade-step.
#include "tests/support/cli_runner.hpp"
#include "tests/support/serve_process.hpp"
#include "tests/support/temp_dir.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace cascade {
namespace {

using nlohmann::json;
using testing::CommandRun;
using testing::run;
using testing::ServeProcess;

constexpr auto kStopDeadline = std::chrono::seconds(20);
constexpr const char* kStepUser = "cascade-step";

mode_t mode_of(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return 0;
  return info.st_mode & 07777;
}

class ServeStepUserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root: only root can run steps as another user";
    if (::getpwnam(kStepUser) == nullptr) GTEST_SKIP() << "no user " << kStepUser << " (tools/dev creates it)";
  }
  std::string data() const { return dir_ / "data"; }
  CommandRun remote(const ServeProcess& server, const std::string& token, const std::string& arguments) {
    return run(arguments + " --server " + server.url() + " --token " + token);
  }
  // Starts serve with `arguments` and expects it to refuse: exit 2, saying `why`.
  void expect_refused(std::vector<std::string> arguments, const std::string& why) {
    arguments.insert(arguments.begin(), {"--data", data()});
    ServeProcess server(arguments);
    EXPECT_FALSE(server.started()) << server.output();
    EXPECT_EQ(server.wait_exit(kStopDeadline), std::optional<int>(2)) << server.output();
    EXPECT_NE(server.output().find(why), std::string::npos) << server.output();
  }
  testing::TempDir dir_;
};

TEST_F(ServeStepUserTest, AStepCannotReadOrWriteTheEnginesDataButWritesItsWorkDir) {
  const std::string pipeline = dir_ / "probe.json";
  // Each probe prints what it managed; the step itself succeeds either way.
  const std::string d = data();
  const std::string probes = "id -un; "
                             "cat " + d + "/log/secret.key >/dev/null 2>&1 && echo READ-SECRET-KEY || echo no-secret-key; "
                             "ls " + d + "/log >/dev/null 2>&1 && echo LISTED-LOG || echo no-log; "
                             "ls " + d + " >/dev/null 2>&1 && echo LISTED-DATA || echo no-data-listing; "
                             "touch " + d + "/projections/x 2>/dev/null && echo WROTE-PROJECTIONS || echo no-projections; "
                             "cat " + d + "/users.json >/dev/null 2>&1 && echo READ-USERS || echo no-users; "
                             "ls " + d + "/run >/dev/null 2>&1 && echo LISTED-RUN || echo no-run; "
                             "echo mine > here && cat here";
  std::ofstream(pipeline) << json{{"name", "Probe"},
                                  {"stages", json::array({{{"name", "dev"},
                                                           {"trigger", {{"after_release", true}}},
                                                           {"steps", json::array({{{"name", "probe"}, {"run", probes}}})}}})}}
                                 .dump();
  ServeProcess server({"--data", data(), "--step-user", kStepUser});
  ASSERT_TRUE(server.started()) << server.output();
  EXPECT_NE(server.output().find("steps run as user 'cascade-step'"), std::string::npos) << server.output();
  const std::string token = server.printed_token();
  ASSERT_EQ(remote(server, token, "pipeline apply " + pipeline).exit_code, 0);
  const std::string artifact = data() + "/artifacts/probe-1";
  std::filesystem::create_directories(artifact);
  ASSERT_EQ(remote(server, token, "release create Probe --version 1 --artifact " + artifact).exit_code, 0);
  const CommandRun done = remote(server, token, "release wait Probe-1 --until dev=Succeeded --timeout 60s");
  ASSERT_EQ(done.exit_code, 0) << done.output;
  const std::string lines = remote(server, token, "release logs Probe-1 dev").output;
  for (const char* expected : {"cascade-step", "no-secret-key", "no-log", "no-data-listing", "no-projections",
                               "no-users", "no-run", "mine"}) {
    EXPECT_NE(lines.find(expected), std::string::npos) << "missing '" << expected << "' in:\n" << lines;
  }
  for (const char* forbidden : {"READ-SECRET-KEY", "LISTED-LOG", "LISTED-DATA", "WROTE-PROJECTIONS", "READ-USERS",
                                "LISTED-RUN"}) {
    EXPECT_EQ(lines.find(forbidden), std::string::npos) << forbidden << " in:\n" << lines;
  }
  EXPECT_FALSE(std::filesystem::exists(data() + "/projections/x"));
  EXPECT_EQ(mode_of(data()), 0711u);
  EXPECT_EQ(mode_of(data() + "/log"), 0700u);
  EXPECT_EQ(mode_of(data() + "/projections"), 0700u);
  EXPECT_EQ(mode_of(data() + "/run"), 0700u);
  EXPECT_EQ(mode_of(data() + "/work"), 0711u);
  EXPECT_EQ(mode_of(data() + "/users.json"), 0600u);
  EXPECT_EQ(server.stop(SIGTERM, kStopDeadline), std::optional<int>(0)) << server.output();
}

TEST_F(ServeStepUserTest, AsRootServeRefusesToRunStepsAsRoot) {
  expect_refused({ServeProcess::kNoStepUser}, "refusing to run steps as root: pass --step-user NAME");
  expect_refused({"--step-user", "root"}, "--step-user 'root' is root (uid 0)");
  expect_refused({"--step-user", "no-such-user-7f3a"}, "step user 'no-such-user-7f3a' does not exist");
}

}  // namespace
}  // namespace cascade
