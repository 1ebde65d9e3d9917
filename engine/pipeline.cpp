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
  return a.value == b.value && a.secret == b.secret && a.secret_digest == b.secret_digest &&
         a.settable == b.settable;
}

std::vector<Problem> unreachable_approvers(const PipelineDefinition& definition,
                                           const std::function<bool(std::string_view)>& known) {
  auto reachable = [&](const std::string& entry) {
    if (known(entry)) return true;
    const auto group = definition.groups.find(entry);
    return group != definition.groups.end() && std::any_of(group->second.begin(), group->second.end(), known);
  };
  std::vector<Problem> problems;
  for (std::size_t s = 0; s < definition.stages.size(); ++s) {
    const StageDefinition& stage = definition.stages[s];
    for (const auto& [phase, policy] : {std::make_pair("pre_approval", &stage.pre_approval),
                                        std::make_pair("post_approval", &stage.post_approval)}) {
      if (!*policy) continue;
      for (std::size_t a = 0; a < (*policy)->approvers.size(); ++a) {
        const std::string& entry = (*policy)->approvers[a];
        if (reachable(entry)) continue;
        problems.push_back({"stages[" + std::to_string(s) + "]." + phase + ".approvers[" + std::to_string(a) + "]",
                            "'" + entry + "' is no user or group the server knows: stage '" + stage.name +
                                "' would wait for an approval nobody can give"});
      }
    }
  }
  return problems;
}

bool PipelineDefinition::acts_for(std::string_view user, std::string_view entry) const {
  if (user.empty()) return false;
  if (user == entry) return true;
  const auto group = groups.find(std::string(entry));
  return group != groups.end() && std::find(group->second.begin(), group->second.end(), user) != group->second.end();
}

}  // namespace cascade::engine
