// What the pieces of the audit share (engine/replay.cpp, evidence.cpp,
// verification.cpp, audit_bundle.cpp, explain.cpp). Private to engine/.
#pragma once

#include "engine/audit.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace cascade::engine::audit_internal {

inline Location located(std::string stream, std::int64_t version, std::uint64_t position) {
  Location location;
  location.stream = std::move(stream);
  location.version = version;
  location.position = position;
  return location;
}

// A failed read of one version, as a finding (replay.cpp).
Finding read_failure(const std::string& stream, std::int64_t version, const Error& error);

// The JSON pointer of the first place where `a` and `b` differ, or nullopt
// (verification.cpp).
std::optional<std::string> first_difference(const nlohmann::json& a, const nlohmann::json& b,
                                            const std::string& path = "");

// A Finding read back from its JSON (verification.cpp). Throws nlohmann's
// exceptions for a missing member or a wrong type.
Finding finding_from_json(const nlohmann::json& f);

// Writes the outcome of each check into a Verification; the first failure
// becomes its failure.
class Recorder {
 public:
  explicit Recorder(Verification& v) : v_(v) {}
  void passed(std::string name, std::string detail) {
    v_.checks.push_back({std::move(name), CheckOutcome::kPassed, std::move(detail)});
  }
  void skipped(std::string name, std::string why) {
    v_.checks.push_back({std::move(name), CheckOutcome::kSkipped, std::move(why)});
  }
  void failed(std::string name, Finding finding) {
    v_.checks.push_back({std::move(name), CheckOutcome::kFailed, finding.message});
    if (!v_.failure) v_.failure = std::move(finding);
  }
  void record(std::string name, std::optional<Finding> finding, std::string detail) {
    if (finding) {
      failed(std::move(name), std::move(*finding));
    } else {
      passed(std::move(name), std::move(detail));
    }
  }

 private:
  Verification& v_;
};

// One try of one step: the event that finished it (if any) and its digest.
// A try cut off by an interruption that recorded what was stored of the step
// (StepFailed::stored_log_digest) counts as finished: its digest then covers
// the step's first `stored_lines` lines, those of its earlier tries included.
// One cut off before such records existed has no digest and counts as never
// finished.
struct StepTry {
  int try_number = 0;
  const events::RecordedEvent* finish = nullptr;
  std::string digest;
  bool cut_off = false;
  std::int64_t stored_lines = 0;
};

struct StepHistory {
  StepLogKey key;
  std::string step;
  std::vector<StepTry> tries;
};

bool same_key(const StepLogKey& a, const StepLogKey& b);

// Every step of the release, with its tries in event order (evidence.cpp).
std::vector<StepHistory> step_histories(const std::string& release_id, const std::vector<events::RecordedEvent>& events);

// Whether some try of the step finished, so that a log digest was recorded.
bool digested(const StepHistory& history);

}  // namespace cascade::engine::audit_internal
