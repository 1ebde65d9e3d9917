// kill -9 of the real `cascade serve` while a step runs. What must hold: the
// step's processes die with the engine (no late side effect), the restarted
// engine records the deployment Failed (interrupted) without re-running it.
#include "tests/support/cli_runner.hpp"
#include "tests/support/serve_process.hpp"
#include "tests/support/temp_dir.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace cascade {
namespace {

using nlohmann::json;
using testing::CommandRun;
using testing::ServeProcess;
using Clock = std::chrono::steady_clock;

constexpr auto kDeadline = std::chrono::seconds(20);

// Waits (polling, up to kDeadline) until `done()` holds.
template <class Predicate>
bool eventually(Predicate done) {
  for (const auto until = Clock::now() + kDeadline; Clock::now() < until;) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

// The first file named `name` under `root`, or "".
std::string find_file(const std::string& root, const std::string& name) {
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->path().filename() == name) return it->path().string();
  }
  return "";
}

// Whether a process runs with exactly this command line.
bool process_running(const std::vector<std::string>& argv) {
  std::string wanted;
  for (const std::string& arg : argv) wanted += arg + '\0';
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    if (testing::read_file(entry.path().string() + "/cmdline") == wanted) return true;
  }
  return false;
}

class KillMidStepTest : public ::testing::Test {
 protected:
  std::string data() const { return dir_ / "data"; }
  CommandRun cli(const ServeProcess& server, const std::string& token, const std::string& arguments) {
    return testing::run(arguments + " --server " + server.url() + " --token " + token);
  }
  testing::TempDir dir_;
};

TEST_F(KillMidStepTest, TheStepDiesWithTheEngineAndTheRestartRecordsItInterrupted) {
  std::string token;
  std::string step_dir;
  pid_t step_shell = 0;
  {
    ServeProcess server({"--data", data()});
    ASSERT_TRUE(server.started()) << server.output();
    token = server.printed_token();
    // The step waits on a FIFO in its work dir, then leaves a marker: were it
    // still running after the crash, opening the FIFO would find its reader.
    const std::string pipeline = dir_ / "gate.json";
    std::ofstream(pipeline) << json{{"name", "Gate"},
                                    {"stages",
                                     {{{"name", "dev"},
                                       {"trigger", {{"after_release", true}}},
                                       {"steps",
                                        {{{"name", "wait"},
                                          {"run", "mkfifo gate && (sleep 600 &) && echo $$ > shell.pid && cat gate "
                                                  "> /dev/null; touch marker"}}}}}}}}
                                  .dump();
    CommandRun applied = cli(server, token, "pipeline apply " + pipeline);
    ASSERT_EQ(applied.exit_code, 0) << applied.output;
    std::filesystem::create_directories(data() + "/artifacts/gate");
    CommandRun created = cli(server, token, "release create Gate --version 1 --artifact " + data() + "/artifacts/gate");
    ASSERT_EQ(created.exit_code, 0) << created.output;

    std::string pid_file;
    ASSERT_TRUE(eventually([&] {
      pid_file = find_file(data() + "/work", "shell.pid");
      if (pid_file.empty()) return false;
      std::ifstream in(pid_file);
      return static_cast<bool>(in >> step_shell);
    })) << "the step did not start";
    step_dir = std::filesystem::path(pid_file).parent_path().string();
    ASSERT_EQ(::kill(step_shell, 0), 0) << "the step's shell runs";

    ASSERT_EQ(server.stop(SIGKILL, kDeadline), 128 + SIGKILL);
  }

  // No reader is left on the FIFO, the shell is gone, nothing touched the marker.
  EXPECT_TRUE(eventually([&] { return ::kill(step_shell, 0) != 0 && errno == ESRCH; }))
      << "the step's shell outlived the engine";
  EXPECT_TRUE(eventually([&] {
    const int fd = ::open((step_dir + "/gate").c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) ::close(fd);
    return fd < 0 && errno == ENXIO;
  })) << "a process of the step still reads its FIFO";
  EXPECT_TRUE(eventually([] { return !process_running({"sleep", "600"}); }))
      << "the step's background child outlived the engine";
  EXPECT_FALSE(std::filesystem::exists(step_dir + "/marker")) << "the step's side effect happened after the crash";

  ServeProcess restarted({"--data", data()});
  ASSERT_TRUE(restarted.started()) << restarted.output();
  json summary;
  ASSERT_TRUE(eventually([&] {
    CommandRun shown = cli(restarted, token, "release show Gate-1 --json");
    summary = json::parse(shown.output, nullptr, false);
    return summary.is_object() && summary.value("status", "") == "Failed";
  })) << summary;
  EXPECT_NE(summary.dump().find("interrupted"), std::string::npos) << summary;
  EXPECT_FALSE(std::filesystem::exists(step_dir + "/marker")) << "the interrupted step was run again";
  // A cut-off step is not tampering: the release still verifies.
  ASSERT_EQ(restarted.stop(SIGTERM, kDeadline), std::optional<int>(0)) << restarted.output();
  const CommandRun verified = testing::run("replay Gate-1 --verify --data " + data());
  EXPECT_EQ(verified.exit_code, 0) << verified.output;
}

}  // namespace
}  // namespace cascade
