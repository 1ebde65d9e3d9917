#include "engine/variable_names.hpp"

#include <algorithm>
#include <iterator>

namespace cascade::engine {
namespace {

constexpr std::string_view kStartupNames[] = {
    "PATH",          "IFS",           "ENV",          "BASH_ENV",         "CDPATH",        "GLOBIGNORE",
    "PS4",           "SHELLOPTS",     "BASHOPTS",     "PROMPT_COMMAND",   "GCONV_PATH",    "GLIBC_TUNABLES",
    "HOSTALIASES",   "LOCALDOMAIN",   "RES_OPTIONS",  "NLSPATH",          "TZDIR",         "PYTHONPATH",
    "PYTHONSTARTUP", "PYTHONHOME",    "PYTHONINSPECT", "PERL5LIB",        "PERL5OPT",      "PERLLIB",
    "RUBYLIB",       "RUBYOPT",       "NODE_OPTIONS", "NODE_PATH",        "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS", "CLASSPATH",  "LUA_INIT",     "LUA_PATH",         "LUA_CPATH",     "PHPRC",
    "SSH_ASKPASS",   "EDITOR",        "VISUAL",       "PAGER",            "HOME",          "XDG_CONFIG_HOME"};
constexpr std::string_view kStartupPrefixes[] = {"LD_", "BASH_FUNC_", "MALLOC_", "GIT_"};
constexpr std::string_view kEnginePrefix = "CASCADE_";

bool starts_with(std::string_view text, std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; }

}  // namespace

bool is_valid_variable_name(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

std::optional<std::string> forbidden_variable_name(std::string_view name) {
  if (starts_with(name, kEnginePrefix)) {
    return "names starting with " + std::string(kEnginePrefix) + " are set by the engine";
  }
  const bool startup = std::find(std::begin(kStartupNames), std::end(kStartupNames), name) != std::end(kStartupNames) ||
                       std::any_of(std::begin(kStartupPrefixes), std::end(kStartupPrefixes),
                                   [&](std::string_view prefix) { return starts_with(name, prefix); });
  if (startup) return "it changes how programs start (see the README's Security section)";
  return std::nullopt;
}

}  // namespace cascade::engine
