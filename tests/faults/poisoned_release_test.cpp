// One bad record stops one release, not the engine: a release whose stored
// history was edited on disk, or holds an event this build cannot decode, is
// quarantined after a restart — it answers data_loss, the reactors read past
// it — while a release of another pipeline deploys as if nothing happened.
#include "tests/support/engine_harness.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace cascade::testing {
namespace {

// A stage that waits for approval keeps every reactor's checkpoint before the
// release's first events, so a restart reads them all again.
constexpr const char* kWaiting = R"({"name": "Waiting", "stages": [
    {"name": "dev", "trigger": {"after_release": true}, "steps": [{"name": "s", "run": "deploy"}]},
    {"name": "prod", "trigger": {"after_stages": ["dev"]},
     "pre_approval": {"approvers": ["alice"], "timeout": "30d"}, "steps": [{"name": "s", "run": "deploy"}]}]})";
constexpr const char* kOther = R"({"name": "Other", "stages": [
    {"name": "dev", "trigger": {"after_release": true}, "steps": [{"name": "s", "run": "deploy"}]}]})";

// The stored bytes of an intact event (what events::seal returned).
std::string stored_bytes(const events::RecordedEvent& event) {
  nlohmann::json object = nlohmann::json::parse(events::canonical_bytes(event));
  object["hash"] = event.hash;
  return object.dump();
}

class PoisonedReleaseTest : public EngineHarness {
 protected:
  void SetUp() override {
    EngineHarness::SetUp();
    run();
    apply(kWaiting);
    apply(kOther);
    poisoned_ = create("Waiting");
    healthy_ = create("Waiting", "1.0.1");
    settle();
    ASSERT_EQ(state_of(poisoned_, "prod"), engine::StageState::kAwaitingPreApproval);
    ASSERT_EQ(state_of(healthy_, "prod"), engine::StageState::kAwaitingPreApproval);
    events_ = events_of(poisoned_);
    stop();
  }

  const events::RecordedEvent& first_of(std::string_view type) const {
    const events::RecordedEvent* found = find_event(events_, type, "dev");
    if (found == nullptr) found = find_event(events_, type, "");
    EXPECT_NE(found, nullptr) << type;
    return found == nullptr ? events_.front() : *found;
  }

  // After the restart: another pipeline's release deploys, the healthy
  // release of the same pipeline still takes commands, and the poisoned one
  // answers data_loss naming why, and is listed in the quarantine.
  void expect_only_the_poisoned_release_stops(const std::string& why) {
    start();
    const std::string other = create("Other");
    settle();
    EXPECT_EQ(state_of(other, "dev"), engine::StageState::kSucceeded) << runtime_->last_error();
    ASSERT_TRUE(service().execute(healthy_, engine::ApproveStage{"prod", "ok", 0}, engine::Invocation{"alice", "", ""}));
    settle();
    EXPECT_EQ(state_of(healthy_, "prod"), engine::StageState::kSucceeded);

    auto loaded = service().load(poisoned_);
    ASSERT_FALSE(loaded);
    EXPECT_EQ(loaded.error().code, ErrorCode::kDataLoss);
    EXPECT_NE(loaded.error().message.find(why), std::string::npos) << loaded.error().message;
    auto approved = service().execute(poisoned_, engine::ApproveStage{"prod", "ok", 0}, engine::Invocation{"alice", "", ""});
    ASSERT_FALSE(approved);
    EXPECT_EQ(approved.error().code, ErrorCode::kDataLoss);

    const std::vector<engine::QuarantinedStream> listed = runtime_->engine().quarantine().list();
    ASSERT_EQ(listed.size(), 1u);
    EXPECT_EQ(listed[0].stream, engine::release_stream(poisoned_));
    EXPECT_NE(listed[0].reason.find(why), std::string::npos) << listed[0].reason;
    for (const engine::ReactorStatus& reactor : runtime_->engine().reactor_status()) {
      EXPECT_EQ(reactor.lag, 0u) << reactor.name << " is stuck: " << reactor.last_error;
      EXPECT_FALSE(reactor.failing) << reactor.name << ": " << reactor.last_error;
    }
  }

  std::string poisoned_, healthy_;
  std::vector<events::RecordedEvent> events_;
};

TEST_F(PoisonedReleaseTest, AnEditedEventQuarantinesItsReleaseAndEveryOtherGoesOn) {
  const events::RecordedEvent& started = first_of("DeploymentStarted");
  std::string forged = stored_bytes(started);
  const auto at = forged.find("\"attempt\":1");
  ASSERT_NE(at, std::string::npos);
  forged[at + 10] = '2';  // still valid JSON: only the hash tells
  ASSERT_TRUE(store_->corrupt_event_for_test(started.position, forged));
  expect_only_the_poisoned_release_stops("content altered");
}

TEST_F(PoisonedReleaseTest, AnUndecodableEventQuarantinesItsReleaseAndEveryOtherGoesOn) {
  const events::RecordedEvent& started = first_of("DeploymentStarted");
  std::string garbled = stored_bytes(started);
  garbled[0] = '[';  // no longer an event
  ASSERT_TRUE(store_->corrupt_event_for_test(started.position, garbled));
  expect_only_the_poisoned_release_stops("position " + std::to_string(started.position));
}

TEST_F(PoisonedReleaseTest, AnEventOfATypeThisBuildDoesNotKnowIsUndecodable) {
  const events::RecordedEvent& started = first_of("DeploymentStarted");
  std::string newer = stored_bytes(started);
  const auto at = newer.find("\"DeploymentStarted\"");
  ASSERT_NE(at, std::string::npos);
  newer.replace(at, 19, "\"DeploymentPaused\"");  // as a newer version might write
  ASSERT_TRUE(store_->corrupt_event_for_test(started.position, newer));
  expect_only_the_poisoned_release_stops("position " + std::to_string(started.position));
}

}  // namespace
}  // namespace cascade::testing
