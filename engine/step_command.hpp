// The shell text a step's `run` becomes.
//
// `run` is the pipeline admin's shell code; the values of variables come from
// elsewhere — a release request, a CI event, a secret — and must never become
// shell syntax. So `$(name)` does not paste a value into the text: it becomes a
// reference to the environment variable `name` (every variable of a step is in
// its environment), quoted for the place it stands so that the shell reads the
// value as literal text of one word:
//
//   where `$(name)` stands                  it becomes
//   outside quotes                          "${name}"
//   inside "…"                              ${name}
//   inside '…'                              '"${name}"'   (closes, quotes, reopens)
//   after a backslash (\$(name))            stays as written: the admin escaped it
//
// A `$(` that is not a variable of the step is the admin's own command
// substitution and stays as written; quoting inside it starts afresh, as the
// shell's does. Inside a here-document the quotes are part of the text: write
// ${name} there. The value itself reaches the process only through its
// environment, so it is never in the command line (`ps`, /proc/<pid>/cmdline).
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace cascade::engine {

// REQUIRES: every key of `environment` is a valid variable name.
std::string step_shell_command(std::string_view run, const std::map<std::string, std::string>& environment);

}  // namespace cascade::engine
