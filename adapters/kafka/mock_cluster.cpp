#include "adapters/kafka/mock_cluster.hpp"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <algorithm>

namespace cascade::adapters::kafka {

Result<std::unique_ptr<MockCluster>> MockCluster::start(int brokers) {
  if (brokers < 1) return make_error(ErrorCode::kInvalidArgument, "a mock cluster needs at least 1 broker");
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  // The owning handle never talks to a broker itself; quiet its logs.
  rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof errstr);
  rd_kafka_t* handle = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!handle) {
    rd_kafka_conf_destroy(conf);
    return make_error(ErrorCode::kUnavailable, std::string("librdkafka: ") + errstr);
  }
  rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(handle, brokers);
  if (!cluster) {
    rd_kafka_destroy(handle);
    return make_error(ErrorCode::kUnavailable, "librdkafka could not start the mock cluster");
  }
  std::unique_ptr<MockCluster> out(new MockCluster());
  out->handle_ = handle;
  out->cluster_ = cluster;
  out->brokers_ = brokers;
  out->bootstrap_servers_ = rd_kafka_mock_cluster_bootstraps(cluster);
  return out;
}

MockCluster::~MockCluster() {
  if (cluster_) rd_kafka_mock_cluster_destroy(cluster_);
  if (handle_) rd_kafka_destroy(handle_);
}

Status MockCluster::create_topic(const std::string& topic, int partitions, int replication_factor) {
  if (topic.empty() || partitions < 1) {
    return make_error(ErrorCode::kInvalidArgument, "topic '" + topic + "': needs a name and partitions >= 1");
  }
  auto err = rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions,
                                        std::clamp(replication_factor, 1, brokers_));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return make_error(ErrorCode::kUnavailable, "create topic '" + topic + "': " + rd_kafka_err2str(err));
  }
  return success();
}

Status MockCluster::set_broker_down(int broker_id) {
  auto err = rd_kafka_mock_broker_set_down(cluster_, broker_id);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return make_error(ErrorCode::kNotFound, "broker " + std::to_string(broker_id) + ": " + rd_kafka_err2str(err));
  }
  return success();
}

Status MockCluster::set_broker_up(int broker_id) {
  auto err = rd_kafka_mock_broker_set_up(cluster_, broker_id);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return make_error(ErrorCode::kNotFound, "broker " + std::to_string(broker_id) + ": " + rd_kafka_err2str(err));
  }
  return success();
}

void MockCluster::push_request_errors(KafkaApi api, const std::vector<int>& errors) {
  std::vector<rd_kafka_resp_err_t> codes;
  codes.reserve(errors.size());
  for (int e : errors) codes.push_back(static_cast<rd_kafka_resp_err_t>(e));
  rd_kafka_mock_push_request_errors_array(cluster_, static_cast<std::int16_t>(api), codes.size(), codes.data());
}

void MockCluster::clear_request_errors(KafkaApi api) {
  rd_kafka_mock_clear_request_errors(cluster_, static_cast<std::int16_t>(api));
}

}  // namespace cascade::adapters::kafka
