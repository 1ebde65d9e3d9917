// Replay and audit on recorded histories, without storage: time travel is
// the fold of a prefix, verification finds the first broken thing and names
// it, bundles round-trip, and `why` says what the state says.
#include "engine/audit.hpp"
#include "events/codec.hpp"
#include "events/time.hpp"
#include "projections/release_summary.hpp"

#include "tests/support/release_fixture.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace cascade::engine {
namespace {

using events::RecordedEvent;
using testing::ReleaseHistory;

constexpr Timestamp kStart = 1'800'000'000'000;  // 2027-01-15T08:00:00Z
constexpr std::int64_t kDay = 24LL * 3600 * 1000;

PipelineDefinition pipeline(const std::string& json) {
  auto parsed = parse_pipeline_text(json);
  EXPECT_TRUE(parsed) << (parsed ? "" : parsed.error().message);
  return parsed.value();
}

std::string render(const ReleaseState& state) { return projections::summarize(state).dump(); }

std::string digest_of(const std::vector<LogLine>& lines) {
  events::Sha256 digest;
  for (const LogLine& line : lines) digest.update(digest_bytes(line));
  return digest.finish();
}

// A release decided command by command, as the engine would: every event
// sealed into a hash chain, the pipeline stream beside it, and the log lines
// each step printed.
class RecordedRelease {
 public:
  explicit RecordedRelease(const PipelineDefinition& definition = testing::fork_join_pipeline()) {
    RecordedEvent defined;
    defined.event_id = "pipeline-1";
    defined.stream = pipeline_stream(definition.name);
    defined.version = 1;
    defined.position = ++position_;
    defined.recorded_at = kStart;
    defined.actor = "alice";
    defined.data = events::PipelineDefined{definition.name, 1, to_json(definition)};
    events::seal(defined);
    pipeline_.push_back(defined);

    CreateRelease create;
    create.release_id = definition.name + "-1";
    create.number = 1;
    create.name = "Release-1";
    create.pipeline_version = 1;
    create.definition = definition;
    create.artifact = {"1.0.0", "/artifacts/1.0.0", 0, "", ""};
    when(create, "dave");
  }

  void when(const Command& command, const std::string& actor) {
    CommandContext context;
    context.command_id = "cmd-" + std::to_string(++commands_);
    context.actor = actor;
    context.now = now_ += 1000;
    auto decided = decide(state_, command, context);
    ASSERT_TRUE(decided) << decided.error().message;
    for (const events::Event& e : decided.value()) {
      RecordedEvent r;
      r.event_id = context.command_id + "/" + std::to_string(state_.version + 1);
      r.stream = release_stream(state_.exists() ? state_.id : std::get<events::ReleaseCreated>(e).release_id);
      r.version = state_.version + 1;
      r.position = ++position_;
      r.recorded_at = context.now;
      r.actor = actor;
      r.command_id = context.command_id;
      r.correlation_id = r.stream;
      r.data = e;
      r.prev_hash = events_.empty() ? "" : events_.back().hash;
      events::seal(r);
      evolve(state_, r);
      events_.push_back(r);
    }
  }

  // The step runs, prints `lines` (stamped now), and finishes.
  void run_step(const std::string& stage, int index, bool succeeded, std::vector<std::string> lines,
                bool will_retry = false) {
    const int attempt = state_.find_stage(stage)->attempt;
    when(RecordStepStarted{stage, attempt, index}, "executor");
    StepLog* log = log_of(stage, attempt, index);
    std::vector<LogLine> printed;
    for (auto& text : lines) printed.push_back(LogLine{line_stamp.value_or(now_), "stdout", std::move(text)});
    log->lines.insert(log->lines.end(), printed.begin(), printed.end());
    RecordStepFinished finished;
    finished.stage = stage;
    finished.attempt = attempt;
    finished.step_index = index;
    finished.succeeded = succeeded;
    finished.exit_code = succeeded ? 0 : 3;
    finished.reason = succeeded ? "" : "exit code 3";
    finished.log_digest = digest_of(printed);
    finished.will_retry = will_retry;
    when(finished, "executor");
  }

  // A whole deployment of a two-step stage.
  void deploy(const std::string& stage, bool last_step_succeeds = true) {
    when(StartDeployment{stage}, "executor");
    const int attempt = state_.find_stage(stage)->attempt;
    run_step(stage, 0, true, {stage + " deploy: copying", stage + " deploy: done"});
    run_step(stage, 1, last_step_succeeds, {stage + " smoke"});
    when(FinishDeployment{stage, attempt}, "executor");
  }

  void run_to_completion() {
    when(TriggerStage{"dev", "release created"}, "orchestrator");
    deploy("dev");
    for (const char* stage : {"test", "qa"}) {
      when(TriggerStage{stage, "after dev succeeded"}, "orchestrator");
      deploy(stage);
    }
    when(TriggerStage{"prod", "after test, qa succeeded"}, "orchestrator");
    when(ApproveStage{"prod", "go", 0}, "release-manager");
    deploy("prod");
  }

  Evidence evidence() const {
    Evidence e;
    e.release_id = state_.id;
    e.release = StreamRead{release_stream(state_.id), events_, std::nullopt};
    e.pipeline = StreamRead{pipeline_[0].stream, pipeline_, std::nullopt};
    e.step_logs = logs_;
    e.summary = StoredSummary{render(state_), state_.version};
    return e;
  }

  const ReleaseState& state() const { return state_; }
  const std::vector<RecordedEvent>& events() const { return events_; }

  std::optional<Timestamp> line_stamp;  // the time printed lines carry (default: now)

 private:
  StepLog* log_of(const std::string& stage, int attempt, int index) {
    for (StepLog& log : logs_) {
      if (log.key.stage == stage && log.key.attempt == attempt && log.key.step_index == index) return &log;
    }
    StepLog log;
    log.key = StepLogKey{state_.id, stage, attempt, index};
    log.step = state_.definition.find_stage(stage)->steps[static_cast<std::size_t>(index)].name;
    logs_.push_back(std::move(log));
    return &logs_.back();
  }

  ReleaseState state_;
  std::vector<RecordedEvent> events_;
  std::vector<RecordedEvent> pipeline_;
  std::vector<StepLog> logs_;
  std::uint64_t position_ = 0;
  int commands_ = 0;
  Timestamp now_ = kStart;
};

// ---- Time travel -------------------------------------------------------------

TEST(AuditTest, FoldAtEveryVersionEqualsEvolvingThePrefixStepByStep) {
  RecordedRelease release;
  release.run_to_completion();
  const auto& events = release.events();
  ASSERT_GT(events.size(), 30u);
  ReleaseState stepwise;
  for (const RecordedEvent& event : events) {
    evolve(stepwise, event);
    const ReleaseState travelled = fold(events, event.version);
    EXPECT_EQ(travelled.version, event.version);
    EXPECT_EQ(render(travelled), render(stepwise)) << "at version " << event.version;
    const std::vector<RecordedEvent> prefix(events.begin(), events.begin() + event.version);
    EXPECT_EQ(render(travelled), render(fold(prefix))) << "at version " << event.version;
  }
  EXPECT_EQ(render(fold(events)), render(release.state()));
  EXPECT_EQ(fold(events, 1000).version, static_cast<std::int64_t>(events.size()));
  EXPECT_FALSE(fold(events, 0).exists());
}

TEST(AuditTest, FoldUpToATimeStopsAtTheLastEventRecordedBy) {
  RecordedRelease release;
  release.run_to_completion();
  const auto& events = release.events();
  EXPECT_FALSE(fold(events, std::nullopt, kStart).exists()) << "before the release was created";
  for (const RecordedEvent& event : events) {
    std::int64_t last = 0;
    for (const RecordedEvent& e : events) {
      if (e.recorded_at <= event.recorded_at) last = e.version;
    }
    EXPECT_EQ(fold(events, std::nullopt, event.recorded_at).version, last);
    EXPECT_EQ(fold(events, std::nullopt, event.recorded_at + 999).version, last) << "until the next second";
    EXPECT_EQ(render(fold(events, std::nullopt, event.recorded_at)), render(fold(events, last)));
  }
  // Both bounds: whichever is reached first.
  EXPECT_EQ(fold(events, 3, events.back().recorded_at).version, 3);
  EXPECT_EQ(fold(events, 1000, events[4].recorded_at).version,
            fold(events, std::nullopt, events[4].recorded_at).version);
}

TEST(AuditTest, AnAtIsAVersionOrAUtcTimeAndNothingElse) {
  auto none = parse_travel_target("");
  ASSERT_TRUE(none) << none.error().message;
  EXPECT_FALSE(none.value().any());
  auto version = parse_travel_target("12");
  ASSERT_TRUE(version) << version.error().message;
  EXPECT_EQ(version.value().version, std::optional<std::int64_t>(12));
  EXPECT_FALSE(version.value().time);
  auto time = parse_travel_target("2026-11-29T02:00Z");
  ASSERT_TRUE(time) << time.error().message;
  EXPECT_EQ(time.value().time, events::parse_rfc3339("2026-11-29T02:00:00Z").value());
  EXPECT_FALSE(time.value().version);

  auto message_of = [](const std::string& text) {
    auto parsed = parse_travel_target(text);
    EXPECT_FALSE(parsed) << text;
    if (parsed) return std::string();
    EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidArgument) << text;
    return parsed.error().message;
  };
  EXPECT_EQ(message_of("0"), "--at: versions start at 1");
  EXPECT_EQ(message_of("1234567890123456789"), "--at 1234567890123456789: version too large");
  EXPECT_EQ(message_of("soon"), "--at 'soon' is neither a version nor a UTC time like 2026-11-29T02:00:00Z");
  EXPECT_EQ(message_of("2026-11-29T02:00:00+01:00"),
            "--at '2026-11-29T02:00:00+01:00' is neither a version nor a UTC time like 2026-11-29T02:00:00Z");
}

TEST(AuditTest, TravelStopsAtTheEventReachedAndRefusesWhatTheStreamCannotReach) {
  RecordedRelease release;
  release.run_to_completion();
  const auto& events = release.events();
  const std::string id = release.state().id;

  auto fifth = travel(id, events, TravelTarget{5, std::nullopt}, "5");
  ASSERT_TRUE(fifth) << fifth.error().message;
  EXPECT_EQ(fifth.value().state.version, 5);
  EXPECT_EQ(fifth.value().reached, &events[4]);
  EXPECT_EQ(fifth.value().last_version, events.back().version);
  EXPECT_EQ(render(fifth.value().state), render(fold(events, 5)));

  auto beyond = travel(id, events, TravelTarget{events.back().version + 1, std::nullopt}, "999");
  ASSERT_FALSE(beyond);
  EXPECT_EQ(beyond.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(beyond.error().message, "release " + id + " has " + std::to_string(events.back().version) +
                                        " readable events; --at 999 is beyond its last version");

  auto before = travel(id, events, TravelTarget{std::nullopt, kStart - 1}, "then");
  ASSERT_FALSE(before);
  EXPECT_EQ(before.error().message.rfind("release " + id + " did not exist yet at then (created at ", 0), 0u)
      << before.error().message;
}

// ---- Verification ------------------------------------------------------------

TEST(AuditTest, AnIntactReleaseVerifies) {
  RecordedRelease release;
  release.run_to_completion();
  const Verification v = verify(release.evidence(), render);
  ASSERT_TRUE(v.ok()) << v.failure->message;
  ASSERT_EQ(v.checks.size(), 4u);
  for (const Check& check : v.checks) EXPECT_EQ(check.outcome, CheckOutcome::kPassed) << check.name;
  EXPECT_EQ(v.checks[0].name, "release stream");
  EXPECT_EQ(v.checks[0].detail,
            "release-SampleApp-1: versions 1–" + std::to_string(release.events().size()) +
                ", every hash and link intact");
  EXPECT_EQ(v.checks[2].detail, "8 step logs, 8 tries, 12 lines: every digest matches");
}

TEST(AuditTest, AMissingVersionIsNamed) {
  RecordedRelease release;
  release.run_to_completion();
  Evidence evidence = release.evidence();
  evidence.release.events.erase(evidence.release.events.begin() + 4);  // version 5
  const Verification v = verify(evidence, render);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.failure->kind, FindingKind::kMissingEvent);
  EXPECT_EQ(v.failure->location.stream, "release-SampleApp-1");
  EXPECT_EQ(v.failure->location.version, 5);
  EXPECT_EQ(v.failure->message,
            "stream release-SampleApp-1 version 5 is missing: version 4 is followed with version 6");
}

TEST(AuditTest, AlteredContentNamesVersionAndBothHashes) {
  RecordedRelease release;
  release.run_to_completion();
  Evidence evidence = release.evidence();
  auto granted = std::find_if(evidence.release.events.begin(), evidence.release.events.end(),
                              [](const RecordedEvent& e) {
                                return std::holds_alternative<events::ApprovalGranted>(e.data);
                              });
  ASSERT_NE(granted, evidence.release.events.end());
  RecordedEvent& approval = *granted;
  const std::size_t index = static_cast<std::size_t>(approval.version - 1);
  std::get<events::ApprovalGranted>(approval.data).approver = "mallory";
  const Verification v = verify(evidence, render);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.failure->kind, FindingKind::kEventChain);
  EXPECT_EQ(v.failure->location.version, approval.version);
  EXPECT_EQ(v.failure->location.position, approval.position);
  EXPECT_EQ(v.failure->expected, events::compute_hash(approval));
  EXPECT_EQ(v.failure->found, release.events()[index].hash);
  EXPECT_EQ(v.failure->message, "stream release-SampleApp-1 version " + std::to_string(approval.version) +
                                    ": content altered: hash expected '" +
                                    v.failure->expected + "', found '" + v.failure->found + "'");
  // The summary check still runs, and sees the forged approver too.
  EXPECT_EQ(v.checks[3].outcome, CheckOutcome::kFailed);
}

TEST(AuditTest, AChangedStepLogLineIsNamedWithItsStepAndDigests) {
  RecordedRelease release;
  release.run_to_completion();
  Evidence evidence = release.evidence();
  StepLog& qa_deploy = evidence.step_logs.at(4);
  ASSERT_EQ(qa_deploy.key.stage, "qa");
  const std::string recorded = digest_of(qa_deploy.lines);
  qa_deploy.lines[1].text[0] ^= 0x01;  // one bit of one byte
  const Verification v = verify(evidence, render);
  ASSERT_FALSE(v.ok());
  const Finding& f = *v.failure;
  EXPECT_EQ(f.kind, FindingKind::kStepLog);
  EXPECT_EQ(f.location.stage, "qa");
  EXPECT_EQ(f.location.attempt, 1);
  EXPECT_EQ(f.location.step_index, 0);
  EXPECT_EQ(f.location.step, "deploy");
  EXPECT_EQ(f.location.try_number, 1);
  EXPECT_TRUE(std::holds_alternative<events::StepSucceeded>(release.events().at(f.location.version - 1).data));
  EXPECT_EQ(f.expected, recorded);
  EXPECT_EQ(f.found, digest_of(qa_deploy.lines));
  EXPECT_NE(f.message.find("the log of stage qa attempt 1 step deploy (try 1) does not match its digest"),
            std::string::npos)
      << f.message;
}

// A step tried three times; `stamp` overrides the lines' times.
RecordedRelease retried_release(std::optional<Timestamp> stamp = std::nullopt) {
  RecordedRelease release(pipeline(R"({"name": "Retry", "stages": [{"name": "dev", "trigger": {"after_release": true},
      "steps": [{"name": "flaky", "run": "x", "retries": 2}]}]})"));
  release.line_stamp = stamp;
  release.when(TriggerStage{"dev", "release created"}, "orchestrator");
  release.when(StartDeployment{"dev"}, "executor");
  release.run_step("dev", 0, false, {"try 1", "boom"}, /*will_retry=*/true);
  release.run_step("dev", 0, false, {"try 2"}, /*will_retry=*/true);
  release.run_step("dev", 0, true, {"try 3", "ok", "done"});
  release.when(FinishDeployment{"dev", 1}, "executor");
  return release;
}

TEST(AuditTest, RetriedStepsShareOneLogSplitByTheirDigests) {
  const RecordedRelease release = retried_release();
  Evidence evidence = release.evidence();
  ASSERT_EQ(evidence.step_logs.size(), 1u);
  ASSERT_EQ(evidence.step_logs[0].lines.size(), 6u);
  Verification v = verify(evidence, render);
  ASSERT_TRUE(v.ok()) << v.failure->message;
  EXPECT_EQ(v.checks[2].detail, "1 step log, 3 tries, 6 lines: every digest matches");

  Evidence tampered = release.evidence();
  tampered.step_logs[0].lines[3].text = "tRy 3";
  v = verify(tampered, render);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.failure->kind, FindingKind::kStepLog);
  EXPECT_EQ(v.failure->location.try_number, 3);

  tampered = release.evidence();
  tampered.step_logs[0].lines[0].text = "try I";
  v = verify(tampered, render);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.failure->location.try_number, 1);
  EXPECT_EQ(v.failure->found, digest_of({tampered.step_logs[0].lines[0], tampered.step_logs[0].lines[1]}))
      << "found: the digest of the lines stamped up to the try's end";

  Evidence appended = release.evidence();
  appended.step_logs[0].lines.push_back(LogLine{0, "stdout", "written afterwards"});
  v = verify(appended, render);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.failure->location.try_number, 3) << "the last try covers every line after the earlier tries";
}

TEST(AuditTest, UnstampedLinesOfRetriedStepsAreSplitByDigestAlone) {
  const RecordedRelease release = retried_release(Timestamp{0});
  const Verification v = verify(release.evidence(), render);
  ASSERT_TRUE(v.ok()) << v.failure->message;
  EXPECT_EQ(v.checks[2].detail, "1 step log, 3 tries, 6 lines: every digest matches");
}

TEST(AuditTest, LinesOfATryThatNeverFinishedCarryNoDigest) {
  RecordedRelease release(pipeline(R"({"name": "Retry", "stages": [{"name": "dev", "trigger": {"after_release": true},
      "steps": [{"name": "flaky", "run": "x", "retries": 2}]}]})"));
  release.when(TriggerStage{"dev", "release created"}, "orchestrator");
  release.when(StartDeployment{"dev"}, "executor");
  release.run_step("dev", 0, false, {"try 1"}, /*will_retry=*/true);
  release.when(RecordStepStarted{"dev", 1, 0}, "executor");
  release.when(CancelStage{"dev", ""}, "alice");
  Evidence evidence = release.evidence();
  evidence.step_logs[0].lines.push_back(LogLine{0, "stdout", "try 2, killed"});
  const Verification v = verify(evidence, render);
  ASSERT_TRUE(v.ok()) << v.failure->message;
  EXPECT_EQ(v.checks[2].detail,
            "1 step log, 1 try, 1 line: every digest matches (1 line of tries that never finished carry no digest)");
}

TEST(AuditTest, ASummaryThatIsNotTheFoldNamesTheFirstDifference) {
  RecordedRelease release;
  release.run_to_completion();
  Evidence evidence = release.evidence();
  nlohmann::json forged = nlohmann::json::parse(evidence.summary->text);
  forged["stages"][3]["status"] = "Failed";
  evidence.summary->text = forged.dump();
  Verification v = verify(evidence, render);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.failure->kind, FindingKind::kSummary);
  EXPECT_EQ(v.failure->location.field, "/stages/3/status");
  EXPECT_EQ(v.failure->expected, "\"Succeeded\"");
  EXPECT_EQ(v.failure->found, "\"Failed\"");
  EXPECT_EQ(v.failure->message,
            "the stored summary of release SampleApp-1 differs from the fold of versions 1–" +
                std::to_string(release.events().size()) +
                " at /stages/3/status: expected \"Succeeded\", found \"Failed\"");

  // A document the projection should hold but does not.
  evidence = release.evidence();
  evidence.summary->text.clear();
  v = verify(evidence, render);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.failure->kind, FindingKind::kSummary);
  EXPECT_EQ(v.failure->message, "the summary projection has seen version " + std::to_string(release.events().size()) +
                                    " of release SampleApp-1 but holds no summary of it");

  // A lagging projection is compared with the fold of what it has seen.
  evidence = release.evidence();
  evidence.summary = StoredSummary{render(fold(release.events(), 10)), 10};
  v = verify(evidence, render);
  ASSERT_TRUE(v.ok()) << v.failure->message;
  EXPECT_NE(v.checks[3].detail.find("has not yet seen versions 11–"), std::string::npos) << v.checks[3].detail;
}

TEST(AuditTest, ThePipelineStreamIsCheckedThroughTheReleasesVersion) {
  RecordedRelease release;
  release.run_to_completion();
  Evidence evidence = release.evidence();
  std::get<events::PipelineDefined>(evidence.pipeline.events[0].data).definition["description"] = "edited";
  Verification v = verify(evidence, render);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.failure->kind, FindingKind::kPipelineChain);
  EXPECT_EQ(v.failure->location.stream, "pipeline-SampleApp");
  EXPECT_EQ(v.failure->location.version, 1);

  evidence = release.evidence();
  evidence.pipeline.events.clear();
  v = verify(evidence, render);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.failure->kind, FindingKind::kMissingEvent);
  EXPECT_EQ(v.failure->location.stream, "pipeline-SampleApp");
  EXPECT_EQ(v.failure->location.version, 1);
}

TEST(AuditTest, TheSnapshotOfEveryExampleMatchesItsPipelineVersion) {
  // The pipeline check compares ReleaseCreated's snapshot with the
  // PipelineDefined it came from; both go through parse and to_json.
  for (const char* file : {"/tools/examples/sampleapp.json", "/tools/examples/release-control.json"}) {
    std::ifstream in(std::string(CASCADE_SOURCE_DIR) + file);
    const std::string text((std::istreambuf_iterator<char>(in)), {});
    auto parsed = parse_pipeline_text(text);
    ASSERT_TRUE(parsed) << file;
    // As applied: secret values are in the secret store, the definition keeps digests.
    auto seal = [](VariableMap& variables) {
      for (auto& [name, variable] : variables) {
        if (!variable.secret) continue;
        variable.value.clear();
        variable.secret_digest = std::string(64, 'a');
      }
    };
    seal(parsed.value().variables);
    for (StageDefinition& stage : parsed.value().stages) seal(stage.variables);
    const nlohmann::json stored = to_json(parsed.value());
    auto again = parse_pipeline(stored);
    ASSERT_TRUE(again) << file;
    EXPECT_EQ(to_json(again.value()), stored) << file;
  }
}

// ---- Bundles -----------------------------------------------------------------

TEST(AuditTest, ABundleRoundTripsAndVerifiesOffline) {
  RecordedRelease release;
  release.run_to_completion();
  Evidence evidence = release.evidence();
  // A line that is not UTF-8, and not covered by the digest: the bundle must
  // carry its bytes exactly, so that offline verification finds what export found.
  evidence.step_logs[0].lines.push_back(LogLine{1, "stderr", std::string("bin\xff\xfe\x00" "ary", 9)});
  const Verification at_export = verify(evidence, render);
  const std::string text = to_bundle(evidence, at_export, kStart, "auditor").dump(2);
  EXPECT_NE(text.find("\"text_base64\": \"Ymlu//4AYXJ5\""), std::string::npos);
  auto bundle = read_bundle(text);
  ASSERT_TRUE(bundle) << bundle.error().message;
  EXPECT_EQ(bundle.value().evidence.step_logs[0].lines.back().text, std::string("bin\xff\xfe\x00" "ary", 9));
  EXPECT_EQ(bundle.value().exported_by, "auditor");
  const Verification offline = verify_bundle(bundle.value(), render);
  ASSERT_FALSE(offline.ok());
  EXPECT_EQ(to_json(*offline.failure), to_json(*at_export.failure));

  const std::string intact = to_bundle(release.evidence(), verify(release.evidence(), render), kStart, "a").dump();
  auto read = read_bundle(intact);
  ASSERT_TRUE(read);
  const Verification ok = verify_bundle(read.value(), render);
  EXPECT_TRUE(ok.ok()) << ok.failure->message;
  EXPECT_EQ(ok.checks.size(), 6u);
}

// What write_bundle writes for `evidence`, and what to_bundle holds.
std::string written(const Evidence& evidence, const Verification& at_export) {
  std::ostringstream out;
  const Status status = write_bundle(out, evidence, at_export, kStart, "auditor \"α\"");
  EXPECT_TRUE(status) << status.error().message;
  return out.str();
}
std::string held(const Evidence& evidence, const Verification& at_export) {
  return to_bundle(evidence, at_export, kStart, "auditor \"α\"").dump(2) + "\n";
}

TEST(AuditTest, AWrittenBundleIsTheBundleHeldInMemoryByteForByte) {
  RecordedRelease release;
  release.run_to_completion();
  Evidence evidence = release.evidence();
  // Text JSON escapes, text that is not UTF-8, an empty log, one that could
  // not be read, and two steps of one name (a JSON object keeps one).
  evidence.step_logs[0].lines.push_back(LogLine{1, "stderr", "quote \" backslash \\ tab \t bell \x07 é ✓"});
  evidence.step_logs[0].lines.push_back(LogLine{2, "stderr", std::string("bin\xff\xfe\x00" "ary", 9)});
  evidence.step_logs[1].lines.clear();
  evidence.step_logs[2].unreadable = "step log of release SampleApp-1 stage test: malformed line";
  evidence.step_logs[2].lines.clear();
  StepLog twin = evidence.step_logs[3];
  twin.key.step_index = 7;
  twin.lines = {LogLine{3, "stdout", "the twin"}};
  evidence.step_logs.push_back(twin);
  const Verification at_export = verify(evidence, render);
  ASSERT_FALSE(at_export.ok());
  EXPECT_EQ(written(evidence, at_export), held(evidence, at_export));

  // Nothing at all: empty arrays and objects, nulls.
  Evidence bare;
  bare.release_id = "Nothing-1";
  bare.release.stream = release_stream("Nothing-1");
  Finding empty;
  empty.kind = FindingKind::kMissingEvent;
  empty.location.stream = bare.release.stream;
  empty.message = "stream release-Nothing-1 is empty";
  bare.release.failure = empty;
  const Verification nothing = verify(bare, render);
  EXPECT_EQ(written(bare, nothing), held(bare, nothing));
  EXPECT_NE(written(bare, nothing).find("\"step_logs\": {},\n"), std::string::npos);

  // An intact release, as exported every day.
  const Verification ok = verify(release.evidence(), render);
  ASSERT_TRUE(ok.ok()) << ok.failure->message;
  EXPECT_EQ(written(release.evidence(), ok), held(release.evidence(), ok));
}

TEST(AuditTest, AWrittenBundleSaysWhenItsOutputFails) {
  RecordedRelease release;
  release.run_to_completion();
  std::ostringstream out;
  out.setstate(std::ios::badbit);
  const Status status = write_bundle(out, release.evidence(), verify(release.evidence(), render), kStart, "a");
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().code, ErrorCode::kUnavailable);
}

TEST(AuditTest, ABundleThatIsNotOneIsRefused) {
  auto not_json = read_bundle("{\"format\": ");
  ASSERT_FALSE(not_json);
  EXPECT_EQ(not_json.error().code, ErrorCode::kDataLoss);
  auto other = read_bundle(R"({"format": "something-else"})");
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code, ErrorCode::kInvalidArgument);
  auto damaged = read_bundle(R"({"format": "cascade-audit/1", "release_id": 7})");
  ASSERT_FALSE(damaged);
  EXPECT_EQ(damaged.error().code, ErrorCode::kDataLoss);
  EXPECT_NE(damaged.error().message.find("/release_id"), std::string::npos) << damaged.error().message;
}

// ---- Why ---------------------------------------------------------------------

// dev → (test ‖ qa) → prod, steps "deploy" and "smoke-test".
PipelineDefinition smoke_test_pipeline(const std::string& qa_extra = "", const std::string& prod_extra = "") {
  return pipeline(R"({"name": "SampleApp", "stages": [
    {"name": "dev", "trigger": {"after_release": true},
     "steps": [{"name": "deploy", "run": "d"}, {"name": "smoke-test", "run": "s"}]},
    {"name": "test", "trigger": {"after_stages": ["dev"]},
     "steps": [{"name": "deploy", "run": "d"}, {"name": "smoke-test", "run": "s"}]},
    {"name": "qa", "trigger": {"after_stages": ["dev"]},
     "steps": [{"name": "deploy", "run": "d"}, {"name": "smoke-test", "run": "s")" + qa_extra + R"(}]},
    {"name": "prod", "trigger": {"after_stages": ["test", "qa"]}, "pre_approval": {"approvers": ["release-manager"]},
     "steps": [{"name": "deploy", "run": "d"}, {"name": "smoke-test", "run": "s"}])" + prod_extra + R"(},
    {"name": "hotfix", "trigger": {"manual": true}, "steps": [{"name": "deploy", "run": "d"}]}]})");
}

TEST(AuditWhyTest, ProdWaitingForItsApproval) {
  ReleaseHistory release(smoke_test_pipeline());
  release.advance_to_prod_approval();
  EXPECT_EQ(explain_stage(release.state(), "prod"),
            "prod is waiting: approval by release-manager requested at 2027-01-15T08:00:23.000Z, 1 of 1 pending; "
            "deadline 2027-02-14T08:00:23.000Z");
}

TEST(AuditWhyTest, ProdNotTriggeredBecauseQaFailed) {
  ReleaseHistory release(smoke_test_pipeline());
  ASSERT_TRUE(release.when(TriggerStage{"dev", "release created"}, "orchestrator"));
  release.deploy("dev");
  ASSERT_TRUE(release.when(TriggerStage{"test", "after dev succeeded"}, "orchestrator"));
  release.deploy("test");
  ASSERT_TRUE(release.when(TriggerStage{"qa", "after dev succeeded"}, "orchestrator"));
  release.deploy("qa", /*last_step_succeeds=*/false);
  EXPECT_EQ(explain_stage(release.state(), "prod"), "prod was not triggered: qa failed at step smoke-test");
  EXPECT_EQ(explain_stage(release.state(), "qa"),
            "qa failed at 2027-01-15T08:00:22.000Z (attempt 1): step smoke-test failed: exit code 3");
  EXPECT_EQ(explain_stage(release.state(), "test"),
            "test succeeded at 2027-01-15T08:00:15.000Z (attempt 1, triggered: after dev succeeded)");
  EXPECT_EQ(explain_stage(release.state(), "hotfix"),
            "hotfix was not triggered: it is a manual stage, waiting for someone to deploy it (cascade deploy "
            "SampleApp-1 hotfix)");
  EXPECT_EQ(explain_stage(release.state(), "nope"), "release SampleApp-1 has no stage 'nope' (stages: dev, test, qa, prod, hotfix)");
}

TEST(AuditWhyTest, UpstreamStillRunningOrWaiting) {
  ReleaseHistory release(smoke_test_pipeline());
  ASSERT_TRUE(release.when(TriggerStage{"dev", "release created"}, "orchestrator"));
  EXPECT_EQ(explain_stage(release.state(), "dev"),
            "dev is waiting to deploy: triggered at 2027-01-15T08:00:02.000Z (release created), attempt 1; the "
            "executor starts it next");
  EXPECT_EQ(explain_stage(release.state(), "prod"),
            "prod was not triggered: test was not triggered (dev is waiting to deploy); qa was not triggered (dev is "
            "waiting to deploy)");
  ASSERT_TRUE(release.when(StartDeployment{"dev"}, "executor"));
  ASSERT_TRUE(release.when(RecordStepStarted{"dev", 1, 0}, "executor"));
  EXPECT_EQ(explain_stage(release.state(), "dev"),
            "dev is deploying: attempt 1, started at 2027-01-15T08:00:03.000Z; step 1 of 2 (deploy) is running since "
            "2027-01-15T08:00:04.000Z");
  EXPECT_EQ(explain_stage(release.state(), "test"), "test was not triggered: dev is still deploying");
}

TEST(AuditWhyTest, ApprovedDeferredRejectedTimedOutAndCanceled) {
  {
    ReleaseHistory release(smoke_test_pipeline());
    release.advance_to_prod_approval();
    ASSERT_TRUE(release.when(ApproveStage{"prod", "", 0}, "release-manager"));
    EXPECT_EQ(explain_stage(release.state(), "prod"),
              "prod is waiting to deploy: approved by release-manager at 2027-01-15T08:00:24.000Z; the executor "
              "starts it next");
  }
  {
    ReleaseHistory release(smoke_test_pipeline());
    release.advance_to_prod_approval();
    ASSERT_TRUE(release.when(ApproveStage{"prod", "", kStart + kDay}, "release-manager"));
    EXPECT_EQ(explain_stage(release.state(), "prod"),
              "prod is deferred until 2027-01-16T08:00:00.000Z: approved by release-manager at "
              "2027-01-15T08:00:24.000Z");
  }
  {
    ReleaseHistory release(smoke_test_pipeline());
    release.advance_to_prod_approval();
    ASSERT_TRUE(release.when(RejectStage{"prod", "not today"}, "release-manager"));
    EXPECT_EQ(explain_stage(release.state(), "prod"),
              "prod was rejected by release-manager at 2027-01-15T08:00:24.000Z: \"not today\" (attempt 1)");
  }
  {
    ReleaseHistory release(smoke_test_pipeline());
    release.advance_to_prod_approval();
    release.advance(30 * kDay);
    ASSERT_TRUE(release.when(ExpireApproval{"prod"}, "scheduler"));
    EXPECT_EQ(explain_stage(release.state(), "prod"),
              "prod was rejected: the approval timed out at 2027-02-14T08:00:24.000Z (attempt 1)");
  }
  {
    ReleaseHistory release(smoke_test_pipeline());
    release.advance_to_prod_approval();
    ASSERT_TRUE(release.when(CancelStage{"prod", ""}, "alice"));
    EXPECT_EQ(explain_stage(release.state(), "prod"),
              "prod was canceled at 2027-01-15T08:00:24.000Z (attempt 1): canceled by alice");
  }
  {
    ReleaseHistory release(smoke_test_pipeline());
    release.advance_to_prod_approval();
    ASSERT_TRUE(release.when(AbandonRelease{"bad build"}, "alice"));
    EXPECT_EQ(explain_stage(release.state(), "hotfix"),
              "hotfix was not triggered: the release was abandoned (bad build)");
  }
}

TEST(AuditWhyTest, ApprovalsInProgressPartialSuccessAndPostApproval) {
  {
    ReleaseHistory release(smoke_test_pipeline(
        "", R"(, "post_approval": {"approvers": ["alice", "bob", "carol"], "required": 2, "order": "sequential"})"));
    release.advance_to_prod_approval();
    ASSERT_TRUE(release.when(ApproveStage{"prod", "", 0}, "release-manager"));
    release.deploy("prod");
    ASSERT_TRUE(release.when(ApproveStage{"prod", "", 0}, "alice"));
    EXPECT_EQ(explain_stage(release.state(), "prod"),
              "prod is waiting: post-deployment approval by alice, bob, carol requested at 2027-01-15T08:00:30.000Z, "
              "1 of 2 pending; approved so far by alice; in order, next: bob; deadline 2027-02-14T08:00:30.000Z");
  }
  {
    ReleaseHistory release(smoke_test_pipeline(R"(, "continue_on_error": true)"));
    ASSERT_TRUE(release.when(TriggerStage{"dev", "release created"}, "orchestrator"));
    release.deploy("dev");
    ASSERT_TRUE(release.when(TriggerStage{"test", "after dev succeeded"}, "orchestrator"));
    release.deploy("test");
    ASSERT_TRUE(release.when(TriggerStage{"qa", "after dev succeeded"}, "orchestrator"));
    release.deploy("qa", /*last_step_succeeds=*/false);
    EXPECT_EQ(explain_stage(release.state(), "qa"),
              "qa partially succeeded at 2027-01-15T08:00:22.000Z (attempt 1, triggered: after dev succeeded); "
              "failed but continued on error: smoke-test (exit code 3)");
    EXPECT_EQ(explain_stage(release.state(), "prod"),
              "prod was not triggered: qa only partially succeeded (the trigger does not set on_partial_success)");
  }
}

}  // namespace
}  // namespace cascade::engine
