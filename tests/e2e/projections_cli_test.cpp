// The read-model commands of the real `cascade` program, against a temp data dir.
#include "tests/support/cli_runner.hpp"
#include "tests/support/temp_dir.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sys/wait.h>

namespace cascade {
namespace {

using testing::CommandRun;
using testing::read_file;
using testing::run;


class ProjectionsCliTest : public ::testing::Test {
 protected:
  void SetUp() override { std::filesystem::create_directories(dir_ / "artifact"); }
  std::string data() const { return "--data " + dir_.path(); }

  void apply(const std::string& name, const std::string& definition) {
    const std::string file = dir_ / (name + ".json");
    std::ofstream(file) << definition;
    const CommandRun applied = run("pipeline apply " + file + " " + data());
    ASSERT_EQ(applied.exit_code, 0) << applied.output;
  }
  std::string create(const std::string& pipeline, const std::string& version) {
    const CommandRun created = run("release create " + pipeline + " --version " + version + " --artifact " +
                                   (dir_ / "artifact") + " --as bob --json " + data());
    EXPECT_EQ(created.exit_code, 0) << created.output;
    return nlohmann::json::parse(created.output)["id"];
  }
  nlohmann::json json_of(const std::string& arguments, int expected_exit = 0) {
    const CommandRun done = run(arguments + " --json " + data());
    EXPECT_EQ(done.exit_code, expected_exit) << arguments << "\n" << done.output;
    auto parsed = nlohmann::json::parse(done.output, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(parsed.is_discarded()) << done.output;
    return parsed;
  }
  static std::vector<std::string> ids(const nlohmann::json& releases) {
    std::vector<std::string> out;
    for (const auto& r : releases) out.push_back(r["id"]);
    return out;
  }

  testing::TempDir dir_;
};

// A deployment of version "bad" fails.
std::string pipeline(const std::string& name) {
  return R"({"name": ")" + name + R"(", "stages": [{"name": "deploy", "trigger": {"after_release": true},
    "steps": [{"name": "deploy", "run": "test $(CASCADE_ARTIFACT_VERSION) != bad"}]}]})";
}

TEST_F(ProjectionsCliTest, ReleaseListPagesStayPutWhileReleasesArriveAndFilter) {
  apply("api", pipeline("Api"));
  apply("web", pipeline("Web"));
  create("Api", "1.0.0");
  create("Api", "bad");
  create("Web", "1.0.0");
  create("Api", "3.0.0");

  const nlohmann::json first = json_of("release list --limit 2");
  EXPECT_EQ(ids(first["releases"]), (std::vector<std::string>{"Api-3", "Web-1"}));
  ASSERT_TRUE(first["next_cursor"].is_string()) << first.dump();
  create("Web", "2.0.0");
  const nlohmann::json second = json_of("release list --limit 2 --cursor " + first["next_cursor"].get<std::string>());
  EXPECT_EQ(ids(second["releases"]), (std::vector<std::string>{"Api-2", "Api-1"}));
  EXPECT_TRUE(second["next_cursor"].is_null());

  EXPECT_EQ(ids(json_of("release list --status Failed")["releases"]), (std::vector<std::string>{"Api-2"}));
  const CommandRun web = run("release list --pipeline Web " + data());
  ASSERT_EQ(web.exit_code, 0) << web.output;
  EXPECT_NE(web.output.find("RELEASE"), std::string::npos) << web.output;
  EXPECT_NE(web.output.find("Web-2"), std::string::npos) << web.output;
  EXPECT_NE(web.output.find("Web-1"), std::string::npos) << web.output;
  EXPECT_EQ(web.output.find("Api-"), std::string::npos) << web.output;

  EXPECT_EQ(run("release list --limit 0 " + data()).exit_code, 2);
  EXPECT_EQ(run("release list --status Done " + data()).exit_code, 2);
}

TEST_F(ProjectionsCliTest, ProjectionsStatusShowsTheLagAndRebuildCatchesUpWhileTheEngineRuns) {
  apply("api", pipeline("Api"));
  create("Api", "1.0.0");
  const nlohmann::json shown = json_of("release show Api-1");

  const nlohmann::json status = json_of("projections status");
  ASSERT_EQ(status["projections"].size(), 6u) << status.dump();
  for (const auto& p : status["projections"]) {
    EXPECT_EQ(p["lag"], 0) << p.dump();
    EXPECT_EQ(p["checkpoint"], status["head"]) << p.dump();
  }

  const nlohmann::json rebuilt = json_of("projections rebuild");
  for (const auto& p : rebuilt["projections"]) EXPECT_EQ(p["lag"], 0) << p.dump();
  EXPECT_EQ(json_of("release show Api-1"), shown) << "the same document after the rebuild";

  const CommandRun one = run("projections rebuild releases " + data());
  ASSERT_EQ(one.exit_code, 0) << one.output;
  EXPECT_NE(one.output.find("rebuilt releases"), std::string::npos) << one.output;
  EXPECT_NE(one.output.find("LAG"), std::string::npos) << one.output;

  const CommandRun unknown = run("projections rebuild nope " + data());
  EXPECT_EQ(unknown.exit_code, 3) << unknown.output;
  EXPECT_NE(unknown.output.find("no projection 'nope'"), std::string::npos) << unknown.output;

  // The projection database is disposable: deleted, it is folded again.
  std::filesystem::remove_all(dir_ / "projections");
  EXPECT_EQ(ids(json_of("release list")["releases"]), (std::vector<std::string>{"Api-1"}));
  EXPECT_EQ(json_of("release show Api-1"), shown);
}

TEST_F(ProjectionsCliTest, ApprovalsEnvironmentsPipelinesAndMetricsAnswerFromTheReadModels) {
  const std::string v1 = R"({"name": "Ops", "groups": {"admins": ["carol"]}, "stages": [{"name": "prod",
    "trigger": {"after_release": true}, "pre_approval": {"approvers": ["admins"]},
    "steps": [{"name": "deploy", "run": "true"}]}]})";
  std::string v2 = v1;
  v2.replace(v2.find("\"true\""), 6, "\"echo deployed\"");
  apply("ops1", v1);
  apply("ops2", v2);
  const std::string id = create("Ops", "1.0.0");

  const nlohmann::json inbox = json_of("approvals --as carol");
  ASSERT_EQ(inbox["approvals"].size(), 1u) << inbox.dump();
  EXPECT_EQ(inbox["approvals"][0]["release"], id);
  EXPECT_EQ(json_of("approvals --group admins")["approvals"].size(), 1u);
  EXPECT_TRUE(json_of("approvals --as dave")["approvals"].empty());
  const CommandRun table = run("approvals --as carol " + data());
  EXPECT_NE(table.output.find(id), std::string::npos) << table.output;
  // --all: every pending approval, dave's view included; with the approvers' column.
  const nlohmann::json all = json_of("approvals --all --as dave");
  ASSERT_EQ(all["approvals"].size(), 1u) << all.dump();
  EXPECT_EQ(all["all"], true);
  const CommandRun all_table = run("approvals --all " + data());
  EXPECT_NE(all_table.output.find("APPROVERS"), std::string::npos) << all_table.output;
  EXPECT_NE(all_table.output.find("admins"), std::string::npos) << all_table.output;
  EXPECT_NE(run("approvals --all --group admins " + data()).exit_code, 0) << "--all excludes --group";

  ASSERT_EQ(run("approve " + id + " prod --as carol " + data()).exit_code, 0);
  EXPECT_TRUE(json_of("approvals --as carol")["approvals"].empty());
  EXPECT_NE(run("approvals --all " + data()).output.find("no approvals are pending"), std::string::npos);

  const nlohmann::json environments = json_of("environments --pipeline Ops");
  ASSERT_EQ(environments["environments"].size(), 1u) << environments.dump();
  EXPECT_EQ(environments["environments"][0]["current"]["release"], id);
  const nlohmann::json history = json_of("environment history Ops prod");
  ASSERT_EQ(history["deployments"].size(), 1u) << history.dump();
  EXPECT_EQ(history["deployments"][0]["outcome"], "Succeeded");
  EXPECT_EQ(run("environment history Ops prod --limit 501 " + data()).exit_code, 2);

  const nlohmann::json versions = json_of("pipeline versions Ops");
  ASSERT_EQ(versions["versions"].size(), 2u) << versions.dump();
  EXPECT_EQ(versions["versions"][1]["releases"], nlohmann::json({id}));
  const nlohmann::json diff = json_of("pipeline diff Ops 1 2");
  EXPECT_EQ(diff["changes"], nlohmann::json::parse(R"([{"op": "replace", "path": "/stages/0/steps/0/run",
                                                        "where": "stages[prod].steps[deploy].run",
                                                        "from": "true", "to": "echo deployed"}])"));
  const CommandRun diff_text = run("pipeline diff Ops 1 2 " + data());
  // A person reads the stage and the step by name.
  EXPECT_NE(diff_text.output.find("replace  stages[prod].steps[deploy].run  \"true\" → \"echo deployed\""),
            std::string::npos)
      << diff_text.output;
  EXPECT_EQ(run("pipeline diff Ops 1 3 " + data()).exit_code, 3);

  const nlohmann::json metrics = json_of("metrics delivery --pipeline Ops");
  ASSERT_EQ(metrics["stages"].size(), 1u) << metrics.dump();
  EXPECT_EQ(metrics["stages"][0]["deployment_frequency"]["deployments"], 1);
  EXPECT_EQ(metrics["stages"][0]["change_failure_rate"]["rate"], 0.0);
  EXPECT_EQ(json_of("metrics delivery --pipeline Ops --stage prod --from 2000-01-01T00:00:00Z --to 2000-01-02T00:00:00Z")
                ["stages"][0]["deployment_frequency"]["deployments"],
            0);
  EXPECT_EQ(run("metrics delivery --pipeline Ops --from yesterday " + data()).exit_code, 2);
  const CommandRun metrics_table = run("metrics delivery --pipeline Ops " + data());
  EXPECT_NE(metrics_table.output.find("LEAD TIME"), std::string::npos) << metrics_table.output;
}

}  // namespace
}  // namespace cascade
