// librdkafka properties from an operator (--kafka-config, --kafka-property):
// read as librdkafka's own files are, and never printed with their values.
#include "adapters/kafka/properties.hpp"
#include "tools/kafka_wiring.hpp"

#include "tests/support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <fstream>

namespace cascade::adapters::kafka {
namespace {

TEST(KafkaProperties, ReadAsLibrdkafkaFilesAre) {
  auto read = parse_kafka_properties(
      "# a SASL cluster\n\nsecurity.protocol = SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n"
      "sasl.password=p=ss#word \n",
      "kafka.conf");
  ASSERT_TRUE(read) << read.error().message;
  EXPECT_EQ(read.value(), (KafkaProperties{{"security.protocol", "SASL_SSL"},
                                           {"sasl.mechanism", "SCRAM-SHA-512"},
                                           {"sasl.password", "p=ss#word"}}));
}

TEST(KafkaProperties, ABadLineIsNamedByFileAndLine) {
  auto no_equals = parse_kafka_properties("a=1\njust words\n", "kafka.conf");
  ASSERT_FALSE(no_equals);
  EXPECT_EQ(no_equals.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(no_equals.error().message, "kafka.conf:2: expected key=value");
  EXPECT_EQ(parse_kafka_properties("=1", "f").error().message, "f:1: the key before '=' is empty");
  EXPECT_EQ(parse_kafka_properties("a=1\n# c\na=2", "f").error().message, "f:3: a is given twice");
}

TEST(KafkaProperties, ARefusedPropertyIsNamedButItsValueNeverPrinted) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  const std::string secret = "hunter2-Qx91";
  auto unknown = set_kafka_properties(conf, {{"no.such.property", secret}}, "test client");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(unknown.error().message.find("test client: kafka property no.such.property is refused"), std::string::npos)
      << unknown.error().message;
  EXPECT_EQ(unknown.error().message.find(secret), std::string::npos) << unknown.error().message;
  auto bad_value = set_kafka_properties(conf, {{"linger.ms", secret}}, "test client");
  ASSERT_FALSE(bad_value);
  EXPECT_NE(bad_value.error().message.find("linger.ms"), std::string::npos) << bad_value.error().message;
  EXPECT_EQ(bad_value.error().message.find(secret), std::string::npos) << bad_value.error().message;
  EXPECT_TRUE(set_kafka_properties(conf, {{"sasl.password", secret}, {"linger.ms", "7"}}, "test client"));
  char value[64];
  std::size_t size = sizeof value;
  ASSERT_EQ(rd_kafka_conf_get(conf, "linger.ms", value, &size), RD_KAFKA_CONF_OK);
  EXPECT_STREQ(value, "7");
  rd_kafka_conf_destroy(conf);
}

TEST(KafkaProperties, ServeFlagsWinOverTheFile) {
  cascade::testing::TempDir dir;
  std::ofstream(dir / "kafka.conf") << "client.id=from-file\nlinger.ms=9\n";
  tools::KafkaServeOptions options;
  options.config_file = dir / "kafka.conf";
  options.properties = {"linger.ms=3", "acks = all"};
  auto properties = tools::kafka_properties(options);
  ASSERT_TRUE(properties) << properties.error().message;
  EXPECT_EQ(properties.value(),
            (KafkaProperties{{"client.id", "from-file"}, {"linger.ms", "3"}, {"acks", "all"}}));
  options.config_file = dir / "missing.conf";
  EXPECT_EQ(tools::kafka_properties(options).error().code, ErrorCode::kInvalidArgument);
  options.config_file.clear();
  options.properties = {"oops"};
  EXPECT_EQ(tools::kafka_properties(options).error().message, "--kafka-property:1: expected key=value");
}

}  // namespace
}  // namespace cascade::adapters::kafka
