// Evidence: everything an audit of one release looks at — its stream, its
// pipeline's stream up to the version it was created from, its step logs.
#include "engine/audit_internal.hpp"

#include <algorithm>

namespace cascade::engine {

using namespace audit_internal;
using events::RecordedEvent;

bool audit_internal::same_key(const StepLogKey& a, const StepLogKey& b) {
  return a.release_id == b.release_id && a.stage == b.stage && a.attempt == b.attempt &&
         a.step_index == b.step_index;
}

// Every step of the release, with its tries in event order.
std::vector<StepHistory> audit_internal::step_histories(const std::string& release_id, const std::vector<RecordedEvent>& events) {
  std::vector<StepHistory> out;
  auto history = [&](const std::string& stage, int attempt, int index, const std::string& step) -> StepHistory& {
    const StepLogKey key{release_id, stage, attempt, index};
    auto found = std::find_if(out.begin(), out.end(), [&](const StepHistory& h) { return same_key(h.key, key); });
    if (found != out.end()) return *found;
    out.push_back(StepHistory{key, step, {}});
    return out.back();
  };
  auto finished = [&](StepHistory& h, const RecordedEvent& e, const std::string& digest) {
    if (h.tries.empty() || h.tries.back().finish != nullptr) h.tries.push_back(StepTry{});
    h.tries.back().finish = &e;
    h.tries.back().digest = digest;
  };
  for (const RecordedEvent& e : events) {
    if (const auto* s = std::get_if<events::StepStarted>(&e.data)) {
      history(s->stage, s->attempt, s->step_index, s->step).tries.push_back(StepTry{s->try_number, nullptr, ""});
    } else if (const auto* ok = std::get_if<events::StepSucceeded>(&e.data)) {
      finished(history(ok->stage, ok->attempt, ok->step_index, ok->step), e, ok->log_digest);
    } else if (const auto* failed = std::get_if<events::StepFailed>(&e.data)) {
      StepHistory& h = history(failed->stage, failed->attempt, failed->step_index, failed->step);
      if (!failed->stored_log_digest.empty()) {
        finished(h, e, failed->stored_log_digest);
        h.tries.back().cut_off = true;
        h.tries.back().stored_lines = failed->stored_log_lines;
      } else if (!failed->log_digest.empty()) {
        finished(h, e, failed->log_digest);
      }
      // else: cut off, and recorded without a digest (before interruptions
      // recorded one): the try stays unfinished, its lines uncovered.
    }
  }
  return out;
}

bool audit_internal::digested(const StepHistory& history) {
  return std::any_of(history.tries.begin(), history.tries.end(), [](const StepTry& t) { return t.finish != nullptr; });
}

Result<Evidence> collect_evidence(events::EventLog& log, StepLogStore& step_logs, const std::string& release_id) {
  Evidence evidence;
  evidence.release_id = release_id;
  CASCADE_TRY(release, read_stream(log, release_stream(release_id)));
  if (release.events.empty() && !release.failure) {
    return make_error(ErrorCode::kNotFound, "no release '" + release_id + "'");
  }
  evidence.release = std::move(release);
  const auto* created = evidence.release.events.empty()
                            ? nullptr
                            : std::get_if<events::ReleaseCreated>(&evidence.release.events.front().data);
  if (created != nullptr && created->pipeline_version > 0) {
    CASCADE_TRY(pipeline, read_stream(log, pipeline_stream(created->pipeline),
                                      static_cast<std::size_t>(created->pipeline_version)));
    evidence.pipeline = std::move(pipeline);
  }
  for (StepHistory& history : step_histories(release_id, evidence.release.events)) {
    if (!digested(history)) continue;
    StepLog entry;
    entry.key = std::move(history.key);
    entry.step = std::move(history.step);
    entry.store = &step_logs;
    // Read through once now, so that damage is known before anything checks
    // or exports the log, and a store that fails is this call's error.
    const Status readable = entry.each_line([](const LogLine&) { return Status(success()); });
    if (!readable) {
      if (readable.error().code != ErrorCode::kDataLoss) return readable.error();
      entry.unreadable = readable.error().message;
      entry.store = nullptr;  // nothing to read: no lines, as a bundle of it holds
    }
    evidence.step_logs.push_back(std::move(entry));
  }
  return evidence;
}

Status StepLog::each_line(const std::function<Status(const LogLine&)>& visit) const {
  if (store != nullptr) return store->read_each(key, visit);
  for (const LogLine& line : lines) {
    CASCADE_TRY(visit(line));
  }
  return success();
}

}  // namespace cascade::engine
