// kill -9 of the real `cascade serve` at random moments while four clients
// write over HTTP — create releases of a pipeline that forks, joins and waits
// for approvals, approve, reject, cancel, deploy, redeploy, abandon — three
// cycles on one data directory. Then a clean start settles what was left.
// What must hold: every command the server acknowledged (2xx) is in the log
// with its effect — durable before acknowledged; a create retried with its
// Idempotency-Key after a crash made one release; every release verifies;
// nothing is left deploying or about to, and a deployment a crash cut off is
// Failed as interrupted (every step here succeeds, so no other failure is
// possible); `cascade doctor` finds the directory healthy.
//
// The kill moments and every client's choices come from one seed, printed
// first; CASCADE_KILL_CYCLES_SEED=<seed> replays them.
#include "tests/support/cli_runner.hpp"
#include "tests/support/serve_process.hpp"
#include "tests/support/temp_dir.hpp"
#include "tools/api_client.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace cascade {
namespace {

using nlohmann::json;
using testing::CommandRun;
using testing::ServeProcess;
using tools::ApiClient;
using SteadyClock = std::chrono::steady_clock;

constexpr int kClients = 4;
constexpr int kCycles = 3;
constexpr int kCreatesPerCycle = 3;  // per client: keeps the steps a 2-core machine runs at once moderate
constexpr auto kKillAfterMin = std::chrono::milliseconds(500);
constexpr auto kKillAfterMax = std::chrono::milliseconds(3500);
constexpr auto kSettleDeadline = std::chrono::seconds(60);
constexpr auto kStopDeadline = std::chrono::seconds(20);
constexpr const char* kInterrupted = "interrupted: the engine stopped during the deployment";

// build forks into test and qa, which waits for an approval by any of the
// clients; prod joins them and its outcome waits for one more approval;
// hotfix is deployed by hand. Every step succeeds, some take long enough for
// a kill to land in them.
json pipeline() {
  auto step = [](const std::string& name, const std::string& run) { return json{{"name", name}, {"run", run}}; };
  json approvers = json::array();
  for (int c = 0; c < kClients; ++c) approvers.push_back("client-" + std::to_string(c));
  return json{
      {"name", "Kc"},
      {"groups", {{"approvers", approvers}}},
      {"stages",
       {{{"name", "build"},
         {"trigger", {{"after_release", true}}},
         {"steps", {step("compile", "for i in 1 2 3 4 5; do echo compiling $i; done")}}},
        {{"name", "test"},
         {"trigger", {{"after_stages", {"build"}}}},
         {"steps", {step("unit", "sleep 0.1; echo tested")}}},
        {{"name", "qa"},
         {"trigger", {{"after_stages", {"build"}}}},
         {"pre_approval", {{"approvers", {"approvers"}}}},
         {"steps", {step("smoke", "true"), step("soak", "sleep 0.1; echo soaked")}}},
        {{"name", "prod"},
         {"trigger", {{"after_stages", {"test", "qa"}}}},
         {"post_approval", {{"approvers", {"approvers"}}}},
         {"steps", {step("ship", "sleep 0.1; echo shipped")}}},
        {{"name", "hotfix"}, {"trigger", {{"manual", true}}}, {"steps", {step("patch", "echo patched")}}}}}};
}

bool is_finished(const std::string& status) {
  return status == "Succeeded" || status == "PartiallySucceeded" || status == "Failed" || status == "Rejected" ||
         status == "Canceled";
}

// A command the server answered 2xx, and what it answered.
struct Ack {
  int cycle = 0;
  std::string user;
  std::string kind;  // create, approve, reject, cancel, deploy, redeploy, abandon
  std::string release;
  std::string stage;
  std::string key;  // the Idempotency-Key of a create
  json answer;
};

// What the clients share: acknowledged commands, acknowledged releases, and
// creates no answer came back for (retried with their key).
class Ledger {
 public:
  void acknowledged(Ack ack) {
    std::lock_guard lock(mutex_);
    if (ack.kind == "create") {
      releases_.push_back(ack.release);
      unanswered_.erase(ack.key);
    }
    acks_.push_back(std::move(ack));
  }
  void unanswered(const std::string& key, const std::string& user) {
    std::lock_guard lock(mutex_);
    resent_ += unanswered_.count(key);
    unanswered_[key] = user;
  }
  // How many creates were sent again with their key.
  int resent() const {
    std::lock_guard lock(mutex_);
    return resent_;
  }
  std::string any_release(std::mt19937& rng) const {
    std::lock_guard lock(mutex_);
    if (releases_.empty()) return "";
    return releases_[std::uniform_int_distribution<std::size_t>(0, releases_.size() - 1)(rng)];
  }
  // Unanswered creates of `user`, to send again.
  std::vector<std::string> unanswered_of(const std::string& user) const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> keys;
    for (const auto& [key, who] : unanswered_) {
      if (who == user) keys.push_back(key);
    }
    return keys;
  }
  std::vector<Ack> acks() const {
    std::lock_guard lock(mutex_);
    return acks_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<Ack> acks_;
  std::vector<std::string> releases_;
  std::map<std::string, std::string> unanswered_;  // key → user
  int resent_ = 0;
};

class KillCyclesTest : public ::testing::Test {
 protected:
  std::string data() const { return dir_ / "data"; }

  std::string add_user(const std::string& name, const std::string& role) {
    const CommandRun added = testing::run("users add " + name + " --role " + role + " --json --data " + data());
    EXPECT_EQ(added.exit_code, 0) << added.output;
    const json answer = json::parse(added.output, nullptr, false);
    return answer.is_object() ? answer.value("token", "") : "";
  }

  testing::TempDir dir_;
};

// Asks for a release as `user` with Idempotency-Key `key`; the key counts as
// unanswered until a 2xx comes back.
void create_release(ApiClient& api, const std::string& user, const std::string& key, int cycle, Ledger& ledger,
                    const std::string& artifact) {
  const json body{{"pipeline", "Kc"}, {"artifact", {{"version", "1." + key}, {"path", artifact}}}};
  ledger.unanswered(key, user);
  auto created = api.post("/api/v1/releases", body, key);
  if (created) ledger.acknowledged(Ack{cycle, user, "create", created.value().value("id", ""), "", key, created.value()});
}

ApiClient client_of(const ServeProcess& server, const std::string& token) {
  tools::ApiClientOptions options;
  options.request_timeout = std::chrono::seconds(10);
  return ApiClient::create(server.url(), token, options).value();
}

// One writing client for one server's lifetime: first sends again the
// creates of `user` no answer came back for, with their keys; then, until
// `stop`, creates a few releases and commands releases any client created,
// choosing among the commands the release's summary makes plausible (others
// are sent too, now and then: their refusals must be clean). Records every
// 2xx in `ledger`.
void write_until_stopped(const ServeProcess& server, const std::string& user, const std::string& token, int cycle,
                         unsigned seed, const std::atomic<bool>& stop, Ledger& ledger, const std::string& artifact) {
  std::mt19937 rng(seed);
  ApiClient api = client_of(server, token);
  for (const std::string& key : ledger.unanswered_of(user)) {
    if (stop) return;
    create_release(api, user, key, cycle, ledger, artifact);
  }
  int creates = 0;
  for (int n = 0; !stop; ++n) {
    const int roll = std::uniform_int_distribution<int>(0, 99)(rng);
    std::string id = ledger.any_release(rng);
    if (roll >= 50) {
      // Often a release that waits for an approval, so that approvals and
      // rejections are sent as much as the rest.
      auto waiting = api.get("/api/v1/releases?pipeline=Kc&status=WaitingForApproval&limit=20");
      if (waiting && !waiting.value()["releases"].empty()) {
        const json& list = waiting.value()["releases"];
        id = list[std::uniform_int_distribution<std::size_t>(0, list.size() - 1)(rng)]["id"];
      }
    }
    if (id.empty() || (creates < kCreatesPerCycle && roll < 35)) {
      create_release(api, user, user + "-" + std::to_string(cycle) + "-" + std::to_string(n), cycle, ledger, artifact);
      ++creates;
    } else if (auto summary = api.get("/api/v1/releases/" + id)) {
      // The plausible commands, by the stages' states; a few implausible ones too.
      std::vector<std::pair<std::string, std::string>> options;  // kind, stage
      for (const json& stage : summary.value()["stages"]) {
        const std::string name = stage["name"], status = stage["status"];
        if (status == "AwaitingPreApproval" || status == "AwaitingPostApproval") {
          options.insert(options.end(), 8, {"approve", name});
          options.emplace_back("reject", name);
        }
        if (status == "Deploying" || status == "Triggered" || status.rfind("Awaiting", 0) == 0) options.emplace_back("cancel", name);
        if (is_finished(status)) options.emplace_back("redeploy", name);
        if (status == "NotStarted" && name == "hotfix") options.emplace_back("deploy", name);
      }
      const int extra = std::uniform_int_distribution<int>(0, 99)(rng);
      if (extra < 5) options.emplace_back("abandon", "");
      if (extra >= 90 || options.empty()) options.emplace_back(extra % 2 == 0 ? "approve" : "cancel", extra % 3 == 0 ? "qa" : "prod");
      const auto& [kind, stage] = options[std::uniform_int_distribution<std::size_t>(0, options.size() - 1)(rng)];
      Result<json> answer = make_error(ErrorCode::kInternal, "not sent");
      const std::string base = "/api/v1/releases/" + id;
      if (kind == "approve" || kind == "reject") {
        answer = api.post(base + "/stages/" + stage + "/approvals", {{"decision", kind}, {"comment", user}});
      } else if (kind == "abandon") {
        answer = api.post(base + "/abandon", {{"reason", "by " + user}});
      } else {
        answer = api.post(base + "/stages/" + stage + "/" + kind, json::object());
      }
      if (answer) ledger.acknowledged(Ack{cycle, user, kind, id, stage, "", answer.value()});
    }
    // Pacing only (a client thinks between commands); no outcome depends on it.
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(10, 40)(rng)));
  }
}

// Every release's summary, newest first, read a page at a time.
Result<std::vector<json>> all_releases(ApiClient& api) {
  std::vector<json> releases;
  std::string cursor;
  for (;;) {
    CASCADE_TRY(page, api.get("/api/v1/releases?pipeline=Kc&limit=100" +
                              (cursor.empty() ? std::string() : "&cursor=" + tools::url_encode(cursor))));
    for (const json& release : page["releases"]) releases.push_back(release);
    if (!page["next_cursor"].is_string()) return releases;
    cursor = page["next_cursor"].get<std::string>();
  }
}

// What is missing in `events` of an acknowledged command, or "".
std::string effect_missing(const Ack& ack, const json& events) {
  if (ack.kind == "create") {
    if (events.empty() || events[0]["type"] != "ReleaseCreated") return "no ReleaseCreated";
    const std::string command = events[0]["command_id"];
    if (events[0]["actor"] != ack.user) return "created by " + events[0]["actor"].dump();
    if (command.size() < ack.key.size() || command.compare(command.size() - ack.key.size(), ack.key.size(), ack.key) != 0) {
      return "created by command " + command;
    }
    return "";
  }
  const std::int64_t version = ack.answer.value("version", std::int64_t{0});
  if (version < 1 || version > static_cast<std::int64_t>(events.size())) {
    return "answered version " + std::to_string(version) + ", the log holds " + std::to_string(events.size());
  }
  const json& last = events[static_cast<std::size_t>(version - 1)];
  auto last_is = [&](std::initializer_list<const char*> types) {
    for (const char* type : types) {
      if (last["type"] == type && last["actor"] == ack.user &&
          (ack.stage.empty() || last["data"].value("stage", "") == ack.stage)) {
        return std::string();
      }
    }
    return "version " + std::to_string(version) + " is " + last["type"].get<std::string>() + " by " +
           last["actor"].dump();
  };
  if (ack.kind == "approve") return last_is({"ApprovalGranted"});
  if (ack.kind == "reject") return last_is({"ApprovalRejected"});
  if (ack.kind == "cancel") return last_is({"DeploymentCanceled", "StageCanceled"});
  if (ack.kind == "abandon") return last_is({"ReleaseAbandoned"});
  // deploy, redeploy: the attempt it answered was triggered by this user (an
  // approval request may follow in the same append).
  const int attempt = ack.answer["stage"].value("attempt", 0);
  for (const json& event : events) {
    if (event["version"].get<std::int64_t>() > version) break;
    if (event["type"] == "StageTriggered" && event["actor"] == ack.user && event["data"]["stage"] == ack.stage &&
        event["data"]["attempt"] == attempt) {
      return "";
    }
  }
  return "no StageTriggered of attempt " + std::to_string(attempt) + " by " + ack.user;
}

TEST_F(KillCyclesTest, ThreeKillNineCyclesUnderFourWritingClientsLoseNothingAcknowledged) {
  const char* given_seed = std::getenv("CASCADE_KILL_CYCLES_SEED");
  const unsigned seed = given_seed != nullptr ? static_cast<unsigned>(std::strtoul(given_seed, nullptr, 10))
                                              : std::random_device{}();
  std::cout << "seed " << seed << " (CASCADE_KILL_CYCLES_SEED=" << seed << " repeats the kill moments and choices)"
            << std::endl;
  SCOPED_TRACE("CASCADE_KILL_CYCLES_SEED=" + std::to_string(seed));
  std::mt19937 rng(seed);
  const auto started = SteadyClock::now();

  std::filesystem::create_directories(data() + "/artifacts/kc");
  const std::string admin = add_user("admin", "admin");
  std::vector<std::string> tokens;
  for (int c = 0; c < kClients; ++c) tokens.push_back(add_user("client-" + std::to_string(c), "approver"));
  ASSERT_EQ(admin.size(), 64u);

  Ledger ledger;
  for (int cycle = 1; cycle <= kCycles; ++cycle) {
    ServeProcess server({"--data", data()});
    ASSERT_TRUE(server.started()) << server.output();
    if (cycle == 1) {
      ApiClient api = client_of(server, admin);
      auto applied = api.put("/api/v1/pipelines/Kc", pipeline());
      ASSERT_TRUE(applied) << applied.error().message;
    }
    std::atomic<bool> stop{false};
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c) {
      const unsigned client_seed = seed + static_cast<unsigned>(cycle * 100 + c);
      clients.emplace_back([&, c, client_seed] {
        write_until_stopped(server, "client-" + std::to_string(c), tokens[static_cast<std::size_t>(c)], cycle,
                            client_seed, stop, ledger, data() + "/artifacts/kc");
      });
    }
    // The kill moment: random, not something the test waits for.
    const auto kill_after = std::chrono::milliseconds(
        std::uniform_int_distribution<long>(kKillAfterMin.count(), kKillAfterMax.count())(rng));
    std::this_thread::sleep_for(kill_after);
    const std::optional<int> killed = server.stop(SIGKILL, kStopDeadline);
    stop = true;
    for (std::thread& thread : clients) thread.join();
    ASSERT_EQ(killed, std::optional<int>(128 + SIGKILL)) << server.output();
    std::cout << "cycle " << cycle << ": kill -9 after " << kill_after.count() << " ms; " << ledger.acks().size()
              << " commands acknowledged so far" << std::endl;
  }

  // A clean start: creates left unanswered are sent again with their keys,
  // then everything that can proceed does.
  ServeProcess server({"--data", data()});
  ASSERT_TRUE(server.started()) << server.output();
  for (int c = 0; c < kClients; ++c) {
    const std::string user = "client-" + std::to_string(c);
    ApiClient api = client_of(server, tokens[static_cast<std::size_t>(c)]);
    for (const std::string& key : ledger.unanswered_of(user)) {
      create_release(api, user, key, kCycles + 1, ledger, data() + "/artifacts/kc");
    }
    EXPECT_TRUE(ledger.unanswered_of(user).empty()) << user << "'s creates are refused after the restart";
  }
  const std::vector<Ack> acks = ledger.acks();
  std::set<std::string> acknowledged_releases;
  for (const Ack& ack : acks) {
    if (ack.kind == "create") acknowledged_releases.insert(ack.release);
  }
  ASSERT_FALSE(acknowledged_releases.empty()) << "no create was acknowledged";

  ApiClient api = client_of(server, admin);
  std::vector<json> releases;
  std::vector<std::string> unsettled;
  for (const auto until = SteadyClock::now() + kSettleDeadline;;) {
    auto listed = all_releases(api);
    ASSERT_TRUE(listed) << listed.error().message;
    releases = std::move(listed).value();
    std::set<std::string> listed_ids;
    unsettled.clear();
    for (const json& release : releases) {
      listed_ids.insert(release["id"].get<std::string>());
      if (release.value("status", "") == "InProgress") unsettled.push_back(release["id"]);
    }
    bool all_listed = true;
    for (const std::string& id : acknowledged_releases) all_listed = all_listed && listed_ids.count(id) != 0;
    if (unsettled.empty() && all_listed) break;
    ASSERT_LT(SteadyClock::now(), until) << unsettled.size() << " releases still in progress, first "
                                         << (unsettled.empty() ? "(none: an acknowledged release is not listed)"
                                                               : unsettled.front())
                                         << "\n" << server.output();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  // Every release: settled stage by stage, verified, its deployments started
  // once and ended once, failed only by an interruption.
  std::map<std::string, json> events_of;
  std::map<std::string, std::string> release_of_create_command;
  int interrupted = 0, deployments = 0;
  for (const json& listed : releases) {
    const std::string id = listed["id"];
    SCOPED_TRACE(id);
    auto summary = api.get("/api/v1/releases/" + id);
    ASSERT_TRUE(summary) << summary.error().message;
    for (const json& stage : summary.value()["stages"]) {
      const std::string status = stage["status"];
      EXPECT_TRUE(status != "Deploying" && status != "Triggered" && status != "Approved" && status != "Deferred")
          << "stage " << stage["name"] << " is left " << status;
      if (status == "Failed") {
        EXPECT_EQ(stage["failure_reason"], kInterrupted) << stage.dump();
      }
    }
    auto verified = api.get("/api/v1/releases/" + id + "/verify");
    ASSERT_TRUE(verified) << verified.error().message;
    EXPECT_EQ(verified.value()["ok"], true) << verified.value().dump(2);

    auto events = api.get("/api/v1/releases/" + id + "/events");
    ASSERT_TRUE(events) << events.error().message;
    const json& list = events.value()["events"];
    ASSERT_FALSE(list.empty());
    const std::string create_command = list[0]["command_id"];
    EXPECT_EQ(release_of_create_command.count(create_command), 0u)
        << "command " << create_command << " created " << release_of_create_command[create_command] << " and " << id;
    release_of_create_command[create_command] = id;
    std::map<std::pair<std::string, int>, int> starts, ends;
    for (const json& event : list) {
      const std::string type = event["type"];
      if (type.rfind("Deployment", 0) != 0) continue;
      const auto deployment = std::make_pair(event["data"]["stage"].get<std::string>(), event["data"]["attempt"].get<int>());
      if (type == "DeploymentStarted") {
        ++starts[deployment];
        ++deployments;
        continue;
      }
      ++ends[deployment];
      if (type == "DeploymentFailed") {
        EXPECT_EQ(event["data"]["reason"], kInterrupted) << event.dump();
        ++interrupted;
      }
    }
    for (const auto& [deployment, count] : starts) {
      EXPECT_EQ(count, 1) << deployment.first << " attempt " << deployment.second << " started " << count << " times";
      EXPECT_EQ(ends[deployment], 1) << deployment.first << " attempt " << deployment.second << " ended "
                                     << ends[deployment] << " times";
    }
    events_of[id] = list;
  }

  // Every acknowledged command is there, with its effect.
  std::map<std::string, int> by_kind;
  for (const Ack& ack : acks) {
    ++by_kind[ack.kind];
    auto found = events_of.find(ack.release);
    if (found == events_of.end()) {
      ADD_FAILURE() << "cycle " << ack.cycle << ": " << ack.user << "'s acknowledged " << ack.kind << " of "
                    << ack.release << ": no such release after the restarts";
      continue;
    }
    const std::string missing = effect_missing(ack, found->second);
    EXPECT_EQ(missing, "") << "cycle " << ack.cycle << ": " << ack.user << "'s acknowledged " << ack.kind << " "
                           << ack.stage << " of " << ack.release << " (answered " << ack.answer.dump() << ")";
  }
  std::map<std::string, int> by_status;
  for (const json& release : releases) ++by_status[release.value("status", "")];
  std::cout << "releases by status:";
  for (const auto& [status, count] : by_status) std::cout << " " << status << " " << count;
  std::cout << "\n" << releases.size() << " releases, " << deployments << " deployments, " << interrupted
            << " interrupted; acknowledged:";
  for (const auto& [kind, count] : by_kind) std::cout << " " << kind << " " << count;
  std::cout << "; " << ledger.resent() << " unanswered creates sent again with their key" << std::endl;

  ASSERT_EQ(server.stop(SIGTERM, kStopDeadline), std::optional<int>(0)) << server.output();
  const CommandRun doctor = testing::run("doctor --data " + data());
  EXPECT_EQ(doctor.exit_code, 0) << doctor.output;
  std::cout << "took " << std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started).count()
            << " ms" << std::endl;
}

}  // namespace
}  // namespace cascade
