// Issue 14: an interrupted step is not tampering. The engine stops while a
// step runs (kill -9 of `cascade serve`, a crash); the next start records the
// deployment failed as interrupted. Verification then accepts the cut-off
// step — whatever lines of it survived — and still finds an edit of them.
#include "engine/audit.hpp"

#include "tests/support/engine_harness.hpp"

#include <condition_variable>
#include <mutex>

namespace cascade::engine {
namespace {

using events::RecordedEvent;

std::string render(const ReleaseState& state) { return projections::summarize(state).dump(); }

std::string digest_of(const std::vector<LogLine>& lines) {
  events::Sha256 digest;
  for (const LogLine& line : lines) digest.update(digest_bytes(line));
  return digest.finish();
}

// One try fails, or is cut off: it prints its lines, then runs until the
// engine cancels it (as stopping the engine does), like a step the engine
// died under.
class CutOffRunner final : public StepRunner {
 public:
  CutOffRunner(int failed_tries, int lines_per_try) : failed_tries_(failed_tries), lines_per_try_(lines_per_try) {}

  StepOutcome run(const StepRequest& request) override {
    int call = 0;
    {
      std::lock_guard lock(mutex_);
      call = ++calls_;
    }
    for (int i = 1; i <= lines_per_try_; ++i) {
      request.on_line({0, "stdout", "try " + std::to_string(call) + " line " + std::to_string(i)});
    }
    StepOutcome outcome;
    if (call <= failed_tries_) {
      outcome.exit_code = 3;
      return outcome;
    }
    std::unique_lock lock(mutex_);
    cut_ = true;
    changed_.notify_all();
    while (!request.cancel->load()) changed_.wait_for(lock, std::chrono::milliseconds(10));
    outcome.exit_code = -1;
    outcome.canceled = true;
    return outcome;
  }

  // Waits until the try to be cut off has printed its lines.
  bool wait_until_cut() {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(30), [&] { return cut_; });
  }

 private:
  const int failed_tries_;
  const int lines_per_try_;
  std::mutex mutex_;
  std::condition_variable changed_;
  int calls_ = 0;
  bool cut_ = false;
};

// Reads step logs through the store with one byte of line `line` of one step
// flipped on the way (RocksStore has no hook to rewrite a stored line).
class FlippedLineStepLogs final : public StepLogStore {
 public:
  FlippedLineStepLogs(StepLogStore& inner, StepLogKey key, std::size_t line)
      : inner_(inner), key_(std::move(key)), line_(line) {}
  Status append_line(const StepLogKey& key, const LogLine& line) override { return inner_.append_line(key, line); }
  Status flush() override { return inner_.flush(); }
  Result<std::vector<LogLine>> read(const StepLogKey& key) override {
    CASCADE_TRY(lines, inner_.read(key));
    std::vector<LogLine> out = std::move(lines);
    if (key.release_id == key_.release_id && key.stage == key_.stage && key.attempt == key_.attempt &&
        key.step_index == key_.step_index && line_ < out.size() && !out[line_].text.empty()) {
      out[line_].text[0] = static_cast<char>(out[line_].text[0] ^ 0x20);
    }
    return out;
  }

 private:
  StepLogStore& inner_;
  StepLogKey key_;
  std::size_t line_;
};

const char* kPipeline = R"({"name": "Cut", "stages": [
  {"name": "dev", "trigger": {"after_release": true},
   "steps": [{"name": "deploy", "run": "deploy", "retries": {"count": 2, "delay_s": 0}},
             {"name": "smoke", "run": "smoke"}]}]})";

class InterruptedVerificationTest : public testing::EngineHarness {
 protected:
  // The engine stops while try `failed_tries + 1` of dev's first step runs,
  // each try having printed `lines` lines; a new engine starts on the store.
  void interrupt_a_running_step(int failed_tries, int lines) {
    CutOffRunner runner(failed_tries, lines);
    start(runner);
    apply(kPipeline);
    id_ = create("Cut");
    ASSERT_TRUE(runner.wait_until_cut());
    stop();  // the step is canceled with the engine; nothing records its end
    restart_and_settle();
  }

  // A new engine on the same store: it finds dev Deploying, run by nobody.
  void restart_and_settle() {
    start();
    settle();
    const StageRecord* dev = load(id_).find_stage("dev");
    ASSERT_NE(dev, nullptr);
    ASSERT_EQ(dev->state(), StageState::kFailed);
    ASSERT_EQ(dev->failure_reason, "interrupted: the engine stopped during the deployment");
    runtime_->stop();
  }

  // dev's deployment begun by hand, as the engine would have: started, its
  // first step started (try 1…`tries`, every try but the last failing with
  // the given lines) — what a crash left behind.
  void begin_by_hand() {
    stop();
    start(scripted_, /*run=*/false);
    apply(kPipeline);
    id_ = create("Cut");
    ASSERT_TRUE(service().execute(id_, TriggerStage{"dev", "release created"},
                                  Invocation{"cascade/orchestrator", "orchestrator/" + id_ + "/dev/1", ""}));
    ASSERT_TRUE(service().execute(id_, StartDeployment{"dev"}, Invocation{"cascade/executor", "", ""}));
  }
  void try_by_hand(const std::vector<std::string>& texts, bool fails) {
    ASSERT_TRUE(service().execute(id_, RecordStepStarted{"dev", 1, 0}, Invocation{"cascade/executor", "", ""}));
    std::vector<LogLine> lines;
    for (const std::string& text : texts) lines.push_back({clock_.now(), "stdout", text});
    for (const LogLine& line : lines) ASSERT_TRUE(store_->step_logs().append_line(key(), line));
    if (!fails) return;
    RecordStepFinished finished;
    finished.stage = "dev";
    finished.attempt = 1;
    finished.step_index = 0;
    finished.exit_code = 3;
    finished.log_digest = digest_of(lines);
    finished.reason = "exit code 3";
    finished.will_retry = true;
    ASSERT_TRUE(store_->step_logs().flush());
    ASSERT_TRUE(service().execute(id_, finished, Invocation{"cascade/executor", "", ""}));
  }

  StepLogKey key() const { return StepLogKey{id_, "dev", 1, 0}; }

  Evidence evidence(StepLogStore* logs = nullptr) {
    auto collected = collect_evidence(store_->log(), logs != nullptr ? *logs : store_->step_logs(), id_);
    EXPECT_TRUE(collected) << collected.error().message;
    return collected ? std::move(collected).value() : Evidence{};
  }

  // The StepFailed the interruption recorded for dev's first step.
  const RecordedEvent* cut_off(const std::vector<RecordedEvent>& events) const {
    const RecordedEvent* found = nullptr;
    for (const RecordedEvent& e : events) {
      const auto* failed = std::get_if<events::StepFailed>(&e.data);
      if (failed != nullptr && failed->step_index == 0 && failed->exit_code == -1) found = &e;
    }
    return found;
  }

  const Check& step_logs_check(const Verification& v) const { return v.checks.at(2); }

  std::string id_;
};

TEST_F(InterruptedVerificationTest, AStepCutOffOnItsFirstTryVerifies) {
  interrupt_a_running_step(/*failed_tries=*/0, /*lines=*/3);
  const Verification v = verify(evidence(), render);
  ASSERT_TRUE(v.ok()) << v.failure->message;
  EXPECT_EQ(step_logs_check(v).detail, "1 step log, 1 try, 3 lines: every digest matches");
}

TEST_F(InterruptedVerificationTest, AStepCutOffOnARetryVerifiesWithTheEarlierTriesDigests) {
  interrupt_a_running_step(/*failed_tries=*/2, /*lines=*/2);
  const Verification v = verify(evidence(), render);
  ASSERT_TRUE(v.ok()) << v.failure->message;
  EXPECT_EQ(step_logs_check(v).detail, "1 step log, 3 tries, 6 lines: every digest matches");
}

TEST_F(InterruptedVerificationTest, AStepCutOffBeforeItPrintedAnythingVerifies) {
  interrupt_a_running_step(/*failed_tries=*/0, /*lines=*/0);
  const Verification v = verify(evidence(), render);
  ASSERT_TRUE(v.ok()) << v.failure->message;
  EXPECT_EQ(step_logs_check(v).detail, "1 step log, 1 try, 0 lines: every digest matches");
}

TEST_F(InterruptedVerificationTest, LinesLostInTheCrashAreNotMissing) {
  // The step printed three lines; the crash kept two (lines are stored
  // unsynced until the step's end), and the retry's one of two.
  begin_by_hand();
  try_by_hand({"try 1 line 1"}, /*fails=*/true);
  try_by_hand({"try 2 line 1", "try 2 line 2"}, /*fails=*/false);
  stop();
  restart_and_settle();
  const Verification v = verify(evidence(), render);
  ASSERT_TRUE(v.ok()) << v.failure->message;
  EXPECT_EQ(step_logs_check(v).detail, "1 step log, 2 tries, 3 lines: every digest matches");
}

TEST_F(InterruptedVerificationTest, AnEditOfACutOffStepsStoredLineIsFound) {
  interrupt_a_running_step(/*failed_tries=*/0, /*lines=*/3);
  const RecordedEvent* interrupted = cut_off(evidence().release.events);
  ASSERT_NE(interrupted, nullptr);
  FlippedLineStepLogs flipped(store_->step_logs(), key(), 1);
  const Verification v = verify(evidence(&flipped), render);
  ASSERT_FALSE(v.ok());
  const Finding& f = *v.failure;
  EXPECT_EQ(f.kind, FindingKind::kStepLog);
  EXPECT_EQ(f.location.version, interrupted->version);
  EXPECT_EQ(f.location.stage, "dev");
  EXPECT_EQ(f.location.step, "deploy");
  EXPECT_EQ(f.location.try_number, 1);
  EXPECT_EQ(f.found, digest_of(flipped.read(key()).value()));
}

TEST_F(InterruptedVerificationTest, AnEditOfTheCutOffRetrysLinesIsFoundAtThatTry) {
  interrupt_a_running_step(/*failed_tries=*/1, /*lines=*/2);
  const RecordedEvent* interrupted = cut_off(evidence().release.events);
  ASSERT_NE(interrupted, nullptr);
  FlippedLineStepLogs flipped(store_->step_logs(), key(), 3);  // "try 2 line 2"
  const Verification v = verify(evidence(&flipped), render);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.failure->kind, FindingKind::kStepLog);
  EXPECT_EQ(v.failure->location.version, interrupted->version);
  EXPECT_EQ(v.failure->location.try_number, 2);
}

TEST_F(InterruptedVerificationTest, ALineAddedToACutOffStepIsFound) {
  interrupt_a_running_step(/*failed_tries=*/0, /*lines=*/2);
  ASSERT_TRUE(store_->step_logs().append_line(key(), LogLine{clock_.now(), "stdout", "all good, honest"}));
  ASSERT_TRUE(store_->step_logs().flush());
  const Verification v = verify(evidence(), render);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.failure->kind, FindingKind::kStepLog);
  EXPECT_EQ(v.failure->location.try_number, 1);
  EXPECT_EQ(v.failure->found, digest_of(store_->step_logs().read(key()).value()));
}

}  // namespace
}  // namespace cascade::engine
