// The one result type of Cascade's core (events/, engine/, projections/).
//
// A closed set of codes tells the caller what to do, after Abseil's Status:
// kInvalidArgument — the input is wrong; kNotFound; kFailedPrecondition — the
// state does not allow it, do not retry; kAborted — lost a race, reload and
// retry; kUnavailable — transient; kDataLoss — stored data cannot be trusted;
// kStoreCorrupt — the store's own files are damaged, so it cannot be opened at
// all (not transient: check it with `cascade doctor`, restore from a backup).
#pragma once

#include <boost/outcome/result.hpp>
#include <boost/outcome/try.hpp>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cascade {

enum class ErrorCode {
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kFailedPrecondition,
  kPermissionDenied,
  kAborted,
  kUnavailable,
  kDataLoss,
  kStoreCorrupt,
  kInternal,
};

std::string_view to_string(ErrorCode code);

// One located problem, e.g. {"stages[2].trigger.after_stages[0]", "unknown stage 'qaa'"}.
struct Problem {
  std::string path;
  std::string message;
};
inline bool operator==(const Problem& a, const Problem& b) {
  return a.path == b.path && a.message == b.message;
}

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  std::vector<Problem> details;  // every problem found, when there are several
};

Error make_error(ErrorCode code, std::string message, std::vector<Problem> details = {});

namespace outcome = BOOST_OUTCOME_V2_NAMESPACE;

// Result<T>: a T or an Error. [[nodiscard]] through Outcome's basic_result.
template <class T>
using Result = outcome::result<T, Error, outcome::policy::terminate>;

inline auto success() { return outcome::success(); }
template <class T>
auto success(T&& value) { return outcome::success(std::forward<T>(value)); }

// Status is a Result with no value.
using Status = Result<void>;

}  // namespace cascade

// CASCADE_TRY(name, expr) declares `auto&& name` = the value of expr, or returns
// its error; CASCADE_TRY(expr) only propagates the error.
#define CASCADE_TRY BOOST_OUTCOME_TRY
