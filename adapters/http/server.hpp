// The HTTP/1.1 server of `cascade serve`. Beast and Asio live only in
// server.cpp: this header is cheap to include.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "adapters/http/auth.hpp"
#include "adapters/metrics/metrics.hpp"
#include "adapters/http/router.hpp"
#include "events/result.hpp"

namespace cascade::adapters::http {

struct ServerOptions {
  std::string address = "127.0.0.1";  // IPv4 or IPv6 literal
  std::uint16_t port = 0;             // 0: an ephemeral port (see HttpServer::port())

  // HTTPS when both are set: PEM files holding the certificate chain (leaf
  // first) and its private key, which every user may not read. Re-read by
  // HttpServer::reload_tls().
  std::string tls_certificate_file;
  std::string tls_private_key_file;
  // Without TLS the server listens on loopback addresses only, unless this is
  // set (a TLS-terminating proxy in front): a bearer token must not cross a
  // network in clear text by accident.
  bool allow_insecure_http = false;

  // Threads running the sockets (reading, writing, routing, authentication).
  // They never run handlers, so blocked handlers cannot stop the server from
  // answering 429 or serving health probes.
  int io_threads = 1;
  // Threads running route handlers.
  int worker_threads = 2;

  // Open connections at once, and from one client address; a connection past
  // either is closed as soon as it is accepted, and counted in
  // cascade_http_connections_refused_total{reason="server"|"client"}.
  std::size_t max_connections = 1024;
  std::size_t max_connections_per_client = 128;

  std::size_t max_body_bytes = 1 << 20;     // larger bodies: 413, connection closed
  std::size_t max_header_bytes = 16 << 10;  // request line + header fields; larger: 431, closed
  // From a request's first byte to its last; a client slower than this is
  // disconnected without a response.
  std::chrono::milliseconds read_timeout{10'000};
  // How long a keep-alive connection may wait for its next request's first byte.
  std::chrono::milliseconds idle_timeout{30'000};
  // For each write; a client that does not read is disconnected.
  std::chrono::milliseconds write_timeout{10'000};

  // Requests admitted at once, from admission until their handler returns
  // (queued for a worker or running). Beyond it: 429 with Retry-After.
  // Public routes (health probes), 404/405 and 401/403 are answered on the
  // I/O threads and not counted.
  std::size_t max_concurrent_requests = 64;
  std::chrono::seconds retry_after{1};
  // Open event streams at once, and of one user; beyond either the stream is
  // closed and 429 sent (cascade_http_streams_refused_total{reason="server"|"user"}).
  std::size_t max_streams = 256;
  std::size_t max_streams_per_user = 16;
  // An event stream ends after this long (its client resumes with
  // Last-Event-ID; cascade_http_streams_expired_total). 0: no limit.
  std::chrono::milliseconds max_stream_lifetime{std::chrono::hours(1)};
  // A comment is written to an event stream that has been quiet this long.
  std::chrono::milliseconds sse_keepalive_interval{15'000};

  // stop(): how long in-flight requests and event streams get to finish.
  std::chrono::milliseconds stop_grace{5'000};

  // Problems the server cannot report to a client (a handler's exception,
  // an accept failure). Called from server threads; must be thread-safe.
  // Messages never contain header values, so never a token. Empty: discarded.
  std::function<void(std::string_view)> log;
};

// An HTTP/1.1 server with keep-alive, routing, bearer-token authentication,
// limits and metrics.
//
// For each request: routing (404, 405 with Allow), authentication for
// non-public routes (401 with WWW-Authenticate: Bearer) and authorisation
// against the route's role (403), admission (429), then the handler on a
// worker thread. No request can crash the server: parse errors, limits and
// timeouts close the connection, handler exceptions become 500, and the
// handler's Response is validated before it is sent.
//
// It records cascade_http_requests_total{route,method,code} and
// cascade_http_request_duration_seconds{route,method} (from the request's
// last byte to its response's last byte; for an event stream, to its header)
// in the registry it is given. `route` is the matched pattern or "unmatched";
// `method` is a standard method or "other", so clients cannot mint series.
//
// Thread-safe.
class HttpServer {
 public:
  // Binds, listens and starts serving. `authenticator` may be null: every
  // non-public route then answers 401. `metrics` may be null: the server makes
  // its own (see metrics()). kInvalidArgument for a bad address, option or
  // TLS file, or for plain HTTP on a non-loopback address not allowed;
  // kUnavailable when the address cannot be bound.
  static Result<std::unique_ptr<HttpServer>> start(ServerOptions options, Router router,
                                                   std::shared_ptr<const Authenticator> authenticator,
                                                   std::shared_ptr<metrics::MetricsRegistry> metrics = nullptr);

  // Stops as stop() does.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The bound port (the ephemeral one when options.port was 0).
  std::uint16_t port() const;
  // Replaces who may sign in (the users file re-read on SIGHUP): every later
  // request is authenticated against `authenticator`, including the next one
  // of a connection that authenticated before. Thread-safe.
  void replace_authenticator(std::shared_ptr<const Authenticator> authenticator);

  metrics::MetricsRegistry& metrics();

  // Re-reads the TLS certificate and key (a renewed certificate, on SIGHUP):
  // later connections use them, open ones keep theirs. On an error the
  // current ones stay. kFailedPrecondition when serving plain HTTP.
  Status reload_tls();

  // Graceful stop: stops accepting at once; closes idle keep-alive connections
  // and connections still sending a request; lets admitted requests finish and
  // write their responses (with Connection: close) and ends event streams, for
  // at most options.stop_grace; then closes every connection and returns.
  // Handlers still running after the grace period are waited for (a thread
  // cannot be interrupted), but their responses are not sent. Idempotent.
  // REQUIRES: not called from a handler or an on_close callback.
  void stop();

 private:
  class Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cascade::adapters::http
