// Delivery metrics (the DORA four) from a scripted history with known
// answers: deployments at chosen times on a manual clock.
#include "tests/support/projections_harness.hpp"

#include <gtest/gtest.h>

namespace cascade::projections {
namespace {

constexpr const char* kApi = R"json({"name": "Api", "stages": [
  {"name": "staging", "trigger": {"after_release": true}, "steps": [{"name": "deploy", "run": "stage $(CASCADE_ARTIFACT_VERSION)"}]},
  {"name": "prod", "trigger": {"after_stages": ["staging"]},
   "steps": [{"name": "deploy", "run": "deploy $(CASCADE_ARTIFACT_VERSION)"}]}]})json";

class DeliveryMetricsTest : public testing::ProjectionsHarness {
 protected:
  void SetUp() override {
    ProjectionsHarness::SetUp();
    run();
    apply(kApi);
    t0_ = clock_.now();
  }
  void at(std::int64_t ms_after_t0) { clock_.set(t0_ + ms_after_t0); }
  std::string release(const std::string& version, events::Timestamp built_at) {
    const std::string id = create_from("Api", events::Artifact{version, "/artifacts/" + version, built_at, "", ""});
    settle();
    return id;
  }
  DeliveryMetrics prod(std::int64_t from, std::int64_t to) {
    auto metrics = projections().delivery_metrics().stage_metrics("Api", "prod", t0_ + from, t0_ + to);
    EXPECT_TRUE(metrics) << metrics.error().message;
    return metrics ? metrics.value() : DeliveryMetrics{};
  }

  // Prod, over five days:
  //   day 0     1.0.0 built 2 h before, deployed          lead 2 h
  //   day 1     2.0.0 built 4 h before, deployed          lead 4 h
  //   day 2     3.0.0 (no build time) fails
  //   day 2+3h  2.0.0 redeployed: restores after 3 h      lead 1 d 7 h (from its build)
  //   day 3     4.0.0 built 1 h before, deployed          lead 1 h
  //   day 4     5.0.0 fails, never restored
  void scripted_history() {
    scripted_.fail("prod", "deploy 3.0.0", 1);
    scripted_.fail("prod", "deploy 5.0.0", 1);
    release("1.0.0", t0_ - 2 * kHourMs);
    at(kDayMs);
    const std::string second = release("2.0.0", t0_ + kDayMs - 4 * kHourMs);
    at(2 * kDayMs);
    release("3.0.0", 0);
    at(2 * kDayMs + 3 * kHourMs);
    redeploy(second, "prod", "alice");
    settle();
    at(3 * kDayMs);
    release("4.0.0", t0_ + 3 * kDayMs - kHourMs);
    at(4 * kDayMs);
    release("5.0.0", t0_ + 4 * kDayMs - kHourMs);
  }

  events::Timestamp t0_ = 0;
};

TEST_F(DeliveryMetricsTest, TheFourFiguresOverFiveDaysHaveTheirKnownValues) {
  scripted_history();
  const DeliveryMetrics m = prod(0, 5 * kDayMs);
  EXPECT_EQ(m.deployments, 4);
  EXPECT_DOUBLE_EQ(m.deployments_per_day, 0.8);
  // Lead times 1 h, 2 h, 4 h, 31 h: nearest-rank median is the 2nd, p90 the 4th.
  EXPECT_EQ(m.lead_time_median_ms, 2 * kHourMs);
  EXPECT_EQ(m.lead_time_p90_ms, 31 * kHourMs);
  EXPECT_EQ(m.failed, 2);
  ASSERT_TRUE(m.change_failure_rate);
  EXPECT_DOUBLE_EQ(*m.change_failure_rate, 2.0 / 6.0);
  EXPECT_EQ(m.time_to_restore_median_ms, 3 * kHourMs);
  EXPECT_EQ(m.restored, 1);
  EXPECT_EQ(m.unrestored, 1);

  const nlohmann::json j = to_json(m);
  EXPECT_EQ(j["deployment_frequency"]["deployments"], 4);
  EXPECT_EQ(j["lead_time_ms"]["median"], 2 * kHourMs);
  EXPECT_EQ(j["time_to_restore_ms"]["unrestored"], 1);
}

TEST_F(DeliveryMetricsTest, TheWindowSelectsDeploymentsByWhenTheyFinished) {
  scripted_history();
  // [day 1, day 2 + 1 h): 2.0.0's deployment and 3.0.0's failure, restored after the window's end.
  const DeliveryMetrics m = prod(kDayMs, 2 * kDayMs + kHourMs);
  EXPECT_EQ(m.deployments, 1);
  EXPECT_EQ(m.lead_time_median_ms, 4 * kHourMs);
  EXPECT_EQ(m.failed, 1);
  EXPECT_DOUBLE_EQ(*m.change_failure_rate, 0.5);
  EXPECT_EQ(m.time_to_restore_median_ms, 3 * kHourMs);
  EXPECT_EQ(m.unrestored, 0);

  // The end is exclusive: day 3's deployment is outside [day 3 - 1 h, day 3).
  const DeliveryMetrics empty = prod(3 * kDayMs - kHourMs, 3 * kDayMs);
  EXPECT_EQ(empty.deployments, 0);
  EXPECT_FALSE(empty.change_failure_rate);
  EXPECT_FALSE(empty.lead_time_median_ms);
  EXPECT_FALSE(empty.time_to_restore_median_ms);
  EXPECT_EQ(prod(3 * kDayMs, 3 * kDayMs + 1).deployments, 1);
}

TEST_F(DeliveryMetricsTest, EveryStageOfThePipelineHasItsOwnFigures) {
  scripted_history();
  auto stages = projections().delivery_metrics().pipeline_metrics("Api", t0_, t0_ + 5 * kDayMs);
  ASSERT_TRUE(stages) << stages.error().message;
  ASSERT_EQ(stages.value().size(), 2u);
  EXPECT_EQ(stages.value()[0].stage, "prod");
  EXPECT_EQ(stages.value()[0].deployments, 4);
  const DeliveryMetrics& staging = stages.value()[1];
  EXPECT_EQ(staging.stage, "staging");
  EXPECT_EQ(staging.deployments, 5) << "every release passed staging; the redeploy was prod's";
  EXPECT_EQ(staging.failed, 0);
  EXPECT_DOUBLE_EQ(*staging.change_failure_rate, 0.0);
  // 3.0.0 without a build time: its lead time starts at the release's creation (0 at staging).
  EXPECT_EQ(staging.lead_time_median_ms, kHourMs);

  auto none = projections().delivery_metrics().stage_metrics("Api", "qa", t0_, t0_ + kDayMs);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, ErrorCode::kNotFound);
  auto backwards = projections().delivery_metrics().pipeline_metrics("Api", t0_, t0_);
  ASSERT_FALSE(backwards);
  EXPECT_EQ(backwards.error().code, ErrorCode::kInvalidArgument);
}

TEST(DeliveryMetricsComputeTest, CanceledDeploymentsCountNeitherWayAndPartialOnesSucceed) {
  constexpr std::int64_t kMinute = 60'000;
  const std::vector<DeploymentRecord> deployments = {
      {"A-1", 1, DeploymentOutcome::kFailed, 10 * kMinute, 0},
      {"A-1", 2, DeploymentOutcome::kCanceled, 11 * kMinute, 0},
      {"A-2", 1, DeploymentOutcome::kFailed, 12 * kMinute, 0},
      {"A-3", 1, DeploymentOutcome::kPartiallySucceeded, 20 * kMinute, 5 * kMinute},
      {"A-4", 1, DeploymentOutcome::kSucceeded, 30 * kMinute, 0},
  };
  const DeliveryMetrics m = compute_delivery_metrics(deployments, 0, 25 * kMinute);
  EXPECT_EQ(m.deployments, 1);
  EXPECT_EQ(m.failed, 2);
  EXPECT_DOUBLE_EQ(*m.change_failure_rate, 2.0 / 3.0);
  EXPECT_EQ(m.lead_time_median_ms, 15 * kMinute);
  // Both failures are restored by the partial success at minute 20: after 10 and 8 minutes.
  EXPECT_EQ(m.restored, 2);
  EXPECT_EQ(m.time_to_restore_median_ms, 8 * kMinute);
  EXPECT_DOUBLE_EQ(m.deployments_per_day, 1.0 / (25.0 / (24 * 60)));
}


// ?bucket=day|week: the same figures per UTC day or ISO week, the first and
// last bucket cut to the window.
TEST(DeliveryMetricsComputeTest, ASeriesHasTheFiguresOfEachDayOrWeek) {
  constexpr std::int64_t kHour = 3'600'000, kDay = 24 * kHour;
  constexpr std::int64_t kMonday = (4 + 7 * 2900) * kDay;  // a Monday, midnight UTC (1970-01-05 was one)
  const std::vector<DeploymentRecord> deployments = {
      {"A-1", 1, DeploymentOutcome::kSucceeded, kMonday + 10 * kHour, kMonday + 9 * kHour},  // lead 1 h
      {"A-2", 1, DeploymentOutcome::kFailed, kMonday + 11 * kHour, kMonday},
      {"A-3", 1, DeploymentOutcome::kSucceeded, kMonday + kDay + 2 * kHour, kMonday + kDay},  // restores after 15 h
      {"A-4", 1, DeploymentOutcome::kSucceeded, kMonday + 8 * kDay, kMonday + 7 * kDay},      // next week, lead 1 d
  };
  // From Monday noon to Wednesday of the next week noon, by day: 10 buckets.
  const std::int64_t from = kMonday + 12 * kHour, to = kMonday + 9 * kDay + 12 * kHour;
  const std::vector<DeliveryMetrics> days = compute_delivery_series(deployments, from, to, DeliveryBucket::kDay);
  ASSERT_EQ(days.size(), 10u);
  EXPECT_EQ(days[0].from, from) << "the first day is cut to the window";
  EXPECT_EQ(days[0].to, kMonday + kDay);
  EXPECT_EQ(days[0].deployments, 0) << "A-1 and A-2 finished before the window";
  EXPECT_EQ(days[1].from, kMonday + kDay);
  EXPECT_EQ(days[1].deployments, 1);
  EXPECT_EQ(days[1].lead_time_median_ms, 2 * kHour);
  EXPECT_EQ(days[8].deployments, 1);
  EXPECT_EQ(days[8].lead_time_median_ms, kDay);
  EXPECT_EQ(days[9].to, to) << "the last day too";
  std::int64_t total = 0;
  for (const auto& day : days) total += day.deployments;
  EXPECT_EQ(total, 2);

  // By week, from the Monday itself: two weeks, the failure and its restore in the first.
  const std::vector<DeliveryMetrics> weeks =
      compute_delivery_series(deployments, kMonday, kMonday + 14 * kDay, DeliveryBucket::kWeek);
  ASSERT_EQ(weeks.size(), 2u);
  EXPECT_EQ(weeks[0].from, kMonday);
  EXPECT_EQ(weeks[0].deployments, 2);
  EXPECT_EQ(weeks[0].failed, 1);
  EXPECT_DOUBLE_EQ(*weeks[0].change_failure_rate, 1.0 / 3.0);
  EXPECT_EQ(weeks[0].time_to_restore_median_ms, 15 * kHour);
  EXPECT_EQ(weeks[1].from, kMonday + 7 * kDay);
  EXPECT_EQ(weeks[1].deployments, 1);
  EXPECT_DOUBLE_EQ(*weeks[1].change_failure_rate, 0.0);
  // A window starting mid-week: its first week starts at the window, the next on Monday.
  const auto midweek = compute_delivery_series(deployments, kMonday + 3 * kDay, kMonday + 10 * kDay, DeliveryBucket::kWeek);
  ASSERT_EQ(midweek.size(), 2u);
  EXPECT_EQ(midweek[1].from, kMonday + 7 * kDay);

  const nlohmann::json j = to_json(weeks[0]);
  EXPECT_FALSE(j.contains("series")) << "a bucket has no series of its own";
  EXPECT_EQ(parse_delivery_bucket("week"), DeliveryBucket::kWeek);
  EXPECT_EQ(parse_delivery_bucket("month"), std::nullopt);
}

TEST_F(DeliveryMetricsTest, APipelinesFiguresCarryTheirSeriesWhenABucketIsAskedFor) {
  scripted_history();
  auto stages = projections().delivery_metrics().pipeline_metrics("Api", t0_, t0_ + 5 * kDayMs, DeliveryBucket::kDay);
  ASSERT_TRUE(stages) << stages.error().message;
  const DeliveryMetrics& prod = stages.value()[0];
  ASSERT_GE(prod.series.size(), 5u);
  ASSERT_LE(prod.series.size(), 6u);  // five days of a window that need not start at midnight
  std::int64_t deployments = 0, failed = 0;
  for (const auto& day : prod.series) {
    deployments += day.deployments;
    failed += day.failed;
  }
  EXPECT_EQ(deployments, 4);
  EXPECT_EQ(failed, 2);
  const nlohmann::json j = to_json(prod);
  ASSERT_EQ(j["series"].size(), prod.series.size());
  EXPECT_EQ(j["series"][0]["from"], t0_);
  EXPECT_TRUE(j["series"][0].contains("lead_time_median_ms"));

  auto too_many = projections().delivery_metrics().pipeline_metrics("Api", t0_, t0_ + 600 * kDayMs, DeliveryBucket::kDay);
  ASSERT_FALSE(too_many);
  EXPECT_EQ(too_many.error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(projections().delivery_metrics().pipeline_metrics("Api", t0_, t0_ + 5 * kDayMs).value()[0].series.empty());
}

}  // namespace
}  // namespace cascade::projections
