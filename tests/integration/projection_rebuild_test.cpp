// Every read model: rebuilt from the log it stores the same bytes as when it
// was kept incrementally — from scratch, and while the engine keeps working;
// its lag behind the log is observable.
#include "projections/projection_store.hpp"

#include "tests/support/projections_harness.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <thread>

namespace cascade::projections {
namespace {

using engine::StageState;

constexpr const char* kShop = R"json({"name": "Shop",
  "groups": {"release-managers": ["alice", "bob"]},
  "stages": [
    {"name": "dev", "trigger": {"after_release": true},
     "steps": [{"name": "deploy", "run": "deploy dev $(CASCADE_ARTIFACT_VERSION)"}]},
    {"name": "prod", "trigger": {"after_stages": ["dev"]},
     "pre_approval": {"approvers": ["release-managers", "cto"], "timeout": "2d"},
     "on_failure": "redeploy_last_good",
     "steps": [{"name": "deploy", "run": "deploy prod $(CASCADE_ARTIFACT_VERSION)"}]}]})json";

class ProjectionRebuildTest : public testing::ProjectionsHarness {
 protected:
  void approve_if_waiting(const std::string& release) {
    if (state_of(release, "prod") == StageState::kAwaitingPreApproval) approve(release, "prod", "bob");
  }

  // Successes, a failure with its rollback, a failure at dev, a rejection, a
  // cancel, a timeout, a pipeline edit and a release left waiting.
  void scripted_history() {
    apply(kShop);
    const std::string first = create("Shop", "1.0.0");
    settle();
    approve(first, "prod", "alice");
    settle();
    std::string edited = kShop;
    edited.replace(edited.find("\"Shop\","), 7, "\"Shop\", \"description\": \"v2\",");
    apply(edited);
    scripted_.fail("prod", "deploy prod 2.0.0", 1);
    const std::string second = create("Shop", "2.0.0");
    settle();
    approve(second, "prod", "cto");
    settle();
    approve_if_waiting(first);  // the rollback onto the first release
    settle();
    scripted_.fail("dev", "deploy dev 3.0.0", 2);
    create("Shop", "3.0.0");
    settle();
    const std::string rejected = create("Shop", "4.0.0");
    settle();
    reject(rejected, "prod", "alice");
    const std::string canceled = create("Shop", "5.0.0");
    settle();
    cancel(canceled, "prod", "bob");
    create("Shop", "6.0.0");
    settle();
    clock_.advance(std::chrono::hours(49));  // 6.0.0's approval times out
    settle();
    create("Shop", "7.0.0");  // left waiting for its approval
    settle();
  }

  void expect_caught_up() {
    const std::uint64_t head = store_->log().head();
    auto status = projections().status(head);
    ASSERT_TRUE(status);
    for (const ProjectionStatus& s : status.value()) {
      EXPECT_EQ(s.checkpoint, head) << s.name;
      EXPECT_EQ(s.lag, 0u) << s.name;
    }
  }
};

TEST_F(ProjectionRebuildTest, EveryProjectionClearedAndRebuiltFromTheLogIsByteIdentical) {
  run();
  scripted_history();
  const Contents incremental = contents();
  // The history reached every read model.
  for (const auto& [name, entries] : incremental) EXPECT_GT(entries.size(), 0u) << name;
  ASSERT_EQ(incremental.size(), 6u);

  stop();
  {
    auto set = ProjectionSet::open(dir_ / "projections", store_->log());
    ASSERT_TRUE(set) << set.error().message;
    for (Projection* projection : set.value()->all()) {
      ASSERT_TRUE(projection->clear());
      EXPECT_EQ(projection->checkpoint().value(), 0u);
      EXPECT_TRUE(projection->contents().value().empty()) << projection->name();
    }
  }
  start();
  settle();
  EXPECT_TRUE(testing::same_contents(incremental, contents()));
  expect_caught_up();
}

TEST_F(ProjectionRebuildTest, DocumentsOfAnotherFormatAreRebuiltFromTheLogWhenTheStoreOpens) {
  run();
  scripted_history();
  const Contents current = contents();
  stop();
  {
    // As an older build left them: summaries of format 1, one of them stale.
    auto store = ProjectionStore::open(dir_ / "projections", {ReleaseSummaryProjection::kSummariesFamily});
    ASSERT_TRUE(store) << store.error().message;
    rocksdb::DB& db = store.value()->db();
    ASSERT_TRUE(db.Put({}, store.value()->meta(), ProjectionStore::format_key("release_summary"), "1").ok());
    ASSERT_TRUE(db.Put({}, store.value()->family(ReleaseSummaryProjection::kSummariesFamily), "Shop-5",
                       R"({"written": "by an older build"})")
                    .ok());
  }
  {
    auto set = ProjectionSet::open(dir_ / "projections", store_->log());
    ASSERT_TRUE(set) << set.error().message;
    // Only the projection whose format changed starts over.
    EXPECT_EQ(set.value()->summaries().checkpoint().value(), 0u);
    EXPECT_TRUE(set.value()->summaries().contents().value().empty());
    EXPECT_EQ(set.value()->environments().checkpoint().value(), store_->log().head());
    EXPECT_EQ(set.value()->summaries().format(), 2);
  }
  start();
  settle();
  EXPECT_TRUE(testing::same_contents(current, contents()));
  {
    // Adopted once: the next open keeps what the rebuild wrote.
    stop();
    auto set = ProjectionSet::open(dir_ / "projections", store_->log());
    ASSERT_TRUE(set) << set.error().message;
    EXPECT_EQ(set.value()->summaries().checkpoint().value(), store_->log().head());
  }
}

TEST_F(ProjectionRebuildTest, RebuildWhileTheEngineRunsEndsIdenticalToAReadModelBuiltFromScratch) {
  run();
  scripted_history();
  const Contents before = contents();
  ASSERT_TRUE(projections().rebuild(""));
  for (const Projection* projection : projections().all()) {
    EXPECT_FALSE(projection->idle()) << projection->name() << ": busy until rebuilt";
  }
  // The engine keeps working while the projections rebuild.
  const std::string later = create("Shop", "8.0.0");
  settle();
  approve(later, "prod", "cto");
  settle();
  for (const Projection* projection : projections().all()) EXPECT_TRUE(projection->idle()) << projection->name();
  expect_caught_up();
  EXPECT_EQ(nlohmann::json::parse(summaries_->summary(later).value())["status"], "Succeeded");

  // A reference set, folded from position 0 in a database of its own.
  auto reference = ProjectionSet::open(dir_ / "reference", store_->log());
  ASSERT_TRUE(reference) << reference.error().message;
  engine::ReactorRunner runner(store_->log());
  for (Projection* projection : reference.value()->all()) runner.add(*projection);
  runner.start();
  ASSERT_TRUE(runner.wait_until_quiescent(std::chrono::seconds(30))) << runner.last_error();
  runner.stop();
  Contents expected;
  for (const Projection* projection : reference.value()->all()) {
    expected[projection->name()] = projection->contents().value();
  }
  EXPECT_TRUE(testing::same_contents(expected, contents()));
  // Documents of releases the rebuild did not see change are the same bytes.
  for (const auto& entry : before.at("release_summary")) {
    if (entry.family == ReleaseSummaryProjection::kSummariesFamily) {
      EXPECT_EQ(summaries_->summary(entry.key).value(), entry.value) << entry.key;
    }
  }
}

TEST_F(ProjectionRebuildTest, RebuildingOneProjectionLeavesTheOthersAndUnknownNamesAreNotFound) {
  run();
  scripted_history();
  const Contents before = contents();
  ASSERT_TRUE(projections().rebuild("environments"));
  EXPECT_FALSE(projections().environments().idle());
  EXPECT_TRUE(projections().summaries().idle());
  settle();
  EXPECT_TRUE(testing::same_contents(before, contents()));
  auto unknown = projections().rebuild("nope");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
  EXPECT_NE(unknown.error().message.find("delivery_metrics"), std::string::npos) << unknown.error().message;
}

TEST_F(ProjectionRebuildTest, ARebuildDropsWhatTheLogNoLongerExplains) {
  run();
  scripted_history();
  stop();
  {
    // Data no event explains, as a buggy older build might have left.
    auto store = ProjectionStore::open(dir_ / "projections", {EnvironmentProjection::kCurrentFamily});
    ASSERT_TRUE(store) << store.error().message;
    ASSERT_TRUE(store.value()->db().Put({}, store.value()->family(EnvironmentProjection::kCurrentFamily),
                                        std::string("Ghost") + '\0' + "prod", "{}").ok());
  }
  start();
  settle();
  auto stale = projections().environments().environment("Ghost", "prod");
  ASSERT_TRUE(stale) << "caught up incrementally, the stray document is still there";
  ASSERT_TRUE(projections().rebuild("environments"));
  settle();
  auto rebuilt = projections().environments().environment("Ghost", "prod");
  ASSERT_FALSE(rebuilt);
  EXPECT_EQ(rebuilt.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(projections().environments().environments("").value().size(), 2u) << "Shop's dev and prod";
}

TEST_F(ProjectionRebuildTest, LagIsTheEventsEachProjectionIsBehindTheLog) {
  // SetUp built the engine without running it: the service appends, nothing folds.
  apply(kShop);
  create("Shop", "1.0.0");
  const std::uint64_t head = store_->log().head();
  ASSERT_GT(head, 0u);
  auto behind = projections().status(head);
  ASSERT_TRUE(behind);
  ASSERT_EQ(behind.value().size(), 6u);
  for (const ProjectionStatus& s : behind.value()) {
    EXPECT_EQ(s.checkpoint, 0u) << s.name;
    EXPECT_EQ(s.lag, head) << s.name;
    EXPECT_EQ(projections().find(s.name).value()->lag(head).value(), head);
  }
  run();
  settle();
  expect_caught_up();
}

TEST_F(ProjectionRebuildTest, AReaderWaitsUntilACommitReachesItsPosition) {
  // SetUp built the engine without running it: the test folds by hand.
  apply(kShop);
  const std::string id = create("Shop", "1.0.0");
  const std::uint64_t created = store_->log().head();
  ReleaseSummaryProjection& summaries = projections().summaries();
  EXPECT_FALSE(summaries.wait_for(created, std::chrono::milliseconds(0)).value()) << "nothing is folded yet";

  std::optional<Result<bool>> reached;
  std::optional<Result<std::string>> summary;
  std::atomic<bool> read{false};
  std::thread reader([&] {
    reached = summaries.wait_for(created, std::chrono::seconds(60));
    summary = summaries.summary(id);
    read = true;
  });
  // Hand-off: the commit happens only once the reader waits (or has read
  // already), so a reader that did not wait finds no summary.
  while (summaries.waiting() == 0 && !read) std::this_thread::yield();
  auto batch = store_->log().read_all(1, 1000);
  ASSERT_TRUE(batch);
  EXPECT_TRUE(summaries.handle(batch.value()));
  reader.join();
  ASSERT_TRUE(reached && reached->has_value());
  EXPECT_TRUE(reached->value());
  ASSERT_TRUE(summary && summary->has_value()) << (summary ? summary->error().message : "");
  EXPECT_EQ(nlohmann::json::parse(summary->value())["id"], id);
  EXPECT_EQ(summaries.waiting(), 0u);
}

TEST_F(ProjectionRebuildTest, FoldsEvictedFromASmallCacheGiveTheSameReleases) {
  run();
  scripted_history();
  // Capacity 1 with interleaved releases: nearly every event misses the
  // cache and folds its stream's prefix from the log again.
  ReleaseFolds folds(store_->log(), 1);
  std::map<std::string, nlohmann::json> folded;
  auto all = store_->log().read_all(1, 100'000);
  ASSERT_TRUE(all);
  for (const events::RecordedEvent& event : all.value()) {
    auto state = folds.fold(event);
    ASSERT_TRUE(state) << state.error().message;
    if (state.value() != nullptr) folded[state.value()->id] = summarize(*state.value());
    folds.trim();
  }
  ASSERT_EQ(folded.size(), 7u);
  for (const auto& [id, summary] : folded) EXPECT_EQ(summary.dump(), summaries_->summary(id).value()) << id;
}

}  // namespace
}  // namespace cascade::projections
