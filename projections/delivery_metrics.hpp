// Delivery metrics per pipeline and stage — the DORA four — over a chosen
// window, computed from the events alone.
//
// A deployment is one finished deployment attempt of a stage (any release).
// Over the window [from, to) (ms since the epoch), counting deployments by
// when they finished:
//   deployment frequency — the successful deployments (PartiallySucceeded
//     counts as succeeded) and that count per day of the window;
//   lead time — over those successful deployments, finished_at minus the
//     lead-time start: the artifact's built_at when CI gave it, else the
//     release's creation; median and 90th percentile;
//   change failure rate — failed ÷ (succeeded + failed); canceled
//     deployments count as neither; none when nothing finished;
//   time to restore — for each failed deployment, the time until the next
//     successful deployment of the same stage (any release, redeploys and
//     rollbacks included, also after the window's end); median over the
//     restored failures, and the failures not restored yet as a count.
// Percentiles use the nearest-rank method: the p-th percentile of n sorted
// values is the value at rank ceil(p·n) — always an observed value (the
// median of 4 values is the 2nd).
#pragma once

#include "projections/projection.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cascade::projections {

// One finished deployment attempt, as stored.
struct DeploymentRecord {
  std::string release;
  int attempt = 0;
  DeploymentOutcome outcome = DeploymentOutcome::kSucceeded;  // stored as to_string(outcome)
  events::Timestamp finished_at = 0;
  events::Timestamp lead_time_start = 0;
};

// The width of a delivery series' buckets: UTC days (from midnight) or ISO
// weeks (from Monday midnight UTC). Spelt "day" and "week".
enum class DeliveryBucket { kDay, kWeek };
std::optional<DeliveryBucket> parse_delivery_bucket(std::string_view text);

struct DeliveryMetrics {
  std::string pipeline;
  std::string stage;
  events::Timestamp from = 0;
  events::Timestamp to = 0;
  std::int64_t deployments = 0;  // successful, finished in the window
  double deployments_per_day = 0;
  std::int64_t failed = 0;
  std::optional<double> change_failure_rate;
  std::optional<std::int64_t> lead_time_median_ms;
  std::optional<std::int64_t> lead_time_p90_ms;
  std::optional<std::int64_t> time_to_restore_median_ms;
  std::int64_t restored = 0;    // failures in the window restored since
  std::int64_t unrestored = 0;  // failures in the window not restored yet
  // With a bucket asked for: the same figures per bucket of the window, in
  // time order (each bucket's `series` empty). The first and last buckets
  // are cut to the window, so the buckets' deployments add up to the whole's.
  std::vector<DeliveryMetrics> series;
};
// The figures as the API returns them; `series` (when there is one) as
// {from, to, deployments, failed, change_failure_rate, lead_time_median_ms,
// time_to_restore_median_ms} per bucket.
nlohmann::json to_json(const DeliveryMetrics& metrics);

// The figures for one stage from its deployments in finishing order, those
// finishing at or after `from` (later ones than `to` only serve to find
// restores). REQUIRES: from < to.
DeliveryMetrics compute_delivery_metrics(const std::vector<DeploymentRecord>& deployments, events::Timestamp from,
                                         events::Timestamp to);
// compute_delivery_metrics for each bucket of [from, to): the buckets start
// at UTC midnights (Mondays for weeks), the first and last cut to the
// window. REQUIRES: from < to; `deployments` as for compute_delivery_metrics.
std::vector<DeliveryMetrics> compute_delivery_series(const std::vector<DeploymentRecord>& deployments,
                                                     events::Timestamp from, events::Timestamp to,
                                                     DeliveryBucket bucket);
// The most buckets a series may have (a year of days, ten of weeks).
constexpr std::int64_t kMaxDeliveryBuckets = 531;

// Family "deployments": pipeline '\0' stage '\0' BE64(finished_at)
// BE64(position) → {release, attempt, outcome, lead_time_start}: one compact
// record per finished deployment attempt.
class DeliveryMetricsProjection final : public Projection {
 public:
  static constexpr const char* kName = "delivery_metrics";
  static constexpr const char* kDeploymentsFamily = "deployments";

  DeliveryMetricsProjection(std::shared_ptr<ProjectionStore> store, events::EventLog& log);

  // The figures of one stage over [from, to). kInvalidArgument unless
  // from < to; kNotFound when the stage never finished a deployment.
  Result<DeliveryMetrics> stage_metrics(const std::string& pipeline, const std::string& stage, events::Timestamp from,
                                        events::Timestamp to) const;
  // The figures of every stage of the pipeline that ever finished a
  // deployment, by stage name. kNotFound when none did.
  // With `bucket`, each stage's figures carry their series;
  // kInvalidArgument when it would have more than kMaxDeliveryBuckets.
  Result<std::vector<DeliveryMetrics>> pipeline_metrics(const std::string& pipeline, events::Timestamp from,
                                                        events::Timestamp to,
                                                        std::optional<DeliveryBucket> bucket = std::nullopt) const;

 protected:
  Status apply(const std::vector<events::RecordedEvent>& batch, ProjectionWrite& write) override;
};

}  // namespace cascade::projections
