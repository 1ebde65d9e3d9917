#include "projections/pipeline_versions.hpp"

#include "projections/projection_store.hpp"

#include <map>
#include <set>

namespace cascade::projections {

bool operator==(const DefinitionChange& a, const DefinitionChange& b) {
  return a.op == b.op && a.path == b.path && a.from == b.from && a.to == b.to && a.where == b.where;
}

nlohmann::json to_json(const DefinitionChange& change) {
  nlohmann::json out = {{"op", change.op}, {"path", change.path}, {"where", change.where}};
  if (change.op != "add") out["from"] = change.from;
  if (change.op != "remove") out["to"] = change.to;
  return out;
}

namespace {

using nlohmann::json;


// The element names of an array whose elements all are objects with a
// distinct string "name"; nullopt for any other array.
std::optional<std::vector<std::string>> element_names(const json& array) {
  std::vector<std::string> names;
  std::set<std::string> seen;
  for (const json& element : array) {
    if (!element.is_object()) return std::nullopt;
    auto name = element.find("name");
    if (name == element.end() || !name->is_string()) return std::nullopt;
    if (!seen.insert(name->get<std::string>()).second) return std::nullopt;
    names.push_back(name->get<std::string>());
  }
  return names;
}

// `path` is the JSON pointer of `from`/`to`, `where` its readable name.
void diff_into(const json& from, const json& to, const std::string& path, const std::string& where,
               std::vector<DefinitionChange>& out);

void diff_named(const json& from, const json& to, const std::vector<std::string>& from_names,
                const std::vector<std::string>& to_names, const std::string& path, const std::string& where,
                std::vector<DefinitionChange>& out) {
  auto named = [&](const std::string& name) { return where + "[" + name + "]"; };
  std::map<std::string, std::size_t> from_index, to_index;
  for (std::size_t i = 0; i < from_names.size(); ++i) from_index[from_names[i]] = i;
  for (std::size_t i = 0; i < to_names.size(); ++i) to_index[to_names[i]] = i;
  std::vector<std::string> kept_from, kept_to;  // names in both, in each order
  for (const std::string& name : from_names) {
    if (to_index.count(name) != 0) kept_from.push_back(name);
  }
  for (const std::string& name : to_names) {
    if (from_index.count(name) != 0) kept_to.push_back(name);
  }
  if (kept_from != kept_to) {
    // Steps run in their written order: a reordering is a change of the whole list.
    out.push_back({"replace", path, from, to, where});
    return;
  }
  for (std::size_t i = 0; i < from_names.size(); ++i) {
    if (to_index.count(from_names[i]) == 0) {
      out.push_back({"remove", path + "/" + std::to_string(i), from[i], nullptr, named(from_names[i])});
    }
  }
  for (std::size_t j = 0; j < to_names.size(); ++j) {
    auto matched = from_index.find(to_names[j]);
    if (matched == from_index.end()) {
      out.push_back({"add", path + "/" + std::to_string(j), nullptr, to[j], named(to_names[j])});
    } else {
      diff_into(from[matched->second], to[j], path + "/" + std::to_string(j), named(to_names[j]), out);
    }
  }
}

void diff_into(const json& from, const json& to, const std::string& path, const std::string& where,
               std::vector<DefinitionChange>& out) {
  if (from.is_object() && to.is_object()) {
    std::set<std::string> keys;
    for (const auto& item : from.items()) keys.insert(item.key());
    for (const auto& item : to.items()) keys.insert(item.key());
    for (const std::string& key : keys) {
      const std::string child = (json::json_pointer(path) / key).to_string();
      const std::string child_where = where.empty() ? key : where + "." + key;
      const bool in_from = from.contains(key), in_to = to.contains(key);
      if (in_from && in_to) {
        diff_into(from.at(key), to.at(key), child, child_where, out);
      } else if (in_from) {
        out.push_back({"remove", child, from.at(key), nullptr, child_where});
      } else {
        out.push_back({"add", child, nullptr, to.at(key), child_where});
      }
    }
    return;
  }
  if (from.is_array() && to.is_array()) {
    const auto from_names = element_names(from), to_names = element_names(to);
    if (from_names && to_names && !(from.empty() && to.empty())) {
      diff_named(from, to, *from_names, *to_names, path, where, out);
      return;
    }
    auto element = [&](std::size_t i) { return std::make_pair(path + "/" + std::to_string(i), where + "[" + std::to_string(i) + "]"); };
    const std::size_t common = std::min(from.size(), to.size());
    for (std::size_t i = 0; i < common; ++i) {
      const auto [child, child_where] = element(i);
      diff_into(from[i], to[i], child, child_where, out);
    }
    for (std::size_t i = common; i < from.size(); ++i) {
      const auto [child, child_where] = element(i);
      out.push_back({"remove", child, from[i], nullptr, child_where});
    }
    for (std::size_t i = common; i < to.size(); ++i) {
      const auto [child, child_where] = element(i);
      out.push_back({"add", child, nullptr, to[i], child_where});
    }
    return;
  }
  if (from != to) out.push_back({"replace", path, from, to, where});
}

std::string version_key(const std::string& pipeline, std::int64_t version) {
  return pipeline + '\0' + big_endian(static_cast<std::uint64_t>(version));
}

Result<std::vector<std::string>> releases_of(const Snapshot& view, Family family, const std::string& prefix) {
  std::vector<std::string> out;
  std::unique_ptr<rocksdb::Iterator> it = view.iterate(family);
  for (it->Seek(prefix); it->Valid() && starts_with(it->key().ToStringView(), prefix); it->Next()) {
    out.push_back(it->value().ToString());
  }
  if (!it->status().ok()) return storage_error(it->status(), "read pipeline releases");
  return out;
}

PipelineVersion parse_version(std::string_view text) {
  const json stored = json::parse(text);
  PipelineVersion version;
  version.pipeline = stored["pipeline"];
  version.version = stored["version"];
  version.defined_at = stored["defined_at"];
  version.actor = stored["actor"];
  version.definition = stored["definition"];
  return version;
}

}  // namespace

std::vector<DefinitionChange> diff_json(const nlohmann::json& from, const nlohmann::json& to) {
  std::vector<DefinitionChange> out;
  diff_into(from, to, "", "", out);
  return out;
}

nlohmann::json pipelines_json(const std::vector<PipelineVersion>& latest) {
  nlohmann::json list = nlohmann::json::array();
  for (const PipelineVersion& version : latest) {
    list.push_back({{"name", version.pipeline},
                    {"version", version.version},
                    {"defined_at", version.defined_at},
                    {"actor", version.actor}});
  }
  return {{"pipelines", std::move(list)}};
}

nlohmann::json to_json(const PipelineVersion& version) {
  return {{"pipeline", version.pipeline}, {"version", version.version}, {"defined_at", version.defined_at},
          {"actor", version.actor},       {"definition", version.definition}, {"releases", version.releases}};
}

PipelineProjection::PipelineProjection(std::shared_ptr<ProjectionStore> store, events::EventLog& log)
    : Projection(kName, {kVersionsFamily, kReleasesFamily}, std::move(store), log) {}

Status PipelineProjection::apply(const std::vector<events::RecordedEvent>& batch, ProjectionWrite& write) {
  for (const events::RecordedEvent& event : batch) {
    if (const auto* defined = std::get_if<events::PipelineDefined>(&event.data)) {
      write.put(store().family(kVersionsFamily), version_key(defined->pipeline, defined->version),
                json{{"pipeline", defined->pipeline},
                     {"version", defined->version},
                     {"defined_at", event.recorded_at},
                     {"actor", event.actor},
                     {"definition", defined->definition}}
                    .dump());
    } else if (const auto* created = std::get_if<events::ReleaseCreated>(&event.data)) {
      write.put(store().family(kReleasesFamily),
                version_key(created->pipeline, created->pipeline_version) + big_endian(event.position),
                created->release_id);
    }
  }
  return success();
}

Result<std::vector<PipelineVersion>> PipelineProjection::versions(const std::string& pipeline) const {
  const Snapshot view = store().snapshot();
  const std::string prefix = pipeline + '\0';
  std::vector<PipelineVersion> out;
  std::unique_ptr<rocksdb::Iterator> it = view.iterate(store().family(kVersionsFamily));
  for (it->Seek(prefix); it->Valid() && starts_with(it->key().ToStringView(), prefix); it->Next()) {
    PipelineVersion version = parse_version(it->value().ToStringView());
    CASCADE_TRY(releases, releases_of(view, store().family(kReleasesFamily), it->key().ToString()));
    version.releases = std::move(releases);
    out.push_back(std::move(version));
  }
  if (!it->status().ok()) return storage_error(it->status(), "read pipeline versions");
  if (out.empty()) return make_error(ErrorCode::kNotFound, "no pipeline '" + pipeline + "'");
  return out;
}

Result<PipelineVersion> PipelineProjection::version(const std::string& pipeline, std::int64_t version) const {
  const Snapshot view = store().snapshot();
  const std::string key = version_key(pipeline, version);
  CASCADE_TRY(stored, view.get(store().family(kVersionsFamily), key));
  if (version < 1 || !stored) {
    return make_error(ErrorCode::kNotFound, "pipeline '" + pipeline + "' has no version " + std::to_string(version));
  }
  PipelineVersion out = parse_version(*stored);
  CASCADE_TRY(releases, releases_of(view, store().family(kReleasesFamily), key));
  out.releases = std::move(releases);
  return out;
}

Result<std::vector<PipelineVersion>> PipelineProjection::latest_versions() const {
  const Snapshot view = store().snapshot();
  std::vector<PipelineVersion> out;
  // Keys sort by pipeline, then version: the last key of each pipeline is its newest.
  std::string pipeline;  // of `newest`
  std::string newest;    // the value of the last key seen
  std::unique_ptr<rocksdb::Iterator> it = view.iterate(store().family(kVersionsFamily));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string_view key = it->key().ToStringView();
    const std::string_view name = key.substr(0, key.find('\0'));
    if (!newest.empty() && name != pipeline) out.push_back(parse_version(newest));
    pipeline = std::string(name);
    newest = it->value().ToString();
  }
  if (!it->status().ok()) return storage_error(it->status(), "read pipeline versions");
  if (!newest.empty()) out.push_back(parse_version(newest));
  return out;
}

Result<std::vector<DefinitionChange>> PipelineProjection::diff(const std::string& pipeline, std::int64_t from,
                                                               std::int64_t to) const {
  CASCADE_TRY(old_version, version(pipeline, from));
  CASCADE_TRY(new_version, version(pipeline, to));
  return diff_json(old_version.definition, new_version.definition);
}

}  // namespace cascade::projections
