// `tools/dev up` as CI runs it (CASCADE_DEV_UP_ONCE=1: stop after printing),
// on a temporary data directory and an ephemeral port, with the cascade
// binary of this build.
#include "adapters/http/auth.hpp"
#include "tests/support/cli_runner.hpp"
#include "tests/support/serve_process.hpp"
#include "tests/support/temp_dir.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>

namespace cascade {
namespace {

using testing::CommandRun;
using testing::read_file;

CommandRun dev_up(const std::string& data, const std::string& arguments = "") {
  const std::string build_dir = std::filesystem::path(CASCADE_BINARY).parent_path().parent_path().string();
  const std::string command = "CASCADE_DEV_NO_BUILD=1 CASCADE_DEV_UP_ONCE=1 CASCADE_DEV_LISTEN=127.0.0.1:0 "
                              "CASCADE_BUILD_DIR=" + build_dir + " CASCADE_DEV_DATA=" + data + " " +
                              CASCADE_SOURCE_DIR + "/tools/dev up " + arguments + " 2>&1";
  return testing::run_shell(command);
}

std::string printed(const std::string& output, const std::string& label) {
  std::smatch match;
  const std::regex pattern(label + R"(:\s+([0-9a-f]{64}))");
  return std::regex_search(output, match, pattern) ? match[1].str() : "";
}

TEST(DevUpTest, StartsTheSampleReleaseToProdsApprovalAndPrintsTheDashboardAndAnApproversToken) {
  testing::TempDir dir;
  const std::string data = dir / "dev";
  const CommandRun first = dev_up(data);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_TRUE(std::regex_search(first.output, std::regex(R"(Cascade is up: http://127\.0\.0\.1:\d+/ )")))
      << first.output;
  EXPECT_NE(first.output.find("prod    AwaitingPreApproval"), std::string::npos) << first.output;
  const std::string approver = printed(first.output, R"(release-manager \(approves prod\))");
  ASSERT_EQ(approver.size(), 64u) << first.output;
  EXPECT_NE(read_file(data + "/users.json").find(adapters::http::sha256_hex(approver)), std::string::npos);
  EXPECT_NE(read_file(data + "/serve.log").find("SIGTERM, stopping"), std::string::npos)
      << "UP_ONCE stops the server it started";

  // The command it prints runs as printed: the binary by its full path.
  EXPECT_NE(first.output.find("               " + std::string(CASCADE_BINARY) + " approve SampleApp-1 prod"),
            std::string::npos)
      << first.output;
  EXPECT_EQ(std::filesystem::status(data + "/dev-tokens").permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);

  // Someone edits the sample pipeline; a second `up` keeps the edit and the tokens.
  const std::string edited = dir / "edited.json";
  std::string sample = read_file(std::string(CASCADE_SOURCE_DIR) + "/tools/examples/sampleapp.json");
  sample.replace(sample.find("\"description\": \""), 16, "\"description\": \"edited: ");
  std::ofstream(edited) << sample;
  ASSERT_EQ(testing::run("pipeline apply " + edited + " --data " + data + " --as ann").exit_code, 0);
  const CommandRun second = dev_up(data);
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_NE(second.output.find("SampleApp is already defined: kept as it is (tools/dev up --reset starts over)"),
            std::string::npos)
      << second.output;
  EXPECT_EQ(printed(second.output, R"(release-manager \(approves prod\))"), approver) << second.output;
  EXPECT_NE(second.output.find("created release SampleApp-2"), std::string::npos) << second.output;
  const CommandRun versions = testing::run("pipeline versions SampleApp --json --data " + data);
  EXPECT_EQ(nlohmann::json::parse(versions.output)["versions"].size(), 2u) << versions.output;

  // The printed token approves prod.
  {
    testing::ServeProcess server({"--data", data, "--users", data + "/users.json"});
    ASSERT_TRUE(server.started()) << server.output();
    const CommandRun approved =
        testing::run("approve SampleApp-2 prod --server " + server.url() + " --token " + approver);
    EXPECT_EQ(approved.exit_code, 0) << approved.output;
    EXPECT_NE(approved.output.find("approved by release-manager"), std::string::npos) << approved.output;
    EXPECT_EQ(server.stop(SIGTERM, std::chrono::seconds(20)), std::optional<int>(0));
  }

  // --reset starts over: a fresh data directory, the sample as shipped, new tokens.
  const CommandRun reset = dev_up(data, "--reset");
  ASSERT_EQ(reset.exit_code, 0) << reset.output;
  EXPECT_NE(reset.output.find("tools/dev up --reset: deleting " + data), std::string::npos) << reset.output;
  EXPECT_NE(reset.output.find("created release SampleApp-1"), std::string::npos) << reset.output;
  const std::string fresh = printed(reset.output, R"(release-manager \(approves prod\))");
  ASSERT_EQ(fresh.size(), 64u) << reset.output;
  EXPECT_NE(fresh, approver);
}

}  // namespace
}  // namespace cascade
