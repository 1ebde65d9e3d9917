// `tools/dev up` as CI runs it (CASCADE_DEV_UP_ONCE=1: stop after printing),
// on a temporary data directory and an ephemeral port, with the cascade
// binary of this build.
#include "adapters/http/auth.hpp"
#include "tests/support/cli_runner.hpp"
#include "tests/support/serve_process.hpp"
#include "tests/support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <regex>

namespace cascade {
namespace {

using testing::CommandRun;
using testing::read_file;

CommandRun dev_up(const std::string& data) {
  const std::string build_dir = std::filesystem::path(CASCADE_BINARY).parent_path().parent_path().string();
  const std::string command = "CASCADE_DEV_NO_BUILD=1 CASCADE_DEV_UP_ONCE=1 CASCADE_DEV_LISTEN=127.0.0.1:0 "
                              "CASCADE_BUILD_DIR=" + build_dir + " CASCADE_DEV_DATA=" + data + " " +
                              CASCADE_SOURCE_DIR + "/tools/dev up 2>&1";
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

  // Tokens are shown once, so a second `up` mints fresh ones.
  const CommandRun second = dev_up(data);
  ASSERT_EQ(second.exit_code, 0) << second.output;
  const std::string rotated = printed(second.output, R"(release-manager \(approves prod\))");
  ASSERT_EQ(rotated.size(), 64u) << second.output;
  EXPECT_NE(rotated, approver);
  EXPECT_EQ(read_file(data + "/users.json").find(adapters::http::sha256_hex(approver)), std::string::npos);
  EXPECT_NE(second.output.find("created release SampleApp-2"), std::string::npos) << second.output;

  // The printed token approves prod.
  testing::ServeProcess server({"--data", data, "--users", data + "/users.json"});
  ASSERT_TRUE(server.started()) << server.output();
  const CommandRun approved =
      testing::run("approve SampleApp-2 prod --server " + server.url() + " --token " + rotated);
  EXPECT_EQ(approved.exit_code, 0) << approved.output;
  EXPECT_NE(approved.output.find("approved by release-manager"), std::string::npos) << approved.output;
  EXPECT_EQ(server.stop(SIGTERM, std::chrono::seconds(20)), std::optional<int>(0));
}

}  // namespace
}  // namespace cascade
