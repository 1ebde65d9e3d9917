// Plain librdkafka clients for tests of the Kafka edges: a producer that
// waits for the broker's acknowledgement and a reader that collects a topic's
// records with their headers.
#pragma once

#include "adapters/kafka/cloudevents.hpp"

#include <librdkafka/rdkafka.h>

#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

namespace cascade::testing {

class TestProducer {
 public:
  explicit TestProducer(const std::string& brokers, int timeout_ms = 60'000) {
    char errstr[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    for (auto [key, value] : std::vector<std::pair<std::string, std::string>>{
             {"bootstrap.servers", brokers},
             {"enable.idempotence", "true"},
             {"acks", "all"},
             {"linger.ms", "0"},
             {"message.timeout.ms", std::to_string(timeout_ms)},
             {"log_level", "2"}}) {
      rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr);
    }
    rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t*, const rd_kafka_message_t* message, void*) {
      auto* delivery = static_cast<Delivery*>(message->_private);
      delivery->error = message->err;
      delivery->done = true;
    });
    producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  }
  ~TestProducer() { rd_kafka_destroy(producer_); }
  TestProducer(const TestProducer&) = delete;
  TestProducer& operator=(const TestProducer&) = delete;

  // Produces and waits for the acknowledgement; the error text, or "" when acknowledged.
  std::string send(const std::string& topic, const adapters::kafka::Record& record) {
    rd_kafka_headers_t* headers = rd_kafka_headers_new(record.headers.size() + 1);
    for (const auto& h : record.headers) {
      rd_kafka_header_add(headers, h.key.c_str(), -1, h.value.data(), static_cast<ssize_t>(h.value.size()));
    }
    Delivery delivery;
    rd_kafka_resp_err_t err = rd_kafka_producev(
        producer_, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(record.key.data(), record.key.size()),
        RD_KAFKA_V_VALUE(const_cast<char*>(record.value.data()), record.value.size()),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(&delivery),
        RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_headers_destroy(headers);
      return rd_kafka_err2str(err);
    }
    while (!delivery.done) rd_kafka_flush(producer_, 100);
    return delivery.error == RD_KAFKA_RESP_ERR_NO_ERROR ? "" : rd_kafka_err2str(delivery.error);
  }

 private:
  struct Delivery {
    bool done = false;
    rd_kafka_resp_err_t error = RD_KAFKA_RESP_ERR_NO_ERROR;
  };
  rd_kafka_t* producer_ = nullptr;
};

struct ReadRecord {
  adapters::kafka::Record record;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
};

// Reads `topic` from the beginning in a fresh consumer group until `count`
// records arrived or `timeout` passed.
inline std::vector<ReadRecord> read_topic(const std::string& brokers, const std::string& topic, std::size_t count,
                                          std::chrono::milliseconds timeout) {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  static int readers = 0;
  const std::string group = "test-reader-" + std::to_string(++readers) + "-" + std::to_string(::getpid());
  for (auto [key, value] : std::vector<std::pair<std::string, std::string>>{{"bootstrap.servers", brokers},
                                                                            {"group.id", group},
                                                                            {"auto.offset.reset", "earliest"},
                                                                            {"enable.auto.commit", "false"},
                                                                            {"log_level", "2"}}) {
    rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr);
  }
  rd_kafka_t* consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  rd_kafka_poll_set_consumer(consumer);
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, topic.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_subscribe(consumer, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  std::vector<ReadRecord> out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.size() < count && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* message = rd_kafka_consumer_poll(consumer, 100);
    if (message == nullptr) continue;
    if (!message->err) {
      ReadRecord read;
      read.partition = message->partition;
      read.offset = message->offset;
      if (message->key) read.record.key.assign(static_cast<const char*>(message->key), message->key_len);
      if (message->payload) read.record.value.assign(static_cast<const char*>(message->payload), message->len);
      rd_kafka_headers_t* headers = nullptr;
      if (rd_kafka_message_headers(message, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char* name;
        const void* value;
        size_t size;
        for (size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
             ++i) {
          read.record.headers.push_back({name, value ? std::string(static_cast<const char*>(value), size) : ""});
        }
      }
      out.push_back(std::move(read));
    }
    rd_kafka_message_destroy(message);
  }
  rd_kafka_consumer_close(consumer);
  rd_kafka_destroy(consumer);
  return out;
}

}  // namespace cascade::testing
