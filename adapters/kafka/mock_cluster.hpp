// librdkafka's in-process mock Kafka cluster on loopback: the development
// broker of `cascade dev-kafka` and of the tests. It speaks the real Kafka
// protocol, so any client (librdkafka, kcat) connects to bootstrap_servers().
// It has no transactions and keeps everything in memory.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "events/result.hpp"

struct rd_kafka_s;
struct rd_kafka_mock_cluster_s;

namespace cascade::adapters::kafka {

// The Kafka protocol API keys the tests inject errors into.
enum class KafkaApi : std::int16_t {
  kProduce = 0,
  kFetch = 1,
  kListOffsets = 2,
  kMetadata = 3,
  kOffsetCommit = 8,
  kOffsetFetch = 9,
  kFindCoordinator = 10,
  kJoinGroup = 11,
  kHeartbeat = 12,
  kSyncGroup = 14,
  kInitProducerId = 22,
};

class MockCluster {
 public:
  // Starts `brokers` brokers (ids 1..brokers) listening on 127.0.0.1 with
  // ephemeral ports. kUnavailable when librdkafka cannot start them.
  // REQUIRES: brokers >= 1.
  static Result<std::unique_ptr<MockCluster>> start(int brokers);
  ~MockCluster();  // stops the brokers; connected clients see them vanish
  MockCluster(const MockCluster&) = delete;
  MockCluster& operator=(const MockCluster&) = delete;

  // "127.0.0.1:port,127.0.0.1:port,...".
  const std::string& bootstrap_servers() const { return bootstrap_servers_; }
  int broker_count() const { return brokers_; }

  // replication_factor is capped at the number of brokers.
  Status create_topic(const std::string& topic, int partitions = 3, int replication_factor = 3);

  // A broker that is down closes its connections and refuses new ones; it
  // keeps its data and comes back with set_broker_up. broker_id in 1..N.
  Status set_broker_down(int broker_id);
  Status set_broker_up(int broker_id);

  // The next `errors.size()` requests of `api` (to any broker) fail with these
  // librdkafka error codes (rd_kafka_resp_err_t values, e.g. 6 =
  // NOT_LEADER_FOR_PARTITION, 7 = REQUEST_TIMED_OUT, 15 = COORDINATOR_NOT_AVAILABLE).
  void push_request_errors(KafkaApi api, const std::vector<int>& errors);
  void clear_request_errors(KafkaApi api);

  // Thread-safety: every method may be called from any thread (librdkafka
  // serialises mock operations on the cluster's own thread).

 private:
  MockCluster() = default;
  rd_kafka_s* handle_ = nullptr;  // the client that owns the mock cluster
  rd_kafka_mock_cluster_s* cluster_ = nullptr;
  std::string bootstrap_servers_;
  int brokers_ = 0;
};

}  // namespace cascade::adapters::kafka
