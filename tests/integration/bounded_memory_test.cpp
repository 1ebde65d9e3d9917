// What the engine keeps in memory does not grow with every name it is sent,
// nor with the size of a step's log: creates for pipelines that do not exist
// leave nothing behind, and verifying or exporting a release whose step wrote
// 48 MiB holds a page of its log at a time, never the log.
#include "engine/audit.hpp"
#include "projections/release_summary.hpp"

#include "tests/support/cli_runner.hpp"
#include "tests/support/engine_harness.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace cascade::testing {
namespace {

class BoundedMemoryTest : public EngineHarness {};

TEST_F(BoundedMemoryTest, CreatesForUnknownPipelinesLeaveNoStateBehind) {
  run();
  apply(R"({"name": "Known", "stages": [{"name": "dev", "trigger": {"after_release": true},
            "steps": [{"name": "s", "run": "deploy"}]}]})");
  create("Known");
  settle();
  const std::uint64_t before = store_->statistics().streams_known;
  for (int i = 0; i < 10000; ++i) {
    engine::NewRelease request;
    request.pipeline = "Mistyped-" + std::to_string(i);
    request.artifact = {"1.0.0", "/artifacts/1.0.0", 0, "", ""};
    auto refused = service().create_release(request, engine::Invocation{"dave", "", ""});
    ASSERT_FALSE(refused);
    ASSERT_EQ(refused.error().code, ErrorCode::kNotFound) << refused.error().message;
    ASSERT_FALSE(service().load("Mistyped-" + std::to_string(i) + "-1"));
  }
  EXPECT_EQ(store_->statistics().streams_known, before);
  EXPECT_EQ(create("Known", "1.0.1"), "Known-2") << "known names still work";
}

// ---- A step that wrote 48 MiB ------------------------------------------------

constexpr std::size_t kLineBytes = 1024;
constexpr std::size_t kBigLines = 48 * 1024;  // 48 MiB of text
constexpr std::int64_t kMiB = 1 << 20;
// How much the peak resident memory may grow while the big release is
// verified or exported: a third of its log.
constexpr std::int64_t kAllowedGrowth = 16 * kMiB;

// Line `index` of a step's output: 1 KiB of text that differs from line to
// line (so that no two lines compress alike), which a test can recompute
// instead of reading it back.
std::string line_text(std::size_t index) {
  std::string text = "line " + std::to_string(index) + " ";
  std::uint64_t state = index * 0x9e3779b97f4a7c15ULL + 1;
  while (text.size() < kLineBytes) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    text += static_cast<char>('a' + state % 26);
  }
  return text;
}

// Prints `lines` lines of line_text() per step, stamped with the clock, and
// succeeds; the next release's steps print what is set then.
class LoudStepRunner final : public engine::StepRunner {
 public:
  explicit LoudStepRunner(const engine::Clock& clock) : clock_(clock) {}
  void print(std::size_t lines) { lines_ = lines; }
  engine::StepOutcome run(const engine::StepRequest& request) override {
    const std::size_t lines = lines_.load();
    for (std::size_t i = 0; i < lines; ++i) request.on_line({clock_.now(), "stdout", line_text(i)});
    engine::StepOutcome outcome;
    outcome.exit_code = 0;
    return outcome;
  }

 private:
  const engine::Clock& clock_;
  std::atomic<std::size_t> lines_{0};
};

// A field of /proc/self/status ("VmRSS", "VmHWM"), in bytes.
std::int64_t status_bytes(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) != 0) continue;
    std::istringstream value(line.substr(field.size() + 1));
    std::int64_t kib = 0;
    value >> kib;
    return kib * 1024;
  }
  return -1;
}

// Makes VmHWM (the peak resident memory) start again from VmRSS (Linux's
// clear_refs, value 5).
bool reset_peak_rss() {
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";
  clear.flush();
  return clear.good();
}

std::string render(const engine::ReleaseState& state) { return projections::summarize(state).dump(); }

class BigStepLogTest : public EngineHarness {
 protected:
  void SetUp() override {
    EngineHarness::SetUp();
    start(loud_);
    apply(R"({"name": "Loud", "stages": [{"name": "dev", "trigger": {"after_release": true},
              "steps": [{"name": "build", "run": "build"}]}]})");
  }

  // A release whose one step printed `lines` lines, finished and in the
  // summary; the step logs are flushed to table files, where a log that has
  // been there a while is read from.
  std::string release_printing(std::size_t lines) {
    loud_.print(lines);
    const std::string id = create("Loud", "1.0." + std::to_string(++releases_));
    settle();
    EXPECT_EQ(engine::release_status(load(id)), engine::ReleaseStatus::kSucceeded);
    EXPECT_TRUE(store_->flush_for_test());
    return id;
  }

  engine::StepLogKey build_log(const std::string& id) const { return engine::StepLogKey{id, "dev", 1, 0}; }

  LoudStepRunner loud_{clock_};
  int releases_ = 0;
};

TEST_F(BigStepLogTest, VerifyingAStepThatWrote48MiBHoldsAPageNotTheLog) {
  const std::string id = release_printing(kBigLines);
  runtime_->stop();  // nothing else allocates while this thread measures
  if (!reset_peak_rss()) GTEST_SKIP() << "/proc/self/clear_refs cannot reset the peak resident memory";
  const std::int64_t before = status_bytes("VmRSS");

  // What GET /api/v1/releases/{id}/verify and `cascade replay --verify` do.
  auto evidence = engine::collect_evidence(store_->log(), store_->step_logs(), id);
  ASSERT_TRUE(evidence) << evidence.error().message;
  const engine::Verification verification = engine::verify(evidence.value(), render);

  const std::int64_t growth = status_bytes("VmHWM") - before;
  ASSERT_TRUE(verification.ok()) << verification.failure->message;
  EXPECT_EQ(verification.checks.at(2).detail,
            "1 step log, 1 try, " + std::to_string(kBigLines) + " lines: every digest matches");
  std::cout << "verifying " << kBigLines * kLineBytes / kMiB << " MiB of step log: peak resident memory grew by "
            << growth / 1024 << " KiB\n";
  EXPECT_LT(growth, kAllowedGrowth) << "verification held the log";
}

TEST_F(BigStepLogTest, ExportingAStepThatWrote48MiBWritesItsLinesAsTheyAreRead) {
  const std::string id = release_printing(kBigLines);
  runtime_->stop();
  const std::string path = dir_ / "big.json";
  if (!reset_peak_rss()) GTEST_SKIP() << "/proc/self/clear_refs cannot reset the peak resident memory";
  const std::int64_t before = status_bytes("VmRSS");

  // What `cascade audit export` does.
  auto evidence = engine::collect_evidence(store_->log(), store_->step_logs(), id);
  ASSERT_TRUE(evidence) << evidence.error().message;
  const engine::Verification verification = engine::verify(evidence.value(), render);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    ASSERT_TRUE(engine::write_bundle(out, evidence.value(), verification, clock_.now(), "auditor"));
  }

  const std::int64_t growth = status_bytes("VmHWM") - before;
  ASSERT_TRUE(verification.ok()) << verification.failure->message;
  const auto size = static_cast<std::int64_t>(std::filesystem::file_size(path));
  EXPECT_GT(size, static_cast<std::int64_t>(kBigLines * kLineBytes));
  std::cout << "exporting " << kBigLines * kLineBytes / kMiB << " MiB of step log (a " << size / kMiB
            << " MiB bundle): peak resident memory grew by " << growth / 1024 << " KiB\n";
  EXPECT_LT(growth, kAllowedGrowth) << "the export held the log or the bundle";
}

TEST_F(BigStepLogTest, AnEditedLineInTheMiddleOfA48MiBLogIsFound) {
  const engine::Timestamp printed_at = clock_.now();
  const std::string id = release_printing(kBigLines);
  runtime_->stop();
  const std::vector<events::RecordedEvent> events = events_of(id);
  const events::RecordedEvent* finished = find_event(events, "StepSucceeded", "dev");
  ASSERT_NE(finished, nullptr);
  const std::string digest = std::get<events::StepSucceeded>(finished->data).log_digest;

  const std::size_t middle = kBigLines / 2;
  engine::LogLine edited{printed_at, "stdout", line_text(middle)};
  edited.text.back() = edited.text.back() == 'x' ? 'y' : 'x';
  ASSERT_TRUE(store_->rewrite_step_log_line_for_test(build_log(id), middle, edited));
  events::Sha256 stored;  // what the log now holds, from the lines the step printed
  for (std::size_t i = 0; i < kBigLines; ++i) {
    stored.update(engine::digest_bytes(i == middle ? edited : engine::LogLine{printed_at, "stdout", line_text(i)}));
  }

  auto evidence = engine::collect_evidence(store_->log(), store_->step_logs(), id);
  ASSERT_TRUE(evidence) << evidence.error().message;
  const engine::Verification verification = engine::verify(evidence.value(), render);
  ASSERT_FALSE(verification.ok());
  const engine::Finding& f = *verification.failure;
  EXPECT_EQ(f.kind, engine::FindingKind::kStepLog);
  EXPECT_EQ(f.location.version, finished->version);
  EXPECT_EQ(f.location.stage, "dev");
  EXPECT_EQ(f.location.step, "build");
  EXPECT_EQ(f.expected, digest);
  EXPECT_EQ(f.found, stored.finish());
  EXPECT_EQ(f.message, "stream release-" + id + " version " + std::to_string(finished->version) +
                           ": the log of stage dev attempt 1 step build (try 1) does not match its digest: expected '" +
                           digest + "', found '" + f.found + "'");
}

// `cascade audit export` writes, byte for byte, the bundle to_bundle holds
// in memory; a big one verifies offline.
TEST_F(BigStepLogTest, TheCliExportsTheInMemoryBundleByteForByte) {
  const std::string small = release_printing(3);
  const std::string big = release_printing(kBigLines);
  stop();
  const std::string data = "--data " + dir_.path();
  const std::string small_bundle = dir_ / "small.json";
  const std::string big_bundle = dir_ / "big.json";
  store_.reset();  // the commands open the data directory themselves
  const CommandRun exported = cascade::testing::run("audit export " + small + " --out " + small_bundle + " " + data);
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  const CommandRun exported_big = cascade::testing::run("audit export " + big + " --out " + big_bundle + " " + data);
  ASSERT_EQ(exported_big.exit_code, 0) << exported_big.output;
  const CommandRun verified_big = cascade::testing::run("audit verify " + big_bundle);
  ASSERT_EQ(verified_big.exit_code, 0) << verified_big.output;
  EXPECT_NE(verified_big.output.find(std::to_string(kBigLines) + " lines: every digest matches"), std::string::npos)
      << verified_big.output;
  open_store();

  // The in-memory bundle of the same evidence, with the export's time,
  // exporter and verification.
  const std::string written = read_file(small_bundle);
  const nlohmann::json parsed = nlohmann::json::parse(written);
  auto evidence = engine::collect_evidence(store_->log(), store_->step_logs(), small);
  ASSERT_TRUE(evidence) << evidence.error().message;
  auto summary = engine::read_bundle(written);
  ASSERT_TRUE(summary) << summary.error().message;
  evidence.value().summary = summary.value().evidence.summary;
  const std::string in_memory = engine::to_bundle(evidence.value(), summary.value().at_export,
                                                  parsed.at("exported_at_ms").get<engine::Timestamp>(),
                                                  parsed.at("exported_by").get<std::string>())
                                    .dump(2) +
                                "\n";
  EXPECT_EQ(written, in_memory);
}

}  // namespace
}  // namespace cascade::testing
