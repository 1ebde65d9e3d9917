#include "engine/artifact_version.hpp"

#include <cstdio>
#include <filesystem>

namespace cascade::engine {

std::optional<std::string> artifact_version_problem(std::string_view version) {
  if (version.empty()) return std::string("is empty");
  if (version.size() > kMaxArtifactVersionLength) {
    return "is " + std::to_string(version.size()) + " characters long; at most " +
           std::to_string(kMaxArtifactVersionLength) + " are allowed";
  }
  for (std::size_t i = 0; i < version.size(); ++i) {
    const char c = version[i];
    const bool allowed = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                         c == '-' || c == '+' || c == '_' || c == '~' || c == ':';
    if (allowed) continue;
    char shown[16];
    if (c > ' ' && c < 0x7f) {
      std::snprintf(shown, sizeof shown, "'%c'", c);
    } else {
      std::snprintf(shown, sizeof shown, "byte 0x%02x", static_cast<unsigned char>(c));
    }
    return "has " + std::string(shown) + " at position " + std::to_string(i + 1) +
           ": use letters, digits, '.', '-', '+', '_', '~' or ':'";
  }
  return std::nullopt;
}

std::optional<std::string> missing_artifact(const std::string& path) {
  std::error_code error;
  if (std::filesystem::exists(path, error)) return std::nullopt;
  return "no file or directory at " + path + (error ? " (" + error.message() + ")" : "") + " on the server";
}

}  // namespace cascade::engine
