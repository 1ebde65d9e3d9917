#include "adapters/http/router.hpp"

#include <algorithm>
#include <set>

namespace cascade::adapters::http {

namespace {

bool valid_method(std::string_view method) {
  return !method.empty() && method.size() <= 32 &&
         std::all_of(method.begin(), method.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

bool valid_param_name(std::string_view name) {
  if (name.empty()) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (!alpha(name[0])) return false;
  return std::all_of(name.begin(), name.end(), [&](char c) { return alpha(c) || (c >= '0' && c <= '9'); });
}

// "/a/b" → {"a", "b"}; "/" → {}. REQUIRES: path starts with '/'.
std::vector<std::string_view> split(std::string_view path) {
  std::vector<std::string_view> parts;
  if (path == "/") return parts;
  path.remove_prefix(1);
  while (true) {
    auto slash = path.find('/');
    parts.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return parts;
}

}  // namespace

Status Router::add(std::string_view method, std::string_view pattern, Role required_role, Handler handler) {
  return add_route(method, pattern, required_role, std::move(handler));
}

Status Router::add_public(std::string_view method, std::string_view pattern, Handler handler) {
  return add_route(method, pattern, std::nullopt, std::move(handler));
}

Status Router::add_with_quick_path(std::string_view method, std::string_view pattern, Role required_role,
                                   QuickHandler quick, Handler handler) {
  if (!quick) return make_error(ErrorCode::kInvalidArgument, "route " + std::string(pattern) + ": empty quick handler");
  CASCADE_TRY(add_route(method, pattern, required_role, std::move(handler)));
  routes_.back().quick = std::move(quick);
  return outcome::success();
}

Status Router::add_route(std::string_view method, std::string_view pattern, std::optional<Role> role, Handler handler) {
  const std::string where = std::string(method) + " " + std::string(pattern);
  if (!valid_method(method)) {
    return make_error(ErrorCode::kInvalidArgument, where + ": the method must be an upper-case token");
  }
  if (!handler) return make_error(ErrorCode::kInvalidArgument, where + ": no handler");
  if (pattern.empty() || pattern.front() != '/') {
    return make_error(ErrorCode::kInvalidArgument, where + ": the pattern must start with '/'");
  }
  std::vector<Segment> segments;
  std::set<std::string, std::less<>> names;
  for (auto part : split(pattern)) {
    if (part.empty()) return make_error(ErrorCode::kInvalidArgument, where + ": empty path segment");
    if (part.front() == '{' || part.back() == '}') {
      std::string_view name = part.size() >= 2 ? part.substr(1, part.size() - 2) : std::string_view();
      if (part.front() != '{' || part.back() != '}' || !valid_param_name(name)) {
        return make_error(ErrorCode::kInvalidArgument,
                          where + ": malformed parameter '" + std::string(part) + "' (expected {name})");
      }
      if (!names.emplace(name).second) {
        return make_error(ErrorCode::kInvalidArgument, where + ": parameter '" + std::string(name) + "' repeated");
      }
      segments.push_back({true, std::string(name)});
    } else {
      if (part.find_first_of("{}%") != std::string_view::npos) {
        return make_error(ErrorCode::kInvalidArgument,
                          where + ": literal segment '" + std::string(part) + "' holds '{', '}' or '%'");
      }
      segments.push_back({false, std::string(part)});
    }
  }
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    if (routes_[i].method != method || segments_[i].size() != segments.size()) continue;
    bool same_shape =
        std::equal(segments.begin(), segments.end(), segments_[i].begin(), [](const Segment& a, const Segment& b) {
          return a.is_param == b.is_param && (a.is_param || a.text == b.text);
        });
    if (same_shape) {
      return make_error(ErrorCode::kAlreadyExists,
                        where + ": already routed as " + routes_[i].method + " " + routes_[i].pattern);
    }
  }
  routes_.push_back(Route{std::string(method), std::string(pattern), role, std::move(handler)});
  segments_.push_back(std::move(segments));
  return success();
}

Result<RouteMatch> Router::match(std::string_view method, std::string_view raw_path) const {
  RouteMatch result;
  if (raw_path.empty() || raw_path.front() != '/') return result;
  std::vector<std::string> parts;
  for (auto part : split(raw_path)) {
    auto decoded = percent_decode(part, false);
    if (!decoded) {
      return make_error(ErrorCode::kInvalidArgument, "malformed path: " + decoded.error().message);
    }
    parts.push_back(std::move(decoded).value());
  }

  std::set<std::string> other_methods;
  std::vector<bool> best_shape;  // per segment: literal (true) beats parameter
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    const auto& segments = segments_[i];
    if (segments.size() != parts.size()) continue;
    std::vector<bool> shape(parts.size());
    bool matches = true;
    for (std::size_t s = 0; s < parts.size() && matches; ++s) {
      shape[s] = !segments[s].is_param;
      matches = segments[s].is_param ? !parts[s].empty() : segments[s].text == parts[s];
    }
    if (!matches) continue;
    if (routes_[i].method != method) {
      other_methods.insert(routes_[i].method);
      continue;
    }
    if (result.route == nullptr || shape > best_shape) {
      result.route = &routes_[i];
      best_shape = std::move(shape);
      result.params.clear();
      for (std::size_t s = 0; s < parts.size(); ++s) {
        if (segments[s].is_param) result.params.emplace(segments[s].text, parts[s]);
      }
    }
  }
  if (result.route != nullptr) {
    result.kind = RouteMatch::Kind::kFound;
  } else if (!other_methods.empty()) {
    result.kind = RouteMatch::Kind::kMethodNotAllowed;
    result.allowed_methods.assign(other_methods.begin(), other_methods.end());
  }
  return result;
}

void Router::resolve_param(std::string name, ParamResolver resolver) { resolvers_[std::move(name)] = std::move(resolver); }

Status Router::resolve(std::map<std::string, std::string, std::less<>>& params, bool may_block) const {
  for (auto& [name, value] : params) {
    const auto resolver = resolvers_.find(name);
    if (resolver == resolvers_.end()) continue;
    CASCADE_TRY(resolved, resolver->second(value, may_block));
    value = std::move(resolved);
  }
  return success();
}

}  // namespace cascade::adapters::http
