// 64 threads commanding one release while its steps run: approve, reject,
// cancel, deploy, redeploy (some with one Idempotency-Key shared across
// threads), abandon — while the executor records its steps, a retried one
// among them. What must hold: every command is done or refused as not
// allowed in the state it met (never lost to contention, never an internal
// error) and a done one's answer shows it; no attempt and no try of a step is
// started twice, nor run twice; a step that succeeded is never recorded
// failed; one approver counts once per approval; the release verifies and its
// read model is what its events fold to.
#include "engine/audit.hpp"

#include "tests/support/engine_harness.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace cascade::testing {
namespace {

using events::RecordedEvent;

constexpr int kThreads = 64;
// Commands sent while every step holds; then steps run to their end.
constexpr int kHeldCommands = kThreads * 10;
// Then the threads go on until the runner has run this many steps (or the
// deadline passes), and each sends one last command, which may abandon.
constexpr int kStepRuns = 80;
constexpr auto kCommandingDeadline = std::chrono::seconds(20);

// Runs no process. Every step holds until the gate opens or the engine
// cancels it (as the real runner kills a canceled step), then succeeds —
// except the first try of "flaky" in each deployment, which fails so that
// the executor retries it. Records every run, to find one started twice.
class GateRunner final : public engine::StepRunner {
 public:
  engine::StepOutcome run(const engine::StepRequest& request) override {
    const std::string step = request.command;
    int try_number = 0;
    {
      std::unique_lock lock(mutex_);
      try_number = ++runs_[{request.deployment, step}];
      // Waits in short slices: the engine turns `cancel` without telling anyone.
      while (!open_ && !request.cancel->load()) changed_.wait_for(lock, std::chrono::milliseconds(5));
    }
    engine::StepOutcome outcome;
    if (request.cancel->load()) {
      outcome.canceled = true;
      return outcome;
    }
    request.on_line({0, "stdout", step + " try " + std::to_string(try_number) + " of " + request.deployment});
    outcome.exit_code = step == "flaky" && try_number == 1 ? 1 : 0;
    return outcome;
  }

  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }

  int total_runs() const {
    std::lock_guard lock(mutex_);
    int total = 0;
    for (const auto& [run, count] : runs_) total += count;
    return total;
  }

  // How often each step command ran for each deployment ("<release>/<stage>/<attempt>").
  std::map<std::pair<std::string, std::string>, int> runs() const {
    std::lock_guard lock(mutex_);
    return runs_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool open_ = false;
  std::map<std::pair<std::string, std::string>, int> runs_;
};

std::string pipeline_json() {
  std::string approvers;
  for (int t = 0; t < kThreads; ++t) approvers += (t == 0 ? "\"user-" : ", \"user-") + std::to_string(t) + "\"";
  return R"({"name": "Hot", "stages": [
      {"name": "dev", "trigger": {"after_release": true},
       "steps": [{"name": "a", "run": "gate"}, {"name": "b", "run": "flaky", "retries": 1}]},
      {"name": "prod", "trigger": {"after_stages": ["dev"]},
       "pre_approval": {"approvers": [)" + approvers + R"(], "required": 2},
       "post_approval": {"approvers": [)" + approvers + R"(]},
       "steps": [{"name": "s", "run": "gate"}]},
      {"name": "hotfix", "trigger": {"manual": true}, "steps": [{"name": "s", "run": "gate"}]}]})";
}

// One command a thread sent, and what came of it.
struct Sent {
  std::string what;        // "approve prod", …
  std::string command_id;  // empty: a fresh key
  Result<engine::ReleaseState> result;
};

class ConcurrentCommandsTest : public EngineHarness {
 protected:
  void SetUp() override {
    EngineHarness::SetUp();
    start(runner_, /*run=*/false);
    apply(pipeline_json());
    run();
  }

  // Waits (up to a deadline) until the runner holds the first step.
  bool wait_until_a_step_runs() {
    for (const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
         std::chrono::steady_clock::now() < until;) {
      if (runner_.total_runs() > 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  GateRunner runner_;
};

bool finished(engine::StageState state) {
  using engine::StageState;
  return state == StageState::kSucceeded || state == StageState::kPartiallySucceeded ||
         state == StageState::kFailed || state == StageState::kRejected || state == StageState::kCanceled;
}

// A command for thread `t` at its step `i`, drawn from `rng`: mostly one the
// release's state, as the thread reads it, makes plausible (the state may
// well change before the command lands), now and then any command at all.
// Cancels and rejections only when `may_disrupt`: sent freely, they would end
// every attempt before its steps ran. The last one may abandon the release.
Sent draw_command(std::mt19937& rng, int t, int i, bool last, bool may_disrupt, const std::string& id,
                  engine::ReleaseService& service) {
  static const std::vector<std::string> kAll = {"approve", "reject", "cancel", "redeploy", "deploy"};
  static const std::vector<std::string> kHarmless = {"approve", "redeploy", "deploy"};
  static const std::vector<std::string> kStages = {"dev", "prod", "hotfix"};
  const engine::Invocation as_user{"user-" + std::to_string(t), "", ""};
  Result<engine::ReleaseState> seen = service.load(id);
  if (!seen) return {"load", "", std::move(seen)};
  if (last && std::uniform_int_distribution<int>(0, 99)(rng) < 30) {
    return {"abandon", "", service.execute(id, engine::AbandonRelease{"stress"}, as_user)};
  }
  std::vector<std::pair<std::string, std::string>> candidates;  // kind, stage
  auto add = [&](int weight, const std::string& kind, const std::string& stage) {
    candidates.insert(candidates.end(), static_cast<std::size_t>(weight), {kind, stage});
  };
  for (const engine::StageRecord& stage : seen.value().stages) {
    switch (stage.state()) {
      case engine::StageState::kAwaitingPreApproval:
      case engine::StageState::kAwaitingPostApproval:
        add(12, "approve", stage.name);
        if (may_disrupt) add(2, "reject", stage.name);
        break;
      case engine::StageState::kTriggered:
      case engine::StageState::kApproved:
      case engine::StageState::kDeploying:
        if (may_disrupt) add(4, "cancel", stage.name);
        break;
      case engine::StageState::kNotStarted:
        if (stage.name == "hotfix") add(2, "deploy", stage.name);
        break;
      default:
        if (finished(stage.state())) {
          add(2, "redeploy", stage.name);
          add(2, "shared redeploy", stage.name);
        }
        break;
    }
  }
  const auto any = [&](const std::vector<std::string>& from) {
    return from[std::uniform_int_distribution<std::size_t>(0, from.size() - 1)(rng)];
  };
  add(2, any(may_disrupt ? kAll : kHarmless), any(kStages));
  const auto [kind, stage] = candidates[std::uniform_int_distribution<std::size_t>(0, candidates.size() - 1)(rng)];
  const std::string what = kind + " " + stage;
  if (kind == "approve") return {what, "", service.execute(id, engine::ApproveStage{stage, "ok", 0, false}, as_user)};
  if (kind == "reject") return {what, "", service.execute(id, engine::RejectStage{stage, "no", false}, as_user)};
  if (kind == "cancel") return {what, "", service.execute(id, engine::CancelStage{stage, "stress"}, as_user)};
  if (kind == "redeploy") return {what, "", service.execute(id, engine::RedeployStage{stage, ""}, as_user)};
  if (kind == "deploy") return {what, "", service.execute(id, engine::DeployStage{stage}, as_user)};
  // One key for every thread at this step: however many send it, it is applied once.
  engine::Invocation keyed{"operator", "shared-redeploy-" + stage + "-" + std::to_string(i), ""};
  return {what, keyed.command_id, service.execute(id, engine::RedeployStage{stage, "shared"}, keyed)};
}

// Whether a refusal is an answer (the state does not allow the command) and
// not a fault. An approver approving twice is refused as not permitted.
bool refused_as_not_allowed(const Sent& sent) {
  const Error& error = sent.result.error();
  if (error.message.empty()) return false;
  if (error.code == ErrorCode::kFailedPrecondition || error.code == ErrorCode::kAlreadyExists) return true;
  return error.code == ErrorCode::kPermissionDenied && sent.what.rfind("approve ", 0) == 0 &&
         error.message.find("has already approved") != std::string::npos;
}

// What the state a successful command returned must show of it.
std::string effect_missing(const Sent& sent, const std::string& actor) {
  if (!sent.command_id.empty()) return "";  // a repeat answers the state as it is now
  const engine::ReleaseState& state = sent.result.value();
  if (sent.what == "abandon") return state.abandoned ? "" : "not abandoned";
  const std::string stage_name = sent.what.substr(sent.what.find(' ') + 1);
  const engine::StageRecord* stage = state.find_stage(stage_name);
  if (stage == nullptr) return "no stage " + stage_name;
  const std::string state_name(engine::to_string(stage->state()));
  if (sent.what.rfind("cancel ", 0) == 0) return stage->state() == engine::StageState::kCanceled ? "" : state_name;
  if (sent.what.rfind("redeploy ", 0) == 0 || sent.what.rfind("deploy ", 0) == 0) {
    return stage->state() == engine::StageState::kTriggered ||
                   stage->state() == engine::StageState::kAwaitingPreApproval
               ? ""
               : state_name;
  }
  if (sent.what.rfind("approve ", 0) == 0 || sent.what.rfind("reject ", 0) == 0) {
    if (stage->approvals.empty()) return "no approval recorded";
    const engine::ApprovalRecord& last = stage->approvals.back();
    const auto decision = sent.what.rfind("approve ", 0) == 0 ? engine::ApprovalDecision::kApproved
                                                               : engine::ApprovalDecision::kRejected;
    return last.approver == actor && last.decision == decision ? "" : "the last approval is another's";
  }
  return "";
}

TEST_F(ConcurrentCommandsTest, SixtyFourThreadsCommandOneReleaseWhileItsStepsRun) {
  const unsigned seed = std::random_device{}();
  std::cout << "seed " << seed << " (threads draw from seed + thread number)\n";
  SCOPED_TRACE("seed " + std::to_string(seed));
  const std::string id = create("Hot");
  ASSERT_TRUE(wait_until_a_step_runs()) << "dev never started";

  std::atomic<int> sent_count{0}, disruptions{0};
  const auto deadline = std::chrono::steady_clock::now() + kCommandingDeadline;
  std::mutex mutex;
  std::vector<std::string> faults;       // commands that failed otherwise than as not allowed
  std::vector<std::string> lost_effects;  // successes whose answer does not show the command
  std::map<std::string, std::pair<int, int>> tally;  // what → (done, refused)
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(seed + static_cast<unsigned>(t));
      for (int i = 0;; ++i) {
        if (++sent_count == kHeldCommands) runner_.open();
        const int runs = runner_.total_runs();
        const bool last = runs >= kStepRuns || std::chrono::steady_clock::now() > deadline;
        // About one cancel or rejection for every step run.
        const bool may_disrupt = disruptions.load() < runs + 8;
        Sent sent = draw_command(rng, t, i, last, may_disrupt, id, service());
        if (sent.what.rfind("cancel ", 0) == 0 || sent.what.rfind("reject ", 0) == 0) ++disruptions;
        std::lock_guard lock(mutex);
        if (sent.result) {
          ++tally[sent.what].first;
          const std::string missing = effect_missing(sent, "user-" + std::to_string(t));
          if (!missing.empty()) lost_effects.push_back(sent.what + ": " + missing);
        } else if (refused_as_not_allowed(sent)) {
          ++tally[sent.what].second;
        } else {
          faults.push_back(sent.what + ": " + std::string(to_string(sent.result.error().code)) + ": " +
                           sent.result.error().message);
        }
        if (last) break;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  runner_.open();
  settle();

  for (const auto& [what, counts] : tally) {
    std::cout << what << ": " << counts.first << " done, " << counts.second << " refused\n";
  }
  EXPECT_TRUE(faults.empty()) << faults.size() << " commands failed otherwise than as not allowed, first: "
                              << faults.front();
  EXPECT_TRUE(lost_effects.empty()) << lost_effects.size() << " answers do not show their command, first: "
                                    << lost_effects.front();
  int done = 0;
  for (const auto& [what, counts] : tally) done += counts.first;
  EXPECT_GT(done, 0) << "no command got through";

  const std::vector<RecordedEvent> history = events_of(id);
  ASSERT_FALSE(history.empty());

  // No attempt started twice, each ended once; attempts counted up by one.
  std::map<std::pair<std::string, int>, int> started, ended;
  std::map<std::string, int> last_attempt;
  std::map<std::tuple<std::string, int, int, int>, int> step_tries;  // stage, attempt, step, try
  std::map<std::string, std::vector<std::int64_t>> versions_of_command;
  std::map<std::string, std::vector<std::string>> approvers_of_open_request;  // stage → who approved it so far
  for (const RecordedEvent& event : history) {
    versions_of_command[event.command_id].push_back(event.version);
    if (const auto* e = std::get_if<events::ApprovalRequested>(&event.data)) {
      approvers_of_open_request[e->stage].clear();
    } else if (const auto* e = std::get_if<events::ApprovalGranted>(&event.data)) {
      auto& approvers = approvers_of_open_request[e->stage];
      EXPECT_EQ(std::count(approvers.begin(), approvers.end(), e->approver), 0)
          << e->approver << " approved " << e->stage << " twice at version " << event.version;
      approvers.push_back(e->approver);
    }
    if (const auto* e = std::get_if<events::StageTriggered>(&event.data)) {
      EXPECT_EQ(e->attempt, last_attempt[e->stage] + 1) << e->stage << " at version " << event.version;
      last_attempt[e->stage] = e->attempt;
    } else if (const auto* e = std::get_if<events::DeploymentStarted>(&event.data)) {
      ++started[{e->stage, e->attempt}];
    } else if (const auto* e = std::get_if<events::DeploymentSucceeded>(&event.data)) {
      ++ended[{e->stage, e->attempt}];
    } else if (const auto* e = std::get_if<events::DeploymentCanceled>(&event.data)) {
      ++ended[{e->stage, e->attempt}];
    } else if (const auto* e = std::get_if<events::DeploymentFailed>(&event.data)) {
      ++ended[{e->stage, e->attempt}];
      ADD_FAILURE() << "every step succeeds, yet " << e->stage << " attempt " << e->attempt
                    << " failed: " << e->reason;
    } else if (const auto* e = std::get_if<events::StepStarted>(&event.data)) {
      ++step_tries[{e->stage, e->attempt, e->step_index, e->try_number}];
    } else if (const auto* e = std::get_if<events::StepFailed>(&event.data)) {
      // The only failure is the one the runner scripts: flaky's first try, retried.
      EXPECT_TRUE(e->step == "b" && e->will_retry && e->reason == "exit code 1")
          << e->stage << "/" << e->attempt << " step " << e->step << " recorded failed: " << e->reason;
    }
  }
  for (const auto& [deployment, count] : started) {
    EXPECT_EQ(count, 1) << deployment.first << " attempt " << deployment.second << " started " << count << " times";
    EXPECT_EQ(ended[deployment], 1) << deployment.first << " attempt " << deployment.second << " ended "
                                    << ended[deployment] << " times";
  }
  for (const auto& [step, count] : step_tries) {
    EXPECT_EQ(count, 1) << std::get<0>(step) << "/" << std::get<1>(step) << " step " << std::get<2>(step) << " try "
                        << std::get<3>(step) << " started " << count << " times";
  }
  // Each command's events were appended together, once.
  for (const auto& [command_id, versions] : versions_of_command) {
    EXPECT_EQ(versions.back() - versions.front() + 1, static_cast<std::int64_t>(versions.size()))
        << "the events of command " << command_id << " are not one append";
  }
  // The runner ran each try once, and exactly the tries the log started.
  std::map<std::string, int> runs_of_deployment, starts_of_deployment;
  for (const auto& [run, count] : runner_.runs()) {
    EXPECT_LE(count, run.second == "flaky" ? 2 : 1) << run.first << " ran " << run.second << " " << count << " times";
    runs_of_deployment[run.first] += count;
  }
  for (const auto& [step, count] : step_tries) {
    starts_of_deployment[engine::deployment_name(id, std::get<0>(step), std::get<1>(step))] += count;
  }
  EXPECT_EQ(runs_of_deployment, starts_of_deployment);
  std::cout << history.size() << " events, " << started.size() << " deployments, " << runner_.runs().size()
            << " steps run\n";

  // Settled: nothing is left deploying or about to.
  const engine::ReleaseState state = load(id);
  for (const engine::StageRecord& stage : state.stages) {
    EXPECT_TRUE(stage.state() != engine::StageState::kDeploying && stage.state() != engine::StageState::kTriggered &&
                stage.state() != engine::StageState::kApproved)
        << stage.name << " is " << engine::to_string(stage.state());
  }
  // The final state is the fold of the events, and the read model shows it.
  engine::ReleaseState folded;
  for (const RecordedEvent& event : history) engine::evolve(folded, event);
  EXPECT_EQ(projections::summarize(folded), projections::summarize(state));
  auto stored = summaries_->summary(id);
  ASSERT_TRUE(stored) << stored.error().message;
  EXPECT_EQ(nlohmann::json::parse(stored.value()), projections::summarize(folded));

  // And it verifies: both chains, every step log against its digest, the summary.
  auto evidence = engine::collect_evidence(store_->log(), runtime_->step_logs(), id);
  ASSERT_TRUE(evidence) << evidence.error().message;
  evidence.value().summary = engine::StoredSummary{stored.value(), state.version};
  const engine::Verification verification = engine::verify(
      evidence.value(), [](const engine::ReleaseState& s) { return projections::summarize(s).dump(); });
  EXPECT_TRUE(verification.ok()) << engine::to_json(verification).dump(2);
}

}  // namespace
}  // namespace cascade::testing
