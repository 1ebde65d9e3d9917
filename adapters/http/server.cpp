// The server on Boost.Beast and Asio.
//
// Threads: `io_threads` run the io_context (accepting, reading, writing,
// routing, authentication, public handlers, SSE writes); `worker_threads` run
// the other handlers, so a blocked handler never stalls I/O. Each connection
// is a Session whose callbacks run on its own strand.
//
// A session loops: wait for a request's first byte (idle timeout) → read the
// request (read timeout, header and body limits) → route, authenticate,
// authorise, admit → handler on a worker → write the response (write timeout)
// → again, unless the connection is to close. An event stream instead writes
// a chunked text/event-stream response until it ends, then closes.
#include "adapters/http/server.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <sys/stat.h>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <future>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include "adapters/http/errors.hpp"
#include "adapters/http/sse_internal.hpp"
#include "adapters/http/sse_stream.hpp"

namespace cascade::adapters::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

namespace {

constexpr std::string_view kUnmatched = "unmatched";
// After an early error response (413, 431, 400) the unread rest of the request
// is read and discarded for at most this long and this much, so that closing
// the socket does not reset the connection before the client reads the answer.
constexpr std::chrono::milliseconds kMaxLinger{2'000};
constexpr std::size_t kMaxLingerBytes = 8 << 20;

std::string method_label(std::string_view method) {
  static const std::set<std::string_view> kStandard = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                                       "CONNECT", "OPTIONS", "TRACE", "PATCH"};
  return kStandard.count(method) != 0 ? std::string(method) : "other";
}

// Beast 1.74 speaks boost::string_view.
std::string_view sv(beast::string_view s) { return std::string_view(s.data(), s.size()); }

bool iequals(std::string_view a, std::string_view b) {
  return beast::iequals(beast::string_view(a.data(), a.size()), beast::string_view(b.data(), b.size()));
}

bool is_token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool valid_header_value(std::string_view value) {
  return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

// A handler's response may not break the framing or inject header lines.
std::optional<std::string> invalid_response(const Response& response) {
  if (response.stream == nullptr && (response.status < 200 || response.status > 599)) {
    return "status " + std::to_string(response.status) + " is not a final status";
  }
  if (!valid_header_value(response.content_type)) return std::string("the content type holds CR, LF or NUL");
  for (const auto& [name, value] : response.headers) {
    if (name.empty() || !std::all_of(name.begin(), name.end(), is_token_char)) {
      return "header name '" + name + "' is not a token";
    }
    if (!valid_header_value(value)) return "header '" + name + "' holds CR, LF or NUL";
    for (std::string_view framing : {"content-length", "transfer-encoding", "connection"}) {
      if (iequals(name, framing)) return "header '" + name + "' is set by the server";
    }
  }
  return std::nullopt;
}

bool is_parse_error(const beast::error_code& ec) {
  if (ec.category() != bhttp::make_error_code(bhttp::error::bad_target).category()) return false;
  return ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message && ec != bhttp::error::short_read &&
         ec != bhttp::error::need_more;
}

Response internal_error() { return error_response(500, to_string(ErrorCode::kInternal), "internal error"); }

// The server's TLS context from PEM files: TLS 1.2 or later, the chain's
// leaf first, a key that matches it and that not every user can read.
Result<std::shared_ptr<ssl::context>> load_tls_context(const std::string& certificate_file,
                                                       const std::string& private_key_file) {
  struct stat key_status {};
  if (::stat(private_key_file.c_str(), &key_status) != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "cannot read the TLS private key " + private_key_file + ": " + std::strerror(errno));
  }
  if ((key_status.st_mode & S_IRWXO) != 0) {
    return make_error(ErrorCode::kInvalidArgument, "the TLS private key " + private_key_file +
                                                       " is readable by every user: chmod o-rwx " + private_key_file);
  }
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                       ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
  beast::error_code ec;
  context->use_certificate_chain_file(certificate_file, ec);
  if (ec) {
    return make_error(ErrorCode::kInvalidArgument,
                      "cannot use the TLS certificate " + certificate_file + ": " + ec.message());
  }
  context->use_private_key_file(private_key_file, ssl::context::pem, ec);
  if (ec) {
    return make_error(ErrorCode::kInvalidArgument,
                      "cannot use the TLS private key " + private_key_file + ": " + ec.message());
  }
  if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
    return make_error(ErrorCode::kInvalidArgument, "the TLS private key " + private_key_file +
                                                       " does not match the certificate " + certificate_file);
  }
  return context;
}

}  // namespace

class HttpServer::Impl {
 public:
  // What the server asks of a connection, whatever it runs over.
  class SessionBase {
   public:
    virtual ~SessionBase() = default;
    virtual void start() = 0;
    virtual void on_server_stop() = 0;
    virtual void force_close() = 0;
  };
  template <class Stream>
  class Session;

  Impl(ServerOptions options, Router router, std::shared_ptr<const Authenticator> authenticator,
       std::shared_ptr<metrics::MetricsRegistry> metrics)
      : options_(std::move(options)),
        router_(std::move(router)),
        authenticator_(std::move(authenticator)),
        metrics_(metrics ? std::move(metrics) : std::make_shared<metrics::MetricsRegistry>()),
        acceptor_(net::make_strand(ioc_)),
        accept_retry_(acceptor_.get_executor()),
        work_(net::make_work_guard(ioc_)),
        workers_(static_cast<std::size_t>(std::max(1, options_.worker_threads))) {}

  ~Impl() { stop(); }

  Status listen();
  void stop();

  std::uint16_t port() const { return port_; }
  metrics::MetricsRegistry& metrics() { return *metrics_; }
  const ServerOptions& options() const { return options_; }
  const Router& router() const { return router_; }
  std::shared_ptr<const Authenticator> authenticator() const { return std::atomic_load(&authenticator_); }
  // Counts replacements, so a connection's remembered credential is checked
  // afresh once the users changed.
  std::uint64_t users_generation() const { return users_generation_.load(); }
  void replace_authenticator(std::shared_ptr<const Authenticator> authenticator) {
    std::atomic_store(&authenticator_, std::move(authenticator));
    ++users_generation_;
  }
  bool stopping() const { return stopping_.load(); }
  net::thread_pool& workers() { return workers_; }

  // The certificate new connections are accepted with (null: plain HTTP).
  std::shared_ptr<ssl::context> tls_context() const { return std::atomic_load(&tls_); }
  // Re-reads the certificate and key files; connections already open keep
  // the context they were accepted with.
  Status reload_tls() {
    if (options_.tls_certificate_file.empty()) {
      return make_error(ErrorCode::kFailedPrecondition, "the server was started without TLS");
    }
    CASCADE_TRY(context, load_tls_context(options_.tls_certificate_file, options_.tls_private_key_file));
    std::atomic_store(&tls_, std::move(context));
    return success();
  }
  void count_tls_handshake_failure() { tls_handshake_failures_->inc(); }

  void log(std::string_view message) const {
    if (!options_.log) return;
    try {
      options_.log(message);
    } catch (...) {
      // Logging must never take a connection down.
    }
  }

  void record(std::string_view route, std::string_view method, int status, SteadyClock::time_point since) {
    const std::string route_label(route);
    requests_total_->with({route_label, method_label(method), std::to_string(status)}).inc();
    const double seconds = std::chrono::duration<double>(SteadyClock::now() - since).count();
    request_duration_->with({route_label, method_label(method)}).observe(seconds);
  }

  bool try_admit() {
    std::lock_guard lock(mutex_);
    if (admitted_ >= options_.max_concurrent_requests) return false;
    ++admitted_;
    return true;
  }
  void release_admission() {
    std::lock_guard lock(mutex_);
    --admitted_;
    changed_.notify_all();
  }

  // Streams a handler returned, until their session ends them; stop() ends
  // whatever is left, so no producer is left sending into a dead stream.
  void track_stream(const std::shared_ptr<SseStream>& stream) {
    std::lock_guard lock(mutex_);
    tracked_streams_.insert(stream);
  }
  void untrack_stream(const std::shared_ptr<SseStream>& stream) {
    std::lock_guard lock(mutex_);
    tracked_streams_.erase(stream);
  }
  // Responses being written; stop() lets them finish.
  void write_started() {
    std::lock_guard lock(mutex_);
    ++writing_;
  }
  void write_finished() {
    std::lock_guard lock(mutex_);
    --writing_;
    changed_.notify_all();
  }

  // Why `user` may not open another event stream ("server" or "user": which
  // cap it meets), or nullptr when it may. Counts it when it may.
  const char* try_open_stream(const std::string& user) {
    const char* refused = nullptr;
    {
      std::lock_guard lock(mutex_);
      if (open_streams_ >= options_.max_streams) {
        refused = "server";
      } else if (streams_by_user_[user] >= options_.max_streams_per_user) {
        refused = "user";
        if (streams_by_user_[user] == 0) streams_by_user_.erase(user);
      } else {
        ++open_streams_;
        ++streams_by_user_[user];
      }
    }
    if (refused != nullptr) streams_refused_->with({refused}).inc();
    return refused;
  }
  void stream_closed(const std::string& user) {
    std::lock_guard lock(mutex_);
    --open_streams_;
    auto it = streams_by_user_.find(user);
    if (it != streams_by_user_.end() && --it->second == 0) streams_by_user_.erase(it);
    changed_.notify_all();
  }
  void stream_expired() { streams_expired_->inc(); }

  // Why a new connection from `client` may not be opened ("server" or
  // "client": which cap it meets), or nullptr when it may. Counts it when it may.
  const char* admit_connection(const std::string& client) {
    std::lock_guard lock(mutex_);
    if (sessions_.size() >= options_.max_connections) return "server";
    std::size_t& from_client = connections_by_client_[client];
    if (from_client >= options_.max_connections_per_client) return "client";
    ++from_client;
    return nullptr;
  }
  void register_session(SessionBase* session, std::weak_ptr<SessionBase> weak) {
    std::lock_guard lock(mutex_);
    sessions_.emplace(session, std::move(weak));
  }
  void unregister_session(SessionBase* session, const std::string& client) {
    std::lock_guard lock(mutex_);
    sessions_.erase(session);
    auto it = connections_by_client_.find(client);
    if (it != connections_by_client_.end() && --it->second == 0) connections_by_client_.erase(it);
    changed_.notify_all();
  }

 private:
  void do_accept();
  void on_accept(const beast::error_code& ec, tcp::socket socket);
  void run_io();
  std::vector<std::shared_ptr<SessionBase>> live_sessions();
  void do_stop();

  const ServerOptions options_;
  const Router router_;
  std::shared_ptr<const Authenticator> authenticator_;  // read and replaced with std::atomic_load/store
  std::atomic<std::uint64_t> users_generation_{0};
  std::shared_ptr<ssl::context> tls_;  // read and replaced with std::atomic_load/store
  metrics::Counter* tls_handshake_failures_ = nullptr;
  const std::shared_ptr<metrics::MetricsRegistry> metrics_;
  metrics::CounterFamily* requests_total_ = nullptr;
  metrics::HistogramFamily* request_duration_ = nullptr;
  metrics::CounterFamily* connections_refused_ = nullptr;
  metrics::CounterFamily* streams_refused_ = nullptr;
  metrics::Counter* streams_expired_ = nullptr;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::once_flag stop_once_;

  // Declared before the io_context: sessions destroyed with it still use them.
  std::mutex mutex_;
  std::condition_variable changed_;
  std::size_t admitted_ = 0;
  std::size_t writing_ = 0;
  std::size_t open_streams_ = 0;
  std::map<std::string, std::size_t> streams_by_user_;
  std::size_t io_running_ = 0;
  std::unordered_map<SessionBase*, std::weak_ptr<SessionBase>> sessions_;
  std::unordered_map<std::string, std::size_t> connections_by_client_;  // by remote address
  std::set<std::shared_ptr<SseStream>> tracked_streams_;

  net::io_context ioc_;
  tcp::acceptor acceptor_;
  net::steady_timer accept_retry_;
  net::executor_work_guard<net::io_context::executor_type> work_;
  std::vector<std::thread> io_threads_;
  // Declared after the io_context, so it is joined before the io_context dies.
  net::thread_pool workers_;
};

template <class Stream>
class HttpServer::Impl::Session final : public HttpServer::Impl::SessionBase,
                                        public std::enable_shared_from_this<Session<Stream>> {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

  // REQUIRES: server.admit_connection(client) admitted it; `tls` is set when
  // Stream is TlsStream.
  Session(HttpServer::Impl& server, tcp::socket socket, std::string client, std::shared_ptr<ssl::context> tls)
      : server_(server), client_(std::move(client)), tls_(std::move(tls)),
        stream_(open_stream(std::move(socket), tls_.get())),
        keepalive_timer_(stream_.get_executor()),
        lifetime_timer_(stream_.get_executor()) {}

  ~Session() override { server_.unregister_session(this, client_); }

  void start() override {
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      self->guarded([&] {
        if constexpr (kTls) {
          self->handshake();
        } else {
          self->wait_for_request();
        }
      });
    });
  }

  // Posted by stop(): finish what was admitted, drop the rest.
  void on_server_stop() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] {
      self->guarded([&] {
        switch (self->state_) {
          case State::kIdle:
          case State::kReading:
            self->close();
            break;
          case State::kStreaming:
            self->sse_stop_ = true;
            self->flush_stream();
            break;
          default:  // handling or writing: the response is sent with Connection: close
            break;
        }
      });
    });
  }

  void force_close() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] { self->guarded([&] { self->close(); }); });
  }

 private:
  enum class State { kIdle, kReading, kHandling, kWriting, kStreaming, kLingering, kClosed };

  static Stream open_stream(tcp::socket socket, ssl::context* tls) {
    if constexpr (kTls) {
      return Stream(std::move(socket), *tls);
    } else {
      return Stream(std::move(socket));
    }
  }

  // The TCP layer under TLS (or the stream itself): its timer and socket.
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  // The TLS handshake, under the read timeout: a client that connects and
  // says nothing holds a connection no longer than one that sends no request.
  // A plain HTTP request on the HTTPS port is answered in plain HTTP, saying
  // so, instead of with a reset the client cannot explain.
  void handshake() {
    state_ = State::kReading;
    lowest().expires_after(server_.options().read_timeout);
    beast::async_detect_ssl(lowest(), buffer_, [self = this->shared_from_this()](beast::error_code ec, bool tls) {
      self->guarded([&] {
        if (self->state_ == State::kClosed) return;
        if (ec) return self->close();
        if (!tls) return self->refuse_plain_http();
        self->stream_.async_handshake(ssl::stream_base::server, self->buffer_.data(),
                                      [self](beast::error_code handshake_ec, std::size_t used) {
                                        self->guarded([&] { self->on_handshake(handshake_ec, used); });
                                      });
      });
    });
  }

  void on_handshake(const beast::error_code& ec, std::size_t used) {
    if (state_ == State::kClosed) return;
    if (ec) {
      server_.count_tls_handshake_failure();
      return close();
    }
    buffer_.consume(used);
    wait_for_request();
  }

  void refuse_plain_http() {
    server_.count_tls_handshake_failure();
    static const std::string kRefusal = [] {
      const std::string body =
          R"({"error":{"code":"bad_request","message":"this server speaks HTTPS: use an https:// URL"}})";
      return "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: " +
             std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    }();
    lowest().expires_after(server_.options().write_timeout);
    net::async_write(lowest(), net::buffer(kRefusal),
                     [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                       self->guarded([&] { return ec ? self->close() : self->linger(); });
                     });
  }

  // Runs `f` on the strand; whatever it throws closes this connection only.
  template <class F>
  void guarded(F&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      server_.log(std::string("http: connection dropped after an internal error: ") + e.what());
      close();
    } catch (...) {
      server_.log("http: connection dropped after an unknown internal error");
      close();
    }
  }

  void wait_for_request() {
    if (state_ == State::kClosed) return;
    if (server_.stopping()) return close();
    state_ = State::kIdle;
    route_label_ = std::string(kUnmatched);
    method_label_ = "other";
    if (buffer_.size() > 0) return read_request();  // a pipelined request is already here
    lowest().expires_after(server_.options().idle_timeout);
    stream_.async_read_some(buffer_.prepare(4096), [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
      self->guarded([&] {
        if (ec || self->state_ == State::kClosed) return self->close();
        self->buffer_.commit(n);
        self->read_request();
      });
    });
  }

  void read_request() {
    if (server_.stopping()) return close();
    state_ = State::kReading;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_.options().max_header_bytes));
    parser_->body_limit(static_cast<std::uint64_t>(server_.options().max_body_bytes));
    // One deadline for the whole request, from its first byte to its last.
    lowest().expires_after(server_.options().read_timeout);
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                               self->guarded([&] { self->on_header(ec); });
                             });
  }

  void on_header(const beast::error_code& ec) {
    if (state_ == State::kClosed) return;
    if (ec) return on_read_error(ec);
    method_label_ = std::string(sv(parser_->get().method_string()));
    const auto transfer_encoding = sv(parser_->get()[bhttp::field::transfer_encoding]);
    if (!transfer_encoding.empty() && !iequals(transfer_encoding, "chunked")) {
      return respond_early(error_response(400, kCodeBadRequest,
                                          "Transfer-Encoding '" + std::string(transfer_encoding.substr(0, 64)) +
                                              "' is not supported: send the body chunked or with Content-Length"));
    }
    // A request with a body to come that will be refused is refused before
    // 100 Continue and before its body is read (and the connection closed, the
    // body unread): an unknown client cannot make the server read, or wait
    // for, a body. A request without one is answered as usual.
    if (!parser_->is_done()) {
      if (auto refusal = refuse_before_body()) return respond_early(std::move(*refusal));
    }
    auto expect = sv(parser_->get()[bhttp::field::expect]);
    if (!parser_->is_done() && iequals(expect, "100-continue")) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      net::async_write(stream_, net::buffer(kContinue), [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
        self->guarded([&] {
          if (ec || self->state_ == State::kClosed) return self->close();
          self->read_body();
        });
      });
      return;
    }
    read_body();
  }

  void read_body() {
    if (parser_->is_done()) return on_request();
    bhttp::async_read(stream_, buffer_, *parser_, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      self->guarded([&] {
        if (self->state_ == State::kClosed) return;
        if (ec) return self->on_read_error(ec);
        self->on_request();
      });
    });
  }

  void on_read_error(const beast::error_code& ec) {
    const auto& options = server_.options();
    if (ec == bhttp::error::body_limit) {
      return respond_early(error_response(
          413, kCodePayloadTooLarge, "the request body exceeds " + std::to_string(options.max_body_bytes) + " bytes"));
    }
    if (ec == bhttp::error::header_limit) {
      return respond_early(
          error_response(431, kCodeHeadersTooLarge,
                         "the request line and headers exceed " + std::to_string(options.max_header_bytes) + " bytes"));
    }
    if (is_parse_error(ec)) {
      return respond_early(error_response(400, kCodeBadRequest, "malformed HTTP request: " + ec.message()));
    }
    // Timeout, end of stream, reset: nobody to answer.
    close();
  }

  // The 401 or 403 of a request whose route needs a credential the header
  // does not carry, decided from the header alone; nullopt when the request
  // may go on (or is not routed: 404 and 405 are answered with the request).
  std::optional<Response> refuse_before_body() {
    const auto target = sv(parser_->get().target());
    auto match = server_.router().match(method_label_, target.substr(0, target.find('?')));
    if (!match || match.value().kind != RouteMatch::Kind::kFound || !match.value().route->required_role) {
      return std::nullopt;
    }
    std::optional<User> user;
    std::shared_ptr<const Authenticator> directory;
    return authorize(*match.value().route, sv(parser_->get()[bhttp::field::authorization]), user, directory);
  }

  // Who `authorization` names and whether they hold the route's role: the
  // refusal to send, or nullopt with `user` set and `directory` the users
  // they were found among.
  std::optional<Response> authorize(const Route& route, std::string_view authorization, std::optional<User>& user,
                                    std::shared_ptr<const Authenticator>& directory) {
    // The generation first: a replacement between the two reads then only
    // makes the next request check again.
    const std::uint64_t generation = server_.users_generation();
    const std::shared_ptr<const Authenticator> authenticator = server_.authenticator();
    if (authenticator == nullptr) return unauthenticated_response("authentication is not configured", false);
    directory = authenticator;
    if (authenticated_user_ && authenticated_generation_ == generation &&
        authorization.size() == authenticated_header_.size() &&
        CRYPTO_memcmp(authorization.data(), authenticated_header_.data(), authorization.size()) == 0) {
      // The same credential as this connection's last request, and the users
      // have not changed since: it names the same user.
      user = authenticated_user_;
    } else {
      Authentication authentication = authenticator->authenticate(authorization);
      if (!authentication.user) return unauthenticated_response(authentication.failure, authentication.invalid_token);
      authenticated_header_.assign(authorization.data(), authorization.size());
      authenticated_user_ = authentication.user;
      authenticated_generation_ = generation;
      user = std::move(authentication.user);
    }
    if (!user->has_role(*route.required_role)) {
      // The role missing and the roles held, so the person knows what to ask for.
      return error_response(403, to_string(ErrorCode::kPermissionDenied), user->missing_role(*route.required_role));
    }
    return std::nullopt;
  }

  // An error found while reading: answer, then close (the rest of the request
  // is unread, so the connection cannot be reused).
  void respond_early(Response response) {
    started_ = SteadyClock::now();
    if (parser_ && parser_->is_header_done()) {
      auto target = sv(parser_->get().target());
      auto match = server_.router().match(method_label_, target.substr(0, target.find('?')));
      if (match && match.value().kind == RouteMatch::Kind::kFound) route_label_ = match.value().route->pattern;
    }
    keep_alive_ = false;
    linger_ = true;
    send(std::move(response));
  }

  void on_request() {
    started_ = SteadyClock::now();
    state_ = State::kHandling;
    auto message = parser_->release();
    parser_.reset();
    keep_alive_ = message.keep_alive();

    Request request;
    request.method = std::string(sv(message.method_string()));
    request.target = std::string(sv(message.target()));
    const auto question = request.target.find('?');
    request.path = request.target.substr(0, question);
    for (const auto& field : message) {
      request.headers.add(std::string(sv(field.name_string())), std::string(sv(field.value())));
    }
    request.body = std::move(message.body());

    auto routed = server_.router().match(request.method, request.path);
    if (!routed) return send(error_response(400, kCodeBadRequest, routed.error().message));
    auto& match = routed.value();
    if (match.kind == RouteMatch::Kind::kNotFound) {
      return send(error_response(404, kCodeRouteNotFound, "no route for " + request.method + " " + request.path));
    }
    if (match.kind == RouteMatch::Kind::kMethodNotAllowed) {
      std::string allow;
      for (const auto& method : match.allowed_methods) allow += (allow.empty() ? "" : ", ") + method;
      Response response = error_response(405, kCodeMethodNotAllowed,
                                         "method " + request.method + " is not allowed here; allowed: " + allow);
      response.headers.emplace_back("Allow", allow);
      return send(std::move(response));
    }
    const Route& route = *match.route;
    route_label_ = route.pattern;
    request.route = route.pattern;
    request.params = std::move(match.params);
    if (question != std::string::npos) {
      auto query = parse_query(std::string_view(request.target).substr(question + 1));
      if (!query) return send(error_response(query.error()));
      request.query = std::move(query).value();
    }

    if (!route.required_role) {
      // Public routes (health probes) answer here, even when every worker is busy.
      return send(invoke(route, request));
    }
    std::optional<User> user;
    if (auto refusal = authorize(route, request.header("Authorization").value_or(""), user, request.directory)) {
      return send(std::move(*refusal));
    }
    request.user = std::move(user);
    if (Status resolved = server_.router().resolve(request.params, /*may_block=*/false); !resolved) {
      return send(error_response(resolved.error()));
    }

    if (!server_.try_admit()) {
      Response response = error_response(429, kCodeTooManyRequests, "too many requests in progress; retry later");
      response.headers.emplace_back("Retry-After", std::to_string(server_.options().retry_after.count()));
      return send(std::move(response));
    }
    admitted_ = true;
    if (auto answered = try_quick(route, request)) return send(std::move(*answered));
    net::post(server_.workers(), [self = this->shared_from_this(), &route, request = std::move(request)]() mutable {
      Status resolved = self->server_.router().resolve(request.params, /*may_block=*/true);
      Response response = resolved ? self->invoke(route, request) : error_response(resolved.error());
      net::post(self->stream_.get_executor(), [self, response = std::move(response)]() mutable {
        self->guarded([&] { self->send(std::move(response)); });
      });
    });
  }

  // Runs the handler; never throws.
  Response invoke(const Route& route, const Request& request) {
    try {
      return checked(route, route.handler(request));
    } catch (const std::exception& e) {
      server_.log("http: handler for " + route.method + " " + route.pattern + " threw: " + e.what());
    } catch (...) {
      server_.log("http: handler for " + route.method + " " + route.pattern + " threw a non-exception");
    }
    return internal_error();
  }

  // The route's quick path, if it has one and it answers; never throws (a
  // quick path that throws hands the request to the worker).
  std::optional<Response> try_quick(const Route& route, const Request& request) {
    if (!route.quick) return std::nullopt;
    try {
      if (auto answered = route.quick(request)) return checked(route, std::move(*answered));
    } catch (...) {
      server_.log("http: quick path of " + route.method + " " + route.pattern + " threw; using the worker");
    }
    return std::nullopt;
  }

  // A handler's result as the response to send: errors rendered, invalid
  // responses replaced by a 500, streams tracked.
  Response checked(const Route& route, Result<Response> result) {
    try {
      if (!result) return error_response(result.error());
      Response response = std::move(result).value();
      if (auto problem = invalid_response(response)) {
        server_.log("http: handler for " + route.method + " " + route.pattern +
                    " returned an invalid response: " + *problem);
        if (response.stream) detail::SseStreamAccess::end(*response.stream);
        return internal_error();
      }
      if (response.stream) server_.track_stream(response.stream);
      return response;
    } catch (const std::exception& e) {
      server_.log("http: handler for " + route.method + " " + route.pattern + " threw: " + e.what());
    } catch (...) {
      server_.log("http: handler for " + route.method + " " + route.pattern + " threw a non-exception");
    }
    return internal_error();
  }

  // Sends a response (or starts an event stream). The handler is done, so its
  // admission slot is free again before the first byte is written.
  void send(Response response) {
    release_admission();
    if (state_ == State::kClosed) {
      if (response.stream) {
        detail::SseStreamAccess::end(*response.stream);
        server_.untrack_stream(response.stream);
      }
      return;
    }
    if (response.stream) return start_stream(std::move(response));

    response_ = {};
    response_.version(11);
    response_.result(static_cast<unsigned>(response.status));
    if (!response.content_type.empty()) response_.set(bhttp::field::content_type, response.content_type);
    for (auto& [name, value] : response.headers) response_.insert(name, value);
    response_.body() = std::move(response.body);
    response_.keep_alive(keep_alive_ && !server_.stopping());
    response_.prepare_payload();
    status_ = response.status;
    state_ = State::kWriting;
    server_.write_started();
    lowest().expires_after(server_.options().write_timeout);
    bhttp::async_write(stream_, response_, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      self->guarded([&] { self->on_written(ec); });
    });
  }

  void on_written(const beast::error_code& ec) {
    server_.record(route_label_, method_label_, status_, started_);
    server_.write_finished();
    if (state_ == State::kClosed) return;
    if (ec) return close();
    if (!response_.keep_alive()) return linger_ ? linger() : close();
    response_ = {};
    wait_for_request();
  }

  // Half-closes, then reads and discards what the client still sends, so that
  // it receives the response instead of a reset.
  void linger() {
    state_ = State::kLingering;
    beast::error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
    lowest().expires_after(std::min(server_.options().read_timeout, kMaxLinger));
    buffer_.consume(buffer_.size());
    discard_more();
  }

  void discard_more() {
    // From the TCP layer: under TLS the bytes are discarded undecrypted.
    lowest().async_read_some(net::buffer(discard_), [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
      self->guarded([&] {
        self->lingered_ += n;
        if (ec || self->state_ != State::kLingering || self->lingered_ > kMaxLingerBytes) return self->close();
        self->discard_more();
      });
    });
  }

  void start_stream(Response response) {
    auto stream = std::move(response.stream);
    const std::string user = authenticated_user_ ? authenticated_user_->name : std::string();
    const char* refused = server_.stopping() ? nullptr : server_.try_open_stream(user);
    if (server_.stopping() || refused != nullptr) {
      detail::SseStreamAccess::end(*stream);
      server_.untrack_stream(stream);
      Response refusal =
          server_.stopping() ? error_response(503, to_string(ErrorCode::kUnavailable), "the server is stopping")
          : std::string_view(refused) == "user"
              ? error_response(429, kCodeTooManyRequests,
                               "'" + user + "' already has " + std::to_string(server_.options().max_streams_per_user) +
                                   " event streams open (the per-user limit); close one first")
              : error_response(429, kCodeTooManyRequests, "too many event streams open");
      refusal.headers.emplace_back("Retry-After", std::to_string(server_.options().retry_after.count()));
      return send(std::move(refusal));
    }
    stream_user_ = user;
    sse_ = std::move(stream);
    state_ = State::kStreaming;
    status_ = 200;
    sse_header_.emplace(bhttp::status::ok, 11);
    sse_header_->set(bhttp::field::content_type, "text/event-stream; charset=utf-8");
    sse_header_->set(bhttp::field::cache_control, "no-store");
    sse_header_->set("X-Accel-Buffering", "no");  // proxies must not buffer the stream
    for (auto& [name, value] : response.headers) sse_header_->insert(name, value);
    // The connection ends with the stream: an event stream is the last
    // response on its connection.
    sse_header_->keep_alive(false);
    sse_header_->chunked(true);
    sse_serializer_.emplace(*sse_header_);
    lowest().expires_after(server_.options().write_timeout);
    bhttp::async_write_header(stream_, *sse_serializer_,
                              [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                                self->guarded([&] { self->on_stream_header(ec); });
                              });
  }

  void on_stream_header(const beast::error_code& ec) {
    server_.record(route_label_, method_label_, status_, started_);
    if (state_ == State::kClosed) return;
    if (ec) return close();
    std::weak_ptr<Session> weak = this->shared_from_this();
    // The wake runs on the producer's thread under the stream's lock: it only
    // posts to this connection's strand.
    bool attached = detail::SseStreamAccess::attach(*sse_, [weak] {
      if (auto self = weak.lock()) {
        net::post(self->stream_.get_executor(), [self] { self->guarded([&] { self->flush_stream(); }); });
      }
    });
    if (!attached) return close();
    watch_client();
    schedule_keepalive();
    schedule_lifetime_end();
    flush_stream();
  }

  // A stream ends, as if the server were stopping, after the longest
  // lifetime: the client reconnects with its Last-Event-ID and resumes, and a
  // forgotten tab or a leaked client does not hold a stream slot forever.
  void schedule_lifetime_end() {
    const auto lifetime = server_.options().max_stream_lifetime;
    if (lifetime.count() <= 0) return;
    lifetime_timer_.expires_after(lifetime);
    lifetime_timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      self->guarded([&] {
        if (ec || self->state_ != State::kStreaming) return;
        self->server_.stream_expired();
        self->sse_stop_ = true;
        self->flush_stream();
      });
    });
  }

  // A reader that only notices the client going away (its FIN or a reset);
  // whatever it sends on an event-stream connection is ignored.
  void watch_client() {
    lowest().socket().async_read_some(net::buffer(discard_),
                                     [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                                       self->guarded([&] {
                                         if (self->state_ != State::kStreaming) return;
                                         if (ec) return self->close();
                                         self->watch_client();
                                       });
                                     });
  }

  void schedule_keepalive() {
    keepalive_timer_.expires_after(server_.options().sse_keepalive_interval);
    keepalive_timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      self->guarded([&] {
        if (ec || self->state_ != State::kStreaming) return;
        if (!self->sse_writing_ && !self->sse_wrote_since_tick_) self->write_chunk(": keep-alive\n\n", false);
        self->sse_wrote_since_tick_ = false;
        self->schedule_keepalive();
      });
    });
  }

  void flush_stream() {
    if (state_ != State::kStreaming || sse_writing_) return;  // a finished write flushes again
    auto batch = detail::SseStreamAccess::take(*sse_);
    const bool finish = batch.finished || sse_stop_;
    if (!batch.bytes.empty()) return write_chunk(std::move(batch.bytes), finish);
    if (finish) return write_last_chunk();
    if (batch.page_wanted) {
      // A page is a storage read: on a worker, not on this I/O thread. It
      // wakes this connection when the page is queued.
      net::post(server_.workers(), [stream = sse_] { detail::SseStreamAccess::page(*stream); });
    }
  }

  void write_chunk(std::string bytes, bool then_finish) {
    sse_out_ = std::move(bytes);
    sse_writing_ = true;
    sse_wrote_since_tick_ = true;
    lowest().expires_after(server_.options().write_timeout);
    net::async_write(stream_, bhttp::make_chunk(net::buffer(sse_out_)),
                     [self = this->shared_from_this(), then_finish](beast::error_code ec, std::size_t) {
                       self->guarded([&] {
                         self->sse_writing_ = false;
                         if (self->state_ != State::kStreaming) return;
                         if (ec) return self->close();
                         if (then_finish) return self->write_last_chunk();
                         self->flush_stream();
                       });
                     });
  }

  void write_last_chunk() {
    sse_writing_ = true;
    lowest().expires_after(server_.options().write_timeout);
    net::async_write(stream_, bhttp::make_chunk_last(), [self = this->shared_from_this()](beast::error_code, std::size_t) {
      self->guarded([&] { self->close(); });
    });
  }

  void release_admission() {
    if (!admitted_) return;
    admitted_ = false;
    server_.release_admission();
  }

  void close() {
    if (state_ == State::kClosed) return;
    state_ = State::kClosed;
    release_admission();
    if (sse_) {
      detail::SseStreamAccess::end(*sse_);
      server_.untrack_stream(sse_);
      server_.stream_closed(stream_user_);
      sse_.reset();
    }
    keepalive_timer_.cancel();
    lifetime_timer_.cancel();
    beast::error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().close();
  }

  HttpServer::Impl& server_;
  const std::string client_;  // the remote address, for the per-client connection cap
  const std::shared_ptr<ssl::context> tls_;  // the certificate this connection was accepted with
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bhttp::response<bhttp::string_body> response_;
  State state_ = State::kIdle;
  bool keep_alive_ = true;
  bool linger_ = false;
  std::size_t lingered_ = 0;
  bool admitted_ = false;  // holds one of the server's admission slots
  int status_ = 0;
  std::string route_label_{kUnmatched};
  std::string method_label_ = "other";
  // The Authorization header of the connection's last authenticated request
  // and whom it named: a keep-alive client sends the same one every time, and
  // hashing it again was 5% of a summary request's CPU.
  std::string authenticated_header_;
  std::optional<User> authenticated_user_;
  std::uint64_t authenticated_generation_ = 0;  // the users' generation it was checked against
  SteadyClock::time_point started_ = SteadyClock::now();
  std::array<char, 4096> discard_{};

  std::shared_ptr<SseStream> sse_;
  std::optional<bhttp::response<bhttp::empty_body>> sse_header_;
  std::optional<bhttp::response_serializer<bhttp::empty_body>> sse_serializer_;
  std::string sse_out_;
  bool sse_writing_ = false;
  bool sse_wrote_since_tick_ = false;
  bool sse_stop_ = false;
  net::steady_timer keepalive_timer_;
  net::steady_timer lifetime_timer_;  // an event stream's longest lifetime
  std::string stream_user_;          // who opened the event stream (the per-user cap)
};

Status HttpServer::Impl::listen() {
  const auto& o = options_;
  if (o.io_threads < 1 || o.worker_threads < 1 || o.max_concurrent_requests < 1 || o.max_streams_per_user < 1 ||
      o.max_stream_lifetime.count() < 0 || o.max_body_bytes < 1 ||
      o.max_header_bytes < 64 || o.max_header_bytes > 0xFFFFFFFFu || o.read_timeout.count() <= 0 ||
      o.idle_timeout.count() <= 0 || o.write_timeout.count() <= 0 || o.sse_keepalive_interval.count() <= 0 ||
      o.stop_grace.count() < 0 || o.retry_after.count() < 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "invalid server options: thread counts, limits and timeouts must be positive");
  }
  beast::error_code ec;
  auto address = net::ip::make_address(o.address, ec);
  if (ec) return make_error(ErrorCode::kInvalidArgument, "invalid listen address '" + o.address + "'");
  if (o.tls_certificate_file.empty() != o.tls_private_key_file.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "HTTPS needs both a certificate file and a private key file");
  }
  if (!o.tls_certificate_file.empty()) {
    CASCADE_TRY(context, load_tls_context(o.tls_certificate_file, o.tls_private_key_file));
    tls_ = std::move(context);
  } else if (!address.is_loopback() && !o.allow_insecure_http) {
    // A bearer token sent over plain HTTP is readable by anyone on the path.
    return make_error(ErrorCode::kInvalidArgument,
                      "refusing plain HTTP on " + o.address +
                          ", which is not a loopback address: tokens would cross the network in clear text. Serve "
                          "HTTPS with a certificate and key, or allow plain HTTP explicitly when a TLS-terminating "
                          "proxy is in front");
  }
  tcp::endpoint endpoint(address, o.port);
  const std::string where = o.address + ":" + std::to_string(o.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return make_error(ErrorCode::kUnavailable, "cannot listen on " + where + ": " + ec.message());
  port_ = acceptor_.local_endpoint(ec).port();

  CASCADE_TRY(requests, metrics_->counter("cascade_http_requests_total",
                                          "HTTP requests answered, by route pattern, method and status code.",
                                          {"route", "method", "code"}));
  CASCADE_TRY(duration,
              metrics_->histogram("cascade_http_request_duration_seconds",
                                  "Time from a request's last byte to its response's last byte.", {"route", "method"}));
  requests_total_ = requests;
  request_duration_ = duration;
  CASCADE_TRY(refused, metrics_->counter("cascade_http_connections_refused_total",
                                         "Connections closed at once: the server's cap (server) or the client "
                                         "address's cap (client) was reached.",
                                         {"reason"}));
  connections_refused_ = refused;
  CASCADE_TRY(streams_refused, metrics_->counter("cascade_http_streams_refused_total",
                                                 "Event streams refused with 429: the server's cap (server) or the "
                                                 "user's cap (user) was reached.",
                                                 {"reason"}));
  streams_refused_ = streams_refused;
  CASCADE_TRY(streams_expired,
              metrics_->counter("cascade_http_streams_expired_total",
                                "Event streams ended by the server at their longest lifetime (clients resume with "
                                "Last-Event-ID)."));
  streams_expired_ = &streams_expired->with({});
  CASCADE_TRY(handshakes_failed,
              metrics_->counter("cascade_http_tls_handshake_failures_total",
                                "TLS handshakes that failed: a client that does not trust the certificate, speaks "
                                "plain HTTP to the HTTPS port, or gave up."));
  tls_handshake_failures_ = &handshakes_failed->with({});

  do_accept();
  for (int i = 0; i < o.io_threads; ++i) {
    {
      std::lock_guard lock(mutex_);
      ++io_running_;
    }
    io_threads_.emplace_back([this] { run_io(); });
  }
  return success();
}

void HttpServer::Impl::run_io() {
  while (true) {
    try {
      ioc_.run();
      break;
    } catch (const std::exception& e) {
      log(std::string("http: an I/O thread caught: ") + e.what());
    } catch (...) {
      log("http: an I/O thread caught a non-exception");
    }
  }
  std::lock_guard lock(mutex_);
  --io_running_;
  changed_.notify_all();
}

void HttpServer::Impl::do_accept() {
  acceptor_.async_accept(net::make_strand(ioc_),
                         [this](beast::error_code ec, tcp::socket socket) { on_accept(ec, std::move(socket)); });
}

void HttpServer::Impl::on_accept(const beast::error_code& ec, tcp::socket socket) {
  if (stopping_ || !acceptor_.is_open()) return;
  if (ec) {
    // Out of descriptors or similar: retrying at once would spin.
    log("http: accept failed: " + ec.message());
    accept_retry_.expires_after(std::chrono::milliseconds(100));
    accept_retry_.async_wait([this](beast::error_code wait_ec) {
      if (!wait_ec && !stopping_) do_accept();
    });
    return;
  }
  try {
    beast::error_code ignored;
    const auto remote = socket.remote_endpoint(ignored);
    const std::string client = ignored ? std::string("unknown") : remote.address().to_string();
    if (const char* refused = admit_connection(client)) {
      connections_refused_->with({refused}).inc();
      socket.close(ignored);
      do_accept();
      return;
    }
    socket.set_option(tcp::no_delay(true), ignored);
    std::shared_ptr<ssl::context> tls = tls_context();
    std::shared_ptr<SessionBase> session;
    if (tls) {
      session = std::make_shared<Session<TlsStream>>(*this, std::move(socket), client, std::move(tls));
    } else {
      session = std::make_shared<Session<beast::tcp_stream>>(*this, std::move(socket), client, nullptr);
    }
    register_session(session.get(), session);
    session->start();
  } catch (const std::exception& e) {
    log(std::string("http: could not start a connection: ") + e.what());
  }
  do_accept();
}

std::vector<std::shared_ptr<HttpServer::Impl::SessionBase>> HttpServer::Impl::live_sessions() {
  std::vector<std::shared_ptr<SessionBase>> live;
  std::lock_guard lock(mutex_);
  for (auto& [raw, weak] : sessions_) {
    if (auto session = weak.lock()) live.push_back(std::move(session));
  }
  return live;
}

void HttpServer::Impl::stop() {
  std::call_once(stop_once_, [this] { do_stop(); });
}

void HttpServer::Impl::do_stop() {
  stopping_ = true;
  if (io_threads_.empty()) return;  // never started

  // Stop accepting: after this returns, connection attempts are refused.
  auto closed = std::make_shared<std::promise<void>>();
  auto acceptor_closed = closed->get_future();
  net::post(acceptor_.get_executor(), [this, closed] {
    beast::error_code ignored;
    acceptor_.close(ignored);
    accept_retry_.cancel();
    closed->set_value();
  });
  acceptor_closed.wait_for(std::chrono::seconds(1));

  for (auto& session : live_sessions()) session->on_server_stop();
  {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, options_.stop_grace,
                      [this] { return admitted_ == 0 && writing_ == 0 && open_streams_ == 0; });
  }
  for (auto& session : live_sessions()) session->force_close();
  work_.reset();
  {
    // Every socket is closed, so the I/O threads run out of work promptly;
    // the bound only guards against a straggler.
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, std::chrono::seconds(1), [this] { return io_running_ == 0; });
  }
  ioc_.stop();
  for (auto& thread : io_threads_) thread.join();
  // Handlers not yet started are dropped; running ones are waited for.
  workers_.stop();
  workers_.join();

  std::set<std::shared_ptr<SseStream>> streams;
  {
    std::lock_guard lock(mutex_);
    streams.swap(tracked_streams_);
  }
  for (const auto& stream : streams) detail::SseStreamAccess::end(*stream);
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { impl_->stop(); }

Result<std::unique_ptr<HttpServer>> HttpServer::start(ServerOptions options, Router router,
                                                      std::shared_ptr<const Authenticator> authenticator,
                                                      std::shared_ptr<metrics::MetricsRegistry> metrics) {
  try {
    auto impl =
        std::make_unique<Impl>(std::move(options), std::move(router), std::move(authenticator), std::move(metrics));
    CASCADE_TRY(impl->listen());
    return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kUnavailable, std::string("cannot start the HTTP server: ") + e.what());
  }
}

std::uint16_t HttpServer::port() const { return impl_->port(); }

void HttpServer::replace_authenticator(std::shared_ptr<const Authenticator> authenticator) {
  impl_->replace_authenticator(std::move(authenticator));
}

metrics::MetricsRegistry& HttpServer::metrics() { return impl_->metrics(); }

Status HttpServer::reload_tls() { return impl_->reload_tls(); }

void HttpServer::stop() { impl_->stop(); }

}  // namespace cascade::adapters::http
