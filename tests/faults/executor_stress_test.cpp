// The executor under contention: thousands of releases through a queue of
// two, deployments finishing on their own threads while the reactor thread
// queues new ones, many threads commanding one release while its step runs.
// What must hold: each attempt starts once and runs on one thread (a second
// std::thread assigned over a running one would end the process), every
// release ends, and no command is lost to contention.
#include "tests/support/engine_harness.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace cascade::testing {
namespace {

class ExecutorStressTest : public EngineHarness {};

TEST_F(ExecutorStressTest, TwoThousandReleasesThroughAQueueOfTwoStartEachAttemptOnce) {
  apply(R"({"name": "Busy", "stages": [{"name": "dev", "trigger": {"after_release": true}, "max_parallel": 2,
            "steps": [{"name": "s", "run": "true"}]}]})");
  run();
  constexpr int kReleases = 2000;
  std::vector<std::string> ids;
  ids.reserve(kReleases);
  for (int i = 0; i < kReleases; ++i) ids.push_back(create("Busy", "1.0." + std::to_string(i)));
  // 2,000 processes two at a time: ~10 s alone, several times that beside the
  // suite's heaviest tests (and ThreadSanitizer) on two cores.
  settle(std::chrono::seconds(300));
  int succeeded = 0, started_once = 0;
  for (const std::string& id : ids) {
    succeeded += state_of(id, "dev") == engine::StageState::kSucceeded ? 1 : 0;
    started_once += count<events::DeploymentStarted>(id) == 1 ? 1 : 0;
  }
  EXPECT_EQ(succeeded, kReleases);
  EXPECT_EQ(started_once, kReleases);
}

// 64 threads cancel, redeploy and read one release at once while its step
// runs: every command is done or refused as illegal in the state it met
// (never lost to contention as an internal, aborted or unavailable error),
// the release ends in one consistent state, and the log stays a valid chain.
TEST_F(ExecutorStressTest, SixtyFourThreadsCommandingOneReleaseWhileItsStepRuns) {
  apply(R"({"name": "Hot", "stages": [{"name": "dev", "trigger": {"after_release": true},
            "steps": [{"name": "s", "run": "hold"}]}]})");
  scripted_.hold_until_started("dev", "hold", "never");  // holds until its patience runs out
  scripted_.patience = std::chrono::milliseconds(500);
  run();
  const std::string id = create("Hot");
  std::atomic<int> done{0}, refused_as_illegal{0};
  std::mutex other_errors_mutex;
  std::vector<std::string> other_errors;
  std::vector<std::thread> threads;
  for (int t = 0; t < 64; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        const engine::Invocation who{"user-" + std::to_string(t), "", ""};
        Result<engine::ReleaseState> result =
            (i + t) % 3 == 0 ? service().execute(id, engine::CancelStage{"dev", "stress"}, who)
            : (i + t) % 3 == 1 ? service().execute(id, engine::RedeployStage{"dev", "stress"}, who)
                               : service().load(id);
        if (result) {
          ++done;
        } else if (result.error().code == ErrorCode::kFailedPrecondition && !result.error().message.empty()) {
          ++refused_as_illegal;
        } else {
          std::lock_guard lock(other_errors_mutex);
          other_errors.push_back(std::string(to_string(result.error().code)) + ": " + result.error().message);
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  settle();
  EXPECT_TRUE(other_errors.empty()) << other_errors.size() << " commands failed otherwise, first: " << other_errors.front();
  EXPECT_EQ(done.load() + refused_as_illegal.load(), 64 * 20);
  EXPECT_GT(refused_as_illegal.load(), 0) << "a cancel of a canceled stage is refused";
  const engine::StageState final_state = state_of(id, "dev");
  EXPECT_TRUE(final_state == engine::StageState::kCanceled || final_state == engine::StageState::kSucceeded ||
              final_state == engine::StageState::kFailed)
      << engine::to_string(final_state);
  auto verified = store_->log().read(engine::release_stream(id));
  ASSERT_TRUE(verified) << verified.error().message;
  const std::size_t started = count<events::DeploymentStarted>(id);
  const std::size_t ended = count<events::DeploymentSucceeded>(id) + count<events::DeploymentFailed>(id) +
                            count<events::DeploymentCanceled>(id);
  EXPECT_EQ(started, ended) << "every attempt started was ended exactly once";
}

}  // namespace
}  // namespace cascade::testing
