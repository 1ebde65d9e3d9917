// `cascade doctor --data DIR`, run as a user would against the demo's data
// directory: healthy, then with one stored event edited behind the log's back,
// an event deleted, and a projection that no longer matches the log.
#include "adapters/rocksdb/store.hpp"
#include "events/codec.hpp"
#include "tests/support/cli_runner.hpp"
#include "tests/support/temp_dir.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <rocksdb/db.h>

#include <string>
#include <vector>

namespace cascade {
namespace {

using testing::CommandRun;
using testing::run;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The bytes the log stores for an intact event (what events::seal returned).
std::string stored_bytes(const events::RecordedEvent& event) {
  nlohmann::json object = nlohmann::json::parse(events::canonical_bytes(event));
  object["hash"] = event.hash;
  return object.dump();
}

class DoctorCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const CommandRun demo = run("demo " + data());
    ASSERT_EQ(demo.exit_code, 0) << demo.output;
  }

  std::string data() const { return "--data " + dir_.path(); }

  // The demo release's first event of `type`, read with the store open.
  events::RecordedEvent first(adapters::RocksStore& store, const std::string& type) {
    auto events = store.log().read("release-SampleApp-1");
    EXPECT_TRUE(events) << events.error().message;
    for (const events::RecordedEvent& e : events.value()) {
      if (events::type_name(e.data) == type) return e;
    }
    ADD_FAILURE() << "no " << type;
    return {};
  }

  testing::TempDir dir_;
};

TEST_F(DoctorCliTest, TheDemoDataDirectoryIsHealthy) {
  const CommandRun doctor = run("doctor " + data());
  EXPECT_EQ(doctor.exit_code, 0) << doctor.output;
  EXPECT_FALSE(contains(doctor.output, "problem:")) << doctor.output;
  EXPECT_TRUE(contains(doctor.output, "1 release and 1 other stream")) << doctor.output;
  EXPECT_TRUE(contains(doctor.output, "6 projections checked: no problems")) << doctor.output;

  const CommandRun json = run("doctor --json " + data(), /*with_stderr=*/false);
  ASSERT_EQ(json.exit_code, 0) << json.output;
  const nlohmann::json report = nlohmann::json::parse(json.output);
  EXPECT_TRUE(report["healthy"].get<bool>());
  EXPECT_TRUE(report["problems"].empty());
  EXPECT_GT(report["checked"]["events"].get<int>(), 20);
  // The doctor writes nothing: a second run finds the same.
  EXPECT_EQ(run("doctor " + data()).exit_code, 0);
}

TEST_F(DoctorCliTest, AnEditedEventIsExit7NamingItsRelease) {
  {
    auto store = adapters::RocksStore::open(dir_ / "log");
    ASSERT_TRUE(store) << store.error().message;
    const events::RecordedEvent granted = first(*store.value(), "ApprovalGranted");
    std::string bytes = stored_bytes(granted);
    const auto at = bytes.find("looks good");
    ASSERT_NE(at, std::string::npos) << bytes;
    bytes[at] = 'L';  // still valid JSON: only the hash can tell
    ASSERT_TRUE(store.value()->corrupt_event_for_test(granted.position, bytes));
  }
  const CommandRun doctor = run("doctor " + data());
  EXPECT_EQ(doctor.exit_code, 7) << doctor.output;
  EXPECT_TRUE(contains(doctor.output, "problem: release SampleApp-1: event_chain: ")) << doctor.output;
  EXPECT_TRUE(contains(doctor.output, "cascade replay SampleApp-1 --verify " + data())) << doctor.output;
  EXPECT_TRUE(contains(doctor.output, "restore the data directory from a backup")) << doctor.output;
  EXPECT_TRUE(contains(doctor.output, "checked: ")) << doctor.output;

  const CommandRun json = run("doctor --json " + data(), /*with_stderr=*/false);
  EXPECT_EQ(json.exit_code, 7) << json.output;
  const nlohmann::json report = nlohmann::json::parse(json.output);
  EXPECT_FALSE(report["healthy"].get<bool>());
  ASSERT_FALSE(report["problems"].empty());
  EXPECT_EQ(report["problems"][0]["subject"], "release SampleApp-1");
}

TEST_F(DoctorCliTest, ADeletedEventIsExit7NamingItsPositionInTheIndex) {
  std::uint64_t position = 0;
  {
    auto store = adapters::RocksStore::open(dir_ / "log");
    ASSERT_TRUE(store) << store.error().message;
    position = first(*store.value(), "ApprovalGranted").position;
    ASSERT_TRUE(store.value()->delete_event_for_test(position));
  }
  const CommandRun doctor = run("doctor " + data());
  EXPECT_EQ(doctor.exit_code, 7) << doctor.output;
  EXPECT_TRUE(contains(doctor.output, "the streams index names log position " + std::to_string(position)))
      << doctor.output;
  EXPECT_TRUE(contains(doctor.output, "problem: release SampleApp-1: ")) << doctor.output;
}

TEST_F(DoctorCliTest, AProjectionThatNoLongerMatchesTheLogNamesTheRebuildCommand) {
  {
    // A stray document in the environments read model, as a buggy build might leave.
    rocksdb::Options options;
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(options, dir_ / "projections", &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const std::string& name : names) families.emplace_back(name, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir_ / "projections", families, &handles, &db).ok());
    for (rocksdb::ColumnFamilyHandle* handle : handles) {
      if (handle->GetName() == "environments") {
        EXPECT_TRUE(db->Put({}, handle, std::string("Ghost") + '\0' + "prod", "{}").ok());
      }
    }
    for (rocksdb::ColumnFamilyHandle* handle : handles) db->DestroyColumnFamilyHandle(handle);
    delete db;
  }
  const CommandRun doctor = run("doctor " + data());
  EXPECT_EQ(doctor.exit_code, 7) << doctor.output;
  EXPECT_TRUE(contains(doctor.output, "problem: projection environments: differs from the log")) << doctor.output;
  EXPECT_TRUE(contains(doctor.output, "Ghost\\x00prod")) << doctor.output;
  EXPECT_TRUE(contains(doctor.output, "cascade projections rebuild environments " + data())) << doctor.output;

  const CommandRun rebuilt = run("projections rebuild environments " + data());
  ASSERT_EQ(rebuilt.exit_code, 0) << rebuilt.output;
  const CommandRun healthy = run("doctor " + data());
  EXPECT_EQ(healthy.exit_code, 0) << healthy.output;
}

}  // namespace
}  // namespace cascade
