#include "engine/step_command.hpp"

#include <vector>

namespace cascade::engine {
namespace {

bool is_name_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }

// Where the shell stands while reading the text: which quotes are open, and
// how deep in `$( … )` or `` `…` `` (each starts its own quoting).
enum class Quote { kNone, kSingle, kDouble };
struct Frame {
  Quote quote = Quote::kNone;
  int parens = 0;         // open '(' of the admin's own inside this frame
  bool backtick = false;  // the frame is a `…` substitution
};

}  // namespace

std::string step_shell_command(std::string_view run, const std::map<std::string, std::string>& environment) {
  std::string out;
  out.reserve(run.size() + 16);
  std::vector<Frame> frames(1);
  bool word_start = true;  // a '#' here starts a comment
  std::size_t i = 0;
  while (i < run.size()) {
    Frame& frame = frames.back();
    const char c = run[i];

    // $(name) of a variable of the step.
    if (c == '$' && i + 1 < run.size() && run[i + 1] == '(') {
      std::size_t end = i + 2;
      if (end < run.size() && is_name_start(run[end])) {
        while (end < run.size() && is_name_char(run[end])) ++end;
      }
      const std::string_view name = run.substr(i + 2, end - i - 2);
      if (!name.empty() && end < run.size() && run[end] == ')' && environment.count(std::string(name)) != 0) {
        const std::string reference = "${" + std::string(name) + "}";
        switch (frame.quote) {
          case Quote::kNone: out += '"' + reference + '"'; break;
          case Quote::kDouble: out += reference; break;
          case Quote::kSingle: out += "'\"" + reference + "\"'"; break;
        }
        i = end + 1;
        word_start = false;
        continue;
      }
    }

    if (frame.quote == Quote::kSingle) {
      if (c == '\'') frame.quote = Quote::kNone;
      out += c;
      ++i;
      continue;
    }
    if (c == '\\') {  // the next character is taken as written
      out += run.substr(i, 2);
      i += 2;
      word_start = false;
      continue;
    }
    if (c == '$' && i + 1 < run.size() && run[i + 1] == '(') {  // the admin's own command substitution
      out += "$(";
      i += 2;
      frames.push_back(Frame{});
      word_start = true;
      continue;
    }
    if (c == '`') {
      out += c;
      ++i;
      if (frame.backtick && frame.quote == Quote::kNone) {
        frames.pop_back();
      } else {
        frames.push_back(Frame{Quote::kNone, 0, true});
      }
      word_start = true;
      continue;
    }
    if (frame.quote == Quote::kDouble) {
      if (c == '"') frame.quote = Quote::kNone;
      out += c;
      ++i;
      continue;
    }
    // Outside quotes.
    if (c == '#' && word_start) {  // a comment, to the end of the line
      const std::size_t newline = run.find('\n', i);
      const std::size_t stop = newline == std::string_view::npos ? run.size() : newline;
      out += run.substr(i, stop - i);
      i = stop;
      continue;
    }
    if (c == '\'') frame.quote = Quote::kSingle;
    if (c == '"') frame.quote = Quote::kDouble;
    if (c == '(') ++frame.parens;
    if (c == ')') {
      if (frame.parens > 0) {
        --frame.parens;
      } else if (frames.size() > 1 && !frame.backtick) {
        frames.pop_back();
      }
    }
    out += c;
    ++i;
    word_start = c == ' ' || c == '\t' || c == '\n' || c == ';' || c == '&' || c == '|' || c == '(' || c == ')';
  }
  return out;
}

}  // namespace cascade::engine
