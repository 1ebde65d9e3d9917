#include "adapters/process/process_step_runner.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace cascade::adapters {
namespace {

namespace fs = std::filesystem;

constexpr engine::Timestamp kNow = 1'234'567'890;

class ProcessStepRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::path(::testing::TempDir()) / "cascade-process-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = fs::canonical(pattern);  // pwd reports the physical path
    clock_.set(kNow);
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(root_, ignored);
  }

  // A request that collects its lines into lines_. PATH is explicit: the step
  // inherits nothing.
  engine::StepRequest request(std::string command) {
    engine::StepRequest request;
    request.command = std::move(command);
    request.env = {{"PATH", "/usr/bin:/bin"}};
    request.work_dir = (root_ / "work").string();
    request.on_line = [this](const engine::LogLine& line) { lines_.push_back(line); };
    return request;
  }

  std::vector<std::string> texts(const std::string& stream) const {
    std::vector<std::string> result;
    for (const auto& line : lines_) {
      if (line.stream == stream) result.push_back(line.text);
    }
    return result;
  }

  static pid_t read_pid(const fs::path& file) {
    std::ifstream in(file);
    pid_t pid = 0;
    in >> pid;
    return pid;
  }

  // A killed process may linger as a zombie when the container's init does
  // not reap orphans, so a zombie counts as dead. Bounded wait: SIGKILL is
  // delivered asynchronously.
  static bool dies_soon(pid_t pid) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (std::chrono::steady_clock::now() < give_up) {
      if (::kill(pid, 0) == -1 && errno == ESRCH) return true;
      std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
      std::string content((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
      const auto paren = content.rfind(") ");
      if (paren != std::string::npos && paren + 2 < content.size() &&
          (content[paren + 2] == 'Z' || content[paren + 2] == 'X')) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  fs::path root_;
  engine::ManualClock clock_;
  ProcessStepRunner runner_{clock_};
  std::vector<engine::LogLine> lines_;
};

TEST_F(ProcessStepRunnerTest, ZeroExitSucceeds) {
  const auto outcome = runner_.run(request("true"));
  EXPECT_EQ(outcome.error, "");
  EXPECT_EQ(outcome.exit_code, 0);
  EXPECT_FALSE(outcome.timed_out);
  EXPECT_TRUE(outcome.succeeded());
}

TEST_F(ProcessStepRunnerTest, NonZeroExitCodeIsReported) {
  const auto outcome = runner_.run(request("exit 3"));
  EXPECT_EQ(outcome.error, "");
  EXPECT_EQ(outcome.exit_code, 3);
  EXPECT_FALSE(outcome.succeeded());
}

TEST_F(ProcessStepRunnerTest, DeathBySignalIs128PlusTheSignal) {
  const auto outcome = runner_.run(request("kill -TERM $$"));
  EXPECT_EQ(outcome.error, "");
  EXPECT_EQ(outcome.exit_code, 128 + SIGTERM);
  EXPECT_FALSE(outcome.timed_out);
}

TEST_F(ProcessStepRunnerTest, EnvironmentIsExactlyTheRequestedOne) {
  ASSERT_EQ(::setenv("CASCADE_LEAK_CHECK", "1", 1), 0);
  auto req = request("env");
  req.env["FOO"] = "bar";
  const auto outcome = runner_.run(req);
  ::unsetenv("CASCADE_LEAK_CHECK");

  ASSERT_TRUE(outcome.succeeded()) << outcome.error;
  const auto out = texts("stdout");
  EXPECT_NE(std::find(out.begin(), out.end(), "FOO=bar"), out.end());
  EXPECT_NE(std::find(out.begin(), out.end(), "PATH=/usr/bin:/bin"), out.end());
  for (const auto& line : out) EXPECT_EQ(line.rfind("CASCADE_LEAK_CHECK=", 0), std::string::npos) << line;
}

TEST_F(ProcessStepRunnerTest, CapturesBothStreamsAsLinesStampedByTheClock) {
  const auto outcome = runner_.run(request("echo out1; echo err1 >&2; echo out2; printf partial"));

  ASSERT_TRUE(outcome.succeeded()) << outcome.error;
  EXPECT_EQ(texts("stdout"), (std::vector<std::string>{"out1", "out2", "partial"}));
  EXPECT_EQ(texts("stderr"), (std::vector<std::string>{"err1"}));
  EXPECT_EQ(lines_.size(), 4u);
  for (const auto& line : lines_) EXPECT_EQ(line.at, kNow) << line.text;
}

TEST_F(ProcessStepRunnerTest, WithoutOnLineOutputIsDiscarded) {
  auto req = request("echo ignored; echo ignored >&2");
  req.on_line = nullptr;
  EXPECT_TRUE(runner_.run(req).succeeded());
}

TEST_F(ProcessStepRunnerTest, CreatesAMissingNestedWorkDirAndRunsInIt) {
  auto req = request("pwd");
  req.work_dir = (root_ / "a" / "b" / "c").string();
  ASSERT_FALSE(fs::exists(req.work_dir));

  const auto outcome = runner_.run(req);

  ASSERT_TRUE(outcome.succeeded()) << outcome.error;
  EXPECT_TRUE(fs::is_directory(req.work_dir));
  EXPECT_EQ(texts("stdout"), (std::vector<std::string>{req.work_dir}));
}

TEST_F(ProcessStepRunnerTest, WorkDirThatCannotBeCreatedIsAnErrorAndRunsNothing) {
  std::ofstream(root_ / "file") << "not a directory";
  auto req = request("echo ran");
  req.work_dir = (root_ / "file" / "sub").string();

  const auto outcome = runner_.run(req);

  EXPECT_NE(outcome.error.find(req.work_dir), std::string::npos) << outcome.error;
  EXPECT_EQ(outcome.exit_code, -1);
  EXPECT_FALSE(outcome.succeeded());
  EXPECT_TRUE(lines_.empty());
}

TEST_F(ProcessStepRunnerTest, EmptyWorkDirIsAnError) {
  auto req = request("true");
  req.work_dir.clear();
  EXPECT_NE(runner_.run(req).error, "");
}

TEST_F(ProcessStepRunnerTest, InvalidEnvironmentNameIsAnError) {
  auto req = request("true");
  req.env["A=B"] = "x";
  const auto outcome = runner_.run(req);
  EXPECT_NE(outcome.error, "");
  EXPECT_EQ(outcome.exit_code, -1);
}

TEST_F(ProcessStepRunnerTest, TimeoutKillsTheWholeProcessGroup) {
  auto req = request("sleep 60 & echo $! > child.pid; wait");
  req.timeout = std::chrono::milliseconds(300);

  const auto outcome = runner_.run(req);

  EXPECT_TRUE(outcome.timed_out);
  EXPECT_EQ(outcome.exit_code, -1);
  EXPECT_EQ(outcome.error, "");
  EXPECT_FALSE(outcome.succeeded());
  EXPECT_GE(outcome.duration_ms, 300);
  EXPECT_LT(outcome.duration_ms, 10'000);
  const pid_t grandchild = read_pid(root_ / "work" / "child.pid");
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(dies_soon(grandchild));
}

// The flag is set from on_line once the step has printed "started", which it
// does after its background sleep exists and child.pid is written: a
// hand-off, not a sleep.
TEST_F(ProcessStepRunnerTest, CancelKillsTheWholeProcessGroupPromptly) {
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  auto req = request("sleep 60 & echo $! > child.pid; echo started; wait");
  req.cancel = cancel;
  req.on_line = [this, cancel](const engine::LogLine& line) {
    lines_.push_back(line);
    if (line.text == "started") cancel->store(true);
  };

  const auto outcome = runner_.run(req);

  EXPECT_TRUE(outcome.canceled);
  EXPECT_FALSE(outcome.timed_out);
  EXPECT_EQ(outcome.exit_code, -1);
  EXPECT_EQ(outcome.error, "");
  EXPECT_FALSE(outcome.succeeded());
  EXPECT_LT(outcome.duration_ms, 10'000);
  EXPECT_EQ(texts("stdout"), (std::vector<std::string>{"started"}));
  const pid_t grandchild = read_pid(root_ / "work" / "child.pid");
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(dies_soon(grandchild));
}

TEST_F(ProcessStepRunnerTest, CancelAlreadySetRunsNothing) {
  auto req = request("echo ran > ran.txt; echo ran");
  req.cancel = std::make_shared<std::atomic<bool>>(true);

  const auto outcome = runner_.run(req);

  EXPECT_TRUE(outcome.canceled);
  EXPECT_EQ(outcome.exit_code, -1);
  EXPECT_EQ(outcome.error, "");
  EXPECT_FALSE(outcome.succeeded());
  EXPECT_FALSE(fs::exists(root_ / "work" / "ran.txt"));
  EXPECT_TRUE(lines_.empty());
}

TEST_F(ProcessStepRunnerTest, CancelFlagThatStaysFalseChangesNothing) {
  auto req = request("echo out; exit 4");
  req.cancel = std::make_shared<std::atomic<bool>>(false);

  const auto outcome = runner_.run(req);

  EXPECT_FALSE(outcome.canceled);
  EXPECT_EQ(outcome.exit_code, 4);
  EXPECT_EQ(texts("stdout"), (std::vector<std::string>{"out"}));
}

TEST_F(ProcessStepRunnerTest, BackgroundChildLeftByTheShellDoesNotHoldTheStep) {
  const auto outcome = runner_.run(request("sleep 60 & echo $! > bg.pid; echo done"));

  EXPECT_EQ(outcome.error, "");
  EXPECT_EQ(outcome.exit_code, 0);
  EXPECT_FALSE(outcome.timed_out);
  EXPECT_LT(outcome.duration_ms, 10'000);
  EXPECT_EQ(texts("stdout"), (std::vector<std::string>{"done"}));
  const pid_t background = read_pid(root_ / "work" / "bg.pid");
  ASSERT_GT(background, 0);
  EXPECT_TRUE(dies_soon(background));
}

// setsid takes the sleep out of the step's process group, beyond the group
// kill; it holds the output pipes open, so the runner stops reading after its
// drain grace (1 s) instead of waiting for it.
TEST_F(ProcessStepRunnerTest, ProcessThatLeftTheGroupDoesNotHoldTheStepForever) {
  // The shell waits until the sleeper has left the group, or the group kill
  // could catch it first.
  const auto outcome = runner_.run(request(
      "setsid sh -c 'echo $$ > escaped.pid; exec sleep 30' & "
      "while [ ! -s escaped.pid ]; do :; done; echo done"));

  const pid_t escaped = read_pid(root_ / "work" / "escaped.pid");
  if (escaped > 0) ::kill(escaped, SIGKILL);
  EXPECT_EQ(outcome.error, "");
  EXPECT_EQ(outcome.exit_code, 0);
  EXPECT_EQ(texts("stdout"), (std::vector<std::string>{"done"}));
  EXPECT_GE(outcome.duration_ms, 900);
  EXPECT_LT(outcome.duration_ms, 10'000);
}

// Step "long" starts on one thread while step "short" on another is running
// (short's on_line holds it mid-step until long has printed). Had long's
// process inherited short's pipe write ends, short would not see EOF until
// long ended, and would give up only after the runner's drain grace (1 s).
TEST_F(ProcessStepRunnerTest, ConcurrentRunsKeepTheirOwnOutputAndDoNotBlockEachOther) {
  std::atomic<bool> short_running{false};
  std::atomic<bool> long_running{false};
  std::atomic<bool> long_finished{false};
  engine::StepOutcome long_outcome;
  std::vector<std::string> long_lines;
  std::thread long_thread([&] {
    while (!short_running.load()) std::this_thread::yield();
    engine::StepRequest req = request("echo long-started; sleep 2; echo long");
    req.work_dir = (root_ / "long").string();
    req.on_line = [&](const engine::LogLine& line) {
      long_lines.push_back(line.text);
      long_running.store(true);
    };
    long_outcome = runner_.run(req);
    long_finished.store(true);
  });

  std::vector<std::string> short_lines;
  engine::StepRequest req = request("echo short-started; echo short");
  req.work_dir = (root_ / "short").string();
  req.on_line = [&](const engine::LogLine& line) {
    short_lines.push_back(line.text);
    short_running.store(true);
    while (!long_running.load() && !long_finished.load()) std::this_thread::yield();
  };
  const auto short_outcome = runner_.run(req);
  const bool long_still_running = !long_finished.load();
  long_thread.join();

  EXPECT_TRUE(short_outcome.succeeded()) << short_outcome.error;
  EXPECT_EQ(short_lines, (std::vector<std::string>{"short-started", "short"}));
  EXPECT_TRUE(long_outcome.succeeded()) << long_outcome.error;
  EXPECT_EQ(long_lines, (std::vector<std::string>{"long-started", "long"}));
  EXPECT_TRUE(long_still_running);
  EXPECT_LT(short_outcome.duration_ms, 800);
}

// A descriptor the embedding process left inheritable (no O_CLOEXEC) must not
// reach the step; the step's shell holds exactly stdin, stdout and stderr.
TEST_F(ProcessStepRunnerTest, StepInheritsNoDescriptorBeyondStdio) {
  const int stray = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(stray, 0);
  const auto outcome = runner_.run(request("ls /proc/$$/fd; true"));
  ::close(stray);

  ASSERT_TRUE(outcome.succeeded()) << outcome.error;
  EXPECT_EQ(texts("stdout"), (std::vector<std::string>{"0", "1", "2"}));
}

TEST_F(ProcessStepRunnerTest, LongLineArrivesInChunksOf64KiB) {
  constexpr std::size_t kLength = 200'000;
  const auto outcome = runner_.run(request("head -c 200000 /dev/zero | tr '\\0' x; echo; echo next"));

  ASSERT_TRUE(outcome.succeeded()) << outcome.error;
  auto out = texts("stdout");
  ASSERT_EQ(out.size(), 5u);  // 3 x 64 KiB + the rest, then "next"
  EXPECT_EQ(out.back(), "next");
  out.pop_back();
  std::string joined;
  for (const auto& chunk : out) {
    EXPECT_LE(chunk.size(), 64u * 1024u);
    joined += chunk;
  }
  EXPECT_EQ(joined, std::string(kLength, 'x'));
}

TEST_F(ProcessStepRunnerTest, LineOfExactly64KiBStaysWhole) {
  const auto outcome = runner_.run(request("head -c 65536 /dev/zero | tr '\\0' y; echo; echo next"));

  ASSERT_TRUE(outcome.succeeded()) << outcome.error;
  EXPECT_EQ(texts("stdout"), (std::vector<std::string>{std::string(64 * 1024, 'y'), "next"}));
}

// Running as another user needs root: the step user tests skip otherwise
// (as a developer's build usually runs); CI runs the suite as root.
class StepUserTest : public ProcessStepRunnerTest {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "switching the step user needs root; this test runs as uid " << ::geteuid();
    ProcessStepRunnerTest::SetUp();
    // The step user passes through the test's root into its work dir, as
    // it passes through the data dir (0711).
    fs::permissions(root_, static_cast<fs::perms>(0711));
    auto identity = resolve_step_identity("nobody");  // Debian always has it
    ASSERT_TRUE(identity) << identity.error().message;
    nobody_ = identity.value();
  }

  StepIdentity nobody_;
};

TEST_F(StepUserTest, StepRunsAsTheStepUserWithItsGroups) {
  ProcessStepRunner runner(clock_, "", nobody_);
  const auto outcome = runner.run(request("id -u; id -g; id -G; pwd"));

  ASSERT_TRUE(outcome.succeeded()) << outcome.error;
  ASSERT_EQ(texts("stdout").size(), 4u);
  EXPECT_EQ(texts("stdout")[0], std::to_string(nobody_.uid));
  EXPECT_EQ(texts("stdout")[1], std::to_string(nobody_.gid));
  EXPECT_EQ(texts("stdout")[2].find(" 0"), std::string::npos) << "root's group kept: " << texts("stdout")[2];
  EXPECT_EQ(texts("stdout")[3], (root_ / "work").string());
}

TEST_F(StepUserTest, WorkDirBelongsToTheStepUserAndIsWritable) {
  ProcessStepRunner runner(clock_, "", nobody_);
  const auto outcome = runner.run(request("echo built > output.txt && cat output.txt"));

  ASSERT_TRUE(outcome.succeeded()) << outcome.error << " " << (texts("stderr").empty() ? "" : texts("stderr")[0]);
  EXPECT_EQ(texts("stdout"), std::vector<std::string>{"built"});
  struct stat status {};
  ASSERT_EQ(::stat((root_ / "work").c_str(), &status), 0);
  EXPECT_EQ(status.st_uid, nobody_.uid);
}

TEST_F(StepUserTest, StepCannotReadARootFileInAPrivateDir) {
  const fs::path private_dir = root_ / "private";
  fs::create_directory(private_dir);
  fs::permissions(private_dir, static_cast<fs::perms>(0700));
  std::ofstream(private_dir / "secret.key") << "not for steps";
  fs::permissions(private_dir / "secret.key", static_cast<fs::perms>(0600));
  ProcessStepRunner runner(clock_, "", nobody_);
  const auto outcome = runner.run(request("cat " + (private_dir / "secret.key").string()));

  ASSERT_TRUE(outcome.error.empty()) << outcome.error;
  EXPECT_NE(outcome.exit_code, 0);
  ASSERT_EQ(texts("stderr").size(), 1u);
  EXPECT_NE(texts("stderr")[0].find("Permission denied"), std::string::npos) << texts("stderr")[0];
  EXPECT_TRUE(texts("stdout").empty());
}

TEST(StepIdentityTest, UnknownUserIsNotFoundAndNamed) {
  auto identity = resolve_step_identity("no-such-cascade-user");
  ASSERT_FALSE(identity);
  EXPECT_EQ(identity.error().code, ErrorCode::kNotFound);
  EXPECT_NE(identity.error().message.find("'no-such-cascade-user'"), std::string::npos) << identity.error().message;
}

}  // namespace
}  // namespace cascade::adapters

namespace cascade::adapters {
namespace {

// While a step of a deployment runs its supervisor holds the deployment's
// lock: a restarted engine asking whether the deployment stopped is told it
// has not (with what holds it) until the step ends, then at once that it has.
TEST(ProcessStepRunnerLockTest, AwaitStoppedWaitsForTheDeploymentsStepsAndOnlyThem) {
  std::string pattern = (fs::path(::testing::TempDir()) / "cascade-lock-XXXXXX").string();
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  const fs::path root = pattern;
  engine::ManualClock clock;
  ProcessStepRunner runner(clock, (root / "run").string());
  EXPECT_EQ(fs::status(root / "run").permissions() & fs::perms::all, fs::perms::owner_all);
  const std::string gate = (root / "gate").string();
  ASSERT_EQ(::mkfifo(gate.c_str(), 0600), 0);

  engine::StepRequest request;
  request.command = "echo started; cat " + gate + " > /dev/null";
  request.env = {{"PATH", "/usr/bin:/bin"}};
  request.work_dir = (root / "work").string();
  request.deployment = engine::deployment_name("R-1", "dev", 1);
  std::promise<void> started;
  request.on_line = [&started](const engine::LogLine& line) {
    if (line.text == "started") started.set_value();
  };
  std::thread step([&] { EXPECT_EQ(runner.run(request).exit_code, 0); });
  started.get_future().wait();

  auto running = runner.await_stopped(request.deployment, std::chrono::milliseconds(50));
  ASSERT_FALSE(running);
  EXPECT_EQ(running.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(running.error().message.find("R-1/dev/1 still runs"), std::string::npos) << running.error().message;
  EXPECT_TRUE(runner.await_stopped(engine::deployment_name("R-1", "dev", 2), std::chrono::milliseconds(0)))
      << "another attempt is not held up by this one";

  std::ofstream(gate) << "go\n";  // the step reads it and ends
  step.join();
  EXPECT_TRUE(runner.await_stopped(request.deployment, std::chrono::milliseconds(0)));
  std::error_code ignored;
  fs::remove_all(root, ignored);
}

}  // namespace
}  // namespace cascade::adapters
