// Validates CDEvents against the official v0.5.1 schemas with python3
// jsonschema (tests/support/validate_cdevents.py). The schemas live beside the
// repository in ../shared/cdevents/schemas; tests GTEST_SKIP when it is absent.
#pragma once

#include <nlohmann/json.hpp>

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace cascade::testing {

inline std::string cdevents_schemas_dir() {
  return std::string(CASCADE_SOURCE_DIR) + "/../shared/cdevents/schemas";
}

inline bool have_cdevents_schemas() { return std::filesystem::is_directory(cdevents_schemas_dir()); }

struct CdEventsValidation {
  int exit_code = -1;  // 0: every event valid
  std::string output;  // one line per event: "line N: ok TYPE" or "line N: INVALID TYPE: why at /path"
  std::size_t valid = 0;
};

// Writes `cdevents` one per line to `scratch_file` and validates them all.
inline CdEventsValidation validate_cdevents(const std::vector<nlohmann::json>& cdevents,
                                            const std::string& scratch_file) {
  {
    std::ofstream out(scratch_file);
    for (const nlohmann::json& event : cdevents) out << event.dump() << "\n";
  }
  const std::string command = "python3 '" + std::string(CASCADE_SOURCE_DIR) +
                              "/tests/support/validate_cdevents.py' --schemas '" + cdevents_schemas_dir() + "' '" +
                              scratch_file + "' 2>&1";
  CdEventsValidation result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) result.output += buffer;
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  for (std::size_t at = result.output.find(": ok "); at != std::string::npos;
       at = result.output.find(": ok ", at + 1)) {
    ++result.valid;
  }
  return result;
}

}  // namespace cascade::testing
