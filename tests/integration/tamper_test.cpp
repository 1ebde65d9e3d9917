// Tampering with a finished release on a real RocksDB store — one byte of an
// event, of a step log, of an evidence bundle; a deleted event; an altered
// summary — is found by verification, which names where.
#include "engine/audit.hpp"

#include "tests/support/engine_harness.hpp"

#include <fstream>
#include <sstream>

namespace cascade::engine {
namespace {

using events::RecordedEvent;

std::string render(const ReleaseState& state) { return projections::summarize(state).dump(); }

std::string digest_of(const std::vector<LogLine>& lines) {
  events::Sha256 digest;
  for (const LogLine& line : lines) digest.update(digest_bytes(line));
  return digest.finish();
}

// The bytes the log stores for an intact event (what events::seal returned).
std::string stored_bytes(const RecordedEvent& event) {
  nlohmann::json object = nlohmann::json::parse(events::canonical_bytes(event));
  object["hash"] = event.hash;
  return object.dump();
}

// `text` with the byte at the first occurrence of `marker` + `offset` changed to `to`.
std::string flip(const std::string& text, const std::string& marker, std::size_t offset, char to) {
  const auto at = text.find(marker);
  EXPECT_NE(at, std::string::npos) << marker;
  std::string out = text;
  if (at != std::string::npos) {
    EXPECT_NE(out[at + offset], to);
    out[at + offset] = to;
  }
  return out;
}

// Reads step logs through the store, with one byte of one line of one step
// flipped on the way: what a flipped byte on disk looks like to a reader.
// (RocksStore has no hook to rewrite a stored line in place.)
class FlippedByteStepLogs final : public StepLogStore {
 public:
  FlippedByteStepLogs(StepLogStore& inner, StepLogKey key) : inner_(inner), key_(std::move(key)) {}
  Status append_line(const StepLogKey& key, const LogLine& line) override { return inner_.append_line(key, line); }
  Status flush() override { return inner_.flush(); }
  Result<std::vector<LogLine>> read(const StepLogKey& key) override {
    CASCADE_TRY(lines, inner_.read(key));
    std::vector<LogLine> out = std::move(lines);
    if (key.release_id == key_.release_id && key.stage == key_.stage && key.attempt == key_.attempt &&
        key.step_index == key_.step_index && !out.empty() && !out[0].text.empty()) {
      out[0].text[0] = static_cast<char>(out[0].text[0] ^ 0x20);
    }
    return out;
  }

 private:
  StepLogStore& inner_;
  StepLogKey key_;
};

class TamperTest : public testing::EngineHarness {
 protected:
  void SetUp() override {
    EngineHarness::SetUp();
    run();
    apply(testing::kForkJoinPipeline);
    id_ = create("SampleApp");
    settle();
    ASSERT_EQ(state_of(id_, "prod"), StageState::kAwaitingPreApproval);
    clock_.advance(std::chrono::minutes(5));
    ASSERT_TRUE(service().execute(id_, ApproveStage{"prod", "go", 0}, Invocation{"release-manager", "", ""}));
    settle();
    ASSERT_EQ(release_status(load(id_)), ReleaseStatus::kSucceeded);
    events_ = events_of(id_);
    // Nothing may run while the store is tampered with; the projection stays
    // open, to be read.
    runtime_->stop();
  }

  Evidence evidence(StepLogStore* logs = nullptr) {
    auto collected = collect_evidence(store_->log(), logs != nullptr ? *logs : store_->step_logs(), id_);
    EXPECT_TRUE(collected) << collected.error().message;
    Evidence e = collected ? std::move(collected).value() : Evidence{};
    auto text = summaries_->summary(id_);
    EXPECT_TRUE(text) << text.error().message;
    auto checkpoint = summaries_->checkpoint();
    EXPECT_TRUE(checkpoint);
    StoredSummary stored;
    stored.text = text ? text.value() : "";
    for (const RecordedEvent& event : e.release.events) {
      if (checkpoint && event.position <= checkpoint.value()) stored.reflects_version = event.version;
    }
    e.summary = stored;
    return e;
  }

  const RecordedEvent& first(std::string_view type, const std::string& stage) const {
    const RecordedEvent* found = testing::find_event(events_, type, stage);
    if (found == nullptr) ADD_FAILURE() << "no " << type << " of " << stage;
    return found == nullptr ? events_.front() : *found;
  }

  std::string id_;
  std::vector<RecordedEvent> events_;
};

TEST_F(TamperTest, AnIntactReleaseVerifies) {
  const Verification v = verify(evidence(), render);
  ASSERT_TRUE(v.ok()) << v.failure->message;
  ASSERT_EQ(v.checks.size(), 4u);
  EXPECT_EQ(v.checks[0].detail, "release-SampleApp-1: versions 1–" + std::to_string(events_.size()) +
                                    ", every hash and link intact");
  EXPECT_EQ(v.checks[2].detail, "8 step logs, 8 tries, 8 lines: every digest matches");
  EXPECT_EQ(v.checks[3].detail,
            "the stored summary equals the fold of versions 1–" + std::to_string(events_.size()));
}

TEST_F(TamperTest, OneByteOfAnEventValueKeepingValidJsonIsAHashMismatch) {
  const RecordedEvent& granted = first("ApprovalGranted", "prod");
  const std::string forged = flip(stored_bytes(granted), R"("comment":"go")", 12, 'p');  // "go" → "gp"
  ASSERT_TRUE(store_->corrupt_event_for_test(granted.position, forged));

  const Verification v = verify(evidence(), render);
  ASSERT_FALSE(v.ok());
  const Finding& f = *v.failure;
  EXPECT_EQ(f.kind, FindingKind::kEventChain);
  EXPECT_EQ(f.location.stream, "release-SampleApp-1");
  EXPECT_EQ(f.location.version, granted.version);
  EXPECT_EQ(f.location.position, granted.position);
  auto altered = events::decode(forged, granted.position);
  ASSERT_TRUE(altered);
  EXPECT_EQ(f.expected, events::compute_hash(altered.value()));
  EXPECT_EQ(f.found, granted.hash);
  EXPECT_EQ(f.message, "stream release-SampleApp-1 version " + std::to_string(granted.version) +
                           ": content altered: hash expected '" + f.expected + "', found '" + granted.hash + "'");
  EXPECT_EQ(v.checks[0].outcome, CheckOutcome::kFailed);
  EXPECT_EQ(v.checks[1].outcome, CheckOutcome::kPassed) << "the pipeline stream is intact";
  EXPECT_EQ(v.checks[3].outcome, CheckOutcome::kFailed) << "the fold now says \"gp\"; the stored summary \"go\"";
}

// The command side folds with verification: it refuses to decide on an
// altered history rather than act on it, and writes nothing.
TEST_F(TamperTest, TheServiceRefusesToActOnAnAlteredRelease) {
  const RecordedEvent& granted = first("ApprovalGranted", "prod");
  const std::string forged = flip(stored_bytes(granted), R"("comment":"go")", 12, 'p');
  ASSERT_TRUE(store_->corrupt_event_for_test(granted.position, forged));

  ReleaseService fresh(store_->log(), store_->secrets(), clock_);
  auto loaded = fresh.load(id_);
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, ErrorCode::kDataLoss);
  EXPECT_NE(loaded.error().message.find("version " + std::to_string(granted.version) + ": content altered"),
            std::string::npos)
      << loaded.error().message;
  auto redeploy = fresh.execute(id_, RedeployStage{"dev", ""}, Invocation{"alice", "", ""});
  ASSERT_FALSE(redeploy);
  EXPECT_EQ(redeploy.error().code, ErrorCode::kDataLoss);
  EXPECT_EQ(store_->log().stream_version(release_stream(id_)).value(), events_.back().version) << "nothing appended";
}

TEST_F(TamperTest, OneByteOfAnEventBreakingItsJsonIsAnUnreadableEvent) {
  const RecordedEvent& succeeded = first("DeploymentSucceeded", "test");
  ASSERT_TRUE(store_->corrupt_event_for_test(succeeded.position, flip(stored_bytes(succeeded), "{", 0, '[')));

  const Verification v = verify(evidence(), render);
  ASSERT_FALSE(v.ok());
  const Finding& f = *v.failure;
  EXPECT_EQ(f.kind, FindingKind::kUnreadableEvent);
  EXPECT_EQ(f.location.stream, "release-SampleApp-1");
  EXPECT_EQ(f.location.version, succeeded.version);
  EXPECT_EQ(f.message, "stream release-SampleApp-1 version " + std::to_string(succeeded.version) +
                           ": event at log position " + std::to_string(succeeded.position) +
                           " is unreadable: not valid JSON");
  EXPECT_EQ(v.checks[2].outcome, CheckOutcome::kSkipped);
  EXPECT_EQ(v.checks[3].outcome, CheckOutcome::kSkipped);
}

TEST_F(TamperTest, ADeletedEventIsAMissingVersion) {
  const RecordedEvent& step = first("StepSucceeded", "qa");
  ASSERT_TRUE(store_->delete_event_for_test(step.position));

  const Verification v = verify(evidence(), render);
  ASSERT_FALSE(v.ok());
  const Finding& f = *v.failure;
  EXPECT_EQ(f.kind, FindingKind::kMissingEvent);
  EXPECT_EQ(f.location.stream, "release-SampleApp-1");
  EXPECT_EQ(f.location.version, step.version);
  EXPECT_EQ(f.message, "stream release-SampleApp-1 version " + std::to_string(step.version) +
                           ": event at log position " + std::to_string(step.position) + " is indexed but missing");
}

TEST_F(TamperTest, ALineAppendedToAStepLogBreaksItsDigest) {
  const RecordedEvent& finished = first("StepSucceeded", "qa");
  const auto& payload = std::get<events::StepSucceeded>(finished.data);
  const StepLogKey key{id_, "qa", payload.attempt, payload.step_index};
  ASSERT_TRUE(store_->step_logs().append_line(key, LogLine{clock_.now(), "stdout", "all good, honest"}));
  ASSERT_TRUE(store_->step_logs().flush());

  const Verification v = verify(evidence(), render);
  ASSERT_FALSE(v.ok());
  const Finding& f = *v.failure;
  EXPECT_EQ(f.kind, FindingKind::kStepLog);
  EXPECT_EQ(f.location.version, finished.version);
  EXPECT_EQ(f.location.stage, "qa");
  EXPECT_EQ(f.location.attempt, 1);
  EXPECT_EQ(f.location.step, payload.step);
  EXPECT_EQ(f.location.step_index, payload.step_index);
  EXPECT_EQ(f.location.try_number, 1);
  EXPECT_EQ(f.expected, payload.log_digest);
  EXPECT_EQ(f.found, digest_of(store_->step_logs().read(key).value()));
}

TEST_F(TamperTest, OneByteOfAStepLogLineBreaksItsDigest) {
  const RecordedEvent& finished = first("StepSucceeded", "prod");
  const auto& payload = std::get<events::StepSucceeded>(finished.data);
  const StepLogKey key{id_, "prod", payload.attempt, payload.step_index};
  FlippedByteStepLogs flipped(store_->step_logs(), key);

  const Verification v = verify(evidence(&flipped), render);
  ASSERT_FALSE(v.ok());
  const Finding& f = *v.failure;
  EXPECT_EQ(f.kind, FindingKind::kStepLog);
  EXPECT_EQ(f.location.version, finished.version);
  EXPECT_EQ(f.location.stage, "prod");
  EXPECT_EQ(f.location.step, payload.step);
  EXPECT_EQ(f.expected, payload.log_digest);
  EXPECT_EQ(f.found, digest_of(flipped.read(key).value()));
  EXPECT_EQ(f.message, "stream release-SampleApp-1 version " + std::to_string(finished.version) +
                           ": the log of stage prod attempt 1 step " + payload.step +
                           " (try 1) does not match its digest: expected '" + payload.log_digest + "', found '" +
                           f.found + "'");
}

TEST_F(TamperTest, AnAlteredSummaryIsNotTheFold) {
  Evidence e = evidence();
  nlohmann::json summary = nlohmann::json::parse(e.summary->text);
  summary["stages"][0]["approvals"] = nlohmann::json::array({{{"approver", "mallory"}}});
  e.summary->text = summary.dump();
  const Verification v = verify(e, render);
  ASSERT_FALSE(v.ok());
  const Finding& f = *v.failure;
  EXPECT_EQ(f.kind, FindingKind::kSummary);
  EXPECT_EQ(f.location.version, static_cast<std::int64_t>(events_.size()));
  EXPECT_EQ(f.location.field, "/stages/0/approvals/0");
  EXPECT_EQ(f.expected, "(absent)");
  EXPECT_EQ(f.found, R"({"approver":"mallory"})");
}

TEST_F(TamperTest, OneByteOfThePipelineStreamIsAPipelineChainFailure) {
  auto pipeline = store_->log().read(pipeline_stream("SampleApp"));
  ASSERT_TRUE(pipeline);
  ASSERT_EQ(pipeline.value().size(), 1u);
  const RecordedEvent& defined = pipeline.value()[0];
  ASSERT_TRUE(store_->corrupt_event_for_test(defined.position,
                                             flip(stored_bytes(defined), R"("release-manager")", 1, 'R')));
  const Verification v = verify(evidence(), render);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.failure->kind, FindingKind::kPipelineChain);
  EXPECT_EQ(v.failure->location.stream, "pipeline-SampleApp");
  EXPECT_EQ(v.failure->location.version, 1);
  EXPECT_EQ(v.failure->found, defined.hash);
  EXPECT_EQ(v.checks[0].outcome, CheckOutcome::kPassed);
}

TEST_F(TamperTest, ABundleOfADamagedReleaseCarriesTheFailureFoundAtExport) {
  const RecordedEvent& step = first("StepSucceeded", "qa");
  ASSERT_TRUE(store_->delete_event_for_test(step.position));
  const Evidence e = evidence();
  const Verification at_export = verify(e, render);
  ASSERT_FALSE(at_export.ok());
  auto bundle = read_bundle(to_bundle(e, at_export, clock_.now(), "auditor").dump());
  ASSERT_TRUE(bundle) << bundle.error().message;
  EXPECT_EQ(bundle.value().evidence.release.events.size(), static_cast<std::size_t>(step.version - 1))
      << "the events up to the damage";
  const Verification offline = verify_bundle(bundle.value(), render);
  ASSERT_FALSE(offline.ok());
  EXPECT_EQ(offline.failure->kind, FindingKind::kMissingEvent);
  EXPECT_EQ(offline.failure->location.version, step.version);
  EXPECT_EQ(to_json(*offline.failure), to_json(*at_export.failure));
  EXPECT_EQ(offline.checks.back().name, "export");
  EXPECT_EQ(offline.checks.back().outcome, CheckOutcome::kFailed);
  EXPECT_EQ(offline.checks.back().detail, "at export: " + at_export.failure->message);

  // A bundle edited to hide that it is incomplete still fails: the stored
  // summary reflects events it no longer has.
  nlohmann::json edited = nlohmann::json::parse(to_bundle(e, at_export, clock_.now(), "auditor").dump());
  edited["release_stream"]["read_failure"] = nullptr;
  edited["verification"] = to_json(verify(Evidence{}, render));
  edited["verification"]["ok"] = true;
  edited["verification"]["failure"] = nullptr;
  auto hidden = read_bundle(edited.dump());
  ASSERT_TRUE(hidden) << hidden.error().message;
  const Verification caught = verify_bundle(hidden.value(), render);
  ASSERT_FALSE(caught.ok());
  EXPECT_EQ(caught.failure->kind, FindingKind::kSummary);
}

class BundleTamperTest : public TamperTest {
 protected:
  void SetUp() override {
    TamperTest::SetUp();
    const Evidence e = evidence();
    const Verification at_export = verify(e, render);
    ASSERT_TRUE(at_export.ok());
    path_ = dir_ / "SampleApp-1.audit.json";
    std::ofstream(path_) << to_bundle(e, at_export, clock_.now(), "auditor").dump(2);
    // Offline from here: the store is closed.
    stop();
    store_.reset();
  }

  std::string bundle_text() const {
    std::ifstream in(path_);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }

  Verification verify_text(const std::string& text) {
    auto bundle = read_bundle(text);
    EXPECT_TRUE(bundle) << bundle.error().message;
    return bundle ? verify_bundle(bundle.value(), render) : Verification{};
  }

  std::string path_;
};

TEST_F(BundleTamperTest, AnIntactBundleVerifiesOffline) {
  const Verification v = verify_text(bundle_text());
  ASSERT_TRUE(v.ok()) << v.failure->message;
  EXPECT_EQ(v.checks.size(), 6u);
}

TEST_F(BundleTamperTest, OneByteOfAnEventInTheBundleIsFound) {
  const RecordedEvent& granted = first("ApprovalGranted", "prod");
  // Inside the event's stored bytes, a JSON string in the bundle: "go" → "gp".
  const std::string text = flip(bundle_text(), R"(\"comment\":\"go\")", 15, 'p');
  const Verification v = verify_text(text);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.failure->kind, FindingKind::kEventChain);
  EXPECT_EQ(v.failure->location.version, granted.version);
  EXPECT_EQ(v.failure->found, granted.hash);
}

TEST_F(BundleTamperTest, OneByteOfALogLineInTheBundleIsFound) {
  const std::string original = bundle_text();
  const auto entry = original.find(R"("qa/1/deploy")");
  ASSERT_NE(entry, std::string::npos);
  const auto line = original.find(R"("text": "qa ran true")", entry);
  ASSERT_NE(line, std::string::npos);
  std::string text = original;
  text[line + 9] = 'Q';  // "qa ran true" → "Qa ran true"
  const Verification v = verify_text(text);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.failure->kind, FindingKind::kStepLog);
  EXPECT_EQ(v.failure->location.stage, "qa");
  EXPECT_EQ(v.failure->location.step, "deploy");
  EXPECT_EQ(v.failure->location.version, first("StepSucceeded", "qa").version);
}

TEST_F(BundleTamperTest, AnEventDeletedFromTheBundleIsAMissingVersion) {
  nlohmann::json bundle = nlohmann::json::parse(bundle_text());
  auto& events = bundle["release_stream"]["events"];
  events.erase(events.begin() + 6);
  const Verification v = verify_text(bundle.dump());
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.failure->kind, FindingKind::kMissingEvent);
  EXPECT_EQ(v.failure->location.version, 7);

  // The last event gone: the chain of the rest still holds, but the summary
  // reflects a version the bundle no longer has.
  bundle = nlohmann::json::parse(bundle_text());
  bundle["release_stream"]["events"].erase(bundle["release_stream"]["events"].end() - 1);
  const Verification tail = verify_text(bundle.dump());
  ASSERT_FALSE(tail.ok());
  EXPECT_EQ(tail.failure->kind, FindingKind::kMissingEvent);
  EXPECT_EQ(tail.failure->location.version, static_cast<std::int64_t>(events_.size()));
}

}  // namespace
}  // namespace cascade::engine
