#include "projections/approval_inbox.hpp"

#include "projections/projection_store.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <tuple>

namespace cascade::projections {

namespace {

bool contains(const std::vector<std::string>& values, const std::string& value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

std::string inbox_key(const std::string& owner, events::Timestamp deadline, const std::string& release,
                      const std::string& stage) {
  return owner + '\0' + big_endian(static_cast<std::uint64_t>(std::max<events::Timestamp>(deadline, 0))) + release +
         '\0' + stage;
}

bool awaits_approval(const engine::StageRecord& stage) {
  return stage.state() == engine::StageState::kAwaitingPreApproval ||
         stage.state() == engine::StageState::kAwaitingPostApproval;
}

// Steps never change an approval: their events need no look at the inbox.
bool may_change_approval(const events::Event& event) {
  return !std::holds_alternative<events::StepStarted>(event) && !std::holds_alternative<events::StepSucceeded>(event) &&
         !std::holds_alternative<events::StepFailed>(event) && !std::holds_alternative<events::StepSkipped>(event);
}

}  // namespace

ApprovalInboxProjection::ApprovalInboxProjection(std::shared_ptr<ProjectionStore> store, events::EventLog& log)
    : Projection(kName, {kUsersFamily, kGroupsFamily, kPendingFamily}, std::move(store), log) {}

Status ApprovalInboxProjection::apply(const std::vector<events::RecordedEvent>& batch, ProjectionWrite& write) {
  Family users_family = store().family(kUsersFamily);
  Family groups_family = store().family(kGroupsFamily);
  Family pending_family = store().family(kPendingFamily);
  for (const events::RecordedEvent& event : batch) {
    CASCADE_TRY(release, fold(event));
    if (release == nullptr || !may_change_approval(event.data)) continue;
    const std::string stage_name = stage_of(event.data);
    const engine::StageRecord* stage = release->find_stage(stage_name);
    if (stage == nullptr) continue;

    // Remove what the stage had in the inbox, then index what it has now.
    const std::string pending_key = release->id + '\0' + stage_name;
    CASCADE_TRY(stored, write.get(pending_family, pending_key));
    events::Timestamp requested_at = 0;
    if (stored) {
      const nlohmann::json previous = nlohmann::json::parse(*stored);
      requested_at = previous["requested_at"];
      const events::Timestamp deadline = previous["deadline"];
      for (const auto& user : previous["users"]) {
        write.remove(users_family, inbox_key(user, deadline, release->id, stage_name));
      }
      for (const auto& group : previous["groups"]) {
        write.remove(groups_family, inbox_key(group, deadline, release->id, stage_name));
      }
    }
    if (std::holds_alternative<events::ApprovalRequested>(event.data)) requested_at = event.recorded_at;
    if (!awaits_approval(*stage)) {
      write.remove(pending_family, pending_key);
      continue;
    }

    const engine::PendingApproval& approval = stage->approval;
    std::map<std::string, std::vector<std::string>> users, groups;  // owner → the entries it is listed for
    for (const std::string& entry : approval.approvers) {
      if (contains(approval.satisfied, entry)) continue;
      auto group = release->definition.groups.find(entry);
      if (group == release->definition.groups.end()) {
        // One person counts once per approval: whoever approved is done.
        if (!contains(approval.approved_by, entry)) users[entry].push_back(entry);
        continue;
      }
      groups[entry].push_back(entry);
      for (const std::string& member : group->second) {
        if (!contains(approval.approved_by, member)) users[member].push_back(entry);
      }
    }
    nlohmann::json item = {{"release", release->id},
                           {"release_name", release->name},
                           {"pipeline", release->pipeline},
                           {"stage", stage_name},
                           {"phase", approval.phase ? engine::to_string(*approval.phase) : ""},
                           {"approvers", approval.approvers},
                           {"required", approval.required},
                           {"approved", approval.satisfied.size()},
                           {"approved_by", approval.approved_by},
                           {"order", engine::to_string(approval.order)},
                           {"deadline", approval.deadline},
                           {"requested_at", requested_at}};
    nlohmann::json user_names = nlohmann::json::array(), group_names = nlohmann::json::array();
    for (const auto& [user, via] : users) {
      item["via"] = via;
      write.put(users_family, inbox_key(user, approval.deadline, release->id, stage_name), item.dump());
      user_names.push_back(user);
    }
    for (const auto& [group, via] : groups) {
      item["via"] = via;
      write.put(groups_family, inbox_key(group, approval.deadline, release->id, stage_name), item.dump());
      group_names.push_back(group);
    }
    write.put(pending_family, pending_key,
              nlohmann::json{{"requested_at", requested_at},
                             {"deadline", approval.deadline},
                             {"users", user_names},
                             {"groups", group_names}}
                  .dump());
  }
  return success();
}

Result<std::vector<nlohmann::json>> ApprovalInboxProjection::read(const char* family, const std::string& owner,
                                                                  std::size_t limit) const {
  const Snapshot view = store().snapshot();
  const std::string prefix = owner + '\0';
  std::vector<nlohmann::json> out;
  std::unique_ptr<rocksdb::Iterator> it = view.iterate(store().family(family));
  for (it->Seek(prefix); it->Valid() && out.size() < limit && starts_with(it->key().ToStringView(), prefix);
       it->Next()) {
    out.push_back(nlohmann::json::parse(it->value().ToStringView()));
  }
  if (!it->status().ok()) return storage_error(it->status(), "read inbox");
  return out;
}

Result<std::vector<nlohmann::json>> ApprovalInboxProjection::inbox(const std::string& user, std::size_t limit) const {
  return read(kUsersFamily, user, limit);
}

Result<std::vector<nlohmann::json>> ApprovalInboxProjection::group_inbox(const std::string& group,
                                                                         std::size_t limit) const {
  return read(kGroupsFamily, group, limit);
}

Result<std::vector<nlohmann::json>> ApprovalInboxProjection::inbox_of(const std::string& user,
                                                                      const std::vector<std::string>& groups,
                                                                      std::size_t limit) const {
  CASCADE_TRY(items, inbox(user, limit));
  const auto identity = [](const nlohmann::json& item) {
    return std::make_tuple(item.value("release", ""), item.value("stage", ""), item.value("phase", ""));
  };
  std::set<std::tuple<std::string, std::string, std::string>> seen;
  for (const nlohmann::json& item : items) seen.insert(identity(item));
  for (const std::string& group : groups) {
    CASCADE_TRY(named, inbox(group, limit));
    CASCADE_TRY(as_group, group_inbox(group, limit));
    named.insert(named.end(), as_group.begin(), as_group.end());
    for (nlohmann::json& item : named) {
      if (seen.insert(identity(item)).second) items.push_back(std::move(item));
    }
  }
  std::stable_sort(items.begin(), items.end(), [](const nlohmann::json& a, const nlohmann::json& b) {
    return a.value("deadline", events::Timestamp{0}) < b.value("deadline", events::Timestamp{0});
  });
  return items;
}

Result<std::vector<nlohmann::json>> ApprovalInboxProjection::all_pending(std::size_t limit) const {
  const Snapshot view = store().snapshot();  // the pending list and the items as of one moment
  Family users_family = store().family(kUsersFamily);
  Family groups_family = store().family(kGroupsFamily);
  std::vector<nlohmann::json> out;
  std::unique_ptr<rocksdb::Iterator> it = view.iterate(store().family(kPendingFamily));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    // Key: release '\0' stage. Every pending approval is filed under at
    // least one owner (a group entry under the group itself); read the item there.
    const std::string_view key = it->key().ToStringView();
    const std::string release(key.substr(0, key.find('\0')));
    const std::string stage(key.substr(key.find('\0') + 1));
    const nlohmann::json pending = nlohmann::json::parse(it->value().ToStringView());
    const events::Timestamp deadline = pending["deadline"];
    std::optional<std::string> item;
    if (!pending["users"].empty()) {
      CASCADE_TRY(value, view.get(users_family, inbox_key(pending["users"][0], deadline, release, stage)));
      item = std::move(value);
    } else if (!pending["groups"].empty()) {
      CASCADE_TRY(value, view.get(groups_family, inbox_key(pending["groups"][0], deadline, release, stage)));
      item = std::move(value);
    }
    if (!item) continue;
    nlohmann::json parsed = nlohmann::json::parse(*item);
    parsed.erase("via");
    out.push_back(std::move(parsed));
  }
  if (!it->status().ok()) return storage_error(it->status(), "read pending approvals");
  std::stable_sort(out.begin(), out.end(), [](const nlohmann::json& a, const nlohmann::json& b) {
    return a.value("deadline", events::Timestamp{0}) < b.value("deadline", events::Timestamp{0});
  });
  if (out.size() > limit) out.resize(limit);
  return out;
}

}  // namespace cascade::projections
