// The pipeline model: what a definition says about its stages, approvers and
// variables. Reading it is pipeline_parser.cpp and pipeline_text.cpp; writing
// it, pipeline_canonical.cpp.
#include "engine/pipeline_internal.hpp"

namespace cascade::engine {

using namespace pipeline_internal;

const StageDefinition* PipelineDefinition::find_stage(std::string_view stage) const {
  const auto it = std::find_if(stages.begin(), stages.end(), [&](const StageDefinition& s) { return s.name == stage; });
  return it == stages.end() ? nullptr : &*it;
}

std::string_view to_string(ApprovalOrder order) { return kApprovalOrders[static_cast<std::size_t>(order)]; }

std::optional<ApprovalOrder> parse_approval_order(std::string_view text) {
  const auto it = std::find(kApprovalOrders.begin(), kApprovalOrders.end(), text);
  if (it == kApprovalOrders.end()) return std::nullopt;
  return static_cast<ApprovalOrder>(it - kApprovalOrders.begin());
}

bool operator==(const VariableValue& a, const VariableValue& b) {
  return a.value == b.value && a.secret == b.secret && a.secret_digest == b.secret_digest;
}

bool PipelineDefinition::acts_for(std::string_view user, std::string_view entry) const {
  if (user.empty()) return false;
  if (user == entry) return true;
  const auto group = groups.find(std::string(entry));
  return group != groups.end() && std::find(group->second.begin(), group->second.end(), user) != group->second.end();
}

std::string expand_variables(std::string_view text, const std::map<std::string, std::string>& variables) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t open = text.find("$(", i);
    if (open == std::string_view::npos) break;
    out.append(text.substr(i, open - i));
    const std::size_t name_start = open + 2;
    std::size_t name_end = name_start;
    while (name_end < text.size() && (is_letter(text[name_end]) || is_digit(text[name_end]) || text[name_end] == '_')) {
      ++name_end;
    }
    const std::string_view name = text.substr(name_start, name_end - name_start);
    const auto it = name_end < text.size() && text[name_end] == ')' && is_valid_variable_name(name)
                        ? variables.find(std::string(name))
                        : variables.end();
    if (it != variables.end()) {
      out += it->second;  // copied as is: a value is never expanded again
      i = name_end + 1;
    } else {
      // Unknown or malformed: keep the "$(" and read on after it, so that a
      // token inside ("$($(A))") is still found.
      out += "$(";
      i = name_start;
    }
  }
  out.append(text.substr(std::min(i, text.size())));
  return out;
}

}  // namespace cascade::engine
