#include "engine/release_service.hpp"

#include "engine/artifact_version.hpp"
#include "engine/variable_names.hpp"
#include "events/codec.hpp"
#include "events/retry_backoff.hpp"
#include "events/time.hpp"

#include <algorithm>
#include <cstdio>
#include <random>
#include <set>
#include <thread>

namespace cascade::engine {

using events::NewEvent;

namespace {

CommandContext context_for(const Invocation& invocation, Timestamp now) {
  CommandContext context;
  context.command_id = invocation.command_id.empty() ? events::random_uuid() : invocation.command_id;
  context.actor = invocation.actor;
  context.causation_id = invocation.causation_id.empty() ? context.command_id : invocation.causation_id;
  context.now = now;
  context.actor_groups = invocation.actor_groups;
  return context;
}

// What a release request may carry: an artifact version of the documented
// characters, and values only for variables the pipeline or one of its stages
// declares settable at release time. Every problem is reported, each with its
// path; values are never quoted (a secret's could be).
Status check_release_inputs(const PipelineDefinition& definition, const NewRelease& request) {
  std::vector<Problem> problems;
  if (auto problem = artifact_version_problem(request.artifact.version)) {
    problems.push_back({"artifact.version", "artifact version " + *problem});
  }
  // An empty path would make `$(CASCADE_ARTIFACT_PATH)/.` the root directory.
  const events::Artifact& artifact = request.artifact;
  const bool located = !artifact.path.empty() || (definition.needs_artifact == ArtifactNeed::kUri && !artifact.uri.empty());
  if (definition.needs_artifact != ArtifactNeed::kNone && !located) {
    const bool path_needed = definition.needs_artifact == ArtifactNeed::kPath;
    problems.push_back(
        {"artifact.path",
         "required: pipeline '" + definition.name + "' needs " +
             (path_needed ? "the artifact's path on the server" : "the artifact's path or URI") +
             (artifact.uri.empty() ? std::string(", and none is given") : ", and only the URI " + artifact.uri + " is given") +
             " (a CI build gives it as a file:// URI; a pipeline whose steps download the URI declares "
             "\"needs_artifact\": \"uri\", one whose steps need no artifact \"none\")"});
  } else if (!artifact.path.empty() && artifact.path.front() != '/') {
    problems.push_back({"artifact.path", "must be an absolute path, not '" + artifact.path + "'"});
  }
  std::set<std::string> settable;
  auto collect = [&](const VariableMap& variables) {
    for (const auto& [name, variable] : variables) {
      if (variable.settable) settable.insert(name);
    }
  };
  collect(definition.variables);
  for (const StageDefinition& stage : definition.stages) collect(stage.variables);
  auto check = [&](const std::string& field, const std::string& name) {
    const std::string path = field + "." + name;
    if (!is_valid_variable_name(name)) {
      problems.push_back({path, "invalid variable name: use letters, digits and '_', not starting with a digit"});
    } else if (auto reason = forbidden_variable_name(name)) {
      problems.push_back({path, "variable name '" + name + "' is reserved: " + *reason});
    } else if (settable.count(name) == 0) {
      std::string known;
      for (const std::string& candidate : settable) known += (known.empty() ? "" : ", ") + candidate;
      problems.push_back({path, "pipeline '" + definition.name + "' does not declare '" + name +
                                    "' settable at release time (settable: " + (known.empty() ? "none" : known) +
                                    "; an admin marks one with {\"value\": …, \"settable\": true})"});
    }
  };
  for (const auto& [name, value] : request.variables) check("variables", name);
  for (const auto& [name, value] : request.secret_variables) check("secrets", name);
  if (problems.empty()) return success();
  std::string message = problems.front().path + ": " + problems.front().message;
  if (problems.size() > 1) message += " (and " + std::to_string(problems.size() - 1) + " more)";
  return make_error(ErrorCode::kInvalidArgument, std::move(message), std::move(problems));
}

// Before try `attempt` (0 for the first) after lost races: nothing before
// the second, then a jittered wait (see ReleaseService::kMaxConflictRetries).
// A contention backoff, not a correctness wait: the steady clock, not Clock.
void back_off_before(int attempt) {
  if (attempt < 2) return;
  thread_local events::RetryBackoff backoff(ReleaseService::kFirstConflictBackoff,
                                            ReleaseService::kMaxConflictBackoff, std::random_device{}());
  std::this_thread::sleep_for(backoff.wait_before(attempt - 2));
}

}  // namespace

std::string format_release_name(std::string_view format, std::int64_t number, std::string_view build, Timestamp at) {
  const events::UtcTime utc = events::utc_time(at);
  auto date = [&](std::string_view pattern) {
    std::string out;
    for (std::size_t i = 0; i < pattern.size();) {
      std::size_t run = 1;
      while (i + run < pattern.size() && pattern[i + run] == pattern[i]) ++run;
      char buffer[8];
      switch (pattern[i]) {
        case 'y': std::snprintf(buffer, sizeof buffer, run <= 2 ? "%02d" : "%04d", run <= 2 ? utc.year % 100 : utc.year); break;
        case 'M': std::snprintf(buffer, sizeof buffer, run == 1 ? "%d" : "%02d", utc.month); break;
        case 'd': std::snprintf(buffer, sizeof buffer, run == 1 ? "%d" : "%02d", utc.day); break;
        default: out.append(pattern.substr(i, run)); i += run; continue;
      }
      out += buffer;
      i += run;
    }
    return out;
  };
  std::string name;
  for (std::size_t i = 0; i < format.size();) {
    if (format.compare(i, 2, "$(") == 0) {
      const std::size_t close = format.find(')', i);
      if (close != std::string_view::npos) {
        const std::string_view token = format.substr(i + 2, close - i - 2);
        if (token == "rev:r") {
          name += std::to_string(number);
        } else if (token == "build") {
          name += build;
        } else if (token.substr(0, 5) == "date:") {
          name += date(token.substr(5));
        } else {
          name.append(format.substr(i, close - i + 1));
        }
        i = close + 1;
        continue;
      }
    }
    name += format[i++];
  }
  return name;
}

ReleaseService::ReleaseService(events::EventLog& log, SecretStore& secrets, const Clock& clock,
                               std::size_t cache_capacity)
    : log_(log), secrets_(secrets), clock_(clock), cache_capacity_(std::max<std::size_t>(cache_capacity, 1)) {}

Status ReleaseService::seal_secrets(const std::string& scope, VariableMap& variables) {
  for (auto& [name, variable] : variables) {
    if (!variable.secret || variable.value.empty()) continue;
    CASCADE_TRY(digest, secrets_.put(scope + "/variable/" + name, variable.value));
    variable.secret_digest = digest;
    variable.value.clear();
  }
  return success();
}

std::vector<NewEvent> ReleaseService::envelope(const std::string& stream, std::vector<events::Event> events,
                                               const CommandContext& context,
                                               const std::string& correlation_id) const {
  std::vector<NewEvent> out;
  out.reserve(events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    NewEvent e;
    // Derived from the command, so a retried command yields the same ids and
    // the log stores them once.
    e.event_id = events::uuid_from_seed(stream + "\n" + context.command_id + "\n" + std::to_string(i));
    e.data = std::move(events[i]);
    e.recorded_at = context.now;
    e.actor = context.actor;
    e.command_id = context.command_id;
    e.causation_id = context.causation_id;
    e.correlation_id = correlation_id;
    out.push_back(std::move(e));
  }
  return out;
}

Result<StoredPipeline> ReleaseService::load_pipeline(const std::string& name) {
  const std::string stream = pipeline_stream(name);
  CASCADE_TRY(version, log_.stream_version(stream));
  if (version == 0) return make_error(ErrorCode::kNotFound, "no pipeline named '" + name + "'");
  {
    // Parsing and validating a definition costs more than the rest of a
    // create: reuse the last one while the stream has not moved.
    std::lock_guard lock(mutex_);
    auto it = pipelines_.find(name);
    if (it != pipelines_.end() && it->second->version == version) return *it->second;
  }
  CASCADE_TRY(events, log_.read(stream, version, 1));
  if (events.empty()) return make_error(ErrorCode::kNotFound, "no pipeline named '" + name + "'");
  const auto* defined = std::get_if<events::PipelineDefined>(&events.back().data);
  if (defined == nullptr) {
    return make_error(ErrorCode::kDataLoss, "stream " + stream + " holds a " +
                                                std::string(events::type_name(events.back().data)));
  }
  CASCADE_TRY(definition, parse_pipeline(defined->definition));
  auto stored = std::make_shared<const StoredPipeline>(StoredPipeline{defined->version, std::move(definition)});
  std::lock_guard lock(mutex_);
  std::shared_ptr<const StoredPipeline>& slot = pipelines_[name];
  if (slot == nullptr || slot->version < stored->version) slot = stored;
  return *stored;
}

Result<std::int64_t> ReleaseService::apply_pipeline(const PipelineDefinition& submitted, const std::string& actor) {
  PipelineDefinition definition = submitted;
  CASCADE_TRY(seal_secrets("pipeline/" + definition.name, definition.variables));
  for (StageDefinition& stage : definition.stages) {
    CASCADE_TRY(seal_secrets("pipeline/" + definition.name + "/stage/" + stage.name, stage.variables));
  }
  const std::string stream = pipeline_stream(definition.name);
  const nlohmann::json canonical = to_json(definition);
  for (int attempt = 0; attempt < kMaxConflictRetries; ++attempt) {
    back_off_before(attempt);
    std::int64_t current = 0;
    if (auto stored = load_pipeline(definition.name)) {
      if (to_json(stored.value().definition) == canonical) return stored.value().version;
      current = stored.value().version;
    } else if (stored.error().code != ErrorCode::kNotFound) {
      return stored.error();
    }
    events::PipelineDefined defined;
    defined.pipeline = definition.name;
    defined.version = current + 1;
    defined.definition = canonical;
    const CommandContext context = context_for(Invocation{actor, "", ""}, clock_.now());
    auto appended = log_.append(stream, current, envelope(stream, {defined}, context, stream));
    if (appended) return defined.version;
    if (appended.error().code != ErrorCode::kAborted) return appended.error();
  }
  return make_error(ErrorCode::kAborted, "pipeline '" + definition.name + "' kept changing under concurrent applies");
}

Result<std::int64_t> ReleaseService::reserve_release_number(const std::string& pipeline) {
  // Reserved under one lock, so creators in this process never race for a
  // number; only another process writing the same log can, and then the
  // create's expected-version check makes the loser take the next one.
  std::lock_guard lock(numbers_mutex_);
  auto it = last_release_number_.find(pipeline);
  if (it == last_release_number_.end()) {
    // Numbers are dense (each is taken by creating its stream with expected
    // version 0), so the first free one is found by galloping then bisecting.
    auto taken = [&](std::int64_t n) -> Result<bool> {
      CASCADE_TRY(version, log_.stream_version(release_stream(pipeline + "-" + std::to_string(n))));
      return version > 0;
    };
    std::int64_t low = 0, high = 1;  // invariant: low is taken (or 0), high is probed next
    for (;;) {
      CASCADE_TRY(is_taken, taken(high));
      if (!is_taken) break;
      low = high;
      high *= 2;
    }
    while (high - low > 1) {
      const std::int64_t middle = low + (high - low) / 2;
      CASCADE_TRY(is_taken, taken(middle));
      (is_taken ? low : high) = middle;
    }
    it = last_release_number_.emplace(pipeline, high - 1).first;
  }
  return ++it->second;
}

Result<std::string> ReleaseService::create_release(const NewRelease& request, const Invocation& invocation) {
  CASCADE_TRY(pipeline, load_pipeline(request.pipeline));
  // Before any secret is stored: a refused request leaves nothing behind.
  CASCADE_TRY(check_release_inputs(pipeline.definition, request));
  const CommandContext context = context_for(invocation, clock_.now());
  std::map<std::string, std::string> secret_digests;
  for (const auto& [name, value] : request.secret_variables) {
    // A fresh scope: a release's secret is never compared with anything.
    CASCADE_TRY(digest, secrets_.put("release/" + events::random_uuid() + "/" + name, value));
    secret_digests[name] = digest;
  }
  for (int attempt = 0; attempt < kMaxConflictRetries; ++attempt) {
    back_off_before(attempt);
    CASCADE_TRY(number, reserve_release_number(request.pipeline));
    const std::string release_id = request.pipeline + "-" + std::to_string(number);
    CreateRelease command;
    command.release_id = release_id;
    command.number = number;
    command.name = format_release_name(pipeline.definition.release_name_format, number, request.artifact.version,
                                       context.now);
    command.secret_variables = secret_digests;
    command.pipeline_version = pipeline.version;
    command.definition = pipeline.definition;
    command.artifact = request.artifact;
    command.variables = request.variables;
    command.trigger = request.trigger;
    command.trigger_cdevent = request.trigger_cdevent;
    CASCADE_TRY(events, decide(ReleaseState{}, command, context));
    const std::string stream = release_stream(release_id);
    std::vector<NewEvent> created = envelope(stream, std::move(events), context, release_id);
    if (!invocation.command_id.empty()) {
      // The caller's key (a CDEvent id, an Idempotency-Key) names the event
      // whatever number it would get, so the log recognises a repeat.
      created.front().event_id = events::uuid_from_seed("create-release\n" + request.pipeline + "\n" +
                                                        invocation.command_id);
    }
    std::shared_ptr<ReleaseState> folded = fold_ahead(ReleaseState{}, stream, created);
    auto appended = log_.append(stream, 0, std::move(created));
    if (appended && appended.value().duplicate) {
      {
        // Keep numbers dense when no one reserved a later one meanwhile.
        std::lock_guard lock(numbers_mutex_);
        auto& last = last_release_number_[request.pipeline];
        if (last == number) --last;
      }
      CASCADE_TRY(original, log_.read_all(appended.value().last_position, 1));
      const auto* first = original.empty() ? nullptr : std::get_if<events::ReleaseCreated>(&original.front().data);
      if (first == nullptr) return make_error(ErrorCode::kDataLoss, "the release created by this key cannot be read");
      return first->release_id;
    }
    if (appended) {
      remember_appended(release_id, std::move(folded), appended.value());
      return release_id;
    }
    if (appended.error().code != ErrorCode::kAborted) return appended.error();
  }
  return make_error(ErrorCode::kAborted, "could not allocate a release number for pipeline '" +
                                             request.pipeline + "' under concurrent creates");
}

std::shared_ptr<ReleaseState> ReleaseService::fold_ahead(const ReleaseState& before, const std::string& stream,
                                                         std::vector<NewEvent>& events) {
  auto next = std::make_shared<ReleaseState>(before);
  events::RecordedEvent recorded;
  recorded.stream = stream;
  for (std::size_t i = 0; i < events.size(); ++i) {
    NewEvent& e = events[i];
    recorded.version = before.version + 1 + static_cast<std::int64_t>(i);
    recorded.recorded_at = e.recorded_at;
    recorded.actor = e.actor;
    recorded.command_id = e.command_id;
    recorded.event_id = e.event_id;
    // The payload is lent to the fold and given back: a release's
    // definition snapshot is too big to copy per create.
    recorded.data = std::move(e.data);
    evolve(*next, recorded);
    e.data = std::move(recorded.data);
  }
  return next;
}

ReleaseService::StatePtr ReleaseService::remember_appended(const std::string& release_id,
                                                           std::shared_ptr<ReleaseState> folded,
                                                           const events::AppendResult& result) {
  folded->last_hash = result.last_hash;
  StatePtr state = std::move(folded);
  remember(release_id, state);
  return state;
}

ReleaseService::StatePtr ReleaseService::cached(const std::string& release_id) {
  std::lock_guard lock(mutex_);
  auto it = cache_.find(release_id);
  if (it == cache_.end()) return nullptr;
  recency_.splice(recency_.begin(), recency_, it->second.recency);
  return it->second.state;
}

void ReleaseService::remember(const std::string& release_id, StatePtr state) {
  std::lock_guard lock(mutex_);
  auto it = cache_.find(release_id);
  if (it != cache_.end()) {
    // A concurrent catch-up may have stored a newer fold meanwhile.
    if (it->second.state->version < state->version) it->second.state = std::move(state);
    recency_.splice(recency_.begin(), recency_, it->second.recency);
    return;
  }
  recency_.push_front(release_id);
  cache_.emplace(release_id, CacheEntry{std::move(state), recency_.begin()});
  while (cache_.size() > cache_capacity_) {
    cache_.erase(recency_.back());
    recency_.pop_back();
  }
}

Result<ReleaseService::StatePtr> ReleaseService::catch_up(const std::string& release_id) {
  const std::string stream = release_stream(release_id);
  if (quarantine_.size() != 0) {
    if (auto quarantined = quarantine_.find(stream)) {
      return make_error(ErrorCode::kDataLoss, "release " + release_id + " is quarantined: " + quarantined->reason);
    }
  }
  StatePtr state = cached(release_id);
  if (state != nullptr) {
    // The log knows its streams' versions without reading them: when nothing
    // was appended since the fold, the fold is the answer.
    CASCADE_TRY(version, log_.stream_version(stream));
    if (version == state->version) return state;
  }
  const std::int64_t from = state == nullptr ? 1 : state->version + 1;
  std::shared_ptr<ReleaseState> next;  // copied from the cached fold only when there is something to add
  // Verified on the way: the service never decides on a history altered
  // after it was written (an approval edited in the store, an event removed):
  // such a release answers kDataLoss instead of acting on it.
  const std::string linked_to = state == nullptr ? std::string() : state->last_hash;
  Status read = log_.read_each_verified(stream, from, linked_to, [&](const events::RecordedEvent& event) -> Status {
    if (next == nullptr) next = state != nullptr ? std::make_shared<ReleaseState>(*state) : std::make_shared<ReleaseState>();
    evolve(*next, event);
    return success();
  });
  if (!read) {
    // Not retried: the history will not heal. The release stops; the rest go on.
    if (read.error().code == ErrorCode::kDataLoss) quarantine_.add(stream, read.error().message, clock_.now());
    return read.error();
  }
  if (next == nullptr) return state != nullptr ? state : std::make_shared<const ReleaseState>();
  StatePtr folded = std::move(next);
  remember(release_id, folded);
  return folded;
}

Result<ReleaseState> ReleaseService::load(const std::string& release_id) {
  CASCADE_TRY(state, catch_up(release_id));
  if (!state->exists()) return make_error(ErrorCode::kNotFound, "no release '" + release_id + "'");
  return ReleaseState(*state);
}

Result<ReleaseState> ReleaseService::execute(const std::string& release_id, const Command& command,
                                             const Invocation& invocation) {
  const CommandContext context = context_for(invocation, clock_.now());
  const std::string stream = release_stream(release_id);
  for (int attempt = 0; attempt < kMaxConflictRetries; ++attempt) {
    back_off_before(attempt);
    CASCADE_TRY(state, catch_up(release_id));
    if (!state->exists()) return make_error(ErrorCode::kNotFound, "no release '" + release_id + "'");
    CASCADE_TRY(events, decide(*state, command, context));
    if (events.empty()) return ReleaseState(*state);
    std::vector<NewEvent> enveloped = envelope(stream, std::move(events), context, release_id);
    std::shared_ptr<ReleaseState> folded = fold_ahead(*state, stream, enveloped);
    auto appended = log_.append(stream, state->version, std::move(enveloped));
    if (appended && !appended.value().duplicate) {
      return ReleaseState(*remember_appended(release_id, std::move(folded), appended.value()));
    }
    if (appended) return load(release_id);  // a retry of a command already stored
    if (appended.error().code != ErrorCode::kAborted) return appended.error();
  }
  return make_error(ErrorCode::kAborted, "release " + release_id + " kept changing; gave up after " +
                                             std::to_string(kMaxConflictRetries) + " attempts");
}

}  // namespace cascade::engine
