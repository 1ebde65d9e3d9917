#include "projections/release_list.hpp"

#include "projections/projection_store.hpp"
#include "projections/release_summary.hpp"

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
    : Projection(kName, {kAllFamily, kByPipelineFamily}, std::move(store), log) {}

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
    write.put(store().family(kAllFamily), big_endian(event.position), entry);
    write.put(store().family(kByPipelineFamily), created->pipeline + '\0' + big_endian(event.position), entry);
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
  const std::string prefix = query.pipeline.empty() ? std::string() : query.pipeline + '\0';
  Family index = store().family(query.pipeline.empty() ? kAllFamily : kByPipelineFamily);

  const Snapshot view = store().snapshot();  // the index and the summaries as of one moment
  ReleasePage page;
  std::uint64_t last_position = 0;
  std::unique_ptr<rocksdb::Iterator> it = view.iterate(index);
  for (it->SeekForPrev(prefix + big_endian(before)); it->Valid() && starts_with(it->key().ToStringView(), prefix);
       it->Prev()) {
    const std::string entry = it->value().ToString();
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

std::vector<nlohmann::json> ReleasePage::releases() const {
  std::vector<nlohmann::json> out;
  out.reserve(documents.size());
  for (const std::string& document : documents) out.push_back(nlohmann::json::parse(document));
  return out;
}

}  // namespace cascade::projections
