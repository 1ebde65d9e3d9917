#include "adapters/rocksdb/store.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace cascade::adapters {
namespace {

engine::LogLine line(engine::Timestamp at, std::string stream, std::string text) {
  engine::LogLine l;
  l.at = at;
  l.stream = std::move(stream);
  l.text = std::move(text);
  return l;
}

engine::StepLogKey step(std::string release, std::string stage, int attempt, int step_index) {
  engine::StepLogKey key;
  key.release_id = std::move(release);
  key.stage = std::move(stage);
  key.attempt = attempt;
  key.step_index = step_index;
  return key;
}

void expect_lines(const Result<std::vector<engine::LogLine>>& got, const std::vector<engine::LogLine>& want) {
  ASSERT_TRUE(got) << got.error().message;
  ASSERT_EQ(got.value().size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(got.value()[i].at, want[i].at);
    EXPECT_EQ(got.value()[i].stream, want[i].stream);
    EXPECT_EQ(got.value()[i].text, want[i].text);
  }
}

class RocksStoresTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/cascade-rocks-stores-XXXXXX";
    const char* dir = mkdtemp(pattern);
    ASSERT_NE(dir, nullptr) << std::strerror(errno);
    dir_ = dir;
    reopen();
  }
  void TearDown() override {
    store_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  void reopen() {
    store_.reset();
    auto opened = RocksStore::open(dir_);
    ASSERT_TRUE(opened) << opened.error().message;
    store_ = std::move(opened).value();
  }

  engine::CheckpointStore& checkpoints() { return store_->checkpoints(); }
  engine::StepLogStore& step_logs() { return store_->step_logs(); }

  std::string dir_;
  std::unique_ptr<RocksStore> store_;
};

TEST_F(RocksStoresTest, CheckpointsStartAtZeroAndPersist) {
  auto fresh = checkpoints().load("orchestrator");
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh.value(), 0u);

  ASSERT_TRUE(checkpoints().save("orchestrator", 42));
  EXPECT_EQ(checkpoints().load("orchestrator").value(), 42u);
  ASSERT_TRUE(checkpoints().save("orchestrator", 1ull << 40));
  EXPECT_EQ(checkpoints().load("orchestrator").value(), 1ull << 40);
  ASSERT_TRUE(checkpoints().save("executor", 7));
  EXPECT_EQ(checkpoints().load("executor").value(), 7u);
  EXPECT_EQ(checkpoints().load("projector").value(), 0u);

  reopen();
  EXPECT_EQ(checkpoints().load("orchestrator").value(), 1ull << 40);
  EXPECT_EQ(checkpoints().load("executor").value(), 7u);
  EXPECT_EQ(checkpoints().load("projector").value(), 0u);
}

TEST_F(RocksStoresTest, StepLogLinesReadBackInOrderByteForByte) {
  static constexpr char kRawText[] = "not utf-8 \xff\xfe and a NUL \0 byte";
  const std::string kRawBytes(kRawText, sizeof kRawText - 1);
  const engine::StepLogKey key = step("r1", "dev", 1, 0);
  const std::vector<engine::LogLine> lines = {
      line(1'800'000'000'000, "stdout", "building"),
      line(1'800'000'000'001, "stderr", "warning: tab\there"),
      line(1'800'000'000'001, "stdout", ""),
      line(1'800'000'000'002, "stdout", kRawBytes),
      line(1'800'000'000'003, "stdout", "done"),
  };
  for (const auto& l : lines) ASSERT_TRUE(step_logs().append_line(key, l));
  expect_lines(step_logs().read(key), lines);
}

TEST_F(RocksStoresTest, StepLogsAreIsolatedPerStep) {
  // Keys that share prefixes in every field.
  const std::vector<engine::StepLogKey> keys = {
      step("r1", "dev", 1, 0), step("r1", "dev", 1, 1), step("r1", "dev", 2, 0),
      step("r1", "devx", 1, 0), step("r10", "dev", 1, 0), step("r1", "de", 1, 0),
      step("r1", "dev", 256, 0),
  };
  for (std::size_t k = 0; k < keys.size(); ++k) {
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(step_logs().append_line(keys[k], line(i, "stdout", "key " + std::to_string(k) + " line " +
                                                                            std::to_string(i))));
    }
  }
  for (std::size_t k = 0; k < keys.size(); ++k) {
    SCOPED_TRACE(k);
    expect_lines(step_logs().read(keys[k]), {line(0, "stdout", "key " + std::to_string(k) + " line 0"),
                                             line(1, "stdout", "key " + std::to_string(k) + " line 1"),
                                             line(2, "stdout", "key " + std::to_string(k) + " line 2")});
  }
  expect_lines(step_logs().read(step("r1", "dev", 3, 0)), {});
  expect_lines(step_logs().read(step("r2", "qa", 1, 0)), {});
}

TEST_F(RocksStoresTest, StepLogsPersistAfterFlushAndContinueAfterReopen) {
  const engine::StepLogKey key = step("r1", "prod", 2, 3);
  ASSERT_TRUE(step_logs().append_line(key, line(1, "stdout", "one")));
  ASSERT_TRUE(step_logs().append_line(key, line(2, "stderr", "two")));
  ASSERT_TRUE(step_logs().append_line(key, line(3, "stdout", "three")));
  ASSERT_TRUE(step_logs().flush());

  reopen();
  expect_lines(step_logs().read(key),
               {line(1, "stdout", "one"), line(2, "stderr", "two"), line(3, "stdout", "three")});
  // The sequence resumes after the stored lines rather than overwriting them.
  ASSERT_TRUE(step_logs().append_line(key, line(4, "stdout", "four")));
  ASSERT_TRUE(step_logs().append_line(key, line(5, "stdout", "five")));
  ASSERT_TRUE(step_logs().flush());
  reopen();
  expect_lines(step_logs().read(key), {line(1, "stdout", "one"), line(2, "stderr", "two"),
                                       line(3, "stdout", "three"), line(4, "stdout", "four"),
                                       line(5, "stdout", "five")});
}

TEST_F(RocksStoresTest, ConcurrentStepsKeepTheirOwnOrder) {
  constexpr int kSteps = 4;
  constexpr int kLines = 300;
  std::vector<std::thread> threads;
  for (int s = 0; s < kSteps; ++s) {
    threads.emplace_back([&, s] {
      for (int i = 0; i < kLines; ++i) {
        EXPECT_TRUE(step_logs().append_line(step("r1", "dev", 1, s), line(i, "stdout", std::to_string(i))));
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(step_logs().flush());
  for (int s = 0; s < kSteps; ++s) {
    auto got = step_logs().read(step("r1", "dev", 1, s));
    ASSERT_TRUE(got);
    ASSERT_EQ(got.value().size(), std::size_t{kLines});
    for (int i = 0; i < kLines; ++i) EXPECT_EQ(got.value()[static_cast<std::size_t>(i)].at, i);
  }
}

// Reads every line through the port's default read_each, a page at a time
// (the RocksDB store overrides it with one iterator).
class PagedStepLogs final : public engine::StepLogStore {
 public:
  explicit PagedStepLogs(engine::StepLogStore& inner) : inner_(inner) {}
  Status append_line(const engine::StepLogKey& key, const engine::LogLine& line) override {
    return inner_.append_line(key, line);
  }
  Status flush() override { return inner_.flush(); }
  Result<std::vector<engine::LogLine>> read(const engine::StepLogKey& key) override { return inner_.read(key); }
  Result<std::vector<engine::LogLine>> read_page(const engine::StepLogKey& key, std::uint64_t first_line,
                                                 std::size_t max_lines) override {
    ++pages;
    return inner_.read_page(key, first_line, max_lines);
  }
  int pages = 0;

 private:
  engine::StepLogStore& inner_;
};

TEST_F(RocksStoresTest, StepLogLinesReadOneByOneAreTheLinesReadWhole) {
  PagedStepLogs paged(step_logs());
  // 64 lines make a page: a log that ends on a page's end, and one that does not.
  for (const int count : {0, 1, 128, 130}) {
    SCOPED_TRACE(count);
    const engine::StepLogKey key = step("r" + std::to_string(count), "dev", 1, 0);
    std::vector<engine::LogLine> lines;
    for (int i = 0; i < count; ++i) {
      lines.push_back(line(i, i % 2 == 0 ? "stdout" : "stderr", std::string(static_cast<std::size_t>(i), 'x')));
      ASSERT_TRUE(step_logs().append_line(key, lines.back()));
    }
    ASSERT_TRUE(step_logs().append_line(step("r" + std::to_string(count), "dev", 1, 1),
                                        line(0, "stdout", "the next step")));
    ASSERT_TRUE(step_logs().flush());
    for (engine::StepLogStore* store : {&step_logs(), static_cast<engine::StepLogStore*>(&paged)}) {
      std::vector<engine::LogLine> visited;
      paged.pages = 0;
      ASSERT_TRUE(store->read_each(key, [&](const engine::LogLine& l) -> Status {
        visited.push_back(l);
        return success();
      }));
      expect_lines(visited, lines);
      if (store == &paged) {
        EXPECT_EQ(paged.pages, count / 64 + 1);
      }
    }
  }
}

TEST_F(RocksStoresTest, ReadingStepLogLinesOneByOneStopsAtTheVisitorsError) {
  const engine::StepLogKey key = step("r1", "dev", 1, 0);
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(step_logs().append_line(key, line(i, "stdout", std::to_string(i))));
  PagedStepLogs paged(step_logs());
  for (engine::StepLogStore* store : {&step_logs(), static_cast<engine::StepLogStore*>(&paged)}) {
    int seen = 0;
    const Status stopped = store->read_each(key, [&](const engine::LogLine&) -> Status {
      if (++seen == 70) return make_error(ErrorCode::kAborted, "enough");
      return success();
    });
    ASSERT_FALSE(stopped);
    EXPECT_EQ(stopped.error().code, ErrorCode::kAborted);
    EXPECT_EQ(stopped.error().message, "enough");
    EXPECT_EQ(seen, 70);
  }
  auto malformed =
      step_logs().read_each(step("r1", "dev", -1, 0), [](const engine::LogLine&) { return Status(success()); });
  ASSERT_FALSE(malformed);
  EXPECT_EQ(malformed.error().code, ErrorCode::kInvalidArgument);
}

TEST_F(RocksStoresTest, MalformedStepLogKeysAreInvalid) {
  for (const engine::StepLogKey& key :
       {step(std::string("r\0x", 3), "dev", 1, 0), step("r1", "dev", -1, 0), step("r1", "dev", 1, -2)}) {
    auto appended = step_logs().append_line(key, line(1, "stdout", "x"));
    ASSERT_FALSE(appended);
    EXPECT_EQ(appended.error().code, ErrorCode::kInvalidArgument);
    auto read = step_logs().read(key);
    ASSERT_FALSE(read);
    EXPECT_EQ(read.error().code, ErrorCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace cascade::adapters
