#include "projections/delivery_metrics.hpp"

#include "projections/projection_store.hpp"

#include <algorithm>

namespace cascade::projections {

namespace {

constexpr double kDayMs = 24.0 * 3600 * 1000;

bool succeeded(const DeploymentRecord& d) {
  return d.outcome == DeploymentOutcome::kSucceeded || d.outcome == DeploymentOutcome::kPartiallySucceeded;
}
bool failed(const DeploymentRecord& d) { return d.outcome == DeploymentOutcome::kFailed; }

// Nearest rank: the value at rank ceil(percent/100 · n). REQUIRES: sorted, non-empty.
std::int64_t percentile(const std::vector<std::int64_t>& sorted, std::size_t percent) {
  const std::size_t rank = (percent * sorted.size() + 99) / 100;
  return sorted[std::max<std::size_t>(rank, 1) - 1];
}

std::string stage_prefix(const std::string& pipeline, const std::string& stage) {
  return pipeline + '\0' + stage + '\0';
}

Status check_window(events::Timestamp from, events::Timestamp to) {
  if (from < to) return success();
  return make_error(ErrorCode::kInvalidArgument, "the window's start (" + std::to_string(from) +
                                                     ") must come before its end (" + std::to_string(to) + ")");
}

// The stage's deployments from `from` on, up to the first success at or after
// `to` (which restores every failure still open). nullopt: the stage has none at all.
Result<std::optional<std::vector<DeploymentRecord>>> read_stage(const Snapshot& view, Family family,
                                                                const std::string& prefix, events::Timestamp from,
                                                                events::Timestamp to) {
  std::unique_ptr<rocksdb::Iterator> it = view.iterate(family);
  it->Seek(prefix);
  if (!it->Valid() || !starts_with(it->key().ToStringView(), prefix)) {
    if (!it->status().ok()) return storage_error(it->status(), "read deployments");
    return std::optional<std::vector<DeploymentRecord>>();
  }
  std::vector<DeploymentRecord> records;
  for (it->Seek(prefix + big_endian(static_cast<std::uint64_t>(std::max<events::Timestamp>(from, 0))));
       it->Valid() && starts_with(it->key().ToStringView(), prefix); it->Next()) {
    const nlohmann::json stored = nlohmann::json::parse(it->value().ToStringView());
    DeploymentRecord record;
    record.release = stored["release"];
    record.attempt = stored["attempt"];
    const std::string outcome = stored["outcome"];
    const std::optional<DeploymentOutcome> parsed = parse_deployment_outcome(outcome);
    if (!parsed) {
      return make_error(ErrorCode::kDataLoss, "a stored deployment of " + record.release + " has the unknown outcome '" +
                                                  outcome + "'");
    }
    record.outcome = *parsed;
    record.lead_time_start = stored["lead_time_start"];
    record.finished_at = static_cast<events::Timestamp>(from_big_endian(it->key().ToStringView().substr(prefix.size(), 8)));
    records.push_back(std::move(record));
    if (records.back().finished_at >= to && succeeded(records.back())) break;
  }
  if (!it->status().ok()) return storage_error(it->status(), "read deployments");
  return std::optional<std::vector<DeploymentRecord>>(std::move(records));
}

}  // namespace

std::optional<DeliveryBucket> parse_delivery_bucket(std::string_view text) {
  if (text == "day") return DeliveryBucket::kDay;
  if (text == "week") return DeliveryBucket::kWeek;
  return std::nullopt;
}

nlohmann::json to_json(const DeliveryMetrics& m) {
  auto optional = [](const auto& value) { return value ? nlohmann::json(*value) : nlohmann::json(nullptr); };
  nlohmann::json out = {{"pipeline", m.pipeline},
          {"stage", m.stage},
          {"from", m.from},
          {"to", m.to},
          {"deployment_frequency", {{"deployments", m.deployments}, {"per_day", m.deployments_per_day}}},
          {"lead_time_ms", {{"median", optional(m.lead_time_median_ms)}, {"p90", optional(m.lead_time_p90_ms)}}},
          {"change_failure_rate",
           {{"rate", optional(m.change_failure_rate)}, {"failed", m.failed}, {"succeeded", m.deployments}}},
          {"time_to_restore_ms",
           {{"median", optional(m.time_to_restore_median_ms)}, {"restored", m.restored}, {"unrestored", m.unrestored}}}};
  if (!m.series.empty()) {
    nlohmann::json series = nlohmann::json::array();
    for (const DeliveryMetrics& b : m.series) {
      series.push_back({{"from", b.from},
                        {"to", b.to},
                        {"deployments", b.deployments},
                        {"failed", b.failed},
                        {"change_failure_rate", optional(b.change_failure_rate)},
                        {"lead_time_median_ms", optional(b.lead_time_median_ms)},
                        {"time_to_restore_median_ms", optional(b.time_to_restore_median_ms)}});
    }
    out["series"] = std::move(series);
  }
  return out;
}

namespace {

constexpr events::Timestamp kDayMsInt = 86'400'000;

// Bucket width and where buckets start relative to the epoch (a Thursday:
// Mondays are 4 days later).
std::pair<events::Timestamp, events::Timestamp> bucket_shape(DeliveryBucket bucket) {
  return bucket == DeliveryBucket::kDay ? std::make_pair(kDayMsInt, events::Timestamp{0})
                                        : std::make_pair(7 * kDayMsInt, 4 * kDayMsInt);
}

// The start of the bucket holding `at` (floor, also before the epoch).
events::Timestamp bucket_start(events::Timestamp at, DeliveryBucket bucket) {
  const auto [width, offset] = bucket_shape(bucket);
  events::Timestamp shifted = at - offset;
  events::Timestamp index = shifted / width;
  if (shifted % width != 0 && shifted < 0) --index;
  return index * width + offset;
}

std::int64_t bucket_count(events::Timestamp from, events::Timestamp to, DeliveryBucket bucket) {
  const events::Timestamp width = bucket_shape(bucket).first;
  return (bucket_start(to - 1, bucket) - bucket_start(from, bucket)) / width + 1;
}

}  // namespace

std::vector<DeliveryMetrics> compute_delivery_series(const std::vector<DeploymentRecord>& deployments,
                                                     events::Timestamp from, events::Timestamp to,
                                                     DeliveryBucket bucket) {
  const events::Timestamp width = bucket_shape(bucket).first;
  std::vector<DeliveryMetrics> series;
  for (events::Timestamp start = bucket_start(from, bucket); start < to; start += width) {
    DeliveryMetrics m = compute_delivery_metrics(deployments, std::max(start, from), std::min(start + width, to));
    series.push_back(std::move(m));
  }
  return series;
}

DeliveryMetrics compute_delivery_metrics(const std::vector<DeploymentRecord>& deployments, events::Timestamp from,
                                         events::Timestamp to) {
  DeliveryMetrics m;
  m.from = from;
  m.to = to;
  std::vector<std::int64_t> lead_times, restore_times;
  // Walking backwards, the next success after each deployment is known.
  std::optional<events::Timestamp> next_success;
  for (auto d = deployments.rbegin(); d != deployments.rend(); ++d) {
    const bool in_window = d->finished_at >= from && d->finished_at < to;
    if (in_window && succeeded(*d)) {
      ++m.deployments;
      lead_times.push_back(d->finished_at - d->lead_time_start);
    } else if (in_window && failed(*d)) {
      ++m.failed;
      if (next_success) {
        ++m.restored;
        restore_times.push_back(*next_success - d->finished_at);
      } else {
        ++m.unrestored;
      }
    }
    if (succeeded(*d)) next_success = d->finished_at;
  }
  m.deployments_per_day = static_cast<double>(m.deployments) / (static_cast<double>(to - from) / kDayMs);
  if (m.deployments + m.failed > 0) {
    m.change_failure_rate = static_cast<double>(m.failed) / static_cast<double>(m.deployments + m.failed);
  }
  std::sort(lead_times.begin(), lead_times.end());
  std::sort(restore_times.begin(), restore_times.end());
  if (!lead_times.empty()) {
    m.lead_time_median_ms = percentile(lead_times, 50);
    m.lead_time_p90_ms = percentile(lead_times, 90);
  }
  if (!restore_times.empty()) m.time_to_restore_median_ms = percentile(restore_times, 50);
  return m;
}

DeliveryMetricsProjection::DeliveryMetricsProjection(std::shared_ptr<ProjectionStore> store, events::EventLog& log)
    : Projection(kName, {kDeploymentsFamily}, std::move(store), log) {}

Status DeliveryMetricsProjection::apply(const std::vector<events::RecordedEvent>& batch, ProjectionWrite& write) {
  for (const events::RecordedEvent& event : batch) {
    const auto finished = finished_deployment(event.data);
    // Every release event is folded, so that the cached state stays in step.
    CASCADE_TRY(release, fold(event));
    if (!finished || release == nullptr) continue;
    const std::string stage = stage_of(event.data);
    const events::Timestamp lead_time_start =
        release->artifact.built_at != 0 ? release->artifact.built_at : release->created_at;
    write.put(store().family(kDeploymentsFamily),
              stage_prefix(release->pipeline, stage) +
                  big_endian(static_cast<std::uint64_t>(std::max<events::Timestamp>(event.recorded_at, 0))) +
                  big_endian(event.position),
              nlohmann::json{{"release", release->id},
                             {"attempt", finished->attempt},
                             {"outcome", to_string(finished->outcome)},
                             {"lead_time_start", lead_time_start}}
                  .dump());
  }
  return success();
}

Result<DeliveryMetrics> DeliveryMetricsProjection::stage_metrics(const std::string& pipeline, const std::string& stage,
                                                                 events::Timestamp from, events::Timestamp to) const {
  CASCADE_TRY(check_window(from, to));
  const Snapshot view = store().snapshot();
  CASCADE_TRY(records, read_stage(view, store().family(kDeploymentsFamily), stage_prefix(pipeline, stage), from, to));
  if (!records) {
    return make_error(ErrorCode::kNotFound,
                      "stage '" + stage + "' of pipeline '" + pipeline + "' never finished a deployment");
  }
  DeliveryMetrics metrics = compute_delivery_metrics(*records, from, to);
  metrics.pipeline = pipeline;
  metrics.stage = stage;
  return metrics;
}

Result<std::vector<DeliveryMetrics>> DeliveryMetricsProjection::pipeline_metrics(
    const std::string& pipeline, events::Timestamp from, events::Timestamp to,
    std::optional<DeliveryBucket> bucket) const {
  CASCADE_TRY(check_window(from, to));
  if (bucket && bucket_count(from, to, *bucket) > kMaxDeliveryBuckets) {
    return make_error(ErrorCode::kInvalidArgument, "the window holds " + std::to_string(bucket_count(from, to, *bucket)) +
                                                       " buckets; at most " + std::to_string(kMaxDeliveryBuckets));
  }
  const Snapshot view = store().snapshot();  // every stage as of one moment
  Family family = store().family(kDeploymentsFamily);
  const std::string prefix = pipeline + '\0';
  std::vector<DeliveryMetrics> out;
  std::unique_ptr<rocksdb::Iterator> it = view.iterate(family);
  // Skip from stage to stage: the next stage's keys start after stage '\1'.
  for (it->Seek(prefix); it->Valid() && starts_with(it->key().ToStringView(), prefix);) {
    const std::string_view rest = it->key().ToStringView().substr(prefix.size());
    const std::string stage(rest.substr(0, rest.find('\0')));
    CASCADE_TRY(records, read_stage(view, family, stage_prefix(pipeline, stage), from, to));
    const std::vector<DeploymentRecord> none;
    const std::vector<DeploymentRecord>& deployments = records ? *records : none;
    DeliveryMetrics metrics = compute_delivery_metrics(deployments, from, to);
    if (bucket) metrics.series = compute_delivery_series(deployments, from, to, *bucket);
    metrics.pipeline = pipeline;
    metrics.stage = stage;
    out.push_back(std::move(metrics));
    it->Seek(prefix + stage + '\1');
  }
  if (!it->status().ok()) return storage_error(it->status(), "read deployments");
  if (out.empty()) return make_error(ErrorCode::kNotFound, "pipeline '" + pipeline + "' never finished a deployment");
  return out;
}

}  // namespace cascade::projections
