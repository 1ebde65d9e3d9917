#include "projections/projection.hpp"

#include "projections/projection_store.hpp"

#include <iostream>
#include <list>
#include <unordered_map>

namespace cascade::projections {

std::string stage_of(const events::Event& event) {
  return std::visit(
      [](const auto& payload) -> std::string {
        if constexpr (events::kIsStageEvent<std::decay_t<decltype(payload)>>) {
          return payload.stage;
        } else {
          return "";
        }
      },
      event);
}

std::string_view to_string(DeploymentOutcome outcome) {
  switch (outcome) {
    case DeploymentOutcome::kSucceeded: return "Succeeded";
    case DeploymentOutcome::kPartiallySucceeded: return "PartiallySucceeded";
    case DeploymentOutcome::kFailed: return "Failed";
    case DeploymentOutcome::kCanceled: return "Canceled";
  }
  return "Unknown";
}

std::optional<DeploymentOutcome> parse_deployment_outcome(std::string_view text) {
  for (DeploymentOutcome outcome : {DeploymentOutcome::kSucceeded, DeploymentOutcome::kPartiallySucceeded,
                                    DeploymentOutcome::kFailed, DeploymentOutcome::kCanceled}) {
    if (text == to_string(outcome)) return outcome;
  }
  return std::nullopt;
}

std::optional<FinishedDeployment> finished_deployment(const events::Event& event) {
  if (const auto* e = std::get_if<events::DeploymentSucceeded>(&event)) {
    return FinishedDeployment{e->partial ? DeploymentOutcome::kPartiallySucceeded : DeploymentOutcome::kSucceeded, "",
                              e->attempt};
  }
  if (const auto* e = std::get_if<events::DeploymentFailed>(&event)) {
    return FinishedDeployment{DeploymentOutcome::kFailed, e->reason, e->attempt};
  }
  if (const auto* e = std::get_if<events::DeploymentCanceled>(&event)) {
    return FinishedDeployment{DeploymentOutcome::kCanceled, e->reason, e->attempt};
  }
  return std::nullopt;
}

// ---- ReleaseFolds -------------------------------------------------------------

struct ReleaseFolds::Cache {
  struct Entry {
    engine::ReleaseState state;
    std::list<std::string>::iterator age;
  };
  // Node-based: pointers to states stay valid while other entries come and go.
  std::unordered_map<std::string, Entry> states;
  std::list<std::string> ages;  // most recently used first
};

ReleaseFolds::ReleaseFolds(events::EventLog& log, std::size_t capacity)
    : log_(log), capacity_(capacity), cache_(std::make_unique<Cache>()) {}

ReleaseFolds::~ReleaseFolds() = default;

Result<const engine::ReleaseState*> ReleaseFolds::fold(const events::RecordedEvent& event) {
  static constexpr std::string_view kPrefix = "release-";
  if (!starts_with(event.stream, kPrefix)) return static_cast<const engine::ReleaseState*>(nullptr);
  const std::string release_id = event.stream.substr(kPrefix.size());
  auto [found, inserted] = cache_->states.try_emplace(release_id);
  Cache::Entry& entry = found->second;
  if (inserted) {
    cache_->ages.push_front(release_id);
  } else {
    cache_->ages.splice(cache_->ages.begin(), cache_->ages, entry.age);
  }
  entry.age = cache_->ages.begin();
  engine::ReleaseState& state = entry.state;
  // Anything but the state just before the event (never seen, evicted, or
  // ahead after a failed batch) is folded again from the log.
  if (state.version + 1 != event.version) {
    state = engine::ReleaseState{};
    if (event.version > 1) {
      CASCADE_TRY(prefix, log_.read(event.stream, 1, static_cast<std::size_t>(event.version - 1)));
      for (const events::RecordedEvent& e : prefix) engine::evolve(state, e);
      if (state.version + 1 != event.version) {
        return make_error(ErrorCode::kUnavailable, "stream " + event.stream + " is shorter than version " +
                                                       std::to_string(event.version));
      }
    }
  }
  engine::evolve(state, event);
  return static_cast<const engine::ReleaseState*>(&state);
}

void ReleaseFolds::trim() {
  while (cache_->ages.size() > capacity_) {
    cache_->states.erase(cache_->ages.back());
    cache_->ages.pop_back();
  }
}

void ReleaseFolds::clear() {
  cache_->states.clear();
  cache_->ages.clear();
}

// ---- Projection ---------------------------------------------------------------

Projection::Projection(std::string name, std::vector<std::string> families, std::shared_ptr<ProjectionStore> store,
                       events::EventLog& log)
    : name_(std::move(name)), families_(std::move(families)), store_(std::move(store)), log_(log), folds_(log) {}

Projection::~Projection() = default;

Result<std::uint64_t> Projection::checkpoint() const { return store_->checkpoint(name_); }

Result<std::uint64_t> Projection::lag(std::uint64_t head) const {
  CASCADE_TRY(position, checkpoint());
  return head > position ? head - position : 0;
}

Status Projection::handle(const std::vector<events::RecordedEvent>& batch) {
  if (batch.empty()) return success();  // nothing to reflect: the checkpoint stays
  ProjectionWrite write(*store_);
  CASCADE_TRY(apply(batch, write));
  // Same write: the data and the position it reflects move together.
  write.put(store_->meta(), ProjectionStore::checkpoint_key(name_), big_endian(batch.back().position));
  CASCADE_TRY(write.commit());
  folds_.trim();
  {
    std::lock_guard<std::mutex> lock(commit_mutex_);
  }
  committed_.notify_all();
  return success();
}

Result<bool> Projection::wait_for(std::uint64_t position, std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock<std::mutex> lock(commit_mutex_);
  ++waiting_;
  struct Leave {
    std::size_t& waiting;
    ~Leave() { --waiting; }  // under the lock: it is held again whenever this scope ends
  } leave{waiting_};
  for (;;) {
    CASCADE_TRY(at, checkpoint());
    if (at >= position) return true;
    if (committed_.wait_until(lock, deadline) == std::cv_status::timeout) {
      CASCADE_TRY(last, checkpoint());
      return last >= position;
    }
  }
}

std::size_t Projection::waiting() const {
  std::lock_guard<std::mutex> lock(commit_mutex_);
  return waiting_;
}

void Projection::request_rebuild() { rebuild_.store(kRebuildRequested); }

std::optional<std::uint64_t> Projection::rewind() {
  int expected = kRebuildRequested;
  if (rebuild_.compare_exchange_strong(expected, kRewound)) {
    if (Status cleared = clear(); !cleared) {
      // The storage failed; ask again on the runner's next turn.
      std::cerr << "cascade: projection " << name_ << ": rebuild: " << cleared.error().message << "\n";
      rebuild_.store(kRebuildRequested);
      return std::nullopt;
    }
    return std::uint64_t{0};
  }
  // The runner applied the rewind on its previous turn: only now may the
  // projection report idle (see Reactor::rewind).
  expected = kRewound;
  rebuild_.compare_exchange_strong(expected, kNoRebuild);
  return std::nullopt;
}

Result<std::vector<Projection::StoredEntry>> Projection::contents() const {
  const Snapshot view = store_->snapshot();
  std::vector<StoredEntry> out;
  for (const std::string& family : families_) {
    std::unique_ptr<rocksdb::Iterator> it = view.iterate(store_->family(family));
    for (it->SeekToFirst(); it->Valid(); it->Next()) out.push_back({family, it->key().ToString(), it->value().ToString()});
    if (!it->status().ok()) return storage_error(it->status(), "read " + family);
  }
  return out;
}

Status Projection::clear() {
  CASCADE_TRY(store_->clear(name_, families_));
  folds_.clear();
  return success();
}

Status Projection::adopt_format() {
  CASCADE_TRY(stored, store_->stored_format(name_));
  if (stored == format()) return success();
  CASCADE_TRY(store_->clear(name_, families_, format()));
  folds_.clear();
  return success();
}

}  // namespace cascade::projections
