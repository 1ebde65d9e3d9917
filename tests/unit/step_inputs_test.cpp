// What a releaser or a CI producer controls — variable values, artifact
// versions, variable names — never becomes code on the server. The shell
// command tests run the real /bin/sh.
#include "engine/artifact_version.hpp"
#include "engine/step_command.hpp"
#include "engine/variable_names.hpp"

#include "tests/support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

namespace cascade::engine {
namespace {

// Runs `command` with /bin/sh -c and exactly `environment`; returns its stdout.
std::string run_shell(const std::string& command, const std::map<std::string, std::string>& environment) {
  int out[2];
  EXPECT_EQ(pipe(out), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    close(out[0]);
    close(out[1]);
    std::vector<std::string> entries;
    for (const auto& [name, value] : environment) entries.push_back(name + "=" + value);
    std::vector<char*> envp;
    for (std::string& entry : entries) envp.push_back(entry.data());
    envp.push_back(nullptr);
    const char* argv[] = {"/bin/sh", "-c", command.c_str(), nullptr};
    execve("/bin/sh", const_cast<char* const*>(argv), envp.data());
    _exit(127);
  }
  close(out[1]);
  std::string text;
  char buffer[4096];
  for (ssize_t n; (n = read(out[0], buffer, sizeof buffer)) > 0;) text.append(buffer, static_cast<std::size_t>(n));
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return text;
}

class StepShellCommand : public ::testing::Test {
 protected:
  // Every hostile value tries to create marker_; none may.
  std::vector<std::string> hostile_values() const {
    const std::string m = marker_.string();
    return {"1;touch " + m + ";#",
            "$(touch " + m + ")",
            "`touch " + m + "`",
            "x; touch " + m + " #",
            "'; touch " + m + "; '",
            "\"; touch " + m + "; \"",
            "\"$(touch " + m + ")\"",
            "a\ntouch " + m,
            "a)\ntouch " + m + "\n(b",
            "# not a comment",
            "*",
            "  two  spaces  ",
            "$HOME ${IFS} $$",
            "back\\slash\\",
            "'",
            "\"",
            "\\",
            "plain-1.2.3+build_4~rc"};
  }
  std::map<std::string, std::string> env_with(const std::string& value) const {
    return {{"V", value}, {"PATH", "/usr/bin:/bin"}};
  }
  void TearDown() override { EXPECT_FALSE(std::filesystem::exists(marker_)) << "a value ran as code"; }

  testing::TempDir dir_;
  std::filesystem::path marker_ = dir_ / "marker";
};

TEST_F(StepShellCommand, AValueIsOneLiteralWordWhereverTheMacroStands) {
  struct Case {
    std::string run;
    std::string before, after;  // expected output: before + value + after
  };
  const std::vector<Case> cases = {
      {"printf '%s' $(V)", "", ""},
      {"printf '%s' \"$(V)\"", "", ""},
      {"printf '%s' 'x$(V)y'", "x", "y"},
      {"printf '%s' \"x$(V)y\"", "x", "y"},
      {"printf '%s' x$(V)y", "x", "y"},
      {"printf '%s|' \"$(printf '%s' $(V))\"", "", "|"},
      {"# it's a comment with $(V)\nprintf '%s' $(V)", "", ""},
      {"printf '%s' \"`printf '%s' $(V)`\"", "", ""},
      {"if true; then printf '%s' $(V); fi", "", ""},
      {"printf '%s' $((1+1))$(V)", "2", ""},
  };
  for (const std::string& value : hostile_values()) {
    for (const Case& c : cases) {
      const std::string command = step_shell_command(c.run, env_with(value));
      if (value.size() > 4) {  // shorter ones ('"', '*') occur in any shell text
        EXPECT_EQ(command.find(value), std::string::npos) << "the value itself is in the command line: " << command;
      }
      std::string expected = c.before + value + c.after;
      // Command substitution drops trailing newlines, as the shell always does.
      if (c.run.find("\"$(printf") != std::string::npos || c.run.find('`') != std::string::npos) {
        while (!expected.empty() && expected.back() == '\n') expected.pop_back();
      }
      EXPECT_EQ(run_shell(command, env_with(value)), expected) << "run: " << c.run << "\ncommand: " << command;
    }
  }
}

TEST_F(StepShellCommand, UnknownNamesEscapesAndTheAdminsOwnSubstitutionsStayAsWritten) {
  const std::map<std::string, std::string> env = {{"V", "v"}};
  EXPECT_EQ(step_shell_command("echo $(UNKNOWN) $(V)", env), "echo $(UNKNOWN) \"${V}\"");
  EXPECT_EQ(step_shell_command("echo \\$(V)", env), "echo \\$(V)");
  EXPECT_EQ(step_shell_command("echo \"\\$(V)\"", env), "echo \"\\$(V)\"");
  EXPECT_EQ(step_shell_command("echo $(date +%s) $(V", env), "echo $(date +%s) $(V");
  EXPECT_EQ(step_shell_command("$()", env), "$()");
  EXPECT_EQ(step_shell_command("$(1V) $(V V)", env), "$(1V) $(V V)");
  EXPECT_EQ(step_shell_command("", env), "");
  EXPECT_EQ(step_shell_command("'$(V)'", env), "''\"${V}\"''");
  EXPECT_EQ(run_shell(step_shell_command("printf '%s' \"\\$(V)\"", env), env), "$(V)");
}

TEST_F(StepShellCommand, MacrosBecomeQuotedReferencesNeverTheirValues) {
  const std::map<std::string, std::string> vars = {
      {"A", "alpha"}, {"B", "beta"}, {"_x1", "under"}, {"LOOP", "$(A)"}, {"EMPTY", ""}};
  EXPECT_EQ(step_shell_command("no tokens", vars), "no tokens");
  EXPECT_EQ(step_shell_command("deploy $(A) to $(_x1)", vars), "deploy \"${A}\" to \"${_x1}\"");
  EXPECT_EQ(step_shell_command("$(A)$(B)", vars), "\"${A}\"\"${B}\"");  // adjacent
  EXPECT_EQ(step_shell_command("$(A)$(", vars), "\"${A}\"$(");
  EXPECT_EQ(step_shell_command("$($(A))", vars), "$(\"${A}\")");  // the admin runs a program named by the value
  EXPECT_EQ(step_shell_command("$$(A) $A ${A} (A)", vars), "$\"${A}\" $A ${A} (A)");
  EXPECT_EQ(step_shell_command("$(A)", {}), "$(A)");
  auto output = [&](const std::string& run) { return run_shell(step_shell_command(run, vars), vars); };
  EXPECT_EQ(output("printf '%s' $(LOOP)"), "$(A)");  // a value is never expanded again
  EXPECT_EQ(output("printf '[%s]' x$(EMPTY)y $(EMPTY)"), "[xy][]");  // an empty value is still one word
}

TEST(VariableNames, ShellNamesOnly) {
  EXPECT_TRUE(is_valid_variable_name("TARGET"));
  EXPECT_TRUE(is_valid_variable_name("_x1"));
  EXPECT_FALSE(is_valid_variable_name(""));
  EXPECT_FALSE(is_valid_variable_name("1A"));
  EXPECT_FALSE(is_valid_variable_name("A-B"));
  EXPECT_FALSE(is_valid_variable_name("A B"));
}

TEST(VariableNames, NamesThatChangeHowProgramsStartAreForbidden) {
  for (const char* name : {"PATH", "BASH_ENV", "ENV", "IFS", "PS4", "SHELLOPTS", "LD_PRELOAD", "LD_LIBRARY_PATH",
                           "LD_ANYTHING", "BASH_FUNC_echo%%", "PYTHONPATH", "NODE_OPTIONS", "PERL5OPT", "GIT_SSH_COMMAND",
                           "HOME", "CASCADE_ARTIFACT_VERSION", "CASCADE_X"}) {
    EXPECT_TRUE(forbidden_variable_name(name).has_value()) << name;
  }
  for (const char* name : {"TARGET", "SITES_ROOT", "path", "LDAP_URL", "MY_PATH", "GITHUB_SHA", "Cascade_x"}) {
    EXPECT_FALSE(forbidden_variable_name(name).has_value()) << name;
  }
  EXPECT_NE(forbidden_variable_name("CASCADE_X").value().find("set by the engine"), std::string::npos);
  EXPECT_NE(forbidden_variable_name("BASH_ENV").value().find("how programs start"), std::string::npos);
}

TEST(ArtifactVersion, SemVerAndPurlCharactersOnly) {
  for (const char* version : {"1.0.0", "1.4.4+20261204T101010", "2.0.0-rc.1", "1_2~3", "v7", "sha256:abc"}) {
    EXPECT_FALSE(artifact_version_problem(version).has_value()) << version;
  }
  EXPECT_EQ(artifact_version_problem(std::string(128, '1')), std::nullopt);
  EXPECT_NE(artifact_version_problem(std::string(129, '1')).value().find("at most 128"), std::string::npos);
  EXPECT_EQ(artifact_version_problem("").value(), "is empty");
  EXPECT_NE(artifact_version_problem("1;touch x;#").value().find("';' at position 2"), std::string::npos);
  EXPECT_NE(artifact_version_problem("$(x)").value().find("'$' at position 1"), std::string::npos);
  EXPECT_NE(artifact_version_problem("1 2").value().find("byte 0x20 at position 2"), std::string::npos);
  EXPECT_NE(artifact_version_problem(std::string("1\0", 2)).value().find("byte 0x00"), std::string::npos);
  for (const char* hostile : {"`x`", "a'b", "a\"b", "a\nb", "a#b", "a/b", "a\\b"}) {
    EXPECT_TRUE(artifact_version_problem(hostile).has_value()) << hostile;
  }
}

}  // namespace
}  // namespace cascade::engine
