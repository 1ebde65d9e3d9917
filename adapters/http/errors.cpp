#include "adapters/http/errors.hpp"

namespace cascade::adapters::http {

int http_status(ErrorCode code, InvalidArgumentAs invalid_argument_as) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return invalid_argument_as == InvalidArgumentAs::kUnprocessableEntity ? 422 : 400;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kAlreadyExists:
      return 409;
    case ErrorCode::kFailedPrecondition:
      return 409;
    case ErrorCode::kPermissionDenied:
      return 403;
    case ErrorCode::kAborted:
      return 409;
    case ErrorCode::kUnavailable:
      return 503;
    case ErrorCode::kDataLoss:
      return 500;
    case ErrorCode::kStoreCorrupt:
      return 500;
    case ErrorCode::kInternal:
      return 500;
  }
  return 500;
}

nlohmann::json error_body(std::string_view code, std::string_view message, const std::vector<Problem>& details) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& problem : details) list.push_back({{"path", problem.path}, {"message", problem.message}});
  return {{"error", {{"code", code}, {"message", message}, {"details", std::move(list)}}}};
}

Response error_response(const Error& error, InvalidArgumentAs invalid_argument_as) {
  Response response =
      error_response(http_status(error.code, invalid_argument_as), to_string(error.code), error.message, error.details);
  // Transient: tell clients when a retry makes sense.
  if (error.code == ErrorCode::kUnavailable) response.headers.emplace_back("Retry-After", "1");
  return response;
}

Response error_response(int status, std::string_view code, std::string_view message,
                        const std::vector<Problem>& details) {
  // Error bodies must never fail to serialise: invalid UTF-8 (an echoed
  // request field) is replaced rather than thrown on.
  Response response;
  response.status = status;
  response.body = error_body(code, message, details).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return response;
}

Response unauthenticated_response(std::string_view message, bool invalid_token) {
  Response response = error_response(401, kCodeUnauthenticated, message);
  response.headers.emplace_back("WWW-Authenticate", invalid_token ? "Bearer realm=\"cascade\", error=\"invalid_token\""
                                                                  : "Bearer realm=\"cascade\"");
  return response;
}

}  // namespace cascade::adapters::http
