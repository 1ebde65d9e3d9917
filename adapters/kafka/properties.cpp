#include "adapters/kafka/properties.hpp"

namespace cascade::adapters::kafka {
namespace {

std::string_view trimmed(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t\r");
  return text.substr(first, last - first + 1);
}

}  // namespace

Result<KafkaProperties> parse_kafka_properties(std::string_view text, const std::string& source) {
  KafkaProperties properties;
  std::size_t number = 0;
  for (std::size_t start = 0; start <= text.size();) {
    const std::size_t end = std::min(text.find('\n', start), text.size());
    const std::string_view line = trimmed(text.substr(start, end - start));
    start = end + 1;
    ++number;
    if (line.empty() || line.front() == '#') continue;
    const std::string where = source + ":" + std::to_string(number);
    const std::size_t equals = line.find('=');
    if (equals == std::string_view::npos) {
      return make_error(ErrorCode::kInvalidArgument, where + ": expected key=value");
    }
    const std::string key(trimmed(line.substr(0, equals)));
    if (key.empty()) return make_error(ErrorCode::kInvalidArgument, where + ": the key before '=' is empty");
    if (!properties.emplace(key, std::string(trimmed(line.substr(equals + 1)))).second) {
      return make_error(ErrorCode::kInvalidArgument, where + ": " + key + " is given twice");
    }
  }
  return properties;
}

Status set_kafka_properties(rd_kafka_conf_t* conf, const KafkaProperties& properties, std::string_view what) {
  char reason[512];
  for (const auto& [key, value] : properties) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), reason, sizeof reason) == RD_KAFKA_CONF_OK) continue;
    std::string said = reason;
    if (!value.empty()) {
      for (std::size_t at = said.find(value); at != std::string::npos; at = said.find(value, at + 3)) {
        said.replace(at, value.size(), "***");
      }
    }
    return make_error(ErrorCode::kInvalidArgument,
                      std::string(what) + ": kafka property " + key + " is refused by librdkafka: " + said);
  }
  return success();
}

}  // namespace cascade::adapters::kafka
