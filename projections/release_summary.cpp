#include "projections/release_summary.hpp"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <filesystem>

namespace cascade::projections {

using engine::ReleaseState;
using engine::StageRecord;

nlohmann::json summarize(const ReleaseState& release) {
  nlohmann::json stages = nlohmann::json::array();
  for (const StageRecord& stage : release.stages) {
    nlohmann::json approvals = nlohmann::json::array();
    for (const auto& a : stage.approvals) {
      approvals.push_back({{"phase", a.phase}, {"approver", a.approver}, {"on_behalf_of", a.on_behalf_of},
                           {"decision", a.decision}, {"comment", a.comment}, {"at", a.at},
                           {"defer_until", a.defer_until}});
    }
    nlohmann::json steps = nlohmann::json::array();
    for (const auto& s : stage.steps) {
      steps.push_back({{"name", s.name}, {"status", engine::to_string(s.status)}, {"tries", s.tries},
                       {"continued", s.continued}, {"exit_code", s.exit_code},
                       {"duration_ms", s.duration_ms}, {"log_digest", s.log_digest}, {"reason", s.reason},
                       {"started_at", s.started_at}, {"finished_at", s.finished_at}});
    }
    stages.push_back({{"name", stage.name},
                      {"status", engine::to_string(stage.state())},
                      {"attempt", stage.attempt},
                      {"trigger_reason", stage.trigger_reason},
                      {"pending_approval",
                       {{"phase", stage.approval.phase},
                        {"approvers", stage.approval.approvers},
                        {"required", stage.approval.required},
                        {"order", stage.approval.order},
                        {"deadline", stage.approval.deadline},
                        {"approved_by", stage.approval.approved_by}}},
                      {"defer_until", stage.defer_until},
                      {"approvals", approvals},
                      {"steps", steps},
                      {"failure_reason", stage.failure_reason},
                      {"triggered_at", stage.triggered_at},
                      {"started_at", stage.started_at},
                      {"finished_at", stage.finished_at}});
  }
  // Secret variables appear by name only: their values never leave the secret store.
  nlohmann::json secret_names = nlohmann::json::array();
  for (const auto& [name, digest] : release.secret_variables) secret_names.push_back(name);
  return {{"id", release.id},
          {"name", release.name},
          {"pipeline", release.pipeline},
          {"pipeline_version", release.pipeline_version},
          {"artifact", {{"version", release.artifact.version}, {"path", release.artifact.path}}},
          {"variables", release.variables},
          {"secret_variables", secret_names},
          {"abandoned", release.abandoned},
          {"abandon_reason", release.abandon_reason},
          {"trigger", release.trigger},
          {"requested_by", release.requested_by},
          {"created_at", release.created_at},
          {"status", engine::to_string(engine::release_status(release))},
          {"version", release.version},
          {"stages", stages}};
}

namespace {

constexpr const char* kCheckpointKey = "checkpoint/release_summary";

std::string big_endian(std::uint64_t value) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, value >>= 8) out[static_cast<std::size_t>(i)] = static_cast<char>(value & 0xff);
  return out;
}

std::uint64_t from_big_endian(std::string_view bytes) {
  std::uint64_t value = 0;
  for (char c : bytes) value = (value << 8) | static_cast<unsigned char>(c);
  return value;
}

Error storage_error(const rocksdb::Status& status, const std::string& what) {
  return make_error(ErrorCode::kUnavailable, "projection store: " + what + ": " + status.ToString());
}

}  // namespace

struct ReleaseSummaryProjection::Impl {
  events::EventLog* log = nullptr;
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;  // default, summaries, release_order
  std::map<std::string, ReleaseState> states;         // folded releases, by id

  rocksdb::ColumnFamilyHandle* meta() const { return handles[0]; }
  rocksdb::ColumnFamilyHandle* summaries() const { return handles[1]; }
  rocksdb::ColumnFamilyHandle* order() const { return handles[2]; }

  ~Impl() {
    for (auto* handle : handles) db->DestroyColumnFamilyHandle(handle);
  }

  // The release as it was just before `event`: from memory, or folded from the log.
  Result<ReleaseState*> state_before(const events::RecordedEvent& event, const std::string& release_id) {
    ReleaseState& state = states[release_id];
    if (state.version + 1 != event.version) {
      state = ReleaseState{};
      if (event.version > 1) {
        CASCADE_TRY(prefix, log->read(event.stream, 1, static_cast<std::size_t>(event.version - 1)));
        for (const auto& e : prefix) engine::evolve(state, e);
      }
    }
    return &state;
  }
};

ReleaseSummaryProjection::ReleaseSummaryProjection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ReleaseSummaryProjection::~ReleaseSummaryProjection() = default;

Result<std::unique_ptr<ReleaseSummaryProjection>> ReleaseSummaryProjection::open(const std::string& dir,
                                                                                 events::EventLog& log) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  rocksdb::DBOptions options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, {}}, {"summaries", {}}, {"release_order", {}}};
  auto impl = std::make_unique<Impl>();
  impl->log = &log;
  rocksdb::DB* db = nullptr;
  rocksdb::Status status = rocksdb::DB::Open(options, dir, families, &impl->handles, &db);
  if (!status.ok()) return storage_error(status, "open " + dir);
  impl->db.reset(db);
  return std::unique_ptr<ReleaseSummaryProjection>(new ReleaseSummaryProjection(std::move(impl)));
}

Result<std::uint64_t> ReleaseSummaryProjection::checkpoint() const {
  std::string value;
  rocksdb::Status status = impl_->db->Get({}, impl_->meta(), kCheckpointKey, &value);
  if (status.IsNotFound()) return std::uint64_t{0};
  if (!status.ok()) return storage_error(status, "read checkpoint");
  return from_big_endian(value);
}

Result<std::uint64_t> ReleaseSummaryProjection::resume_position() { return checkpoint(); }

Status ReleaseSummaryProjection::handle(const std::vector<events::RecordedEvent>& batch) {
  static constexpr std::string_view kPrefix = "release-";
  std::map<std::string, const ReleaseState*> changed;
  rocksdb::WriteBatch write;
  for (const events::RecordedEvent& event : batch) {
    if (event.stream.compare(0, kPrefix.size(), kPrefix) != 0) continue;
    const std::string release_id = event.stream.substr(kPrefix.size());
    CASCADE_TRY(state, impl_->state_before(event, release_id));
    engine::evolve(*state, event);
    changed[release_id] = state;
    if (std::holds_alternative<events::ReleaseCreated>(event.data)) {
      write.Put(impl_->order(), big_endian(event.position), release_id);
    }
  }
  for (const auto& [release_id, state] : changed) write.Put(impl_->summaries(), release_id, summarize(*state).dump());
  // Same batch: the documents and the position they reflect move together.
  write.Put(impl_->meta(), kCheckpointKey, big_endian(batch.back().position));
  rocksdb::Status status = impl_->db->Write({}, &write);
  if (!status.ok()) return storage_error(status, "write");
  return success();
}

Result<std::string> ReleaseSummaryProjection::summary(const std::string& release_id) const {
  std::string value;
  rocksdb::Status status = impl_->db->Get({}, impl_->summaries(), release_id, &value);
  if (status.IsNotFound()) return make_error(ErrorCode::kNotFound, "no release '" + release_id + "'");
  if (!status.ok()) return storage_error(status, "read summary");
  return value;
}

Result<std::vector<std::string>> ReleaseSummaryProjection::list(std::size_t limit) const {
  rocksdb::ReadOptions options;
  const rocksdb::Snapshot* snapshot = impl_->db->GetSnapshot();  // one consistent answer
  options.snapshot = snapshot;
  std::vector<std::string> out;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(options, impl_->order()));
  rocksdb::Status status;
  for (it->SeekToLast(); it->Valid() && out.size() < limit; it->Prev()) {
    std::string value;
    status = impl_->db->Get(options, impl_->summaries(), it->value(), &value);
    if (!status.ok()) break;
    out.push_back(std::move(value));
  }
  if (status.ok()) status = it->status();
  it.reset();
  impl_->db->ReleaseSnapshot(snapshot);
  if (!status.ok()) return storage_error(status, "list releases");
  return out;
}

Status ReleaseSummaryProjection::clear() {
  rocksdb::WriteBatch write;
  for (auto* family : {impl_->summaries(), impl_->order()}) {
    std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator({}, family));
    for (it->SeekToFirst(); it->Valid(); it->Next()) write.Delete(family, it->key());
  }
  write.Delete(impl_->meta(), kCheckpointKey);
  rocksdb::Status status = impl_->db->Write({}, &write);
  if (!status.ok()) return storage_error(status, "clear");
  impl_->states.clear();
  return success();
}

}  // namespace cascade::projections
