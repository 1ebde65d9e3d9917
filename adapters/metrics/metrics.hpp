// Metrics for GET /metrics in the Prometheus text exposition format (0.0.4):
// labelled counters and fixed-bucket histograms, thread-safe, rendered by one
// registry.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "events/result.hpp"

namespace cascade::adapters::metrics {

// The Content-Type of the rendered exposition.
inline constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

// Request-duration buckets in seconds: 5 ms … 10 s.
inline const std::vector<double> kDefaultDurationBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

// One counter series. Thread-safe (lock-free).
class Counter {
 public:
  // Adds `amount`; a negative or NaN amount is ignored (counters only go up).
  void inc(double amount = 1.0);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// One histogram series. Thread-safe.
class Histogram {
 public:
  // REQUIRES: `upper_bounds` strictly increasing and finite (the registry
  // checks); the +Inf bucket is implicit.
  explicit Histogram(std::vector<double> upper_bounds);

  // Counts `value` in every bucket whose bound is >= value. NaN is ignored.
  void observe(double value);

  struct Snapshot {
    std::vector<double> upper_bounds;
    std::vector<std::uint64_t> cumulative_counts;  // per bound, then +Inf last
    double sum = 0;
    std::uint64_t count = 0;
  };
  // A consistent copy: count == cumulative_counts.back().
  Snapshot snapshot() const;

 private:
  const std::vector<double> upper_bounds_;
  mutable std::mutex mutex_;
  std::vector<std::uint64_t> counts_;  // per bucket (not cumulative), +Inf last
  double sum_ = 0;
  std::uint64_t count_ = 0;
};

// A counter name and its series, one per combination of label values.
// Thread-safe; references it returns stay valid as long as the registry.
class CounterFamily {
 public:
  // The series for these label values (in the order of the label names),
  // created at 0 on first use. REQUIRES: as many values as label names;
  // otherwise throws std::invalid_argument.
  Counter& with(const std::vector<std::string>& label_values);

 private:
  friend class MetricsRegistry;
  CounterFamily(std::string name, std::string help, std::vector<std::string> label_names)
      : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)) {}
  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
  mutable std::mutex mutex_;
  std::map<std::vector<std::string>, std::unique_ptr<Counter>> series_;
};

// A histogram name, its buckets and its series. Thread-safe; references it
// returns stay valid as long as the registry.
class HistogramFamily {
 public:
  // As CounterFamily::with.
  Histogram& with(const std::vector<std::string>& label_values);

 private:
  friend class MetricsRegistry;
  HistogramFamily(std::string name, std::string help, std::vector<std::string> label_names,
                  std::vector<double> upper_bounds)
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        upper_bounds_(std::move(upper_bounds)) {}
  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
  std::vector<double> upper_bounds_;
  mutable std::mutex mutex_;
  std::map<std::vector<std::string>, std::unique_ptr<Histogram>> series_;
};

// Owns metric families and renders them. Thread-safe.
class MetricsRegistry {
 public:
  // Registers a counter family, or returns the existing one when a counter
  // with this name and these label names was registered before. A family
  // without labels starts with its one series at 0, so it is rendered at once.
  // kInvalidArgument for a name not matching [a-zA-Z_:][a-zA-Z0-9_:]*, a label
  // name not matching [a-zA-Z_][a-zA-Z0-9_]* or starting with "__" or
  // repeated, or "le" (reserved for buckets); kAlreadyExists when the name is
  // taken by a different kind or different labels. The pointer stays valid as
  // long as the registry.
  Result<CounterFamily*> counter(const std::string& name, const std::string& help,
                                 const std::vector<std::string>& label_names = {});

  // As counter(); also kInvalidArgument when the bounds are not strictly
  // increasing finite numbers. An existing family must have the same bounds.
  Result<HistogramFamily*> histogram(const std::string& name, const std::string& help,
                                     const std::vector<std::string>& label_names,
                                     const std::vector<double>& upper_bounds = kDefaultDurationBuckets);

  // The exposition text: families in name order, each with # HELP and # TYPE
  // lines, series in label-value order; histograms as _bucket{le=...} (cumulative,
  // ending with le="+Inf"), _sum and _count. Numbers in the shortest form that
  // reads back exactly ("3", "0.25", "+Inf"); label values escape \, " and
  // newline; help escapes \ and newline.
  std::string render() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<CounterFamily>> counters_;
  std::map<std::string, std::unique_ptr<HistogramFamily>> histograms_;
};

}  // namespace cascade::adapters::metrics
