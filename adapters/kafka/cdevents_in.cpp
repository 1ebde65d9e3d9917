#include "adapters/kafka/cdevents_in.hpp"

#include "engine/artifact_version.hpp"
#include "events/time.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <map>

// No JSON Schema library for C++ is packaged in Debian, so the three schemas
// are restated below as Spec trees, keyword for keyword (type, properties,
// required, additionalProperties, minLength, enum, format, oneOf of the
// customData, anyOf of the links). A change of schema version means a new
// tree, proven against python jsonschema by the corpus test.

namespace cascade::adapters::kafka {
namespace {

using nlohmann::json;

enum class JsonType { kAny, kString, kObject, kArray };
enum class Format { kNone, kUri, kUriReference, kDateTime };

struct Spec {
  JsonType type = JsonType::kAny;
  std::size_t min_length = 0;
  std::vector<std::string> enumeration;
  Format format = Format::kNone;
  std::vector<std::pair<std::string, Spec>> properties;
  std::vector<std::string> required;
  bool additional_properties = true;
  enum class Special { kNone, kCustomData, kLinksArray } special = Special::kNone;
};

Spec string_spec(std::size_t min_length = 0, Format format = Format::kNone) {
  Spec s;
  s.type = JsonType::kString;
  s.min_length = min_length;
  s.format = format;
  return s;
}

Spec object_spec(std::vector<std::pair<std::string, Spec>> properties, std::vector<std::string> required,
                 bool additional_properties) {
  Spec s;
  s.type = JsonType::kObject;
  s.properties = std::move(properties);
  s.required = std::move(required);
  s.additional_properties = additional_properties;
  return s;
}

Spec enum_spec(std::vector<std::string> values) {
  Spec s = string_spec();
  s.enumeration = std::move(values);
  return s;
}

// links/embeddedlink{end,path,relation}: their "from" and "target" objects
// allow other members, "tags" any object.
Spec link_spec(const std::string& link_type) {
  Spec context_id = object_spec({{"contextId", string_spec(1)}}, {}, true);
  Spec from = context_id;
  from.required = {"contextId"};
  Spec tags = object_spec({}, {}, true);
  if (link_type == "END") {
    return object_spec({{"linkType", enum_spec({"END"})}, {"from", from}, {"tags", tags}}, {"linkType"}, false);
  }
  if (link_type == "PATH") {
    return object_spec({{"linkType", enum_spec({"PATH"})}, {"from", from}, {"tags", tags}}, {"linkType", "from"},
                       false);
  }
  return object_spec({{"linkType", enum_spec({"RELATION"})},
                      {"linkKind", string_spec(1)},
                      {"target", context_id},
                      {"tags", tags}},
                     {"linkType", "linkKind", "target"}, false);
}

Spec event_spec(std::string_view type, Spec subject_content) {
  Spec links;
  links.type = JsonType::kArray;
  links.special = Spec::Special::kLinksArray;
  Spec type_spec = string_spec();
  type_spec.enumeration = {std::string(type)};
  Spec context = object_spec({{"specversion", string_spec(1)},
                              {"id", string_spec(1)},
                              {"source", string_spec(1, Format::kUriReference)},
                              {"type", type_spec},
                              {"timestamp", string_spec(0, Format::kDateTime)},
                              {"schemaUri", string_spec(1, Format::kUri)},
                              {"chainId", string_spec(1)},
                              {"links", links}},
                             {"specversion", "id", "source", "type", "timestamp"}, false);
  Spec subject = object_spec({{"id", string_spec(1)},
                              {"source", string_spec(1, Format::kUriReference)},
                              {"content", std::move(subject_content)}},
                             {"id", "content"}, false);
  Spec custom_data;
  custom_data.special = Spec::Special::kCustomData;
  return object_spec({{"context", std::move(context)},
                      {"subject", std::move(subject)},
                      {"customData", custom_data},
                      {"customDataContentType", string_spec()}},
                     {"context", "subject"}, false);
}

const Spec& spec_for(ConsumedType type) {
  static const Spec artifact_published = event_spec(
      kArtifactPublishedType,
      object_spec({{"sbom", object_spec({{"uri", string_spec(1, Format::kUriReference)}}, {"uri"}, false)},
                   {"user", string_spec(1)}},
                  {}, false));
  static const Spec build_finished =
      event_spec(kBuildFinishedType, object_spec({{"artifactId", string_spec()}}, {}, false));
  static const Spec pipelinerun_finished =
      event_spec(kPipelineRunFinishedType, object_spec({{"pipelineName", string_spec()},
                                                        {"uri", string_spec(0, Format::kUri)},
                                                        {"outcome", enum_spec({"success", "failure", "cancel", "error"})},
                                                        {"errors", string_spec()}},
                                                       {}, false));
  switch (type) {
    case ConsumedType::kArtifactPublished: return artifact_published;
    case ConsumedType::kBuildFinished: return build_finished;
    case ConsumedType::kPipelineRunFinished: return pipelinerun_finished;
  }
  return artifact_published;  // unreachable
}

// JSON Pointer escaping of one reference token.
std::string pointer_token(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

std::string type_word(JsonType type) {
  switch (type) {
    case JsonType::kString: return "a string";
    case JsonType::kObject: return "an object";
    case JsonType::kArray: return "an array";
    case JsonType::kAny: return "any value";
  }
  return "any value";
}

bool has_type(const json& value, JsonType type) {
  switch (type) {
    case JsonType::kString: return value.is_string();
    case JsonType::kObject: return value.is_object();
    case JsonType::kArray: return value.is_array();
    case JsonType::kAny: return true;
  }
  return true;
}

void validate(const json& value, const Spec& spec, const std::string& path, std::vector<Problem>& problems);

void validate_links(const json& value, const std::string& path, std::vector<Problem>& problems) {
  static const std::array<Spec, 3> shapes = {link_spec("END"), link_spec("PATH"), link_spec("RELATION")};
  for (std::size_t i = 0; i < value.size(); ++i) {
    const std::string item_path = path + "/" + std::to_string(i);
    const json& item = value[i];
    if (!item.is_object()) {
      problems.push_back({item_path, "expected an object (a link), found " + std::string(item.type_name())});
      continue;
    }
    bool matched = false;
    std::vector<Problem> closest;
    for (const Spec& shape : shapes) {
      std::vector<Problem> found;
      validate(item, shape, item_path, found);
      if (found.empty()) {
        matched = true;
        break;
      }
      // The shape whose linkType the item names explains best why it fails.
      const auto link_type = item.find("linkType");
      if (link_type != item.end() && link_type->is_string() && shape.properties[0].second.enumeration[0] == *link_type) {
        closest = std::move(found);
      }
    }
    if (matched) continue;
    if (!closest.empty()) {
      problems.insert(problems.end(), closest.begin(), closest.end());
    } else {
      problems.push_back({item_path, "not a link: linkType must be \"END\", \"PATH\" or \"RELATION\""});
    }
  }
}

void validate(const json& value, const Spec& spec, const std::string& path, std::vector<Problem>& problems) {
  const std::string where = path.empty() ? "/" : path;
  if (spec.special == Spec::Special::kCustomData) {
    // oneOf: an object, or a (base64) string; contentEncoding is an annotation.
    if (!value.is_object() && !value.is_string()) {
      problems.push_back({where, std::string("expected an object or a string, found ") + value.type_name()});
    }
    return;
  }
  if (!has_type(value, spec.type)) {
    problems.push_back({where, "expected " + type_word(spec.type) + ", found " + value.type_name()});
    return;
  }
  if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    if (text.size() < spec.min_length) problems.push_back({where, "must not be empty"});
    if (!spec.enumeration.empty() &&
        std::find(spec.enumeration.begin(), spec.enumeration.end(), text) == spec.enumeration.end()) {
      std::string choices;
      for (const auto& choice : spec.enumeration) choices += (choices.empty() ? "" : ", ") + ("\"" + choice + "\"");
      problems.push_back({where, "\"" + text + "\" is not one of " + choices});
    }
    switch (spec.format) {
      case Format::kNone: break;
      case Format::kDateTime:
        if (!events::parse_rfc3339(text)) problems.push_back({where, "\"" + text + "\" is not an RFC 3339 date-time"});
        break;
      case Format::kUri:
        if (!is_uri(text)) problems.push_back({where, "\"" + text + "\" is not a URI"});
        break;
      case Format::kUriReference:
        if (!is_uri_reference(text)) problems.push_back({where, "\"" + text + "\" is not a URI reference"});
        break;
    }
  }
  if (spec.special == Spec::Special::kLinksArray) {
    validate_links(value, path, problems);
    return;
  }
  if (!value.is_object()) return;
  for (const std::string& name : spec.required) {
    if (!value.contains(name)) problems.push_back({where, "missing required field '" + name + "'"});
  }
  for (const auto& item : value.items()) {
    const std::string item_path = path + "/" + pointer_token(item.key());
    const auto known = std::find_if(spec.properties.begin(), spec.properties.end(),
                                    [&](const auto& property) { return property.first == item.key(); });
    if (known != spec.properties.end()) {
      validate(item.value(), known->second, item_path, problems);
    } else if (!spec.additional_properties) {
      problems.push_back({item_path, "unknown field '" + item.key() + "' (the schema allows no others)"});
    }
  }
}

bool is_hex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// RFC 3986: unreserved / sub-delims / ":" / "@" / "/" / "?" / "#" / "[" "]" and %HH.
bool uri_characters_valid(std::string_view text) {
  static constexpr std::string_view kAllowed = "-._~!$&'()*+,;=:@/?#[]";
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size() || !is_hex(text[i + 1]) || !is_hex(text[i + 2])) return false;
      i += 2;
    } else if (!is_alpha(c) && !is_digit(c) && kAllowed.find(c) == std::string_view::npos) {
      return false;
    }
  }
  // '#' only once, brackets only around an IP literal host: kept simple, the
  // fragment may not hold another '#'.
  const auto hash = text.find('#');
  return hash == std::string_view::npos || text.find('#', hash + 1) == std::string_view::npos;
}

// The length of a valid scheme followed by ':' at the start, or 0.
std::size_t scheme_length(std::string_view text) {
  if (text.empty() || !is_alpha(text[0])) return 0;
  std::size_t i = 1;
  while (i < text.size() && (is_alpha(text[i]) || is_digit(text[i]) || text[i] == '+' || text[i] == '-' || text[i] == '.')) {
    ++i;
  }
  return i < text.size() && text[i] == ':' ? i : 0;
}

std::string percent_decode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && is_hex(text[i + 1]) && is_hex(text[i + 2])) {
      out += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

const std::string* string_member(const json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? &it->get_ref<const std::string&>() : nullptr;
}

Reading skipped(std::string reason, std::string detail) {
  Reading r;
  r.kind = Reading::Kind::kSkipped;
  r.reason = std::move(reason);
  r.detail = std::move(detail);
  return r;
}

Reading invalid(std::string reason, std::string detail) {
  Reading r;
  r.kind = Reading::Kind::kInvalid;
  r.reason = std::move(reason);
  r.detail = std::move(detail);
  return r;
}

}  // namespace

std::optional<ConsumedType> consumed_type(std::string_view type) {
  // dev.cdevents.<subject>.<predicate>.<major>.<minor>.<patch>
  constexpr std::string_view kPrefix = "dev.cdevents.";
  if (type.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  std::vector<std::string_view> parts;
  std::string_view rest = type.substr(kPrefix.size());
  for (std::size_t dot; (dot = rest.find('.')) != std::string_view::npos; rest.remove_prefix(dot + 1)) {
    parts.push_back(rest.substr(0, dot));
  }
  parts.push_back(rest);
  if (parts.size() != 5 || parts[2] != "0") return std::nullopt;
  const std::string kind = std::string(parts[0]) + "." + std::string(parts[1]);
  if (kind == "artifact.published") return ConsumedType::kArtifactPublished;
  if (kind == "build.finished") return ConsumedType::kBuildFinished;
  if (kind == "pipelinerun.finished") return ConsumedType::kPipelineRunFinished;
  return std::nullopt;
}

std::vector<Problem> schema_problems(const json& cdevent, ConsumedType type) {
  std::vector<Problem> problems;
  validate(cdevent, spec_for(type), "", problems);
  return problems;
}

Result<PackageUrl> parse_purl(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return make_error(ErrorCode::kInvalidArgument, "'" + std::string(text) + "' is not a package URL: " + why);
  };
  if (text.size() < 4 || !std::equal(text.begin(), text.begin() + 4, "pkg:", [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) == b;
      })) {
    return bad("it must start with pkg:");
  }
  std::string_view rest = text.substr(4);
  while (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
  if (const auto hash = rest.find('#'); hash != std::string_view::npos) rest = rest.substr(0, hash);
  if (const auto query = rest.find('?'); query != std::string_view::npos) rest = rest.substr(0, query);
  PackageUrl purl;
  const auto at = rest.rfind('@');
  const auto last_slash = rest.rfind('/');
  if (at != std::string_view::npos && (last_slash == std::string_view::npos || at > last_slash)) {
    purl.version = percent_decode(rest.substr(at + 1));
    rest = rest.substr(0, at);
    if (purl.version.empty()) return bad("empty version after '@'");
  }
  const auto slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0) return bad("expected pkg:<type>/<name>");
  std::string type(rest.substr(0, slash));
  if (!is_alpha(type[0]) || !std::all_of(type.begin(), type.end(), [](char c) {
        return is_alpha(c) || is_digit(c) || c == '.' || c == '+' || c == '-';
      })) {
    return bad("invalid type '" + type + "'");
  }
  std::transform(type.begin(), type.end(), type.begin(), [](unsigned char c) { return std::tolower(c); });
  std::string_view path = rest.substr(slash + 1);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  if (path.empty() || path.substr(path.rfind('/') == std::string_view::npos ? 0 : path.rfind('/') + 1).empty()) {
    return bad("no name");
  }
  if (!uri_characters_valid(path)) return bad("invalid characters in the name");
  purl.type = type;
  purl.base = "pkg:" + type + "/" + std::string(path);
  return purl;
}

bool is_uri(std::string_view text) { return scheme_length(text) > 0 && uri_characters_valid(text); }

bool is_uri_reference(std::string_view text) {
  if (!uri_characters_valid(text)) return false;
  // A ':' before any '/', '?' or '#' makes the text a URI, whose scheme must be valid.
  const auto colon = text.find(':');
  const auto delimiter = text.find_first_of("/?#");
  if (colon != std::string_view::npos && (delimiter == std::string_view::npos || colon < delimiter)) {
    return scheme_length(text) > 0;
  }
  return true;
}

Reading read_build_announcement(const json& cdevent) {
  const std::string* type_text =
      cdevent.is_object() && cdevent.contains("context") ? string_member(cdevent["context"], "type") : nullptr;
  if (type_text == nullptr) {
    return invalid("schema", "/context/type: missing: not a CDEvent");
  }
  const std::optional<ConsumedType> type = consumed_type(*type_text);
  if (!type) return skipped("unsupported_type", "type " + *type_text + " does not announce a build");
  std::vector<Problem> problems = schema_problems(cdevent, *type);
  if (!problems.empty()) {
    std::string detail;
    for (const Problem& p : problems) detail += (detail.empty() ? "" : "; ") + p.path + ": " + p.message;
    return invalid("schema", detail);
  }

  const json& context = cdevent["context"];
  const json& subject = cdevent["subject"];
  const json& content = subject["content"];
  static const json kNoCustomData = json::object();
  const json& custom = cdevent.contains("customData") && cdevent["customData"].is_object() ? cdevent["customData"]
                                                                                            : kNoCustomData;
  BuildAnnouncement a;
  a.cdevent = {context["id"].get<std::string>(), context["source"].get<std::string>(), *type_text};
  a.subject_id = subject["id"].get<std::string>();
  if (const auto* source = string_member(subject, "source")) a.subject_source = *source;
  const auto built_at = events::parse_rfc3339(context["timestamp"].get<std::string>());
  a.built_at = built_at ? built_at.value() : 0;

  switch (*type) {
    case ConsumedType::kArtifactPublished: a.artifact_id = a.subject_id; break;
    case ConsumedType::kBuildFinished:
      if (const auto* id = string_member(content, "artifactId"); id && !id->empty()) a.artifact_id = *id;
      if (a.artifact_id.empty()) return skipped("no_artifact", "build.finished without subject.content.artifactId");
      break;
    case ConsumedType::kPipelineRunFinished: {
      const auto* outcome = string_member(content, "outcome");
      if (outcome == nullptr || *outcome != "success") {
        return skipped("not_successful", "pipelinerun.finished with outcome " + (outcome ? *outcome : "absent"));
      }
      if (const auto* id = string_member(custom, "artifactId"); id && !id->empty()) a.artifact_id = *id;
      if (a.artifact_id.empty()) {
        return skipped("no_artifact", "pipelinerun.finished without customData.artifactId");
      }
      break;
    }
  }
  auto purl = parse_purl(a.artifact_id);
  if (!purl) return invalid("artifact_id", purl.error().message);
  if (purl.value().version.empty()) {
    return invalid("artifact_id", "'" + a.artifact_id + "' has no @version: the release's version comes from it");
  }
  // Checked after percent-decoding: "%3B" is as much a ';' as ';' is.
  if (auto problem = engine::artifact_version_problem(purl.value().version)) {
    return invalid("artifact_id", "the version of the purl (after percent-decoding) " + *problem);
  }
  a.artifact = std::move(purl.value());

  for (const char* field : {"branch", "uri"}) {
    if (!custom.contains(field)) continue;
    const auto* text = string_member(custom, field);
    if (text == nullptr || text->empty()) {
      return invalid("custom_data", std::string("/customData/") + field + ": expected a non-empty string");
    }
  }
  if (const auto* branch = string_member(custom, "branch")) a.branch = *branch;
  if (const auto* uri = string_member(custom, "uri")) {
    if (!is_uri_reference(*uri)) return invalid("custom_data", "/customData/uri: \"" + *uri + "\" is not a URI reference");
    a.artifact_uri = *uri;
  }
  Reading r;
  r.kind = Reading::Kind::kAnnouncement;
  r.announcement = std::move(a);
  return r;
}

}  // namespace cascade::adapters::kafka
