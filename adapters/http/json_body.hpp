// Reading JSON request bodies strictly: a malformed body names where it broke,
// and a misspelt field is an error (with a suggestion), not silently ignored.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/did_you_mean.hpp"
#include "events/result.hpp"

namespace cascade::adapters::http {

// Parses `body` as one JSON value. kInvalidArgument for malformed JSON, the
// message naming the byte offset (0-based), line and column (1-based) where
// parsing failed — the last byte of the offending token, as the parser reads
// whole tokens — e.g. "malformed JSON at line 2, column 5 (byte 17): ...",
// with one Problem {"body", same text}. Values nested deeper than 64 levels
// are refused too. Never throws.
Result<nlohmann::json> parse_json_body(std::string_view body);

// Parses `body` as a JSON object whose fields are all in `allowed_fields`.
// kInvalidArgument for malformed JSON (as above), for a value that is not an
// object, and for unknown fields: one Problem per unknown field, e.g.
// {"commnt", "unknown field 'commnt' (did you mean 'comment'?)"}.
Result<nlohmann::json> parse_json_object(std::string_view body, const std::vector<std::string_view>& allowed_fields);

// The unknown-field check on an already parsed value: one Problem per field of
// `object` not in `allowed_fields`, each with path `path_prefix` + "." + field
// (or just the field when the prefix is empty). kInvalidArgument with message
// "<prefix or 'body'>: must be an object" when `object` is not one.
Status check_fields(const nlohmann::json& object, const std::vector<std::string_view>& allowed_fields,
                    std::string_view path_prefix = "");

// The suggestion for a misspelt field or role name (events/did_you_mean.hpp).
using events::did_you_mean;

}  // namespace cascade::adapters::http
