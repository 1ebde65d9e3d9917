// A failing or full disk is a clear state: once a write fails the log refuses
// every append with kUnavailable naming why (HTTP 503, /readyz 503), every
// append acknowledged before or beside the failed one stays visible to the
// reactors, and a restart on a mended disk goes on from what is durable.
// The failures are injected under RocksDB (adapters::WriteFaults, a RocksDB
// FileSystem), so RocksDB's own reaction to them is part of what is tested.
#include "adapters/rocksdb/write_faults.hpp"
#include "events/codec.hpp"
#include "tests/support/engine_harness.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace cascade::testing {
namespace {

constexpr const char* kWaiting = R"({"name": "Waiting", "stages": [
    {"name": "dev", "trigger": {"after_release": true}, "steps": [{"name": "s", "run": "deploy"}]},
    {"name": "prod", "trigger": {"after_stages": ["dev"]},
     "pre_approval": {"approvers": ["alice"], "timeout": "30d"}, "steps": [{"name": "s", "run": "deploy"}]}]})";

events::NewEvent triggered(const std::string& id) {
  events::StageTriggered payload;
  payload.stage = "dev";
  payload.reason = "release created";
  payload.attempt = 1;
  events::NewEvent e;
  e.event_id = id;
  e.data = payload;
  e.recorded_at = 1'800'000'000'000;
  e.actor = "alice";
  return e;
}

class DiskFailureTest : public EngineHarness {
 protected:
  DiskFailureTest() { store_options_.write_faults = faults_; }

  // Restarts on a mended disk: the store reopened (RocksDB recovers from its
  // write-ahead log), then a fresh runtime.
  void restart_on_a_mended_disk() {
    stop();
    faults_->fail_writes(false);
    open_store();
    start();
  }

  std::shared_ptr<adapters::WriteFaults> faults_ = std::make_shared<adapters::WriteFaults>();
};

// Eight writers append until the disk fails under them. Every append that was
// acknowledged is visible (the head is past it and read_all returns it), and
// every one after the failure is refused with the reason.
TEST_F(DiskFailureTest, AFailedWriteRefusesAppendsAndHidesNoAcknowledgedOne) {
  stop();  // only the writers below write
  events::EventLog& log = store_->log();
  ASSERT_TRUE(log.writable());
  constexpr int kWriters = 8;
  constexpr int kAppendsBeforeTheFault = 400;
  std::atomic<int> appended{0};
  std::vector<std::vector<std::uint64_t>> acknowledged(kWriters);
  std::vector<std::string> refusals(kWriters);
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      const std::string stream = "release-W-" + std::to_string(w);
      for (std::int64_t version = 0;; ++version) {
        auto done = log.append(stream, version, {triggered(events::random_uuid())});
        if (!done) {
          refusals[static_cast<std::size_t>(w)] =
              std::string(to_string(done.error().code)) + ": " + done.error().message;
          return;
        }
        acknowledged[static_cast<std::size_t>(w)].push_back(done.value().last_position);
        if (appended.fetch_add(1) + 1 == kAppendsBeforeTheFault) faults_->fail_writes(true);
      }
    });
  }
  for (std::thread& writer : writers) writer.join();

  ASSERT_GT(faults_->refused(), 0u);
  for (const std::string& refusal : refusals) {
    EXPECT_EQ(refusal.rfind("unavailable: ", 0), 0u) << refusal;
    EXPECT_NE(refusal.find("cannot write"), std::string::npos) << refusal;
  }
  const Status writable = log.writable();
  ASSERT_FALSE(writable);
  EXPECT_EQ(writable.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(writable.error().message.find("injected write fault"), std::string::npos) << writable.error().message;

  std::set<std::uint64_t> visible;
  auto page = log.read_all(1, std::numeric_limits<std::size_t>::max());
  ASSERT_TRUE(page) << page.error().message;
  for (const events::RecordedEvent& e : page.value()) visible.insert(e.position);
  std::size_t total = 0;
  for (const auto& positions : acknowledged) {
    for (std::uint64_t position : positions) {
      ++total;
      EXPECT_LE(position, log.head()) << "acknowledged but behind the visible head";
      EXPECT_EQ(visible.count(position), 1u) << "acknowledged position " << position << " is not readable";
    }
  }
  EXPECT_GE(total, static_cast<std::size_t>(kAppendsBeforeTheFault));

  // The disk mended, the log still refuses: what the failed write left on
  // disk is known only once a restart has read the write-ahead log back.
  faults_->fail_writes(false);
  auto late = log.append("release-late", 0, {triggered(events::random_uuid())});
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, ErrorCode::kUnavailable);

  open_store();
  ASSERT_TRUE(store_->log().writable());
  auto reread = store_->log().read_all(1, std::numeric_limits<std::size_t>::max());
  ASSERT_TRUE(reread) << reread.error().message;
  std::set<std::uint64_t> durable;
  for (const events::RecordedEvent& e : reread.value()) durable.insert(e.position);
  for (const auto& positions : acknowledged) {
    for (std::uint64_t position : positions) {
      EXPECT_EQ(durable.count(position), 1u) << "acknowledged position " << position << " lost in the restart";
    }
  }
  ASSERT_TRUE(store_->log().append("release-late", 0, {triggered(events::random_uuid())}));
}

// Through the engine: with the disk full, commands are refused as
// unavailable (HTTP 503) and change nothing; releases are still read; after
// a restart on a mended disk every acknowledged release is there and the
// same commands go through.
TEST_F(DiskFailureTest, CommandsAreRefusedWhileTheDiskFailsAndGoOnAfterARestart) {
  run();
  apply(kWaiting);
  const std::string waiting = create("Waiting");
  settle();
  ASSERT_EQ(state_of(waiting, "prod"), engine::StageState::kAwaitingPreApproval);
  const std::int64_t version_before = load(waiting).version;

  faults_->fail_writes(true);
  auto approved = service().execute(waiting, engine::ApproveStage{"prod", "ok", 0}, engine::Invocation{"alice", "", ""});
  ASSERT_FALSE(approved);
  EXPECT_EQ(approved.error().code, ErrorCode::kUnavailable) << approved.error().message;
  EXPECT_NE(approved.error().message.find("cannot write"), std::string::npos) << approved.error().message;

  engine::NewRelease request;
  request.pipeline = "Waiting";
  request.artifact = {"2.0.0", "/artifacts/2.0.0", 0, "", ""};
  auto created = service().create_release(request, engine::Invocation{"dave", "", ""});
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().code, ErrorCode::kUnavailable) << created.error().message;

  // Reads go on, and show nothing of the refused commands.
  EXPECT_EQ(load(waiting).version, version_before);
  EXPECT_EQ(state_of(waiting, "prod"), engine::StageState::kAwaitingPreApproval);
  EXPECT_FALSE(store_->log().writable());

  restart_on_a_mended_disk();
  EXPECT_EQ(load(waiting).version, version_before);
  ASSERT_TRUE(service().execute(waiting, engine::ApproveStage{"prod", "ok", 0}, engine::Invocation{"alice", "", ""}));
  const std::string next = create("Waiting", "2.0.0");
  settle();
  EXPECT_EQ(state_of(waiting, "prod"), engine::StageState::kSucceeded);
  EXPECT_EQ(state_of(next, "prod"), engine::StageState::kAwaitingPreApproval);
}

}  // namespace
}  // namespace cascade::testing
