// LogFollowHub over a real RocksDB step-log store: a follower catches up in
// pages while steps keep writing, and gets every line once, in order, with
// the id of its place; a page being read never holds up a step's output.
#include "adapters/rocksdb/store.hpp"
#include "adapters/runtime/log_follow.hpp"
#include "tests/support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace cascade::adapters {
namespace {

engine::LogLine text_line(std::string text) {
  engine::LogLine line;
  line.at = 1;
  line.stream = "stdout";
  line.text = std::move(text);
  return line;
}

// Takes `page_lines` lines per page, as an event stream's backlog bound does.
class CollectingSink final : public LineSink {
 public:
  explicit CollectingSink(std::size_t page_lines) : page_lines_(page_lines) {}
  bool line(const std::string& step, int step_index, std::uint64_t line_index, const engine::LogLine& line) override {
    std::lock_guard lock(mutex_);
    ++in_page_;
    received_.push_back(step + "@" + std::to_string(step_index) + ":" + std::to_string(line_index) + "=" + line.text);
    return true;
  }
  void end(const std::string&, const std::string&, int) override {
    std::lock_guard lock(mutex_);
    ended_ = true;
    changed_.notify_all();
  }
  bool closed() const override { return false; }
  std::size_t room() const override {
    std::lock_guard lock(mutex_);
    return in_page_ >= page_lines_ ? 0 : 1;
  }
  void next_page() {
    std::lock_guard lock(mutex_);
    in_page_ = 0;
  }
  bool wait_end(std::chrono::seconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [this] { return ended_; });
  }
  std::vector<std::string> received() const {
    std::lock_guard lock(mutex_);
    return received_;
  }

 private:
  const std::size_t page_lines_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::size_t in_page_ = 0;
  bool ended_ = false;
  std::vector<std::string> received_;
};

// A store whose page reads wait, once armed, until released: a catch-up
// caught in the middle of a read.
class GatedStepLogs final : public engine::StepLogStore {
 public:
  explicit GatedStepLogs(engine::StepLogStore& inner) : inner_(inner) {}
  Status append_line(const engine::StepLogKey& key, const engine::LogLine& line) override {
    return inner_.append_line(key, line);
  }
  Status flush() override { return inner_.flush(); }
  Result<std::vector<engine::LogLine>> read(const engine::StepLogKey& key) override { return inner_.read(key); }
  Result<std::vector<engine::LogLine>> read_page(const engine::StepLogKey& key, std::uint64_t first_line,
                                                 std::size_t max_lines) override {
    std::unique_lock lock(mutex_);
    if (armed_) {
      reading_ = true;
      changed_.notify_all();
      changed_.wait(lock, [this] { return !armed_; });
    }
    lock.unlock();
    return inner_.read_page(key, first_line, max_lines);
  }
  void arm() {
    std::lock_guard lock(mutex_);
    armed_ = true;
  }
  bool wait_reading(std::chrono::seconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [this] { return reading_; });
  }
  void release() {
    std::lock_guard lock(mutex_);
    armed_ = false;
    changed_.notify_all();
  }

 private:
  engine::StepLogStore& inner_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool armed_ = false;
  bool reading_ = false;
};

class LogFollowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = RocksStore::open(dir_ / "log");
    ASSERT_TRUE(store) << store.error().message;
    store_ = std::move(store).value();
  }
  static engine::StepLogKey key(int step) { return {"R-1", "dev", 1, step}; }

  testing::TempDir dir_;
  std::unique_ptr<RocksStore> store_;
};

TEST_F(LogFollowTest, AFollowerCatchingUpInPagesWhileStepsWriteGetsEveryLineOnce) {
  LogFollowHub hub(store_->step_logs(), store_->log());
  // Step a has written half its output when the follower arrives.
  constexpr int kStepA = 3000, kStepB = 1000;
  for (int n = 0; n < kStepA / 2; ++n) ASSERT_TRUE(hub.append_line(key(0), text_line("a" + std::to_string(n))));

  auto sink = std::make_shared<CollectingSink>(100);
  auto next_page = hub.follow(sink, "R-1", "dev", 1, {"a", "quiet", "b"}, [] { return Result<bool>(false); });
  std::thread writer([&] {
    for (int n = kStepA / 2; n < kStepA; ++n) ASSERT_TRUE(hub.append_line(key(0), text_line("a" + std::to_string(n))));
    // Step quiet writes nothing; step b starts after it.
    for (int n = 0; n < kStepB; ++n) ASSERT_TRUE(hub.append_line(key(2), text_line("b" + std::to_string(n))));
  });
  for (;;) {
    auto more = next_page();
    ASSERT_TRUE(more) << more.error().message;
    if (!more.value()) break;
    sink->next_page();  // the client read the page
  }
  writer.join();
  // The attempt finished: its finishing event ends live followers.
  events::RecordedEvent finished;
  finished.stream = "release-R-1";
  finished.data = events::DeploymentSucceeded{"dev", 1, false};
  ASSERT_TRUE(hub.handle({finished}));
  ASSERT_TRUE(sink->wait_end(std::chrono::seconds(10)));

  std::vector<std::string> expected;
  for (int n = 0; n < kStepA; ++n) expected.push_back("a@0:" + std::to_string(n) + "=a" + std::to_string(n));
  for (int n = 0; n < kStepB; ++n) expected.push_back("b@2:" + std::to_string(n) + "=b" + std::to_string(n));
  EXPECT_EQ(sink->received(), expected);
}

TEST_F(LogFollowTest, AStepsOutputIsNotHeldUpWhileAFollowersPageIsRead) {
  GatedStepLogs gated(store_->step_logs());
  LogFollowHub hub(gated, store_->log());
  for (int n = 0; n < 10; ++n) ASSERT_TRUE(hub.append_line(key(0), text_line(std::to_string(n))));
  auto sink = std::make_shared<CollectingSink>(1000);
  auto next_page = hub.follow(sink, "R-1", "dev", 1, {"a"}, [] { return Result<bool>(false); });

  gated.arm();
  auto page = std::async(std::launch::async, [&] { return next_page(); });
  ASSERT_TRUE(gated.wait_reading(std::chrono::seconds(10)));
  // The follower is stuck in its read; the step's output still goes through.
  auto appended = std::async(std::launch::async, [&] { return hub.append_line(key(0), text_line("10")); });
  EXPECT_EQ(appended.wait_for(std::chrono::seconds(10)), std::future_status::ready)
      << "a step's line waited for a follower's catch-up read";
  gated.release();
  ASSERT_TRUE(appended.get());
  auto more = page.get();
  ASSERT_TRUE(more) << more.error().message;
  EXPECT_FALSE(more.value()) << "caught up and live";
  EXPECT_EQ(sink->received().size(), 11u) << "the line appended during the read is handed over once";
}

}  // namespace
}  // namespace cascade::adapters
