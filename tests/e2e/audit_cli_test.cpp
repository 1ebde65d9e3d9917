// `cascade replay`, `cascade audit export|verify` and `cascade why`, run as a
// user would against the demo's data directory.
#include "tests/support/cli_runner.hpp"
#include "tests/support/temp_dir.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/wait.h>

namespace cascade {
namespace {

using testing::CommandRun;
using testing::read_file;
using testing::run;



bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

class AuditCliTest : public ::testing::Test {
 protected:
  std::string data() const { return "--data " + dir_.path(); }
  testing::TempDir dir_;
};

TEST_F(AuditCliTest, ReplayVerifyExportAndWhyOnTheDemoRelease) {
  const CommandRun demo = run("demo " + data());
  ASSERT_EQ(demo.exit_code, 0) << demo.output;

  const CommandRun listed = run("events SampleApp-1 --json " + data());
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  const nlohmann::json events = nlohmann::json::parse(listed.output);
  const std::size_t count = events.size();
  ASSERT_GT(count, 20u);

  // The timeline: one line per event, oldest first.
  const CommandRun replay = run("replay SampleApp-1 " + data());
  ASSERT_EQ(replay.exit_code, 0) << replay.output;
  EXPECT_TRUE(contains(replay.output, "DETAILS\n   1  ")) << replay.output;
  EXPECT_TRUE(contains(replay.output, "ReleaseCreated")) << replay.output;
  EXPECT_TRUE(contains(replay.output, "prod approved by release-manager: \"demo: looks good\"")) << replay.output;
  EXPECT_LT(replay.output.find("approval pending: prod"), replay.output.find("prod deployed"));
  EXPECT_EQ(std::count(replay.output.begin(), replay.output.end(), '\n'), static_cast<long>(count + 1));
  const CommandRun replay_json = run("replay SampleApp-1 --json " + data());
  ASSERT_EQ(replay_json.exit_code, 0) << replay_json.output;
  EXPECT_EQ(nlohmann::json::parse(replay_json.output)["events"].size(), count);

  // Time travel: by version and by the time of that version.
  const CommandRun at_five = run("replay SampleApp-1 --at 5 " + data());
  ASSERT_EQ(at_five.exit_code, 0) << at_five.output;
  EXPECT_TRUE(contains(at_five.output, "Release SampleApp-1 as of version 5 of " + std::to_string(count)))
      << at_five.output;
  EXPECT_TRUE(contains(at_five.output, "status: InProgress")) << at_five.output;
  EXPECT_TRUE(contains(at_five.output, "\nprod    NotStarted")) << at_five.output;
  const std::string fifth_time = events[4]["time"];
  const CommandRun at_time = run("replay SampleApp-1 --at " + fifth_time + " --json " + data());
  ASSERT_EQ(at_time.exit_code, 0) << at_time.output;
  const nlohmann::json travelled = nlohmann::json::parse(at_time.output);
  EXPECT_GE(travelled["at"]["version"].get<int>(), 5);
  EXPECT_EQ(travelled["at"]["time"], fifth_time);
  EXPECT_EQ(run("replay SampleApp-1 --at soon " + data()).exit_code, 2);
  EXPECT_EQ(run("replay SampleApp-1 --at 100000 " + data()).exit_code, 2);
  EXPECT_EQ(run("replay SampleApp-9 " + data()).exit_code, 3);

  // Verification of the live store.
  const CommandRun verified = run("replay SampleApp-1 --verify " + data());
  ASSERT_EQ(verified.exit_code, 0) << verified.output;
  EXPECT_TRUE(contains(verified.output, "ok      release stream   release-SampleApp-1: versions 1–" +
                                            std::to_string(count) + ", every hash and link intact"))
      << verified.output;
  EXPECT_TRUE(contains(verified.output, "ok      step logs")) << verified.output;
  EXPECT_TRUE(contains(verified.output, "verified: every check holds")) << verified.output;
  const CommandRun verified_json = run("replay SampleApp-1 --verify --json " + data());
  ASSERT_EQ(verified_json.exit_code, 0) << verified_json.output;
  EXPECT_EQ(nlohmann::json::parse(verified_json.output)["verification"]["ok"], true);

  // Export, then verify offline: the data directory is gone.
  const std::string bundle = dir_ / "SampleApp-1.audit.json";
  const CommandRun exported = run("audit export SampleApp-1 --out " + bundle + " " + data());
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  EXPECT_TRUE(contains(exported.output, "wrote " + bundle)) << exported.output;
  const nlohmann::json document = nlohmann::json::parse(read_file(bundle));
  EXPECT_EQ(document["format"], "cascade-audit/1");
  EXPECT_EQ(document["release_stream"]["events"].size(), count);
  EXPECT_EQ(document["verification"]["ok"], true);
  std::filesystem::rename(dir_ / "log", dir_ / "log-elsewhere");
  const CommandRun offline = run("audit verify " + bundle);
  ASSERT_EQ(offline.exit_code, 0) << offline.output;
  EXPECT_TRUE(contains(offline.output, "bundle " + bundle + ": release SampleApp-1")) << offline.output;
  EXPECT_TRUE(contains(offline.output, "verified: every check holds")) << offline.output;
  std::filesystem::rename(dir_ / "log-elsewhere", dir_ / "log");

  // One byte of the approval event in the bundle: found, named, exit 7.
  std::string text = read_file(bundle);
  const auto comment = text.find(R"(\"comment\":\"demo: looks good\")");
  ASSERT_NE(comment, std::string::npos);
  text[comment + 14] = 'D';  // "demo" → "Demo"
  const std::string tampered = dir_ / "tampered.audit.json";
  std::ofstream(tampered) << text;
  std::int64_t granted_version = 0;
  for (const auto& e : events) {
    if (e["type"] == "ApprovalGranted") granted_version = e["version"];
  }
  const CommandRun broken = run("audit verify " + tampered);
  EXPECT_EQ(broken.exit_code, 7) << broken.output;
  EXPECT_TRUE(contains(broken.output, "first failure: event_chain at stream release-SampleApp-1 version " +
                                          std::to_string(granted_version)))
      << broken.output;
  EXPECT_TRUE(contains(broken.output, "content altered: hash expected")) << broken.output;
  const CommandRun broken_json = run("audit verify " + tampered + " --json", /*with_stderr=*/false);
  EXPECT_EQ(broken_json.exit_code, 7);
  const nlohmann::json failure = nlohmann::json::parse(broken_json.output)["verification"]["failure"];
  EXPECT_EQ(failure["kind"], "event_chain");
  EXPECT_EQ(failure["location"]["version"], granted_version);

  // Why: a finished stage, then a second release waiting for its approval.
  const CommandRun why_prod = run("why SampleApp-1 prod " + data());
  ASSERT_EQ(why_prod.exit_code, 0) << why_prod.output;
  EXPECT_TRUE(contains(why_prod.output, "prod succeeded at ")) << why_prod.output;
  EXPECT_TRUE(contains(why_prod.output,
                       "(attempt 1, triggered: after test, qa succeeded); approved by release-manager at "))
      << why_prod.output;
  EXPECT_EQ(run("why SampleApp-1 staging " + data()).exit_code, 3);

  const std::string artifact = dir_ / "artifact-2";
  std::filesystem::create_directories(artifact);
  std::ofstream(artifact + "/index.html") << "<h1>SampleApp</h1> build 2.0.0\n";
  const CommandRun created = run("release create SampleApp --version 2.0.0 --artifact " + artifact +
                                 " --var SITES_ROOT=" + (dir_ / "sites") + " --as alice " + data());
  ASSERT_EQ(created.exit_code, 0) << created.output;
  const CommandRun why_waiting = run("why SampleApp-2 prod --json " + data());
  ASSERT_EQ(why_waiting.exit_code, 0) << why_waiting.output;
  const nlohmann::json waiting = nlohmann::json::parse(why_waiting.output);
  EXPECT_EQ(waiting["state"], "AwaitingPreApproval");
  const std::string explanation = waiting["explanation"];
  EXPECT_EQ(explanation.rfind("prod is waiting: approval by release-manager requested at ", 0), 0u) << explanation;
  EXPECT_TRUE(contains(explanation, ", 1 of 1 pending; deadline ")) << explanation;
}

}  // namespace
}  // namespace cascade
