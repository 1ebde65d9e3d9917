#include "events/result.hpp"

namespace cascade {

std::string_view to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return "invalid_argument";
    case ErrorCode::kNotFound: return "not_found";
    case ErrorCode::kAlreadyExists: return "already_exists";
    case ErrorCode::kFailedPrecondition: return "failed_precondition";
    case ErrorCode::kPermissionDenied: return "permission_denied";
    case ErrorCode::kAborted: return "aborted";
    case ErrorCode::kUnavailable: return "unavailable";
    case ErrorCode::kDataLoss: return "data_loss";
    case ErrorCode::kStoreCorrupt: return "store_corrupt";
    case ErrorCode::kInternal: return "internal";
  }
  return "internal";
}

Error make_error(ErrorCode code, std::string message, std::vector<Problem> details) {
  return Error{code, std::move(message), std::move(details)};
}

}  // namespace cascade
