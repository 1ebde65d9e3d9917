// Method + path-pattern routing with parameters.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/http/auth.hpp"
#include "adapters/http/request.hpp"
#include "events/result.hpp"

namespace cascade::adapters::http {

// A route handler. It runs on one of the server's worker threads, may block
// (a command waiting for its events to be durable), and may throw: an
// exception becomes a 500. An error Result becomes error_response(error).
using Handler = std::function<Result<Response>(const Request&)>;

// A fast path for a read that usually needs no waiting: tried on the
// server's I/O thread (after authentication and admission), it answers, or
// returns nullopt to hand the request to the route's Handler on a worker.
// It must never block (a RocksDB point read is fine; a wait is not) and
// must not throw. It saves the two thread hand-offs a worker costs.
using QuickHandler = std::function<std::optional<Result<Response>>(const Request&)>;

// Turns the value a client gave for a route parameter into the one the
// handlers use (a release's display name into its id), or an error to answer.
// `may_block` false: on the I/O thread, answer from what is there now; true:
// on a worker, where a bounded wait (for a read model) is allowed.
using ParamResolver = std::function<Result<std::string>(const std::string& value, bool may_block)>;

struct Route {
  std::string method;
  std::string pattern;
  // The least role a caller needs; nullopt for a public route (health probes),
  // which is served without authentication.
  std::optional<Role> required_role;
  Handler handler;
  QuickHandler quick = {};  // optional; see QuickHandler
};

// The outcome of routing one request.
struct RouteMatch {
  enum class Kind { kFound, kNotFound, kMethodNotAllowed };
  Kind kind = Kind::kNotFound;
  const Route* route = nullptr;                            // kFound: the route (owned by the router)
  std::map<std::string, std::string, std::less<>> params;  // kFound: decoded parameters
  std::vector<std::string> allowed_methods;                // kMethodNotAllowed: sorted, for Allow
};

// Routes requests by method and path. A pattern is '/'-separated segments,
// each a literal or a parameter "{name}" matching one whole non-empty segment:
// "/api/v1/releases/{id}/stages/{stage}/approvals". Matching is exact: no
// trailing-slash folding, no prefixes. When several patterns match a path, the
// most specific wins — at the first segment where they differ, a literal beats
// a parameter — so "/releases/latest" can coexist with "/releases/{id}".
//
// Not thread-safe while routes are added; after that (once handed to the
// server) it is only read, from any thread.
class Router {
 public:
  // Adds a route needing `required_role`. kInvalidArgument for a method that is
  // not an upper-case token, a pattern that does not start with '/', an empty
  // segment, a malformed or repeated parameter name ([A-Za-z_][A-Za-z0-9_]*),
  // or an empty handler; kAlreadyExists when the same method already has a
  // pattern of the same shape (patterns differing only in parameter names).
  Status add(std::string_view method, std::string_view pattern, Role required_role, Handler handler);
  // The same for a route served without authentication and outside the
  // admission limit, on the server's I/O thread — so health probes answer even
  // when every worker is busy. REQUIRES: the handler is quick and never blocks.
  Status add_public(std::string_view method, std::string_view pattern, Handler handler);
  // As add(), with a fast path tried first on the I/O thread (QuickHandler).
  // kInvalidArgument also for an empty `quick`.
  Status add_with_quick_path(std::string_view method, std::string_view pattern, Role required_role, QuickHandler quick,
                             Handler handler);

  // Routes `raw_path` (still percent-encoded, without the query). Each segment
  // is decoded before it is compared or captured, so "%2F" stays inside one
  // parameter. kFound: the most specific route for this method; else
  // kMethodNotAllowed when some route of another method matches the path
  // (allowed_methods lists their methods); else kNotFound. kInvalidArgument
  // when a segment is not valid percent-encoding.
  Result<RouteMatch> match(std::string_view method, std::string_view raw_path) const;

  const std::vector<Route>& routes() const { return routes_; }

  // Every route's parameter `name` goes through `resolver` before the route's
  // quick path or handler sees it — after authentication, so an anonymous
  // caller learns nothing from it: once on the I/O thread before the quick
  // path (may_block false), and again on the worker before the handler
  // (may_block true; a resolved value must resolve to itself). One resolver
  // per name; a later one replaces it.
  void resolve_param(std::string name, ParamResolver resolver);
  // Applies the resolvers to `params` in place; the first error is returned.
  Status resolve(std::map<std::string, std::string, std::less<>>& params, bool may_block) const;

 private:
  Status add_route(std::string_view method, std::string_view pattern, std::optional<Role> role, Handler handler);

  struct Segment {
    bool is_param = false;
    std::string text;  // the literal, or the parameter's name
  };
  std::vector<Route> routes_;
  std::vector<std::vector<Segment>> segments_;  // parallel to routes_
  std::map<std::string, ParamResolver, std::less<>> resolvers_;
};

}  // namespace cascade::adapters::http
