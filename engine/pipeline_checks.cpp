// The semantic pass over a pipeline definition: the checks that need the
// whole pipeline, after the structural pass (pipeline_parser.cpp) has read
// what it could of every stage.
#include "engine/pipeline_internal.hpp"

#include <deque>
#include <limits>
#include <map>
#include <utility>

namespace cascade::engine::pipeline_internal {

namespace {

constexpr std::string_view kArrow = " \xE2\x86\x92 ";  // " → " (U+2192)

class StageChecks {
 public:
  explicit StageChecks(std::vector<Problem>& problems) : problems_(problems) {}

  // The checks that need the whole pipeline, in document order of the stages.
  void run(const std::vector<StageDraft>& drafts) {
    // A stage name as written, valid or not, so that a reference to a stage
    // whose name is already reported as invalid is not reported again.
    std::map<std::string, std::size_t> first_index;
    for (std::size_t i = 0; i < drafts.size(); ++i) {
      if (drafts[i].name) first_index.emplace(*drafts[i].name, i);
    }

    for (std::size_t i = 0; i < drafts.size(); ++i) {
      const StageDraft& draft = drafts[i];
      if (draft.name) {
        const std::size_t first = first_index.at(*draft.name);
        if (first != i) {
          add(member_path(draft.path, "name"),
              "duplicate stage " + single_quoted(*draft.name) + " (first defined at " + drafts[first].path + ")");
        }
      }
      if (draft.trigger && draft.trigger->kind == TriggerKind::kAfterStages) {
        const std::string list_path = member_path(member_path(draft.path, "trigger"), "after_stages");
        for (std::size_t j = 0; j < draft.trigger->after_stages.size(); ++j) {
          const std::string& other = draft.trigger->after_stages[j];
          if (draft.name && other == *draft.name) {
            add(element_path(list_path, j), "stage " + single_quoted(other) + " cannot run after itself");
          } else if (first_index.count(other) == 0) {
            add(element_path(list_path, j), "unknown stage " + single_quoted(other));
          }
        }
      }
      if (draft.steps_empty) {
        add(member_path(draft.path, "steps"),
            draft.name ? "stage " + single_quoted(*draft.name) + " has no steps" : std::string("stage has no steps"));
      }
    }

    check_cycles(drafts, first_index);

    // Only meaningful when every trigger could be read: a broken trigger may
    // well be the after_release one, and its own problem says so already.
    const bool all_triggers_read =
        std::all_of(drafts.begin(), drafts.end(), [](const StageDraft& d) { return d.trigger.has_value(); });
    const bool has_release_stage = std::any_of(drafts.begin(), drafts.end(), [](const StageDraft& d) {
      return d.trigger && d.trigger->kind == TriggerKind::kAfterRelease;
    });
    if (all_triggers_read && !has_release_stage) {
      add("stages",
          "no stage is triggered by release creation (give one stage \"trigger\": {\"after_release\": true})");
    }
  }

  // Reports one cycle per strongly connected component of the "runs after"
  // graph, so a knot of stages yields one problem, not one per rotation. The
  // cycle starts at the component's stage that comes first in the document
  // and follows the flow of a release: "a → b" means b runs after a.
  void check_cycles(const std::vector<StageDraft>& drafts, const std::map<std::string, std::size_t>& first_index) {
    const std::size_t n = drafts.size();
    std::vector<std::vector<std::size_t>> downstream(n);
    std::vector<std::vector<std::size_t>> upstream(n);
    for (std::size_t i = 0; i < n; ++i) {
      const StageDraft& draft = drafts[i];
      // Only first definitions: a duplicate's edges would join two stages
      // under one name, and the duplicate is reported already.
      if (!draft.name || first_index.at(*draft.name) != i) continue;
      if (!draft.trigger || draft.trigger->kind != TriggerKind::kAfterStages) continue;
      for (const std::string& other : draft.trigger->after_stages) {
        const auto it = first_index.find(other);
        if (it == first_index.end() || it->second == i) continue;  // unknown or self: reported already
        downstream[it->second].push_back(i);
        upstream[i].push_back(it->second);
      }
    }
    // Edges were added in document order of the downstream stage, so the
    // cycle found below, and hence the message, is deterministic.

    const std::vector<std::size_t> component = strongly_connected_components(downstream, upstream);
    std::vector<bool> reported(n, false);
    for (std::size_t start = 0; start < n; ++start) {
      if (reported[component[start]]) continue;
      std::vector<std::size_t> cycle = shortest_cycle(start, downstream, component);
      if (cycle.empty()) continue;
      reported[component[start]] = true;
      std::string message = "cycle: ";
      for (std::size_t stage : cycle) message += *drafts[stage].name + std::string(kArrow);
      message += *drafts[start].name;
      add(member_path(drafts[start].path, "trigger"), std::move(message));
    }
  }

  // Kosaraju's algorithm with explicit stacks (a generated pipeline may be
  // deep enough to exhaust the call stack). Returns a component id per node.
  static std::vector<std::size_t> strongly_connected_components(
      const std::vector<std::vector<std::size_t>>& downstream, const std::vector<std::vector<std::size_t>>& upstream) {
    const std::size_t n = downstream.size();
    std::vector<std::size_t> finish_order;
    std::vector<bool> visited(n, false);
    for (std::size_t root = 0; root < n; ++root) {
      if (visited[root]) continue;
      std::vector<std::pair<std::size_t, std::size_t>> stack{{root, 0}};
      visited[root] = true;
      while (!stack.empty()) {
        auto& [node, next] = stack.back();
        if (next < downstream[node].size()) {
          const std::size_t child = downstream[node][next++];
          if (!visited[child]) {
            visited[child] = true;
            stack.emplace_back(child, 0);
          }
        } else {
          finish_order.push_back(node);
          stack.pop_back();
        }
      }
    }
    constexpr std::size_t kUnassigned = std::numeric_limits<std::size_t>::max();
    std::vector<std::size_t> component(n, kUnassigned);
    std::size_t next_component = 0;
    for (auto it = finish_order.rbegin(); it != finish_order.rend(); ++it) {
      if (component[*it] != kUnassigned) continue;
      std::vector<std::size_t> stack{*it};
      component[*it] = next_component;
      while (!stack.empty()) {
        const std::size_t node = stack.back();
        stack.pop_back();
        for (std::size_t parent : upstream[node]) {
          if (component[parent] == kUnassigned) {
            component[parent] = next_component;
            stack.push_back(parent);
          }
        }
      }
      ++next_component;
    }
    return component;
  }

  // The stages of the shortest cycle from `start` back to itself within its
  // component (start first, not repeated at the end); empty when none.
  static std::vector<std::size_t> shortest_cycle(std::size_t start,
                                                 const std::vector<std::vector<std::size_t>>& downstream,
                                                 const std::vector<std::size_t>& component) {
    constexpr std::size_t kNone = std::numeric_limits<std::size_t>::max();
    std::vector<std::size_t> parent(downstream.size(), kNone);
    std::deque<std::size_t> queue{start};
    while (!queue.empty()) {
      const std::size_t node = queue.front();
      queue.pop_front();
      for (std::size_t child : downstream[node]) {
        if (component[child] != component[start]) continue;
        if (child == start) {
          std::vector<std::size_t> cycle;
          for (std::size_t at = node; at != start; at = parent[at]) cycle.push_back(at);
          cycle.push_back(start);
          std::reverse(cycle.begin(), cycle.end());
          return cycle;
        }
        if (parent[child] == kNone) {
          parent[child] = node;
          queue.push_back(child);
        }
      }
    }
    return {};
  }

 private:
  void add(std::string path, std::string message) {
    problems_.push_back(Problem{std::move(path), std::move(message)});
  }

  std::vector<Problem>& problems_;
};

}  // namespace

void check_stages(const std::vector<StageDraft>& drafts, std::vector<Problem>& problems) {
  StageChecks(problems).run(drafts);
}

}  // namespace cascade::engine::pipeline_internal
