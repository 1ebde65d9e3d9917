// Runs the real `cascade` binary (CASCADE_BINARY, set by tests/CMakeLists.txt)
// as a user would, and collects what it printed.
#pragma once

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <sys/wait.h>

namespace cascade::testing {

struct CommandRun {
  int exit_code = -1;
  std::string output;  // stdout, and stderr unless left out
};

// Runs a shell command line to completion: its output and exit code.
inline CommandRun run_shell(const std::string& command) {
  CommandRun result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  std::size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// Runs the `cascade` program with `arguments`.
inline CommandRun run(const std::string& arguments, bool with_stderr = true) {
  return run_shell(std::string(CASCADE_BINARY) + " " + arguments + (with_stderr ? " 2>&1" : " 2>/dev/null"));
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace cascade::testing
