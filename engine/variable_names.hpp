// Which names a variable may have. Variables become environment variables of
// a step's process, so a name must be one a shell accepts, must not be one the
// engine sets itself, and must not be one that changes how a program starts
// (the dynamic loader, the shell, interpreters): such a variable set at release
// time would run code of the requester's choosing inside the admin's steps.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace cascade::engine {

// [A-Za-z_][A-Za-z0-9_]*: what a POSIX shell accepts as a variable name.
bool is_valid_variable_name(std::string_view name);

// Why no variable, stage variable, step env entry or release variable may be
// called `name`, or nullopt when it may. The names refused:
//   CASCADE_*                           set by the engine
//   PATH, IFS, ENV, BASH_ENV, CDPATH, GLOBIGNORE, PS4, SHELLOPTS, BASHOPTS,
//   PROMPT_COMMAND, BASH_FUNC_*         change what a shell runs
//   LD_*, GCONV_PATH, MALLOC_*, GLIBC_TUNABLES, HOSTALIASES, LOCALDOMAIN,
//   RES_OPTIONS, NLSPATH, TZDIR         change what the loader and libc load
//   PYTHONPATH, PYTHONSTARTUP, PYTHONHOME, PYTHONINSPECT, PERL5LIB, PERL5OPT,
//   PERLLIB, RUBYLIB, RUBYOPT, NODE_OPTIONS, NODE_PATH, JAVA_TOOL_OPTIONS,
//   _JAVA_OPTIONS, JDK_JAVA_OPTIONS, CLASSPATH, LUA_INIT, LUA_PATH, LUA_CPATH,
//   PHPRC, GIT_*, SSH_ASKPASS, EDITOR, VISUAL, PAGER, HOME, XDG_CONFIG_HOME
//                                       change what interpreters and tools run
// The check is exact and case-sensitive, as the environment is.
std::optional<std::string> forbidden_variable_name(std::string_view name);

}  // namespace cascade::engine
