// Counters, histograms and the Prometheus text they render to.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <thread>
#include <vector>

#include "adapters/metrics/metrics.hpp"

namespace cascade::adapters::metrics {
namespace {

TEST(MetricsTest, RendersASmallRegistryExactly) {
  MetricsRegistry registry;
  auto* requests =
      registry.counter("cascade_http_requests_total", "HTTP requests.", {"route", "method", "code"}).value();
  auto* duration =
      registry.histogram("cascade_http_request_duration_seconds", "Request duration.", {"route"}, {0.1, 0.5, 1})
          .value();
  auto* restarts = registry.counter("cascade_restarts_total", "Restarts.\nSecond \\ line.").value();

  requests->with({"/healthz", "GET", "200"}).inc();
  requests->with({"/healthz", "GET", "200"}).inc();
  requests->with({"/api/v1/releases/{id}", "GET", "404"}).inc(3);
  duration->with({"/healthz"}).observe(0.05);
  duration->with({"/healthz"}).observe(0.1);  // bounds are inclusive
  duration->with({"/healthz"}).observe(0.75);
  duration->with({"/healthz"}).observe(2);
  restarts->with({}).inc(0.5);

  EXPECT_EQ(registry.render(),
            "# HELP cascade_http_request_duration_seconds Request duration.\n"
            "# TYPE cascade_http_request_duration_seconds histogram\n"
            "cascade_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.1\"} 2\n"
            "cascade_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.5\"} 2\n"
            "cascade_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"1\"} 3\n"
            "cascade_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"+Inf\"} 4\n"
            "cascade_http_request_duration_seconds_sum{route=\"/healthz\"} 2.9\n"
            "cascade_http_request_duration_seconds_count{route=\"/healthz\"} 4\n"
            "# HELP cascade_http_requests_total HTTP requests.\n"
            "# TYPE cascade_http_requests_total counter\n"
            "cascade_http_requests_total{route=\"/api/v1/releases/{id}\",method=\"GET\",code=\"404\"} 3\n"
            "cascade_http_requests_total{route=\"/healthz\",method=\"GET\",code=\"200\"} 2\n"
            "# HELP cascade_restarts_total Restarts.\\nSecond \\\\ line.\n"
            "# TYPE cascade_restarts_total counter\n"
            "cascade_restarts_total 0.5\n");
}

TEST(MetricsTest, EscapesLabelValues) {
  MetricsRegistry registry;
  auto* family = registry.counter("c_total", "h", {"v"}).value();
  family->with({"a\"b\\c\nd"}).inc();
  EXPECT_EQ(registry.render(), "# HELP c_total h\n# TYPE c_total counter\nc_total{v=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(MetricsTest, UnlabelledHistogramAndEmptyFamilies) {
  MetricsRegistry registry;
  auto* h = registry.histogram("h_seconds", "h", {}, {1}).value();
  h->with({}).observe(std::numeric_limits<double>::quiet_NaN());  // ignored
  registry.counter("labelled_total", "l", {"x"}).value();
  EXPECT_EQ(registry.render(),
            "# HELP h_seconds h\n# TYPE h_seconds histogram\n"
            "h_seconds_bucket{le=\"1\"} 0\nh_seconds_bucket{le=\"+Inf\"} 0\n"
            "h_seconds_sum 0\nh_seconds_count 0\n"
            "# HELP labelled_total l\n# TYPE labelled_total counter\n");
}

TEST(MetricsTest, CountersOnlyGoUp) {
  Counter counter;
  counter.inc();
  counter.inc(-5);
  counter.inc(std::numeric_limits<double>::quiet_NaN());
  counter.inc(0.25);
  EXPECT_EQ(counter.value(), 1.25);
}

TEST(MetricsTest, RegistrationIsCheckedAndIdempotent) {
  MetricsRegistry registry;
  auto first = registry.counter("a_total", "a", {"x"});
  ASSERT_TRUE(first);
  auto again = registry.counter("a_total", "a", {"x"});
  ASSERT_TRUE(again);
  EXPECT_EQ(first.value(), again.value());

  auto code = [](const auto& result) {
    return result ? std::string("ok") : std::string(to_string(result.error().code));
  };
  EXPECT_EQ(code(registry.counter("a_total", "a", {"y"})), "already_exists");
  EXPECT_EQ(code(registry.histogram("a_total", "a", {"x"})), "already_exists");
  EXPECT_EQ(code(registry.counter("1bad", "a")), "invalid_argument");
  EXPECT_EQ(code(registry.counter("bad-name", "a")), "invalid_argument");
  EXPECT_EQ(code(registry.counter("b_total", "b", {"__reserved"})), "invalid_argument");
  EXPECT_EQ(code(registry.counter("b_total", "b", {"le"})), "invalid_argument");
  EXPECT_EQ(code(registry.counter("b_total", "b", {"x", "x"})), "invalid_argument");
  EXPECT_EQ(code(registry.counter("b_total", "b", {"x-y"})), "invalid_argument");
  EXPECT_EQ(code(registry.histogram("h", "h", {}, {1, 1})), "invalid_argument");
  EXPECT_EQ(code(registry.histogram("h", "h", {}, {2, 1})), "invalid_argument");
  EXPECT_EQ(code(registry.histogram("h", "h", {}, {1, std::numeric_limits<double>::infinity()})), "invalid_argument");
  EXPECT_EQ(code(registry.histogram("h", "h", {}, {1, 2})), "ok");
  EXPECT_EQ(code(registry.histogram("h", "h", {}, {1, 3})), "already_exists");
  EXPECT_EQ(code(registry.counter("ns:ok_total", "colons are allowed")), "ok");

  EXPECT_THROW(first.value()->with({}), std::invalid_argument);
  EXPECT_THROW(first.value()->with({"1", "2"}), std::invalid_argument);
}

TEST(MetricsTest, ConcurrentUpdatesAreAllCounted) {
  MetricsRegistry registry;
  auto* counter = registry.counter("c_total", "c", {"thread"}).value();
  auto* histogram = registry.histogram("h_seconds", "h", {}, {0.5}).value();
  constexpr int kThreads = 8;
  constexpr int kPerThread = 10'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        counter->with({t % 2 == 0 ? "even" : "odd"}).inc();
        histogram->with({}).observe(i % 2 == 0 ? 0.25 : 1.0);
        if (i % 1000 == 0) (void)registry.render();  // rendering while writing is safe
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(counter->with({"even"}).value(), kThreads / 2 * kPerThread);
  EXPECT_EQ(counter->with({"odd"}).value(), kThreads / 2 * kPerThread);
  auto snapshot = histogram->with({}).snapshot();
  EXPECT_EQ(snapshot.count, static_cast<std::uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(snapshot.cumulative_counts, (std::vector<std::uint64_t>{kThreads * kPerThread / 2, kThreads * kPerThread}));
  EXPECT_DOUBLE_EQ(snapshot.sum, kThreads * kPerThread / 2 * 1.25);
}

}  // namespace
}  // namespace cascade::adapters::metrics
