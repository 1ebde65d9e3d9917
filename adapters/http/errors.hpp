// Every error response has the same JSON shape:
//
//   {"error": {"code": "not_found", "message": "release 'x-9' not found",
//              "details": [{"path": "comment", "message": "..."}]}}
//
// `code` is cascade::to_string(ErrorCode) for engine errors, or one of the
// HTTP-level codes below; `details` is always present (possibly empty).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/http/request.hpp"
#include "events/result.hpp"

namespace cascade::adapters::http {

// Codes for errors that no ErrorCode describes.
inline constexpr std::string_view kCodeUnauthenticated = "unauthenticated";      // 401
inline constexpr std::string_view kCodeRouteNotFound = "not_found";              // 404
inline constexpr std::string_view kCodeMethodNotAllowed = "method_not_allowed";  // 405
inline constexpr std::string_view kCodePayloadTooLarge = "payload_too_large";    // 413
inline constexpr std::string_view kCodeTooManyRequests = "too_many_requests";    // 429
inline constexpr std::string_view kCodeHeadersTooLarge = "headers_too_large";    // 431
inline constexpr std::string_view kCodeBadRequest = "bad_request";               // 400 (unparsable HTTP)

// How a handler wants kInvalidArgument answered: 400 by default; 422 when the
// request was well-formed but its content fails validation, and the handler
// says so.
enum class InvalidArgumentAs { kBadRequest, kUnprocessableEntity };

// THE mapping from ErrorCode to HTTP status:
//   kInvalidArgument 400 (or 422, see above)   kNotFound 404
//   kAlreadyExists 409   kFailedPrecondition 409   kAborted 409
//   kPermissionDenied 403   kUnavailable 503   kDataLoss 500   kInternal 500
int http_status(ErrorCode code, InvalidArgumentAs invalid_argument_as = InvalidArgumentAs::kBadRequest);

// {"error": {"code", "message", "details"}}.
nlohmann::json error_body(std::string_view code, std::string_view message, const std::vector<Problem>& details);

// The response for an engine error: status from http_status, code from
// to_string(error.code). kUnavailable also carries Retry-After: 1.
Response error_response(const Error& error, InvalidArgumentAs invalid_argument_as = InvalidArgumentAs::kBadRequest);

// A response for an HTTP-level error with an explicit status and code.
Response error_response(int status, std::string_view code, std::string_view message,
                        const std::vector<Problem>& details = {});

// 401 with WWW-Authenticate: Bearer realm="cascade" — plus
// error="invalid_token" when a token was presented but is not valid (RFC 6750).
Response unauthenticated_response(std::string_view message, bool invalid_token);

}  // namespace cascade::adapters::http
