// A data directory whose RocksDB files are damaged. What must hold: opening
// it is a distinct, clear error (exit 8 naming the directory and RocksDB's
// reason, not a restart loop that looks transient), a held directory stays a
// different error, and the write-ahead log's recovery drops only a torn last
// record — never an acknowledged one silently.
#include "adapters/rocksdb/store.hpp"
#include "events/codec.hpp"
#include "tests/support/cli_runner.hpp"
#include "tests/support/serve_process.hpp"
#include "tests/support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace cascade {
namespace {

using testing::CommandRun;
using testing::ServeProcess;

constexpr int kCorruptExit = 8;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The files of `dir` whose names start with `prefix` or end with `suffix`, sorted.
std::vector<std::string> files(const std::string& dir, const std::string& prefix, const std::string& suffix = "") {
  std::vector<std::string> out;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename();
    const bool starts = !prefix.empty() && name.rfind(prefix, 0) == 0;
    const bool ends = !suffix.empty() && name.size() >= suffix.size() &&
                      name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    if (starts || ends) out.push_back(entry.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

class StoreCorruptionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const CommandRun demo = testing::run("demo --data " + dir_.path());
    ASSERT_EQ(demo.exit_code, 0) << demo.output;
  }

  // `cascade serve` on the data dir exits at once with `code`; its output.
  std::string serve_exits_with(int code) {
    ServeProcess serve({"--data", dir_.path()}, std::chrono::seconds(20));
    EXPECT_FALSE(serve.started()) << serve.output();
    const std::optional<int> exit = serve.wait_exit(std::chrono::seconds(20));
    EXPECT_EQ(exit, std::optional<int>(code)) << serve.output();
    return serve.output();
  }

  std::string log_dir() const { return dir_ / "log"; }
  testing::TempDir dir_;
};

TEST_F(StoreCorruptionTest, AGarbledCurrentFileIsExit8NamingTheDirectoryAndTheProblem) {
  std::ofstream(log_dir() + "/CURRENT", std::ios::trunc) << "garbage, not a MANIFEST name";

  const std::string served = serve_exits_with(kCorruptExit);
  EXPECT_TRUE(contains(served, "the data directory " + dir_.path() + " is corrupt")) << served;
  EXPECT_TRUE(contains(served, "CURRENT")) << served;
  EXPECT_TRUE(contains(served, "cascade doctor --data " + dir_.path())) << served;
  EXPECT_TRUE(contains(served, "restore the data directory from a backup")) << served;

  const CommandRun doctor = testing::run("doctor --data " + dir_.path());
  EXPECT_EQ(doctor.exit_code, kCorruptExit) << doctor.output;
  EXPECT_TRUE(contains(doctor.output, "is corrupt")) << doctor.output;
  EXPECT_TRUE(contains(doctor.output, "CURRENT")) << doctor.output;
  // Every offline command opens the store the same way.
  const CommandRun replay = testing::run("replay SampleApp-1 --data " + dir_.path());
  EXPECT_EQ(replay.exit_code, kCorruptExit) << replay.output;
  const CommandRun json = testing::run("doctor --json --data " + dir_.path(), /*with_stderr=*/false);
  EXPECT_TRUE(contains(json.output, "\"code\": \"store_corrupt\"")) << json.output;
}

TEST_F(StoreCorruptionTest, ATruncatedManifestIsExit8) {
  // The MANIFEST that CURRENT names (older ones may still lie around).
  std::string current = testing::read_file(log_dir() + "/CURRENT");
  ASSERT_FALSE(current.empty());
  current.pop_back();  // its newline
  const std::string manifest = log_dir() + "/" + current;
  ASSERT_TRUE(std::filesystem::exists(manifest)) << manifest;
  // Cut to nothing. (Cut after some whole records, RocksDB reads the
  // MANIFEST as of an earlier state — a torn tail of it is not an error — and
  // the tables written since go unnamed: `cascade doctor` then finds the
  // log's indexes disagreeing with its events, exit 7.)
  std::filesystem::resize_file(manifest, 0);

  const std::string served = serve_exits_with(kCorruptExit);
  EXPECT_TRUE(contains(served, "is corrupt")) << served;
  EXPECT_TRUE(contains(served, std::filesystem::path(manifest).filename().string())) << served;
  const CommandRun doctor = testing::run("doctor --data " + dir_.path());
  EXPECT_EQ(doctor.exit_code, kCorruptExit) << doctor.output;
}

TEST_F(StoreCorruptionTest, AGarbledTableFileIsExit8) {
  {
    // The demo's events in table files, not only in the write-ahead log.
    auto store = adapters::RocksStore::open(log_dir());
    ASSERT_TRUE(store) << store.error().message;
    ASSERT_TRUE(store.value()->flush_for_test());
  }
  const std::vector<std::string> tables = files(log_dir(), "", ".sst");
  ASSERT_FALSE(tables.empty());
  // The footer (its magic number) is at the end: overwrite the last bytes.
  const std::string table = tables.back();
  {
    std::fstream file(table, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(-16, std::ios::end);
    file << std::string(16, 'x');
  }
  const CommandRun doctor = testing::run("doctor --data " + dir_.path());
  EXPECT_EQ(doctor.exit_code, kCorruptExit) << doctor.output;
  // RocksDB names the MANIFEST that lists the table, not always the table.
  EXPECT_TRUE(contains(doctor.output, "is corrupt: Corruption: ")) << doctor.output;
}

TEST_F(StoreCorruptionTest, AHeldDataDirectoryStaysADifferentError) {
  ServeProcess serve({"--data", dir_.path()});
  ASSERT_TRUE(serve.started()) << serve.output();
  const CommandRun doctor = testing::run("doctor --data " + dir_.path());
  EXPECT_EQ(doctor.exit_code, 1) << doctor.output;
  EXPECT_TRUE(contains(doctor.output, "held by a running server")) << doctor.output;
  EXPECT_TRUE(contains(doctor.output, "stop the server first")) << doctor.output;
  EXPECT_FALSE(contains(doctor.output, "corrupt")) << doctor.output;
}

// ---- Recovery of the write-ahead log ---------------------------------------

events::NewEvent approval(const std::string& comment) {
  events::ApprovalGranted payload;
  payload.stage = "prod";
  payload.phase = "pre";
  payload.approver = "alice";
  payload.comment = comment;
  events::NewEvent e;
  e.event_id = events::random_uuid();
  e.data = payload;
  e.recorded_at = 1'800'000'000'000;
  e.actor = "alice";
  return e;
}

class WalRecoveryTest : public ::testing::Test {
 protected:
  // Three acknowledged appends, one stream each, left in the write-ahead log
  // only (closing does not flush the memtables); the log file.
  std::string three_appends_in_the_wal() {
    {
      auto store = adapters::RocksStore::open(dir_.path());
      EXPECT_TRUE(store) << store.error().message;
      if (!store) return "";
      for (const char* stream : {"release-a", "release-b", "release-c"}) {
        auto appended = store.value()->log().append(stream, 0, {approval(std::string(200, 'x'))});
        EXPECT_TRUE(appended) << appended.error().message;
      }
    }
    const std::vector<std::string> wals = files(dir_.path(), "", ".log");
    EXPECT_FALSE(wals.empty());
    return wals.empty() ? "" : wals.back();
  }

  std::int64_t version_of(adapters::RocksStore& store, const std::string& stream) {
    auto version = store.log().stream_version(stream);
    EXPECT_TRUE(version) << version.error().message;
    return version ? version.value() : -1;
  }

  testing::TempDir dir_;
};

// kill -9 or a power cut during a write leaves its record incomplete; that
// write was never acknowledged, and the store opens without it.
TEST_F(WalRecoveryTest, ATornLastRecordIsDroppedAndEveryEarlierAppendKept) {
  const std::string wal = three_appends_in_the_wal();
  ASSERT_FALSE(wal.empty());
  std::filesystem::resize_file(wal, std::filesystem::file_size(wal) - 20);

  auto store = adapters::RocksStore::open(dir_.path());
  ASSERT_TRUE(store) << store.error().message;
  EXPECT_EQ(version_of(*store.value(), "release-a"), 1);
  EXPECT_EQ(version_of(*store.value(), "release-b"), 1);
  EXPECT_EQ(version_of(*store.value(), "release-c"), 0) << "the torn record";
}

// Damage before the end of the log would, with point-in-time recovery, end
// the replay there and lose the acknowledged appends after it without a word.
TEST_F(WalRecoveryTest, ADamagedRecordBeforeTheEndRefusesToOpen) {
  const std::string wal = three_appends_in_the_wal();
  ASSERT_FALSE(wal.empty());
  {
    // Inside the first record's payload (its 7-byte header comes first).
    std::fstream file(wal, std::ios::in | std::ios::out | std::ios::binary);
    file.seekg(60);
    char byte = 0;
    file.read(&byte, 1);
    file.seekp(60);
    file.put(static_cast<char>(byte ^ 0x01));
  }
  auto store = adapters::RocksStore::open(dir_.path());
  ASSERT_FALSE(store) << "opened, without the appends after the damage";
  EXPECT_EQ(store.error().code, ErrorCode::kStoreCorrupt) << store.error().message;
  EXPECT_TRUE(contains(store.error().message, "is corrupt")) << store.error().message;
}

}  // namespace
}  // namespace cascade
