#include "adapters/metrics/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>
#include <stdexcept>

namespace cascade::adapters::metrics {

namespace {

bool valid_metric_name(const std::string& name) {
  if (name.empty()) return false;
  auto first = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':'; };
  if (!first(name[0])) return false;
  return std::all_of(name.begin(), name.end(), [&](char c) { return first(c) || (c >= '0' && c <= '9'); });
}

bool valid_label_name(const std::string& name) {
  if (name.empty() || name.rfind("__", 0) == 0) return false;
  auto first = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (!first(name[0])) return false;
  return std::all_of(name.begin(), name.end(), [&](char c) { return first(c) || (c >= '0' && c <= '9'); });
}

Status check_labels(const std::string& metric, const std::vector<std::string>& label_names) {
  std::set<std::string> seen;
  for (const auto& label : label_names) {
    if (!valid_label_name(label) || label == "le") {
      return make_error(ErrorCode::kInvalidArgument, metric + ": invalid label name '" + label + "'");
    }
    if (!seen.insert(label).second) {
      return make_error(ErrorCode::kInvalidArgument, metric + ": label '" + label + "' repeated");
    }
  }
  return success();
}

// The shortest text that reads back as exactly `value`.
std::string format_number(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  if (ec != std::errc()) return "NaN";
  return std::string(buffer, end);
}

std::string escape_label_value(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string escape_help(const std::string& help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// {a="x",b="y"} with an optional extra label (le) last; "" when there are none.
std::string label_set(const std::vector<std::string>& names, const std::vector<std::string>& values,
                      const std::string& extra_name = "", const std::string& extra_value = "") {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    out += out.empty() ? "{" : ",";
    out += names[i] + "=\"" + escape_label_value(values[i]) + "\"";
  }
  if (!extra_name.empty()) {
    out += out.empty() ? "{" : ",";
    out += extra_name + "=\"" + extra_value + "\"";
  }
  if (!out.empty()) out += "}";
  return out;
}

void header(std::string& out, const std::string& name, const std::string& help, const char* type) {
  out += "# HELP " + name + " " + escape_help(help) + "\n";
  out += "# TYPE " + name + " " + type + "\n";
}

void check_arity(const std::vector<std::string>& names, const std::vector<std::string>& values,
                 const std::string& metric) {
  if (names.size() != values.size()) {
    throw std::invalid_argument(metric + ": expected " + std::to_string(names.size()) + " label values, got " +
                                std::to_string(values.size()));
  }
}

}  // namespace

void Counter::inc(double amount) {
  if (!(amount >= 0)) return;  // also rejects NaN
  double current = value_.load(std::memory_order_relaxed);
  while (!value_.compare_exchange_weak(current, current + amount, std::memory_order_relaxed)) {
  }
}

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)), counts_(upper_bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  if (std::isnan(value)) return;
  std::size_t bucket = static_cast<std::size_t>(std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value) -
                                                upper_bounds_.begin());
  std::lock_guard lock(mutex_);
  ++counts_[bucket];
  sum_ += value;
  ++count_;
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot snapshot;
  snapshot.upper_bounds = upper_bounds_;
  std::lock_guard lock(mutex_);
  std::uint64_t running = 0;
  for (auto count : counts_) {
    running += count;
    snapshot.cumulative_counts.push_back(running);
  }
  snapshot.sum = sum_;
  snapshot.count = count_;
  return snapshot;
}

Counter& CounterFamily::with(const std::vector<std::string>& label_values) {
  check_arity(label_names_, label_values, name_);
  std::lock_guard lock(mutex_);
  auto& slot = series_[label_values];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Histogram& HistogramFamily::with(const std::vector<std::string>& label_values) {
  check_arity(label_names_, label_values, name_);
  std::lock_guard lock(mutex_);
  auto& slot = series_[label_values];
  if (!slot) slot = std::make_unique<Histogram>(upper_bounds_);
  return *slot;
}

Result<CounterFamily*> MetricsRegistry::counter(const std::string& name, const std::string& help,
                                                const std::vector<std::string>& label_names) {
  if (!valid_metric_name(name)) return make_error(ErrorCode::kInvalidArgument, "invalid metric name '" + name + "'");
  CASCADE_TRY(check_labels(name, label_names));
  std::lock_guard lock(mutex_);
  if (histograms_.count(name) != 0) {
    return make_error(ErrorCode::kAlreadyExists, name + ": already registered as a histogram");
  }
  auto it = counters_.find(name);
  if (it != counters_.end()) {
    if (it->second->label_names_ != label_names) {
      return make_error(ErrorCode::kAlreadyExists, name + ": already registered with other labels");
    }
    return it->second.get();
  }
  auto family = std::unique_ptr<CounterFamily>(new CounterFamily(name, help, label_names));
  if (label_names.empty()) family->with({});
  return counters_.emplace(name, std::move(family)).first->second.get();
}

Result<HistogramFamily*> MetricsRegistry::histogram(const std::string& name, const std::string& help,
                                                    const std::vector<std::string>& label_names,
                                                    const std::vector<double>& upper_bounds) {
  if (!valid_metric_name(name)) return make_error(ErrorCode::kInvalidArgument, "invalid metric name '" + name + "'");
  CASCADE_TRY(check_labels(name, label_names));
  for (std::size_t i = 0; i < upper_bounds.size(); ++i) {
    if (!std::isfinite(upper_bounds[i]) || (i > 0 && !(upper_bounds[i] > upper_bounds[i - 1]))) {
      return make_error(ErrorCode::kInvalidArgument, name + ": bucket bounds must be finite and strictly increasing");
    }
  }
  std::lock_guard lock(mutex_);
  if (counters_.count(name) != 0) {
    return make_error(ErrorCode::kAlreadyExists, name + ": already registered as a counter");
  }
  auto it = histograms_.find(name);
  if (it != histograms_.end()) {
    if (it->second->label_names_ != label_names || it->second->upper_bounds_ != upper_bounds) {
      return make_error(ErrorCode::kAlreadyExists, name + ": already registered with other labels or buckets");
    }
    return it->second.get();
  }
  auto family = std::unique_ptr<HistogramFamily>(new HistogramFamily(name, help, label_names, upper_bounds));
  if (label_names.empty()) family->with({});
  return histograms_.emplace(name, std::move(family)).first->second.get();
}

std::string MetricsRegistry::render() const {
  // Families are registered rarely and never removed: render in name order
  // across both kinds, holding the registry lock only to list them.
  std::map<std::string, std::pair<const CounterFamily*, const HistogramFamily*>> families;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [name, family] : counters_) families[name].first = family.get();
    for (const auto& [name, family] : histograms_) families[name].second = family.get();
  }
  std::string out;
  for (const auto& [name, family] : families) {
    if (const CounterFamily* counter = family.first) {
      header(out, name, counter->help_, "counter");
      std::lock_guard lock(counter->mutex_);
      for (const auto& [values, series] : counter->series_) {
        out += name + label_set(counter->label_names_, values) + " " + format_number(series->value()) + "\n";
      }
    } else if (const HistogramFamily* histogram = family.second) {
      header(out, name, histogram->help_, "histogram");
      std::lock_guard lock(histogram->mutex_);
      for (const auto& [values, series] : histogram->series_) {
        const auto snapshot = series->snapshot();
        for (std::size_t i = 0; i < snapshot.cumulative_counts.size(); ++i) {
          std::string le = i < snapshot.upper_bounds.size() ? format_number(snapshot.upper_bounds[i]) : "+Inf";
          out += name + "_bucket" + label_set(histogram->label_names_, values, "le", le) + " " +
                 std::to_string(snapshot.cumulative_counts[i]) + "\n";
        }
        const std::string labels = label_set(histogram->label_names_, values);
        out += name + "_sum" + labels + " " + format_number(snapshot.sum) + "\n";
        out += name + "_count" + labels + " " + std::to_string(snapshot.count) + "\n";
      }
    }
  }
  return out;
}

}  // namespace cascade::adapters::metrics
