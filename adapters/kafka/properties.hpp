// librdkafka properties from an operator: read from a `key=value` file or
// flags, and set on a configuration without ever printing a value (SASL
// passwords and SSL keys pass through here).
#pragma once

#include "events/result.hpp"

#include <librdkafka/rdkafka.h>

#include <map>
#include <string>
#include <string_view>

namespace cascade::adapters::kafka {

using KafkaProperties = std::map<std::string, std::string>;

// `text` as librdkafka's own property files are written: one `key=value` a
// line (the value is everything after the first '='), blank lines and lines
// starting with '#' ignored, whitespace around keys and values trimmed.
// kInvalidArgument naming `source`:LINE for a line without '=' or with an
// empty key, or a key given twice.
Result<KafkaProperties> parse_kafka_properties(std::string_view text, const std::string& source);

// Sets each property on `conf`. kInvalidArgument naming `what` and the
// property's key (never its value) when librdkafka refuses one; librdkafka's
// reason is quoted with the value masked.
Status set_kafka_properties(rd_kafka_conf_t* conf, const KafkaProperties& properties, std::string_view what);

}  // namespace cascade::adapters::kafka
