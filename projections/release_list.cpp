#include "projections/release_list.hpp"

#include "projections/projection_store.hpp"
#include "projections/release_summary.hpp"
#include "engine/release.hpp"

#include <limits>

namespace cascade::projections {

namespace {

constexpr engine::ReleaseStatus kStatuses[] = {
    engine::ReleaseStatus::kInProgress,         engine::ReleaseStatus::kWaitingForApproval,
    engine::ReleaseStatus::kSucceeded,          engine::ReleaseStatus::kPartiallySucceeded,
    engine::ReleaseStatus::kFailed,             engine::ReleaseStatus::kRejected,
    engine::ReleaseStatus::kCanceled,           engine::ReleaseStatus::kAbandoned};

Status check_status(const std::string& status) {
  if (status.empty()) return success();
  std::string names;
  for (engine::ReleaseStatus s : kStatuses) {
    if (engine::to_string(s) == status) return success();
    names += (names.empty() ? "" : ", ") + std::string(engine::to_string(s));
  }
  return make_error(ErrorCode::kInvalidArgument, "unknown release status '" + status + "' (one of " + names + ")");
}

}  // namespace

ReleaseListProjection::ReleaseListProjection(std::shared_ptr<ProjectionStore> store, events::EventLog& log)
    : Projection(kName, {kAllFamily, kByPipelineFamily, kByNameFamily, kByCdEventFamily}, std::move(store), log) {}

Status ReleaseListProjection::apply(const std::vector<events::RecordedEvent>& batch, ProjectionWrite& write) {
  for (const events::RecordedEvent& event : batch) {
    const auto* created = std::get_if<events::ReleaseCreated>(&event.data);
    if (created == nullptr) continue;
    const std::string entry = nlohmann::json{{"id", created->release_id},
                                             {"name", created->name},
                                             {"pipeline", created->pipeline},
                                             {"artifact", {{"version", created->artifact.version},
                                                           {"path", created->artifact.path}}},
                                             {"created_at", event.recorded_at}}
                                  .dump();
    const std::string position = big_endian(event.position);
    write.put(store().family(kAllFamily), position, entry);
    write.put(store().family(kByPipelineFamily), created->pipeline + '\0' + position, entry);
    write.put(store().family(kByNameFamily), created->name + '\0' + position, entry);
    if (created->trigger_cdevent) {
      write.put(store().family(kByCdEventFamily), created->trigger_cdevent->id + '\0' + position, entry);
    }
  }
  return success();
}

namespace {

// The release id of an index entry, read without parsing the whole entry
// (a page reads 50 of them). The entry is nlohmann's dump of an object with
// sorted keys, where the top-level "id" follows "artifact" and "created_at";
// `,"id":"` cannot occur inside a JSON string (its quote would be escaped),
// and the nested artifact holds only path and version. An id with an escape
// in it goes through the parser.
std::string id_of_entry(const std::string& entry) {
  static constexpr std::string_view kKey = ",\"id\":\"";
  const std::size_t at = entry.find(kKey);
  if (at != std::string::npos) {
    const std::size_t begin = at + kKey.size();
    const std::size_t end = entry.find('"', begin);
    if (end != std::string::npos && entry.find('\\', begin) > end) return entry.substr(begin, end - begin);
  }
  return nlohmann::json::parse(entry).at("id").get<std::string>();
}

}  // namespace

Result<ReleasePage> ReleaseListProjection::list(const ReleaseQuery& query) const {
  if (query.limit < 1 || query.limit > ReleaseQuery::kMaxLimit) {
    return make_error(ErrorCode::kInvalidArgument,
                      "limit must be 1 to " + std::to_string(ReleaseQuery::kMaxLimit) + ", not " +
                          std::to_string(query.limit));
  }
  CASCADE_TRY(check_status(query.status));
  // Only releases strictly older than the cursor's.
  std::uint64_t before = std::numeric_limits<std::uint64_t>::max();
  if (!query.cursor.empty()) {
    CASCADE_TRY(position, decode_cursor(query.cursor));
    if (position == 0) return ReleasePage{};
    before = position - 1;
  }
  // The narrowest index for the query; a pipeline asked together with a
  // CDEvent is filtered while scanning (one build may feed several pipelines).
  const bool by_cdevent = !query.cdevent.empty();
  const bool by_pipeline = !by_cdevent && !query.pipeline.empty();
  const bool filter_pipeline = by_cdevent && !query.pipeline.empty();
  const std::string prefix = by_cdevent ? query.cdevent + '\0' : by_pipeline ? query.pipeline + '\0' : std::string();
  Family index = store().family(by_cdevent ? kByCdEventFamily : by_pipeline ? kByPipelineFamily : kAllFamily);

  const Snapshot view = store().snapshot();  // the index and the summaries as of one moment
  ReleasePage page;
  std::uint64_t last_position = 0;
  std::unique_ptr<rocksdb::Iterator> it = view.iterate(index);
  for (it->SeekForPrev(prefix + big_endian(before)); it->Valid() && starts_with(it->key().ToStringView(), prefix);
       it->Prev()) {
    const std::string entry = it->value().ToString();
    if (filter_pipeline && nlohmann::json::parse(entry).value("pipeline", "") != query.pipeline) continue;
    CASCADE_TRY(summary, view.get(store().family(ReleaseSummaryProjection::kSummariesFamily), id_of_entry(entry)));
    std::string document = summary ? std::move(*summary) : entry;
    // Only a status filter needs the document parsed.
    if (!query.status.empty() && nlohmann::json::parse(document).value("status", "") != query.status) continue;
    if (page.documents.size() == query.limit) {
      // One more matches: there is a next page, continuing after the last item.
      page.next_cursor = encode_cursor(last_position);
      break;
    }
    last_position = from_big_endian(it->key().ToStringView().substr(prefix.size()));
    page.documents.push_back(std::move(document));
  }
  if (!it->status().ok()) return storage_error(it->status(), "list releases");
  return page;
}

Result<std::vector<std::string>> ReleaseListProjection::ids_named(const std::string& name) const {
  const std::string prefix = name + '\0';
  std::vector<std::string> ids;
  const Snapshot view = store().snapshot();
  std::unique_ptr<rocksdb::Iterator> it = view.iterate(store().family(kByNameFamily));
  for (it->Seek(prefix); it->Valid() && starts_with(it->key().ToStringView(), prefix); it->Next()) {
    ids.push_back(id_of_entry(it->value().ToString()));
  }
  if (!it->status().ok()) return storage_error(it->status(), "look up release name");
  return ids;
}

Result<std::string> release_id_of(events::EventLog& log, const ReleaseListProjection& releases,
                                  const std::string& id_or_name, std::chrono::milliseconds catch_up) {
  const std::uint64_t head = log.head();  // before the id lookup: every release created so far is below it
  CASCADE_TRY(version, log.stream_version(engine::release_stream(id_or_name)));
  if (version > 0) return id_or_name;
  CASCADE_TRY(named, releases.ids_named(id_or_name));
  std::vector<std::string> ids = std::move(named);
  if (ids.empty() && catch_up.count() > 0) {
    CASCADE_TRY(checkpoint, releases.checkpoint());
    if (checkpoint < head) {
      CASCADE_TRY(caught_up, releases.wait_for(head, catch_up));
      (void)caught_up;  // behind still: answer with what it has
      CASCADE_TRY(again, releases.ids_named(id_or_name));
      ids = std::move(again);
    }
  }
  if (ids.empty()) return id_or_name;
  if (ids.size() == 1) return ids.front();
  constexpr std::size_t kListed = 5;
  std::string listed;
  for (std::size_t i = 0; i < ids.size() && i < kListed; ++i) listed += (i == 0 ? "" : ", ") + ids[i];
  if (ids.size() > kListed) listed += ", and " + std::to_string(ids.size() - kListed) + " more";
  return make_error(ErrorCode::kInvalidArgument, "release name '" + id_or_name + "' belongs to " +
                                                      std::to_string(ids.size()) + " releases (" + listed +
                                                      "): give the release id instead");
}

std::vector<nlohmann::json> ReleasePage::releases() const {
  std::vector<nlohmann::json> out;
  out.reserve(documents.size());
  for (const std::string& document : documents) out.push_back(nlohmann::json::parse(document));
  return out;
}

}  // namespace cascade::projections
