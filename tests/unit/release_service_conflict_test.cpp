// ReleaseService and lost races: an append refused with kAborted (the stream
// moved under the command) is decided again on the reloaded state, after a
// jittered backoff from the third try on, and given up after
// kMaxConflictRetries tries in all.
#include "adapters/rocksdb/store.hpp"
#include "engine/release_service.hpp"

#include "tests/support/release_fixture.hpp"
#include "tests/support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <vector>

namespace cascade::engine {
namespace {

using Steady = std::chrono::steady_clock;

// The store's log, answering the next `losses` appends to release streams
// with kAborted as a log does when another writer got there first (without
// writing), and noting when each append was asked for.
class LogLosingRaces final : public events::EventLog {
 public:
  explicit LogLosingRaces(events::EventLog& log) : log_(log) {}

  void lose_next(int losses) {
    std::lock_guard lock(mutex_);
    losses_ = losses;
    tries_.clear();
  }
  std::vector<Steady::time_point> tries() const {
    std::lock_guard lock(mutex_);
    return tries_;
  }

  Result<events::AppendResult> append(const std::string& stream, std::int64_t expected_version,
                                      std::vector<events::NewEvent> events) override {
    {
      std::lock_guard lock(mutex_);
      if (stream.rfind("release-", 0) == 0) {
        tries_.push_back(Steady::now());
        if (losses_ > 0) {
          --losses_;
          return make_error(ErrorCode::kAborted, "injected: " + stream + " moved");
        }
      }
    }
    return log_.append(stream, expected_version, std::move(events));
  }
  Result<std::vector<events::RecordedEvent>> read(const std::string& stream, std::int64_t from_version,
                                                  std::size_t limit) override {
    return log_.read(stream, from_version, limit);
  }
  Status read_each(const std::string& stream, std::int64_t from_version,
                   const std::function<Status(const events::RecordedEvent&)>& visit) override {
    return log_.read_each(stream, from_version, visit);
  }
  Status read_each_verified(const std::string& stream, std::int64_t from_version, std::string expected_prev_hash,
                            const std::function<Status(const events::RecordedEvent&)>& visit) override {
    return log_.read_each_verified(stream, from_version, std::move(expected_prev_hash), visit);
  }
  Result<std::vector<events::RecordedEvent>> read_all(std::uint64_t from_position, std::size_t limit) override {
    return log_.read_all(from_position, limit);
  }
  Result<events::ReadablePage> read_all_readable(std::uint64_t from_position, std::size_t limit) override {
    return log_.read_all_readable(from_position, limit);
  }
  Result<std::int64_t> stream_version(const std::string& stream) override { return log_.stream_version(stream); }
  std::uint64_t head() const override { return log_.head(); }
  std::uint64_t wait_for_events(std::uint64_t after, std::chrono::milliseconds timeout) override {
    return log_.wait_for_events(after, timeout);
  }

 private:
  events::EventLog& log_;
  mutable std::mutex mutex_;
  int losses_ = 0;
  std::vector<Steady::time_point> tries_;
};

class ReleaseServiceConflictTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = adapters::RocksStore::open(dir_ / "log");
    ASSERT_TRUE(store) << store.error().message;
    store_ = std::move(store).value();
    log_ = std::make_unique<LogLosingRaces>(store_->log());
    service_ = std::make_unique<ReleaseService>(*log_, store_->secrets(), clock_);
    ASSERT_TRUE(service_->apply_pipeline(testing::fork_join_pipeline(), "alice"));
    NewRelease request;
    request.pipeline = "SampleApp";
    request.artifact = {"1.0.0", "/artifacts/1.0.0", 0, "", ""};
    auto id = service_->create_release(request, Invocation{"dave", "", ""});
    ASSERT_TRUE(id) << id.error().message;
    id_ = id.value();
  }

  std::size_t triggers() {
    auto events = store_->log().read(release_stream(id_));
    EXPECT_TRUE(events);
    std::size_t n = 0;
    for (const auto& e : events.value()) n += std::holds_alternative<events::StageTriggered>(e.data) ? 1 : 0;
    return n;
  }

  testing::TempDir dir_;
  ManualClock clock_;
  std::unique_ptr<adapters::RocksStore> store_;
  std::unique_ptr<LogLosingRaces> log_;
  std::unique_ptr<ReleaseService> service_;
  std::string id_;
};

TEST_F(ReleaseServiceConflictTest, ACommandThatLosesAFewRacesIsDecidedAgainAndRecordedOnce) {
  log_->lose_next(3);
  auto done = service_->execute(id_, TriggerStage{"dev", "release created"}, Invocation{"cascade/orchestrator", "", ""});
  ASSERT_TRUE(done) << done.error().message;
  EXPECT_EQ(done.value().find_stage("dev")->state(), StageState::kTriggered);
  EXPECT_EQ(log_->tries().size(), 4u);
  EXPECT_EQ(triggers(), 1u);
}

TEST_F(ReleaseServiceConflictTest, ACommandThatKeepsLosingBacksOffAndGivesUpAfterTheLastRetry) {
  log_->lose_next(1'000);
  const Steady::time_point start = Steady::now();
  auto done = service_->execute(id_, TriggerStage{"dev", "release created"}, Invocation{"cascade/orchestrator", "", ""});
  const Steady::duration took = Steady::now() - start;
  ASSERT_FALSE(done);
  EXPECT_EQ(done.error().code, ErrorCode::kAborted);
  EXPECT_NE(done.error().message.find("gave up after 16 attempts"), std::string::npos) << done.error().message;
  EXPECT_EQ(log_->tries().size(), static_cast<std::size_t>(ReleaseService::kMaxConflictRetries));
  EXPECT_EQ(triggers(), 0u);
  // Fourteen waits drawn from [0, 0.2 ms·2^n], capped at 10 ms: about 46 ms
  // on average, at most 92.6 ms. A tight loop takes well under a
  // millisecond; fourteen draws summing to less than 5 ms are all but
  // impossible (seven of them are uniform over 10 ms).
  EXPECT_GE(took, std::chrono::milliseconds(5))
      << "no backoff between retries: " << std::chrono::duration<double, std::milli>(took).count() << " ms";
  EXPECT_LT(took, std::chrono::seconds(5)) << "the backoff is bounded";
}

}  // namespace
}  // namespace cascade::engine
