// Over 600 lines: one class, the structural pass in the order of the schema;
// cut up, the rules of one part of the format would be in several files.
#include "engine/pipeline_internal.hpp"
#include "events/did_you_mean.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <utility>

// Validation walks the document once and records a Problem for everything it
// finds instead of stopping at the first one, so a team fixes a definition in
// one round trip. The structural pass (fields, types, names) runs in schema
// order, which is the order people write these documents in; nlohmann::json
// keeps object keys sorted, so the real document order is lost and an
// object's unknown fields are reported before its known ones. The semantic
// pass (duplicates, references, cycles, the release-created entry point) runs
// afterwards over whatever the structural pass could read.

namespace cascade::engine {

using nlohmann::json;
using namespace pipeline_internal;

namespace {

constexpr std::int64_t kMinTimeoutSeconds = 1;
constexpr std::int64_t kMaxTimeoutSeconds = 86400;
constexpr std::int64_t kMaxRetries = 10;
constexpr std::int64_t kMaxRetryDelaySeconds = 3600;
constexpr std::int64_t kMillisecondsPerMinute = 60 * 1000;
constexpr std::int64_t kMinutesPerHour = 60;
constexpr std::int64_t kMinutesPerDay = 24 * 60;
constexpr std::size_t kDigestLength = 64;  // a SHA-256, in lowercase hex
// The token that numbers releases; a name format must contain it so that
// every release of a pipeline gets its own name.
constexpr std::string_view kRevisionToken = "$(rev:r)";

// Known fields in schema order, which is also the order their problems are reported in.
constexpr std::array<std::string_view, 8> kPipelineFields = {"name",      "description", "release_name_format",
                                                             "variables", "groups",      "stages",
                                                             "artifact",  "needs_artifact"};
constexpr std::array<std::string_view, 2> kArtifactTriggerFields = {"source", "branch_filters"};
constexpr std::array<std::string_view, 9> kStageFields = {"name",         "trigger",      "pre_approval",
                                                          "post_approval", "variables",   "steps",
                                                          "max_parallel", "on_new_release", "on_failure"};
constexpr std::array<std::string_view, 4> kTriggerFields = {"after_release", "after_stages", "manual",
                                                            "on_partial_success"};
constexpr std::array<std::string_view, 3> kTriggerKinds = {"after_release", "after_stages", "manual"};
constexpr std::array<std::string_view, 6> kApprovalFields = {"approvers", "required", "order", "timeout",
                                                             "requester_cannot_approve",
                                                             "skip_if_approved_earlier"};
constexpr std::array<std::string_view, 7> kStepFields = {"name", "run", "timeout_s", "env", "continue_on_error",
                                                         "retries", "condition"};
constexpr std::array<std::string_view, 4> kVariableFields = {"value", "secret", "digest", "settable"};
constexpr std::array<std::string_view, 2> kRetryFields = {"count", "delay_s"};

// "found number", "found null"...: the JSON type the author actually wrote.
std::string expected(std::string_view what, const json& found) {
  return "expected " + std::string(what) + ", found " + found.type_name();
}

bool is_blank(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; });
}

// "'a'", "'a' and 'b'", "'a', 'b' and 'c'".
std::string join_quoted(const std::vector<std::string_view>& items) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += i + 1 == items.size() ? " and " : ", ";
    out += single_quoted(items[i]);
  }
  return out;
}

// "\"a\"", "\"a\" or \"b\"", "\"a\", \"b\" or \"c\"": the words a choice field accepts.
template <std::size_t N>
std::string join_choices(const std::array<std::string_view, N>& choices) {
  std::string out;
  for (std::size_t i = 0; i < N; ++i) {
    if (i > 0) out += i + 1 == N ? " or " : ", ";
    out += "\"" + std::string(choices[i]) + "\"";
  }
  return out;
}

// 64 lowercase hex digits: how the secret store names a secret.
bool is_digest(std::string_view text) {
  return text.size() == kDigestLength &&
         std::all_of(text.begin(), text.end(), [](char c) { return is_digit(c) || (c >= 'a' && c <= 'f'); });
}

// An approval timeout as written: a whole number followed by m, h or d
// ("45m", "12h", "30d"), in minutes; nullopt when the text is not of that
// form. Numbers far beyond the maximum saturate, so that they are reported as
// too long rather than overflowing.
std::optional<std::int64_t> parse_duration_minutes(std::string_view text) {
  if (text.size() < 2) return std::nullopt;
  std::int64_t unit_minutes = 0;
  switch (text.back()) {
    case 'm': unit_minutes = 1; break;
    case 'h': unit_minutes = kMinutesPerHour; break;
    case 'd': unit_minutes = kMinutesPerDay; break;
    default: return std::nullopt;
  }
  constexpr std::int64_t kSaturated = ApprovalPolicy::kMaxTimeoutMs / kMillisecondsPerMinute + 1;
  std::int64_t count = 0;
  for (char c : text.substr(0, text.size() - 1)) {
    if (!is_digit(c)) return std::nullopt;
    count = std::min(count * 10 + (c - '0'), kSaturated);
  }
  return count * unit_minutes;
}

// $(date:<pattern>): a pattern of y, M and d with '-', '.' or '_' between, e.g. yyyyMMdd or yyyy-MM-dd.
bool is_date_pattern(std::string_view pattern) {
  const auto is_field = [](char c) { return c == 'y' || c == 'M' || c == 'd'; };
  return std::any_of(pattern.begin(), pattern.end(), is_field) &&
         std::all_of(pattern.begin(), pattern.end(),
                     [&](char c) { return is_field(c) || c == '-' || c == '.' || c == '_'; });
}

// Every problem of a release name format, in the order of the text. Names
// end up in stream names, URLs and directory names, so outside of tokens the
// format uses the characters of a name and starts like one.
std::vector<std::string> release_name_format_problems(std::string_view format) {
  std::vector<std::string> problems;
  bool has_revision = false;
  bool reported_character = false;
  for (std::size_t i = 0; i < format.size();) {
    if (format.compare(i, 2, "$(") == 0) {
      const std::size_t close = format.find(')', i + 2);
      if (close == std::string_view::npos) {
        problems.push_back("unterminated token " + single_quoted(format.substr(i)));
        break;
      }
      const std::string_view token = format.substr(i, close + 1 - i);
      const std::string_view inside = token.substr(2, token.size() - 3);
      if (token == kRevisionToken) {
        has_revision = true;
      } else if (inside != "build" &&
                 !(inside.compare(0, 5, "date:") == 0 && is_date_pattern(inside.substr(5)))) {
        problems.push_back("unknown token " + single_quoted(token) +
                           ": use $(rev:r), $(build) or $(date:yyyyMMdd)");
      }
      i = close + 1;
      continue;
    }
    const char c = format[i];
    const bool name_character = is_letter(c) || is_digit(c) || c == '.' || c == '_' || c == '-';
    if (!reported_character && (!name_character || (i == 0 && !is_letter(c) && !is_digit(c)))) {
      reported_character = true;
      problems.push_back(name_character
                             ? "release_name_format must start with a letter, a digit or a token"
                             : "character " + single_quoted(std::string_view(&format[i], 1)) +
                                   " is not allowed: outside of tokens use letters, digits, '.', '_' or '-'");
    }
    ++i;
  }
  if (!has_revision) {
    problems.push_back("release_name_format must contain $(rev:r), so that every release gets its own name");
  }
  return problems;
}

class PipelineParser {
 public:
  Result<PipelineDefinition> parse(const json& document) {
    PipelineDefinition definition;
    std::vector<StageDraft> drafts;
    if (!document.is_object()) {
      add("", expected("an object", document));
    } else {
      parse_pipeline_fields(document, definition, drafts);
      if (!drafts.empty()) check_stages(drafts, problems_);
    }
    if (!problems_.empty()) return invalid_pipeline(document, std::move(problems_));
    for (StageDraft& draft : drafts) definition.stages.push_back(std::move(draft.definition));
    return definition;
  }

 private:
  void add(std::string path, std::string message) {
    problems_.push_back(Problem{std::move(path), std::move(message)});
  }

  // Reports every key of `object` that is not in `known`, suggesting the
  // closest known one; returns whether all keys were known.
  template <std::size_t N>
  bool check_fields(const json& object, const std::string& path, const std::array<std::string_view, N>& known) {
    bool all_known = true;
    for (const auto& item : object.items()) {
      const std::string& key = item.key();
      if (std::find(known.begin(), known.end(), key) != known.end()) continue;
      all_known = false;
      std::string message = "unknown field " + single_quoted(key);
      if (const auto best = events::did_you_mean(key, {known.begin(), known.end()})) {
        message += " (did you mean " + single_quoted(*best) + "?)";
      }
      add(member_path(path, key), std::move(message));
    }
    return all_known;
  }

  // The member `key` of `object`, or nullptr; a missing required one is reported.
  const json* find(const json& object, const std::string& path, std::string_view key, bool required) {
    const auto it = object.find(key);
    if (it != object.end()) return &*it;
    if (required) add(member_path(path, key), "missing required field " + single_quoted(key));
    return nullptr;
  }

  std::optional<std::string> read_string(const json& value, const std::string& path) {
    if (!value.is_string()) {
      add(path, expected("a string", value));
      return std::nullopt;
    }
    return value.get<std::string>();
  }

  // A pipeline, stage or step name; `kind` names it in the message.
  std::optional<std::string> read_name(const json& object, const std::string& path, std::string_view kind) {
    const json* value = find(object, path, "name", true);
    if (value == nullptr) return std::nullopt;
    const std::string name_path = member_path(path, "name");
    std::optional<std::string> name = read_string(*value, name_path);
    if (name && !is_valid_name(*name)) {
      add(name_path, "invalid " + std::string(kind) + " name " + single_quoted(*name) + ": use 1 to " +
                         std::to_string(kMaxNameLength) +
                         " letters, digits, '.', '_' or '-', starting with a letter or digit");
    }
    return name;
  }

  // Reports a name that cannot be an environment variable or is the engine's.
  void check_variable_name(const std::string& name, const std::string& path, std::string_view kind) {
    if (!is_valid_variable_name(name)) {
      add(path, "invalid " + std::string(kind) + " name " + single_quoted(name) +
                    ": use letters, digits and '_', not starting with a digit");
    } else if (auto reason = forbidden_variable_name(name)) {
      add(path, std::string(kind) + " name " + single_quoted(name) + " is reserved: " + *reason);
    }
  }

  // A string that becomes (part of) an environment variable's value.
  std::optional<std::string> read_variable_text(const json& value, const std::string& path) {
    std::optional<std::string> text = read_string(value, path);
    if (text && text->find('\0') != std::string::npos) {
      add(path, "contains a NUL character, which an environment variable cannot hold");
      return std::nullopt;
    }
    return text;
  }

  // A step's env: an object of string → string whose keys become environment variables.
  std::map<std::string, std::string> read_env(const json& value, const std::string& path) {
    std::map<std::string, std::string> env;
    if (!value.is_object()) {
      add(path, expected("an object", value));
      return env;
    }
    for (const auto& item : value.items()) {
      const std::string item_path = member_path(path, item.key());
      check_variable_name(item.key(), item_path, "env variable");
      if (auto text = read_variable_text(item.value(), item_path)) env.emplace(item.key(), std::move(*text));
    }
    return env;
  }

  // Pipeline or stage variables: name → "text", {"value": "text", "secret": bool},
  // or a secret's stored form {"secret": true, "digest": "<64 hex>"}.
  VariableMap read_variables(const json& value, const std::string& path) {
    VariableMap variables;
    if (!value.is_object()) {
      add(path, expected("an object", value));
      return variables;
    }
    for (const auto& item : value.items()) {
      const std::string item_path = member_path(path, item.key());
      check_variable_name(item.key(), item_path, "variable");
      if (auto variable = read_variable(item.value(), item_path)) variables.emplace(item.key(), std::move(*variable));
    }
    return variables;
  }

  // Problems never quote a value: it may be a secret's.
  std::optional<VariableValue> read_variable(const json& value, const std::string& path) {
    if (value.is_string()) {
      std::optional<std::string> text = read_variable_text(value, path);
      if (!text) return std::nullopt;
      return VariableValue{std::move(*text), false, ""};
    }
    if (!value.is_object()) {
      add(path, expected("a string or an object", value));
      return std::nullopt;
    }
    const std::size_t problems_before = problems_.size();
    check_fields(value, path, kVariableFields);
    VariableValue variable;
    if (const json* secret = find(value, path, "secret", false)) {
      const std::optional<bool> flag = read_bool(*secret, member_path(path, "secret"));
      // Whether the rest is right depends on what was meant: leave it at the type error.
      if (!flag) return std::nullopt;
      variable.secret = *flag;
    }
    if (const json* settable = find(value, path, "settable", false)) {
      const std::optional<bool> flag = read_bool(*settable, member_path(path, "settable"));
      if (!flag) return std::nullopt;
      variable.settable = *flag;
    }
    const json* text = find(value, path, "value", false);
    if (text != nullptr) {
      if (auto read = read_variable_text(*text, member_path(path, "value"))) {
        // An empty secret could not be stored under a digest (ReleaseService
        // stores non-empty values only), and there is nothing in it to keep secret.
        if (variable.secret && read->empty()) add(member_path(path, "value"), "a secret's value is empty");
        variable.value = std::move(*read);
      }
    }
    const json* digest = find(value, path, "digest", false);
    if (digest != nullptr) {
      const std::string digest_path = member_path(path, "digest");
      if (!variable.secret) {
        add(digest_path, "digest applies to secrets only");
      } else if (text != nullptr) {
        add(digest_path, "a secret has either 'value' or 'digest', not both");
      } else if (auto read = read_string(*digest, digest_path)) {
        if (is_digest(*read)) {
          variable.secret_digest = std::move(*read);
        } else {
          add(digest_path, "expected 64 lowercase hex digits");
        }
      }
    }
    // A secret in its stored form has its digest instead of its value.
    if (text == nullptr && (digest == nullptr || !variable.secret)) {
      find(value, path, "value", true);
    }
    if (problems_.size() != problems_before) return std::nullopt;
    return variable;
  }

  std::optional<bool> read_bool(const json& value, const std::string& path) {
    if (!value.is_boolean()) {
      add(path, expected("a boolean", value));
      return std::nullopt;
    }
    return value.get<bool>();
  }

  // An integer, saturated to int64 (a value beyond it is out of any range
  // here); nullopt when `value` is not an integer.
  std::optional<std::int64_t> read_integer(const json& value, const std::string& path) {
    if (!value.is_number_integer()) {
      add(path, value.is_number_float() ? "expected an integer, found number " + value.dump()
                                        : expected("an integer", value));
      return std::nullopt;
    }
    if (value.is_number_unsigned() &&
        value.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return std::numeric_limits<std::int64_t>::max();
    }
    return value.get<std::int64_t>();
  }

  // An integer in [min, max]: "<field> must be between <min> and <max><unit>, found <value>".
  std::optional<int> read_bounded(const json& value, const std::string& path, std::string_view field,
                                  std::int64_t min, std::int64_t max, std::string_view unit = "") {
    const std::optional<std::int64_t> number = read_integer(value, path);
    if (!number) return std::nullopt;
    if (*number < min || *number > max) {
      add(path, std::string(field) + " must be between " + std::to_string(min) + " and " + std::to_string(max) +
                    std::string(unit) + ", found " + value.dump());
      return std::nullopt;
    }
    return static_cast<int>(*number);
  }

  // One of `choices`; returns its index, which is the enumerator's value.
  template <std::size_t N>
  std::optional<std::size_t> read_choice(const json& value, const std::string& path,
                                         const std::array<std::string_view, N>& choices) {
    const std::optional<std::string> word = read_string(value, path);
    if (!word) return std::nullopt;
    const auto it = std::find(choices.begin(), choices.end(), *word);
    if (it == choices.end()) {
      add(path, "expected " + join_choices(choices) + ", found " + value.dump());
      return std::nullopt;
    }
    return static_cast<std::size_t>(it - choices.begin());
  }

  // A non-empty array of distinct, non-empty strings (after_stages, approvers).
  // `noun` is what one entry is ("stage", "approver"). Returns nullopt when
  // some entry is not a string.
  std::optional<std::vector<std::string>> read_name_list(const json& value, const std::string& path,
                                                         std::string_view field, std::string_view noun,
                                                         bool allow_empty_strings) {
    if (!value.is_array()) {
      add(path, expected("an array", value));
      return std::nullopt;
    }
    if (value.empty()) {
      add(path, std::string(field) + " is empty: list at least one " + std::string(noun));
      return std::vector<std::string>{};
    }
    std::vector<std::string> list;
    std::map<std::string, std::size_t> first_index;
    bool all_strings = true;
    for (std::size_t i = 0; i < value.size(); ++i) {
      const std::string item_path = element_path(path, i);
      std::optional<std::string> entry = read_string(value[i], item_path);
      if (!entry) {
        all_strings = false;
        continue;
      }
      if (!allow_empty_strings && is_blank(*entry)) {
        add(item_path, "expected a non-empty string");
        continue;
      }
      const auto [it, inserted] = first_index.emplace(*entry, i);
      if (!inserted) {
        add(item_path, "duplicate " + std::string(noun) + " " + single_quoted(*entry) + " (first listed at " +
                           element_path(path, it->second) + ")");
        continue;
      }
      list.push_back(std::move(*entry));
    }
    if (!all_strings) return std::nullopt;
    return list;
  }

  void parse_pipeline_fields(const json& document, PipelineDefinition& definition,
                             std::vector<StageDraft>& drafts) {
    check_fields(document, "", kPipelineFields);
    if (auto name = read_name(document, "", "pipeline")) definition.name = std::move(*name);
    if (const json* value = find(document, "", "description", false)) {
      if (auto description = read_string(*value, "description")) definition.description = std::move(*description);
    }
    if (const json* value = find(document, "", "release_name_format", false)) {
      if (auto format = read_string(*value, "release_name_format")) {
        for (std::string& problem : release_name_format_problems(*format)) {
          add("release_name_format", std::move(problem));
        }
        definition.release_name_format = std::move(*format);
      }
    }
    if (const json* value = find(document, "", "variables", false)) {
      definition.variables = read_variables(*value, "variables");
    }
    if (const json* value = find(document, "", "groups", false)) definition.groups = read_groups(*value, "groups");
    if (const json* value = find(document, "", "artifact", false)) {
      definition.artifact = read_artifact_trigger(*value, "artifact");
    }
    if (const json* value = find(document, "", "needs_artifact", false)) {
      if (auto choice = read_choice(*value, "needs_artifact", kArtifactNeedChoices)) {
        definition.needs_artifact = static_cast<ArtifactNeed>(*choice);
      }
    }
    const json* stages = find(document, "", "stages", true);
    if (stages == nullptr) return;
    if (!stages->is_array()) {
      add("stages", expected("an array", *stages));
      return;
    }
    if (stages->empty()) {
      add("stages", "stages is empty: define at least one stage");
      return;
    }
    for (std::size_t i = 0; i < stages->size(); ++i) {
      drafts.push_back(parse_stage((*stages)[i], element_path("stages", i)));
    }
  }

  // {"source": "<pattern>", "branch_filters": ["main", "!release/old*"]}.
  std::optional<ArtifactTrigger> read_artifact_trigger(const json& value, const std::string& path) {
    if (!value.is_object()) {
      add(path, expected("an object", value));
      return std::nullopt;
    }
    const std::size_t problems_before = problems_.size();
    check_fields(value, path, kArtifactTriggerFields);
    ArtifactTrigger trigger;
    if (const json* source = find(value, path, "source", true)) {
      const std::string source_path = member_path(path, "source");
      if (auto text = read_string(*source, source_path)) {
        if (is_blank(*text)) {
          add(source_path, "source is empty: give the CI source (or a pattern) whose builds create releases");
        } else {
          trigger.source = std::move(*text);
        }
      }
    }
    if (const json* filters = find(value, path, "branch_filters", false)) {
      const std::string filters_path = member_path(path, "branch_filters");
      if (!filters->is_array()) {
        add(filters_path, expected("an array", *filters));
      } else {
        std::map<std::string, std::size_t> first_index;
        for (std::size_t i = 0; i < filters->size(); ++i) {
          const std::string item_path = element_path(filters_path, i);
          std::optional<std::string> filter = read_string((*filters)[i], item_path);
          if (!filter) continue;
          const std::string_view pattern = std::string_view(*filter).substr(!filter->empty() && (*filter)[0] == '!');
          if (pattern.empty() || is_blank(pattern)) {
            add(item_path, "empty branch pattern: write e.g. \"main\", \"release/*\" or \"!release/old*\"");
            continue;
          }
          if (std::any_of(pattern.begin(), pattern.end(), [](char c) {
                return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\0';
              })) {
            add(item_path, "branch pattern " + single_quoted(*filter) + " contains whitespace, which no branch name has");
            continue;
          }
          const auto [it, inserted] = first_index.emplace(*filter, i);
          if (!inserted) {
            add(item_path, "duplicate branch filter " + single_quoted(*filter) + " (first listed at " +
                               element_path(filters_path, it->second) + ")");
            continue;
          }
          trigger.branch_filters.push_back(std::move(*filter));
        }
      }
    }
    if (problems_.size() != problems_before) return std::nullopt;
    return trigger;
  }

  // Group name → its members, user names. Groups do not nest: a member is a user.
  std::map<std::string, std::vector<std::string>> read_groups(const json& value, const std::string& path) {
    std::map<std::string, std::vector<std::string>> groups;
    if (!value.is_object()) {
      add(path, expected("an object", value));
      return groups;
    }
    for (const auto& item : value.items()) {
      const std::string& name = item.key();
      const std::string group_path = member_path(path, name);
      if (!is_valid_name(name)) {
        add(group_path, "invalid group name " + single_quoted(name) + ": use 1 to " + std::to_string(kMaxNameLength) +
                            " letters, digits, '.', '_' or '-', starting with a letter or digit");
      }
      auto members = read_name_list(item.value(), group_path, "group " + single_quoted(name), "member", false);
      if (members) groups.emplace(name, std::move(*members));
    }
    return groups;
  }

  StageDraft parse_stage(const json& value, const std::string& path) {
    StageDraft draft;
    draft.path = path;
    if (!value.is_object()) {
      add(path, expected("an object", value));
      return draft;
    }
    check_fields(value, path, kStageFields);
    StageDefinition& stage = draft.definition;
    draft.name = read_name(value, path, "stage");
    if (draft.name) stage.name = *draft.name;
    if (const json* trigger = find(value, path, "trigger", true)) {
      draft.trigger = parse_trigger(*trigger, member_path(path, "trigger"));
      if (draft.trigger) stage.trigger = *draft.trigger;
    }
    if (const json* approval = find(value, path, "pre_approval", false)) {
      stage.pre_approval = parse_approval(*approval, member_path(path, "pre_approval"), true);
    }
    if (const json* approval = find(value, path, "post_approval", false)) {
      stage.post_approval = parse_approval(*approval, member_path(path, "post_approval"), false);
    }
    if (const json* variables = find(value, path, "variables", false)) {
      stage.variables = read_variables(*variables, member_path(path, "variables"));
    }
    if (const json* steps = find(value, path, "steps", true)) {
      const std::string steps_path = member_path(path, "steps");
      if (!steps->is_array()) {
        add(steps_path, expected("an array", *steps));
      } else if (steps->empty()) {
        draft.steps_empty = true;
      } else {
        std::map<std::string, std::size_t> first_index;
        for (std::size_t i = 0; i < steps->size(); ++i) {
          const std::string step_path = element_path(steps_path, i);
          std::optional<StepDefinition> step = parse_step((*steps)[i], step_path);
          if (!step) continue;
          const auto [it, inserted] = first_index.emplace(step->name, i);
          if (!inserted) {
            add(member_path(step_path, "name"), "duplicate step " + single_quoted(step->name) + " (first defined at " +
                                                    element_path(steps_path, it->second) + ")");
          }
          stage.steps.push_back(std::move(*step));
        }
      }
    }
    if (const json* limit = find(value, path, "max_parallel", false)) {
      // 0 is what the canonical form writes for "unlimited", so it is read back as such.
      const std::string limit_path = member_path(path, "max_parallel");
      if (const std::optional<std::int64_t> number = read_integer(*limit, limit_path)) {
        if (*number < 0) {
          add(limit_path, "max_parallel must be at least 1 (0 or absent: unlimited), found " + limit->dump());
        } else if (*number > std::numeric_limits<int>::max()) {
          add(limit_path, "max_parallel must be at most " + std::to_string(std::numeric_limits<int>::max()) +
                              ", found " + limit->dump());
        } else {
          stage.max_parallel = static_cast<int>(*number);
        }
      }
    }
    if (const json* policy = find(value, path, "on_new_release", false)) {
      if (auto choice = read_choice(*policy, member_path(path, "on_new_release"), kOnNewReleaseChoices)) {
        stage.on_new_release = static_cast<OnNewRelease>(*choice);
      }
    }
    if (const json* policy = find(value, path, "on_failure", false)) {
      if (read_choice(*policy, member_path(path, "on_failure"), kOnFailureChoices)) {
        stage.on_failure = OnFailure::kRedeployLastGood;
      }
    }
    return draft;
  }

  // nullopt when the trigger has any problem: the semantic checks then leave
  // it out rather than report consequences of a mistake already reported.
  std::optional<StageTrigger> parse_trigger(const json& value, const std::string& path) {
    if (!value.is_object()) {
      add(path, expected("an object", value));
      return std::nullopt;
    }
    const std::size_t problems_before = problems_.size();
    const bool all_known = check_fields(value, path, kTriggerFields);
    std::vector<std::string_view> kinds;
    for (std::string_view kind : kTriggerKinds) {
      if (value.contains(kind)) kinds.push_back(kind);
    }
    if (kinds.size() > 1) {
      add(path, "a trigger has exactly one of 'after_release', 'after_stages' or 'manual', found " +
                    join_quoted(kinds));
    } else if (kinds.empty() && all_known) {
      // With an unknown field the "did you mean" above already says what is missing.
      add(path, "a trigger needs one of \"after_release\": true, \"after_stages\": [...] or \"manual\": true");
    }

    StageTrigger trigger;
    if (const json* flag = find(value, path, "after_release", false)) {
      trigger.kind = TriggerKind::kAfterRelease;
      read_trigger_flag(*flag, member_path(path, "after_release"), "after_release",
                        "\"after_stages\": [...] or \"manual\": true");
    }
    if (const json* flag = find(value, path, "manual", false)) {
      trigger.kind = TriggerKind::kManual;
      read_trigger_flag(*flag, member_path(path, "manual"), "manual",
                        "\"after_release\": true or \"after_stages\": [...]");
    }
    if (const json* stages = find(value, path, "after_stages", false)) {
      trigger.kind = TriggerKind::kAfterStages;
      if (auto list = read_name_list(*stages, member_path(path, "after_stages"), "after_stages", "stage", true)) {
        trigger.after_stages = std::move(*list);
      }
    }
    if (const json* flag = find(value, path, "on_partial_success", false)) {
      const std::string flag_path = member_path(path, "on_partial_success");
      if (auto partial = read_bool(*flag, flag_path)) {
        if (value.contains("after_stages")) {
          trigger.on_partial_success = *partial;
        } else {
          add(flag_path, "on_partial_success applies to after_stages only");
        }
      }
    }
    if (problems_.size() != problems_before || kinds.size() != 1) return std::nullopt;
    return trigger;
  }

  // after_release and manual only exist as `true`: `false` would leave the
  // stage with no trigger at all, so say which trigger to use instead.
  void read_trigger_flag(const json& value, const std::string& path, std::string_view field,
                         std::string_view alternatives) {
    if (!value.is_boolean()) {
      add(path, expected("a boolean", value));
    } else if (!value.get<bool>()) {
      add(path, "\"" + std::string(field) + "\": false is not a trigger; use " + std::string(alternatives));
    }
  }

  // `pre` tells a pre_approval from a post_approval. Approvers are users or
  // names of the pipeline's groups; a user name cannot be checked, so neither is checked.
  std::optional<ApprovalPolicy> parse_approval(const json& value, const std::string& path, bool pre) {
    if (!value.is_object()) {
      add(path, expected("an object", value));
      return std::nullopt;
    }
    check_fields(value, path, kApprovalFields);
    ApprovalPolicy policy;
    std::optional<std::vector<std::string>> approvers;
    if (const json* list = find(value, path, "approvers", true)) {
      approvers = read_name_list(*list, member_path(path, "approvers"), "approvers", "approver", false);
    }
    if (const json* required = find(value, path, "required", false)) {
      read_required(*required, member_path(path, "required"), approvers, policy);
    }
    if (const json* order = find(value, path, "order", false)) {
      if (auto choice = read_choice(*order, member_path(path, "order"), kApprovalOrders)) {
        policy.order = static_cast<ApprovalOrder>(*choice);
      }
    }
    if (const json* timeout = find(value, path, "timeout", false)) {
      if (auto milliseconds = read_timeout(*timeout, member_path(path, "timeout"))) policy.timeout_ms = *milliseconds;
    }
    if (const json* flag = find(value, path, "requester_cannot_approve", false)) {
      policy.requester_cannot_approve = read_bool(*flag, member_path(path, "requester_cannot_approve")).value_or(false);
    }
    if (const json* flag = find(value, path, "skip_if_approved_earlier", false)) {
      const std::string flag_path = member_path(path, "skip_if_approved_earlier");
      if (!pre) {
        add(flag_path, "skip_if_approved_earlier applies to pre_approval only");
      } else {
        policy.skip_if_approved_earlier = read_bool(*flag, flag_path).value_or(false);
      }
    }
    if (!approvers) return std::nullopt;
    policy.approvers = std::move(*approvers);
    return policy;
  }

  // An integer from 1 to the number of approvers, or "all" (stored as 0).
  void read_required(const json& value, const std::string& path,
                     const std::optional<std::vector<std::string>>& approvers, ApprovalPolicy& policy) {
    if (value.is_string()) {
      if (value.get_ref<const std::string&>() == "all") {
        policy.required = 0;
      } else {
        add(path, "expected an integer or \"all\", found " + value.dump());
      }
      return;
    }
    if (!value.is_number_integer()) {
      add(path, value.is_number_float() ? "expected an integer or \"all\", found number " + value.dump()
                                        : expected("an integer or \"all\"", value));
      return;
    }
    const std::optional<std::int64_t> count = read_integer(value, path);
    if (!count) return;
    if (*count < 1) {
      add(path, "required must be at least 1, found " + value.dump());
    } else if (approvers && !approvers->empty() && *count > static_cast<std::int64_t>(approvers->size())) {
      // An empty or unreadable list is reported already.
      add(path, "required is " + value.dump() + " but only " + std::to_string(approvers->size()) +
                    (approvers->size() == 1 ? " approver is" : " approvers are") + " listed");
    } else {
      policy.required = static_cast<int>(std::min<std::int64_t>(*count, std::numeric_limits<int>::max()));
    }
  }

  // "45m", "12h", "30d": more than zero and at most 365 days.
  std::optional<std::int64_t> read_timeout(const json& value, const std::string& path) {
    const std::optional<std::string> text = read_string(value, path);
    if (!text) return std::nullopt;
    const std::optional<std::int64_t> minutes = parse_duration_minutes(*text);
    if (!minutes) {
      add(path, "invalid timeout " + single_quoted(*text) +
                    ": use a whole number followed by m, h or d, e.g. \"45m\", \"12h\" or \"30d\"");
      return std::nullopt;
    }
    const std::int64_t milliseconds = *minutes * kMillisecondsPerMinute;
    if (milliseconds <= 0) {
      add(path, "timeout must be more than 0");
      return std::nullopt;
    }
    if (milliseconds > ApprovalPolicy::kMaxTimeoutMs) {
      add(path, "timeout must be at most " + format_duration(ApprovalPolicy::kMaxTimeoutMs));
      return std::nullopt;
    }
    return milliseconds;
  }

  // nullopt when the step has no usable name (duplicates are checked by name).
  std::optional<StepDefinition> parse_step(const json& value, const std::string& path) {
    if (!value.is_object()) {
      add(path, expected("an object", value));
      return std::nullopt;
    }
    check_fields(value, path, kStepFields);
    StepDefinition step;
    std::optional<std::string> name = read_name(value, path, "step");
    if (const json* run = find(value, path, "run", true)) {
      const std::string run_path = member_path(path, "run");
      if (auto command = read_string(*run, run_path)) {
        if (is_blank(*command)) {
          add(run_path, "run is empty: give the shell command to run");
        } else if (command->find('\0') != std::string::npos) {
          add(run_path, "contains a NUL character, which a shell command cannot hold");
        } else {
          step.run = std::move(*command);
        }
      }
    }
    if (const json* timeout = find(value, path, "timeout_s", false)) {
      if (auto seconds = read_bounded(*timeout, member_path(path, "timeout_s"), "timeout_s", kMinTimeoutSeconds,
                                      kMaxTimeoutSeconds, " seconds")) {
        step.timeout_s = *seconds;
      }
    }
    if (const json* env = find(value, path, "env", false)) step.env = read_env(*env, member_path(path, "env"));
    if (const json* flag = find(value, path, "continue_on_error", false)) {
      step.continue_on_error = read_bool(*flag, member_path(path, "continue_on_error")).value_or(false);
    }
    if (const json* retries = find(value, path, "retries", false)) {
      read_retries(*retries, member_path(path, "retries"), step);
    }
    if (const json* condition = find(value, path, "condition", false)) {
      if (auto choice = read_choice(*condition, member_path(path, "condition"), kStepConditions)) {
        step.condition = static_cast<StepCondition>(*choice);
      }
    }
    if (!name) return std::nullopt;
    step.name = std::move(*name);
    return step;
  }

  // A count (0-10), or {"count": 0-10, "delay_s": 0-3600}.
  void read_retries(const json& value, const std::string& path, StepDefinition& step) {
    if (value.is_object()) {
      check_fields(value, path, kRetryFields);
      if (const json* count = find(value, path, "count", true)) {
        step.retries = read_bounded(*count, member_path(path, "count"), "count", 0, kMaxRetries).value_or(0);
      }
      if (const json* delay = find(value, path, "delay_s", false)) {
        step.retry_delay_s = read_bounded(*delay, member_path(path, "delay_s"), "delay_s", 0, kMaxRetryDelaySeconds,
                                          " seconds")
                                 .value_or(0);
      }
    } else if (value.is_number_integer()) {
      step.retries = read_bounded(value, path, "retries", 0, kMaxRetries).value_or(0);
    } else {
      add(path, value.is_number_float() ? "expected an integer or an object, found number " + value.dump()
                                        : expected("an integer or an object", value));
    }
  }

  std::vector<Problem> problems_;
};

}  // namespace

// The canonical text of a timeout: the largest unit among d, h and m that
// divides it exactly ("30d", "36h", "90m"). Parsed timeouts are whole minutes;
// one set in code that is not is rounded up to the next minute, never down,
// so that the canonical form still parses and never waits less.
std::string pipeline_internal::format_duration(std::int64_t milliseconds) {
  const std::int64_t minutes = (milliseconds + kMillisecondsPerMinute - 1) / kMillisecondsPerMinute;
  if (minutes != 0 && minutes % kMinutesPerDay == 0) return std::to_string(minutes / kMinutesPerDay) + "d";
  if (minutes != 0 && minutes % kMinutesPerHour == 0) return std::to_string(minutes / kMinutesPerHour) + "h";
  return std::to_string(minutes) + "m";
}

// The error for a definition with problems: "pipeline 'SampleApp' is
// invalid: 3 problems", naming the pipeline only when its name is valid.
Error pipeline_internal::invalid_pipeline(const json& document, std::vector<Problem> problems) {
  std::string subject = "pipeline";
  if (document.is_object()) {
    const auto name = document.find("name");
    if (name != document.end() && name->is_string() && is_valid_name(name->get_ref<const std::string&>())) {
      subject += " " + single_quoted(name->get_ref<const std::string&>());
    }
  }
  const std::size_t count = problems.size();
  return make_error(ErrorCode::kInvalidArgument,
                    subject + " is invalid: " + std::to_string(count) + (count == 1 ? " problem" : " problems"),
                    std::move(problems));
}

Result<PipelineDefinition> parse_pipeline(const json& document) { return PipelineParser().parse(document); }

}  // namespace cascade::engine
