// The approvals inbox: the approvals waiting for a person or a group, soonest
// deadline first.
#pragma once

#include "projections/projection.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace cascade::projections {

// A pending approval is a stage in AwaitingPreApproval or
// AwaitingPostApproval. It is indexed under every approver entry that has
// not approved yet: an entry naming a group of the release's definition
// under the group and under each member who has not approved this approval
// yet; any other entry under that user. Items:
//   {release, release_name, pipeline, stage, phase, approvers, required,
//    approved (entries satisfied so far), approved_by, order, deadline,
//    requested_at, via (the entries the owner is listed for)}
// An item vanishes when its approval completes, is rejected, times out, or
// its stage is canceled (also superseded or abandoned).
//
// Families: "inbox_users" and "inbox_groups" (owner '\0' BE64(deadline)
// release '\0' stage → item) and "inbox_pending" (release '\0' stage →
// {requested_at, keys}: what is indexed now, so it can be removed).
class ApprovalInboxProjection final : public Projection {
 public:
  static constexpr const char* kName = "approvals";
  static constexpr const char* kUsersFamily = "inbox_users";
  static constexpr const char* kGroupsFamily = "inbox_groups";
  static constexpr const char* kPendingFamily = "inbox_pending";
  static constexpr std::size_t kMaxItems = 500;

  ApprovalInboxProjection(std::shared_ptr<ProjectionStore> store, events::EventLog& log);

  // What `user` may approve, soonest deadline first, at most `limit`.
  Result<std::vector<nlohmann::json>> inbox(const std::string& user, std::size_t limit = kMaxItems) const;
  // What waits for a member of `group` (as a group entry), soonest deadline first.
  Result<std::vector<nlohmann::json>> group_inbox(const std::string& group, std::size_t limit = kMaxItems) const;
  // What a signed-in person may act on: inbox(user), then for each of
  // `groups` (the groups their credential names) inbox(group) — a
  // credential's group is no pipeline's group, so approvals naming it are
  // filed under its plain name — and group_inbox(group); each (release,
  // stage, phase) once, the first occurrence kept; soonest deadline first
  // (stable). At most `limit` items from each read.
  Result<std::vector<nlohmann::json>> inbox_of(const std::string& user, const std::vector<std::string>& groups,
                                               std::size_t limit = kMaxItems) const;
  // Every pending approval, whoever it waits for (an administrator's view:
  // an approval naming nobody who can act is seen here too), each once,
  // without `via`; soonest deadline first, at most `limit`.
  Result<std::vector<nlohmann::json>> all_pending(std::size_t limit = kMaxItems) const;

 protected:
  Status apply(const std::vector<events::RecordedEvent>& batch, ProjectionWrite& write) override;

 private:
  Result<std::vector<nlohmann::json>> read(const char* family, const std::string& owner, std::size_t limit) const;
};

}  // namespace cascade::projections
