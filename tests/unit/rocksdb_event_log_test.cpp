#include "adapters/rocksdb/store.hpp"
#include "events/codec.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace cascade::adapters {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kStream[] = "release-1";
// Set in the environment of the writer process that the abrupt-kill test
// starts (and kills): the store directory and the pipe to acknowledge on.
constexpr char kKillChildDir[] = "CASCADE_ROCKS_KILL_CHILD_DIR";
constexpr char kKillChildFd[] = "CASCADE_ROCKS_KILL_CHILD_FD";

events::NewEvent stage_triggered(const std::string& stage, int attempt = 1) {
  events::StageTriggered payload;
  payload.stage = stage;
  payload.reason = "release created";
  payload.attempt = attempt;
  events::NewEvent e;
  e.event_id = events::random_uuid();
  e.data = payload;
  e.recorded_at = 1'800'000'000'000 + attempt;
  e.actor = "alice";
  e.command_id = "cmd-" + stage;
  e.causation_id = "cause-" + stage;
  e.correlation_id = "release-1";
  return e;
}

events::NewEvent approval_granted(const std::string& stage, const std::string& approver) {
  events::ApprovalGranted payload;
  payload.stage = stage;
  payload.phase = "pre";
  payload.approver = approver;
  payload.comment = "looks good";
  events::NewEvent e;
  e.event_id = events::random_uuid();
  e.data = payload;
  e.recorded_at = 1'800'000'000'500;
  e.actor = approver;
  e.command_id = "approve-" + stage;
  e.correlation_id = "release-1";
  return e;
}

std::string make_temp_dir() {
  char pattern[] = "/tmp/cascade-rocks-log-XXXXXX";
  const char* dir = mkdtemp(pattern);
  EXPECT_NE(dir, nullptr) << std::strerror(errno);
  return dir == nullptr ? std::string() : std::string(dir);
}

std::vector<std::uint64_t> positions_of(const std::vector<events::RecordedEvent>& events) {
  std::vector<std::uint64_t> out;
  for (const auto& e : events) out.push_back(e.position);
  return out;
}

// Releases any number of threads at once: each calls arrive_and_wait(); the
// last of `count` to arrive lets them all go.
class StartLine {
 public:
  explicit StartLine(int count) : waiting_(count) {}
  void arrive_and_wait() {
    std::unique_lock<std::mutex> lock(mu_);
    if (--waiting_ == 0) {
      go_.notify_all();
      return;
    }
    go_.wait(lock, [&] { return waiting_ == 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable go_;
  int waiting_;
};

// The writer process of AbruptKillLosesNoAcknowledgedAppend: appends one event
// at a time and writes each acknowledged version to the pipe, until killed.
[[noreturn]] void run_kill_child(const char* dir, int fd) {
  auto opened = RocksStore::open(dir);
  if (!opened) _exit(2);
  std::unique_ptr<RocksStore> store = std::move(opened).value();
  for (std::int64_t version = 0; version < 1'000'000; ++version) {
    std::vector<events::NewEvent> batch;
    batch.push_back(stage_triggered("dev", static_cast<int>(version % 1000) + 1));
    auto appended = store->log().append(kStream, version, std::move(batch));
    if (!appended) _exit(3);
    const std::int64_t acknowledged = appended.value().last_version;
    if (write(fd, &acknowledged, sizeof acknowledged) != sizeof acknowledged) _exit(4);
  }
  _exit(0);
}

// That writer runs in a fresh exec of this binary, so that it inherits no
// threads (RocksDB's) and no locks through fork(). The test starts it with
// kKillChildDir set and a filter naming one test: gtest then sets up its
// environments, and this one turns the process into the writer.
class KillChildEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    const char* dir = std::getenv(kKillChildDir);
    const char* fd = std::getenv(kKillChildFd);
    if (dir != nullptr && fd != nullptr) run_kill_child(dir, std::atoi(fd));
  }
};

[[maybe_unused]] ::testing::Environment* const kKillChildEnvironment =
    ::testing::AddGlobalTestEnvironment(new KillChildEnvironment);

class RocksEventLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir();
    ASSERT_FALSE(dir_.empty());
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

  events::EventLog& log() { return store_->log(); }

  Result<events::AppendResult> append_one(const std::string& stream, std::int64_t expected,
                                          events::NewEvent event) {
    std::vector<events::NewEvent> batch;
    batch.push_back(std::move(event));
    return log().append(stream, expected, std::move(batch));
  }

  std::string dir_;
  std::unique_ptr<RocksStore> store_;
};

TEST_F(RocksEventLogTest, AppendThenReadReturnsTheChainedEvents) {
  std::vector<events::NewEvent> batch = {stage_triggered("dev"), approval_granted("dev", "bob"),
                                         stage_triggered("test", 2)};
  const std::vector<events::NewEvent> sent = batch;

  auto appended = log().append(kStream, 0, std::move(batch));
  ASSERT_TRUE(appended) << appended.error().message;
  EXPECT_EQ(appended.value().last_version, 3);
  EXPECT_EQ(appended.value().last_position, 3u);
  EXPECT_FALSE(appended.value().duplicate);
  EXPECT_EQ(log().head(), 3u);
  auto version = log().stream_version(kStream);
  ASSERT_TRUE(version);
  EXPECT_EQ(version.value(), 3);

  auto read = log().read(kStream);
  ASSERT_TRUE(read) << read.error().message;
  const std::vector<events::RecordedEvent>& got = read.value();
  ASSERT_EQ(got.size(), 3u);
  for (std::size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(got[i].stream, kStream);
    EXPECT_EQ(got[i].version, static_cast<std::int64_t>(i + 1));
    EXPECT_EQ(got[i].position, i + 1);
    EXPECT_EQ(got[i].event_id, sent[i].event_id);
    EXPECT_EQ(got[i].recorded_at, sent[i].recorded_at);
    EXPECT_EQ(got[i].actor, sent[i].actor);
    EXPECT_EQ(got[i].command_id, sent[i].command_id);
    EXPECT_EQ(got[i].causation_id, sent[i].causation_id);
    EXPECT_EQ(got[i].correlation_id, sent[i].correlation_id);
    EXPECT_EQ(events::type_name(got[i].data), events::type_name(sent[i].data));
    EXPECT_EQ(events::payload_to_json(got[i].data), events::payload_to_json(sent[i].data));
    EXPECT_EQ(got[i].hash, events::compute_hash(got[i]));
    EXPECT_EQ(got[i].prev_hash, i == 0 ? std::string() : got[i - 1].hash);
  }
  const auto& granted = std::get<events::ApprovalGranted>(got[1].data);
  EXPECT_EQ(granted.approver, "bob");
  EXPECT_EQ(granted.comment, "looks good");
  EXPECT_TRUE(events::verify_chain(got));

  auto middle = log().read(kStream, 2, 1);
  ASSERT_TRUE(middle);
  ASSERT_EQ(middle.value().size(), 1u);
  EXPECT_EQ(middle.value()[0].version, 2);
  EXPECT_EQ(middle.value()[0].hash, got[1].hash);
}

TEST_F(RocksEventLogTest, WrongExpectedVersionIsAbortedAndWritesNothing) {
  ASSERT_TRUE(append_one(kStream, 0, stage_triggered("dev")));

  for (std::int64_t expected : {0, 2, 7}) {
    SCOPED_TRACE(expected);
    auto conflict = append_one(kStream, expected, stage_triggered("test"));
    ASSERT_FALSE(conflict);
    EXPECT_EQ(conflict.error().code, ErrorCode::kAborted);
    EXPECT_NE(conflict.error().message.find(kStream), std::string::npos) << conflict.error().message;
  }
  EXPECT_EQ(log().head(), 1u);
  EXPECT_EQ(log().stream_version(kStream).value(), 1);
  EXPECT_EQ(log().read(kStream).value().size(), 1u);
}

TEST_F(RocksEventLogTest, MalformedAppendsAreInvalid) {
  auto empty = log().append(kStream, 0, {});
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, ErrorCode::kInvalidArgument);

  events::NewEvent twice = stage_triggered("dev");
  auto repeated = log().append(kStream, 0, {twice, twice});
  ASSERT_FALSE(repeated);
  EXPECT_EQ(repeated.error().code, ErrorCode::kInvalidArgument);

  events::NewEvent not_utf8 = approval_granted("dev", "bob");
  std::get<events::ApprovalGranted>(not_utf8.data).comment = "\xff\xfe";
  auto unencodable = append_one(kStream, 0, not_utf8);
  ASSERT_FALSE(unencodable);
  EXPECT_EQ(unencodable.error().code, ErrorCode::kInvalidArgument);

  EXPECT_EQ(log().head(), 0u);
  // Nothing was claimed for good: the stream still takes its first append.
  EXPECT_TRUE(append_one(kStream, 0, stage_triggered("dev")));
}

TEST_F(RocksEventLogTest, StoredEventIdsAreDuplicatesAndNothingIsWritten) {
  const std::vector<events::NewEvent> batch = {stage_triggered("dev"), stage_triggered("test")};
  auto first = log().append(kStream, 0, batch);
  ASSERT_TRUE(first);

  // A retry with the version it was built on, and one with the current version.
  for (std::int64_t expected : {0, 2}) {
    SCOPED_TRACE(expected);
    auto again = log().append(kStream, expected, batch);
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_TRUE(again.value().duplicate);
    EXPECT_EQ(again.value().last_version, 2);
    EXPECT_EQ(again.value().last_position, 2u);
  }
  EXPECT_EQ(log().head(), 2u);
  EXPECT_EQ(log().read(kStream).value().size(), 2u);

  auto mixed = log().append(kStream, 2, {batch[1], stage_triggered("qa")});
  ASSERT_FALSE(mixed);
  EXPECT_EQ(mixed.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(mixed.error().message.find(batch[1].event_id), std::string::npos) << mixed.error().message;
  EXPECT_EQ(log().head(), 2u);
  EXPECT_EQ(log().stream_version(kStream).value(), 2);

  // The id of an event of another stream counts too.
  auto elsewhere = append_one("release-2", 0, batch[0]);
  ASSERT_TRUE(elsewhere);
  EXPECT_TRUE(elsewhere.value().duplicate);
  EXPECT_EQ(elsewhere.value().last_position, 1u);
  EXPECT_EQ(log().head(), 2u);
}

TEST_F(RocksEventLogTest, ReadAllFromPositionsWithLimits) {
  const std::vector<std::string> streams = {"release-a", "release-b", "release-c"};
  for (int i = 0; i < 6; ++i) {
    const std::string& stream = streams[static_cast<std::size_t>(i) % streams.size()];
    ASSERT_TRUE(append_one(stream, i / 3, stage_triggered("dev", i + 1)));
  }

  auto all = log().read_all(1, 100);
  ASSERT_TRUE(all);
  EXPECT_EQ(positions_of(all.value()), (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(all.value()[4].stream, "release-b");
  EXPECT_EQ(all.value()[4].version, 2);

  EXPECT_EQ(positions_of(log().read_all(4, 2).value()), (std::vector<std::uint64_t>{4, 5}));
  EXPECT_EQ(positions_of(log().read_all(0, 2).value()), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(positions_of(log().read_all(6, 5).value()), (std::vector<std::uint64_t>{6}));
  EXPECT_TRUE(log().read_all(7, 5).value().empty());
  EXPECT_TRUE(log().read_all(1, 0).value().empty());

  auto unknown = log().read("release-unknown");
  ASSERT_TRUE(unknown);
  EXPECT_TRUE(unknown.value().empty());
  EXPECT_EQ(log().stream_version("release-unknown").value(), 0);
  // A stream whose name extends another's is a different stream.
  EXPECT_TRUE(log().read("release").value().empty());
  EXPECT_EQ(log().read("release-a", 2).value().size(), 1u);
  EXPECT_TRUE(log().read("release-a", 3).value().empty());
}

TEST_F(RocksEventLogTest, WaitForEventsWakesPromptlyOnAppend) {
  // The waiter blocks first (it reports that it is about to wait); then an
  // append must wake it long before its 10 s timeout.
  std::mutex mu;
  std::condition_variable cv;
  bool waiting = false;
  std::uint64_t result = 0;
  Clock::time_point started;
  Clock::time_point returned;
  std::thread waiter([&] {
    {
      std::lock_guard<std::mutex> guard(mu);
      waiting = true;
      started = Clock::now();
    }
    cv.notify_one();
    result = log().wait_for_events(0, std::chrono::seconds(10));
    returned = Clock::now();
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return waiting; });
  }
  ASSERT_TRUE(append_one(kStream, 0, stage_triggered("dev")));
  waiter.join();
  EXPECT_EQ(result, 1u);
  EXPECT_LT(returned - started, std::chrono::seconds(5));
}

TEST_F(RocksEventLogTest, WaitForEventsTimesOutWithUnchangedHead) {
  ASSERT_TRUE(append_one(kStream, 0, stage_triggered("dev")));
  const auto started = Clock::now();
  EXPECT_EQ(log().wait_for_events(1, std::chrono::milliseconds(50)), 1u);
  EXPECT_GE(Clock::now() - started, std::chrono::milliseconds(50));
  // Already past `after`: no wait at all.
  EXPECT_EQ(log().wait_for_events(0, std::chrono::seconds(10)), 1u);
}

TEST_F(RocksEventLogTest, RacingFirstAppendsToOneStreamExactlyOneWins) {
  for (int round = 0; round < 50; ++round) {
    SCOPED_TRACE(round);
    const std::string stream = "race-" + std::to_string(round);
    StartLine start(2);
    std::vector<Result<events::AppendResult>> results(2, make_error(ErrorCode::kInternal, "not run"));
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        events::NewEvent e = stage_triggered("dev", static_cast<int>(t) + 1);
        start.arrive_and_wait();
        results[t] = append_one(stream, 0, std::move(e));
      });
    }
    for (auto& t : threads) t.join();
    int succeeded = 0;
    int aborted = 0;
    for (const auto& r : results) {
      if (r) ++succeeded;
      if (!r && r.error().code == ErrorCode::kAborted) ++aborted;
    }
    EXPECT_EQ(succeeded, 1);
    EXPECT_EQ(aborted, 1);
    EXPECT_EQ(log().stream_version(stream).value(), 1);
    EXPECT_EQ(log().read(stream).value().size(), 1u);
  }
  EXPECT_EQ(log().head(), 50u);
}

TEST_F(RocksEventLogTest, RacingRetriesOfOneBatchStoreItOnce) {
  for (int round = 0; round < 20; ++round) {
    SCOPED_TRACE(round);
    const std::string stream = "retry-" + std::to_string(round);
    const std::vector<events::NewEvent> batch = {stage_triggered("dev"), stage_triggered("test")};
    StartLine start(2);
    std::vector<Result<events::AppendResult>> results(2, make_error(ErrorCode::kInternal, "not run"));
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        start.arrive_and_wait();
        results[t] = log().append(stream, 0, batch);
      });
    }
    for (auto& t : threads) t.join();
    ASSERT_TRUE(results[0]) << results[0].error().message;
    ASSERT_TRUE(results[1]) << results[1].error().message;
    EXPECT_NE(results[0].value().duplicate, results[1].value().duplicate);
    EXPECT_EQ(results[0].value().last_position, results[1].value().last_position);
    EXPECT_EQ(results[0].value().last_version, 2);
    EXPECT_EQ(results[1].value().last_version, 2);
    EXPECT_EQ(log().read(stream).value().size(), 2u);
  }
  EXPECT_EQ(log().head(), 40u);
}

TEST_F(RocksEventLogTest, ConcurrentWritersOnDistinctStreamsAllLand) {
  constexpr int kThreads = 8;
  constexpr int kAppends = 200;
  std::atomic<int> failures{0};
  StartLine start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string stream = "writer-" + std::to_string(t);
      start.arrive_and_wait();
      for (int i = 0; i < kAppends; ++i) {
        auto appended = append_one(stream, i, stage_triggered("dev", i + 1));
        if (!appended || appended.value().last_version != i + 1) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(log().head(), std::uint64_t{kThreads * kAppends});

  auto all = log().read_all(1, 10'000);
  ASSERT_TRUE(all);
  ASSERT_EQ(all.value().size(), std::size_t{kThreads * kAppends});
  for (std::size_t i = 0; i < all.value().size(); ++i) ASSERT_EQ(all.value()[i].position, i + 1);
  for (int t = 0; t < kThreads; ++t) {
    auto stream = log().read("writer-" + std::to_string(t));
    ASSERT_TRUE(stream);
    EXPECT_EQ(stream.value().size(), std::size_t{kAppends});
    EXPECT_TRUE(events::verify_chain(stream.value()));
  }
}

TEST_F(RocksEventLogTest, AppendersReadTheirOwnEventsButNothingPastHead) {
  // Writes finish out of order; read() must still show an appender its own
  // events at once, and no reader may see a position beyond head().
  constexpr int kThreads = 8;
  constexpr int kAppends = 50;
  std::atomic<int> failures{0};
  StartLine start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string stream = "own-" + std::to_string(t);
      start.arrive_and_wait();
      for (int i = 0; i < kAppends; ++i) {
        auto appended = append_one(stream, i, stage_triggered("dev", i + 1));
        auto own = log().read(stream);
        auto all = log().read_all(1, 100'000);
        const std::uint64_t head = log().head();
        if (!appended || !own || !all || own.value().size() != static_cast<std::size_t>(i + 1) ||
            own.value().back().position != appended.value().last_position || head < appended.value().last_position) {
          ++failures;
        }
        for (std::size_t k = 0; own && k < own.value().size(); ++k) {
          if (own.value()[k].position > head) ++failures;
        }
        for (std::size_t k = 0; all && k < all.value().size(); ++k) {
          if (all.value()[k].position != k + 1 || all.value()[k].position > head) ++failures;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(log().head(), std::uint64_t{kThreads * kAppends});
}

TEST_F(RocksEventLogTest, RetryingWritersOnOneStreamKeepOneChain) {
  constexpr int kThreads = 4;
  constexpr int kAppends = 25;
  std::atomic<int> failures{0};
  StartLine start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kAppends; ++i) {
        events::NewEvent e = stage_triggered("writer-" + std::to_string(t), i + 1);
        for (;;) {  // what the command service does: reload and retry on kAborted
          auto version = log().stream_version(kStream);
          if (!version) {
            ++failures;
            break;
          }
          auto appended = append_one(kStream, version.value(), e);
          if (appended) break;
          if (appended.error().code != ErrorCode::kAborted) {
            ++failures;
            break;
          }
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto stream = log().read(kStream);
  ASSERT_TRUE(stream);
  EXPECT_EQ(stream.value().size(), std::size_t{kThreads * kAppends});
  EXPECT_TRUE(events::verify_chain(stream.value()));
  EXPECT_EQ(log().stream_version(kStream).value(), kThreads * kAppends);
}

TEST_F(RocksEventLogTest, ReopenKeepsEverythingAndContinuesPositionsAndChain) {
  ASSERT_TRUE(log().append(kStream, 0, {stage_triggered("dev"), stage_triggered("test")}));
  ASSERT_TRUE(append_one("release-2", 0, stage_triggered("dev")));
  const std::vector<events::RecordedEvent> before = log().read(kStream).value();

  reopen();
  EXPECT_EQ(log().head(), 3u);
  EXPECT_EQ(log().stream_version(kStream).value(), 2);
  EXPECT_EQ(log().stream_version("release-2").value(), 1);
  auto after = log().read(kStream);
  ASSERT_TRUE(after);
  ASSERT_EQ(after.value().size(), 2u);
  EXPECT_EQ(after.value()[0].hash, before[0].hash);
  EXPECT_EQ(after.value()[1].hash, before[1].hash);
  EXPECT_EQ(positions_of(log().read_all(1, 10).value()), (std::vector<std::uint64_t>{1, 2, 3}));

  auto stale = append_one(kStream, 1, stage_triggered("qa"));
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, ErrorCode::kAborted);
  auto next = append_one(kStream, 2, stage_triggered("qa"));
  ASSERT_TRUE(next) << next.error().message;
  EXPECT_EQ(next.value().last_version, 3);
  EXPECT_EQ(next.value().last_position, 4u);
  auto chain = log().read(kStream);
  ASSERT_TRUE(chain);
  ASSERT_EQ(chain.value().size(), 3u);
  EXPECT_EQ(chain.value()[2].prev_hash, before[1].hash);
  EXPECT_TRUE(events::verify_chain(chain.value()));

  // A new stream started after the reopen begins a chain of its own.
  auto fresh = append_one("release-3", 0, stage_triggered("dev"));
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh.value().last_position, 5u);
  EXPECT_EQ(log().read("release-3").value()[0].prev_hash, "");
}

TEST_F(RocksEventLogTest, SecondOpenOfTheSameDirectoryIsUnavailable) {
  auto second = RocksStore::open(dir_);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(second.error().message.find("lock"), std::string::npos) << second.error().message;
}

TEST_F(RocksEventLogTest, AbruptKillLosesNoAcknowledgedAppend) {
  store_.reset();  // the child alone has the database open
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_NE(child, -1);
  if (child == 0) {
    close(fds[0]);
    const int null_fd = open("/dev/null", O_WRONLY);
    if (null_fd >= 0) dup2(null_fd, STDOUT_FILENO);
    setenv(kKillChildDir, dir_.c_str(), 1);
    setenv(kKillChildFd, std::to_string(fds[1]).c_str(), 1);
    execl("/proc/self/exe", "/proc/self/exe", "--gtest_filter=RocksEventLogTest.AbruptKillLosesNoAcknowledgedAppend",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);

  std::int64_t last_acknowledged = 0;
  auto read_ack = [&] {
    std::int64_t version = 0;
    std::size_t got = 0;
    while (got < sizeof version) {
      const ssize_t n = ::read(fds[0], reinterpret_cast<char*>(&version) + got, sizeof version - got);
      if (n <= 0) return false;
      got += static_cast<std::size_t>(n);
    }
    EXPECT_EQ(version, last_acknowledged + 1);
    last_acknowledged = version;
    return true;
  };
  while (last_acknowledged < 200 && read_ack()) {
  }
  kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the writer exited early, status " << status;
  while (read_ack()) {  // acknowledged before the kill, read after it
  }
  close(fds[0]);
  ASSERT_GE(last_acknowledged, 200);

  reopen();
  auto stream = log().read(kStream);
  ASSERT_TRUE(stream) << stream.error().message;
  ASSERT_GE(stream.value().size(), static_cast<std::size_t>(last_acknowledged));
  for (std::size_t i = 0; i < stream.value().size(); ++i) ASSERT_EQ(stream.value()[i].version, std::int64_t(i + 1));
  EXPECT_TRUE(events::verify_chain(stream.value()));
  const std::int64_t recovered = log().stream_version(kStream).value();
  EXPECT_EQ(recovered, static_cast<std::int64_t>(stream.value().size()));
  auto next = append_one(kStream, recovered, stage_triggered("after-crash"));
  ASSERT_TRUE(next) << next.error().message;
  EXPECT_TRUE(events::verify_chain(log().read(kStream).value()));
}

TEST_F(RocksEventLogTest, CorruptedBytesAreDataLoss) {
  ASSERT_TRUE(log().append(kStream, 0, {stage_triggered("dev"), approval_granted("dev", "bob"),
                                        stage_triggered("test")}));
  ASSERT_TRUE(store_->corrupt_event_for_test(2, "{\"event_id\": tru"));

  auto read = log().read(kStream);
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().code, ErrorCode::kDataLoss);
  EXPECT_NE(read.error().message.find("position 2"), std::string::npos) << read.error().message;
  auto all = log().read_all(1, 10);
  ASSERT_FALSE(all);
  EXPECT_EQ(all.error().code, ErrorCode::kDataLoss);
  EXPECT_EQ(log().read_all(3, 10).value().size(), 1u);
}

TEST_F(RocksEventLogTest, AlteredContentBreaksTheChain) {
  ASSERT_TRUE(log().append(kStream, 0, {stage_triggered("dev"), approval_granted("dev", "bob"),
                                        stage_triggered("test")}));
  const events::RecordedEvent original = log().read(kStream).value()[1];

  // Valid JSON, old hash, new approver: the event no longer matches its hash.
  events::RecordedEvent altered = original;
  std::get<events::ApprovalGranted>(altered.data).approver = "mallory";
  nlohmann::json forged = nlohmann::json::parse(events::canonical_bytes(altered));
  forged["hash"] = original.hash;
  ASSERT_TRUE(store_->corrupt_event_for_test(2, forged.dump()));
  auto read = log().read(kStream);
  ASSERT_TRUE(read) << read.error().message;
  EXPECT_EQ(std::get<events::ApprovalGranted>(read.value()[1].data).approver, "mallory");
  auto verified = events::verify_chain(read.value());
  ASSERT_FALSE(verified);
  EXPECT_EQ(verified.error().code, ErrorCode::kDataLoss);
  EXPECT_NE(verified.error().message.find("content altered"), std::string::npos) << verified.error().message;

  // Resealed with a fresh hash: now the next event's link is broken.
  events::RecordedEvent resealed = altered;
  ASSERT_TRUE(store_->corrupt_event_for_test(2, events::seal(resealed)));
  auto relinked = events::verify_chain(log().read(kStream).value());
  ASSERT_FALSE(relinked);
  EXPECT_EQ(relinked.error().code, ErrorCode::kDataLoss);
  EXPECT_NE(relinked.error().message.find("broken link"), std::string::npos) << relinked.error().message;
}

TEST_F(RocksEventLogTest, VerifiedReadsCheckEveryLinkOnTheWay) {
  ASSERT_TRUE(log().append(kStream, 0, {stage_triggered("dev"), approval_granted("dev", "bob"),
                                        stage_triggered("test")}));
  const std::vector<events::RecordedEvent> stored = log().read(kStream).value();
  std::vector<std::int64_t> seen;
  auto collect = [&](const events::RecordedEvent& e) -> Status {
    seen.push_back(e.version);
    return success();
  };
  ASSERT_TRUE(log().read_each_verified(kStream, 1, "", collect));
  EXPECT_EQ(seen, (std::vector<std::int64_t>{1, 2, 3}));
  seen.clear();
  ASSERT_TRUE(log().read_each_verified(kStream, 2, stored[0].hash, collect)) << "a slice from the hash before it";
  EXPECT_EQ(seen, (std::vector<std::int64_t>{2, 3}));
  auto unanchored = log().read_each_verified(kStream, 2, "", collect);
  ASSERT_FALSE(unanchored);
  EXPECT_EQ(unanchored.error().code, ErrorCode::kDataLoss);
  EXPECT_NE(unanchored.error().message.find("version 2: broken link"), std::string::npos)
      << unanchored.error().message;

  // Altered under its old hash: stops at version 2, after visiting only version 1.
  events::RecordedEvent altered = stored[1];
  std::get<events::ApprovalGranted>(altered.data).approver = "mallory";
  nlohmann::json forged = nlohmann::json::parse(events::canonical_bytes(altered));
  forged["hash"] = stored[1].hash;
  ASSERT_TRUE(store_->corrupt_event_for_test(2, forged.dump()));
  seen.clear();
  auto verified = log().read_each_verified(kStream, 1, "", collect);
  ASSERT_FALSE(verified);
  EXPECT_EQ(verified.error().code, ErrorCode::kDataLoss);
  EXPECT_NE(verified.error().message.find("version 2: content altered"), std::string::npos)
      << verified.error().message;
  EXPECT_EQ(seen, (std::vector<std::int64_t>{1}));

  // Resealed with a fresh hash: version 3 no longer links to it.
  events::RecordedEvent resealed = altered;
  ASSERT_TRUE(store_->corrupt_event_for_test(2, events::seal(resealed)));
  verified = log().read_each_verified(kStream, 1, "", collect);
  ASSERT_FALSE(verified);
  EXPECT_EQ(verified.error().code, ErrorCode::kDataLoss);
  EXPECT_NE(verified.error().message.find("version 3: broken link"), std::string::npos) << verified.error().message;
}

TEST_F(RocksEventLogTest, DeletedEventIsDataLoss) {
  ASSERT_TRUE(log().append(kStream, 0, {stage_triggered("dev"), stage_triggered("test")}));
  ASSERT_TRUE(store_->delete_event_for_test(1));

  auto read = log().read(kStream);
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().code, ErrorCode::kDataLoss);
  // Read from the second version on, the stream no longer links to its start.
  auto rest = log().read(kStream, 2);
  ASSERT_TRUE(rest);
  auto verified = events::verify_chain(rest.value());
  ASSERT_FALSE(verified);
  EXPECT_EQ(verified.error().code, ErrorCode::kDataLoss);

  auto missing = store_->delete_event_for_test(1);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  auto beyond = store_->corrupt_event_for_test(99, "{}");
  ASSERT_FALSE(beyond);
  EXPECT_EQ(beyond.error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace cascade::adapters
