#include "tools/api_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/ssl.hpp>

#include <algorithm>
#include <cctype>
#include <limits>

namespace cascade::tools {

namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using nlohmann::json;
using Clock = ApiClient::Clock;

constexpr std::size_t kMaxResponseBytes = 256u << 20;  // a release's events, a long log

// One connection, plain or TLS, and the io_context that drives it. Every
// operation is asynchronous under a deadline (tcp_stream's timer), run to
// completion here: a synchronous call that cannot hang.
class Connection {
 public:
  // `tls`: the client context for https (null: plain http); it outlives the
  // connection.
  explicit Connection(ssl::context* tls) {
    if (tls != nullptr) {
      tls_stream_.emplace(ioc_, *tls);
    } else {
      plain_stream_.emplace(ioc_);
    }
  }

  beast::error_code connect(const std::string& host, const std::string& port, Clock::time_point deadline) {
    tcp::resolver resolver(ioc_);
    beast::error_code result;
    tcp::resolver::results_type endpoints;
    resolver.async_resolve(host, port, [&](beast::error_code ec, tcp::resolver::results_type found) {
      result = ec;
      endpoints = std::move(found);
    });
    run();
    if (result) return result;
    lowest().expires_at(deadline);
    lowest().async_connect(endpoints, [&](beast::error_code ec, const tcp::endpoint&) { result = ec; });
    run();
    if (result || !tls_stream_) return result;
    // The certificate must name the host the URL names; SNI tells a server
    // with several certificates which one (not sent for an IP address).
    beast::error_code not_an_address;
    net::ip::make_address(host, not_an_address);
    if (not_an_address && SSL_set_tlsext_host_name(tls_stream_->native_handle(), host.c_str()) != 1) {
      return beast::error_code(static_cast<int>(::ERR_get_error()), net::error::get_ssl_category());
    }
    tls_stream_->set_verify_callback(ssl::host_name_verification(host));
    tls_stream_->async_handshake(ssl::stream_base::client, [&](beast::error_code ec) { result = ec; });
    run();
    return result;
  }

  template <class Message>
  beast::error_code write(Message& message, Clock::time_point deadline) {
    return complete(deadline, [&](auto& stream, auto done) { bhttp::async_write(stream, message, done); });
  }

  template <class Parser>
  beast::error_code read_header(Parser& parser, Clock::time_point deadline) {
    return complete(deadline,
                    [&](auto& stream, auto done) { bhttp::async_read_header(stream, buffer_, parser, done); });
  }

  // Returns once some of the body arrived (a stream's next piece).
  template <class Parser>
  beast::error_code read_some(Parser& parser, Clock::time_point deadline) {
    return complete(deadline, [&](auto& stream, auto done) { bhttp::async_read_some(stream, buffer_, parser, done); });
  }

  template <class Parser>
  beast::error_code read(Parser& parser, Clock::time_point deadline) {
    return complete(deadline, [&](auto& stream, auto done) { bhttp::async_read(stream, buffer_, parser, done); });
  }

  ~Connection() {
    beast::error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

 private:
  beast::tcp_stream& lowest() { return tls_stream_ ? beast::get_lowest_layer(*tls_stream_) : *plain_stream_; }

  void run() {
    ioc_.restart();
    ioc_.run();
  }

  // Starts one Beast operation (`start(stream, handler)`) under the deadline
  // and runs it to completion; its error code.
  template <class Start>
  beast::error_code complete(Clock::time_point deadline, Start&& start) {
    beast::error_code result;
    lowest().expires_at(deadline);
    auto done = [&result](beast::error_code ec, std::size_t) { result = ec; };
    if (tls_stream_) {
      start(*tls_stream_, done);
    } else {
      start(*plain_stream_, done);
    }
    run();
    return result;
  }

  net::io_context ioc_;
  std::optional<beast::tcp_stream> plain_stream_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls_stream_;
  beast::flat_buffer buffer_;
};

std::optional<ErrorCode> error_code_named(std::string_view name) {
  for (ErrorCode code : {ErrorCode::kInvalidArgument, ErrorCode::kNotFound, ErrorCode::kAlreadyExists,
                         ErrorCode::kFailedPrecondition, ErrorCode::kPermissionDenied, ErrorCode::kAborted,
                         ErrorCode::kUnavailable, ErrorCode::kDataLoss, ErrorCode::kStoreCorrupt,
                         ErrorCode::kInternal}) {
    if (to_string(code) == name) return code;
  }
  return std::nullopt;
}

ErrorCode error_code_for_status(unsigned status) {
  switch (status) {
    case 400: case 413: case 422: case 431: return ErrorCode::kInvalidArgument;
    case 401: case 403: return ErrorCode::kPermissionDenied;
    case 404: return ErrorCode::kNotFound;
    case 409: return ErrorCode::kFailedPrecondition;
    case 429: case 502: case 503: case 504: return ErrorCode::kUnavailable;
    default: return ErrorCode::kInternal;
  }
}

// The server's error document as an Error; anything else (a proxy's page) as
// an error naming the status.
Error error_from_response(unsigned status, const std::string& body, const std::string& url) {
  const json document = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (document.is_object() && document.contains("error") && document["error"].is_object()) {
    const json& error = document["error"];
    const std::string code_name = error.value("code", "");
    const ErrorCode code = error_code_named(code_name).value_or(error_code_for_status(status));
    std::vector<Problem> details;
    if (error.contains("details") && error["details"].is_array()) {
      for (const json& detail : error["details"]) {
        if (detail.is_object()) details.push_back({detail.value("path", ""), detail.value("message", "")});
      }
    }
    std::string message = error.value("message", "HTTP " + std::to_string(status));
    if (status == 401) message += " (give a token with --token or CASCADE_TOKEN)";
    return make_error(code, std::move(message), std::move(details));
  }
  std::string first_line = body.substr(0, std::min(body.find('\n'), std::size_t{200}));
  return make_error(error_code_for_status(status),
                    url + " answered HTTP " + std::to_string(status) + (first_line.empty() ? "" : ": " + first_line));
}

Error connection_error(const beast::error_code& ec, const std::string& url) {
  if (ec == net::error::connection_refused) {
    return make_error(ErrorCode::kUnavailable, "cannot reach the cascade server at " + url +
                                                   " (connection refused): start it with `cascade serve`, point "
                                                   "--server (or CASCADE_SERVER) at a running one, or work "
                                                   "offline with --data DIR");
  }
  if (ec == beast::error::timeout) {
    return make_error(ErrorCode::kUnavailable, "the cascade server at " + url + " did not answer in time");
  }
  if (ec.category() == net::error::get_ssl_category()) {
    // Most often a certificate this client does not trust, or one that names
    // another host; ec.message() says which.
    return make_error(ErrorCode::kUnavailable, "TLS with the cascade server at " + url + " failed: " + ec.message() +
                                                   " (a server certificate from a private CA needs --ca FILE or "
                                                   "CASCADE_CA; the URL's host must be one the certificate names)");
  }
  return make_error(ErrorCode::kUnavailable, "cannot talk to the cascade server at " + url + ": " + ec.message());
}

}  // namespace

Result<ApiClient> ApiClient::create(const std::string& url, std::string token, ApiClientOptions options) {
  auto bad = [&](const std::string& why) {
    return make_error(ErrorCode::kInvalidArgument, "--server '" + url + "': " + why);
  };
  const bool https = url.rfind("https://", 0) == 0;
  if (!https && url.rfind("http://", 0) != 0) return bad("expected http://HOST[:PORT] or https://HOST[:PORT]");
  if (!https && !options.ca_file.empty()) return bad("a CA file is given but the URL is not https://");
  std::string rest = url.substr(https ? 8 : 7);
  ApiClient client;
  if (https) {
    auto tls = std::make_shared<ssl::context>(ssl::context::tls_client);
    tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                     ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    tls->set_verify_mode(ssl::verify_peer);
    beast::error_code ec;
    if (options.ca_file.empty()) {
      tls->set_default_verify_paths(ec);
      if (ec) return make_error(ErrorCode::kUnavailable, "cannot load the system's trusted CAs: " + ec.message());
    } else {
      tls->load_verify_file(options.ca_file, ec);
      if (ec) {
        return make_error(ErrorCode::kInvalidArgument,
                          "cannot use the CA file " + options.ca_file + ": " + ec.message() + " (expected PEM)");
      }
    }
    client.tls_ = std::move(tls);
  }
  const auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) client.prefix_ = rest.substr(slash);
  while (!client.prefix_.empty() && client.prefix_.back() == '/') client.prefix_.pop_back();
  if (authority.empty()) return bad("no host");
  std::string host = authority, port = https ? "443" : "80";
  if (authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string::npos) return bad("unclosed '[' in the host");
    host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return bad("expected ':' after ']'");
      port = authority.substr(close + 2);
    }
  } else if (const auto colon = authority.rfind(':'); colon != std::string::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return bad("no host");
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port) == 0 || std::stoul(port) > 65535) {
    return bad("bad port '" + port + "'");
  }
  client.url_ = url;
  client.host_ = host;
  client.port_ = port;
  client.token_ = std::move(token);
  client.options_ = options;
  return client;
}

namespace {

template <class Body>
void add_common_headers(bhttp::request<Body>& request, const std::string& host, const std::string& port,
                        const std::string& token) {
  request.set(bhttp::field::host, host.find(':') != std::string::npos ? "[" + host + "]:" + port : host + ":" + port);
  request.set(bhttp::field::user_agent, "cascade-cli");
  if (!token.empty()) request.set(bhttp::field::authorization, "Bearer " + token);
  request.keep_alive(false);
}

}  // namespace

namespace {

Result<json> exchange(ssl::context* tls, const std::string& host, const std::string& port, const std::string& url,
                      const std::string& token, std::chrono::milliseconds timeout, bhttp::verb verb,
                      const std::string& target, const json* body, const std::string& idempotency_key) {
  const Clock::time_point deadline = Clock::now() + timeout;
  Connection connection(tls);
  if (auto ec = connection.connect(host, port, deadline)) return connection_error(ec, url);
  bhttp::request<bhttp::string_body> request{verb, target, 11};
  add_common_headers(request, host, port, token);
  request.set(bhttp::field::accept, "application/json");
  if (!idempotency_key.empty()) request.set("Idempotency-Key", idempotency_key);
  if (body != nullptr) {
    request.set(bhttp::field::content_type, "application/json");
    request.body() = body->dump();
  }
  request.prepare_payload();
  if (auto ec = connection.write(request, deadline)) return connection_error(ec, url);
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(kMaxResponseBytes);
  if (auto ec = connection.read(parser, deadline)) return connection_error(ec, url);
  const auto& response = parser.get();
  const unsigned status = response.result_int();
  if (status < 200 || status >= 300) return error_from_response(status, response.body(), url);
  if (response.body().empty()) return json(nullptr);
  json document = json::parse(response.body(), nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded()) {
    return make_error(ErrorCode::kInternal, url + target + " answered with a body that is not JSON");
  }
  return document;
}

}  // namespace

Result<json> ApiClient::get(const std::string& target) {
  return exchange(tls_.get(), host_, port_, url_, token_, options_.request_timeout, bhttp::verb::get, prefix_ + target, nullptr,
                  "");
}

Result<json> ApiClient::post(const std::string& target, const json& body, const std::string& idempotency_key) {
  return exchange(tls_.get(), host_, port_, url_, token_, options_.request_timeout, bhttp::verb::post, prefix_ + target, &body,
                  idempotency_key);
}

Result<json> ApiClient::put(const std::string& target, const json& body) {
  return exchange(tls_.get(), host_, port_, url_, token_, options_.request_timeout, bhttp::verb::put, prefix_ + target, &body, "");
}

Result<StreamEnd> ApiClient::stream(const std::string& target,
                                    const std::vector<std::pair<std::string, std::string>>& headers,
                                    const std::function<bool(std::string_view)>& on_start,
                                    const std::function<bool(std::string_view)>& on_data,
                                    std::optional<Clock::time_point> deadline) {
  auto next_deadline = [&] {
    const Clock::time_point idle = Clock::now() + options_.stream_idle_timeout;
    return deadline ? std::min(*deadline, idle) : idle;
  };
  auto past_deadline = [&] { return deadline && Clock::now() >= *deadline; };
  Connection connection(tls_.get());
  if (auto ec = connection.connect(host_, port_, std::min(next_deadline(), Clock::now() + options_.request_timeout))) {
    if (ec == beast::error::timeout && past_deadline()) return StreamEnd::kDeadline;
    return connection_error(ec, url_);
  }
  bhttp::request<bhttp::empty_body> request{bhttp::verb::get, prefix_ + target, 11};
  add_common_headers(request, host_, port_, token_);
  for (const auto& [name, value] : headers) request.set(name, value);
  if (auto ec = connection.write(request, next_deadline())) return connection_error(ec, url_);

  bhttp::response_parser<bhttp::buffer_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());  // a stream has no end in sight
  if (auto ec = connection.read_header(parser, next_deadline())) {
    if (ec == beast::error::timeout && past_deadline()) return StreamEnd::kDeadline;
    return connection_error(ec, url_);
  }
  const unsigned status = parser.get().result_int();
  const bool ok = status >= 200 && status < 300;
  if (ok && on_start) {
    const auto content_type = parser.get()[bhttp::field::content_type];
    if (!on_start(std::string_view(content_type.data(), content_type.size()))) return StreamEnd::kStopped;
  }
  std::string error_body;
  char buffer[8192];
  while (!parser.is_done()) {
    parser.get().body().data = buffer;
    parser.get().body().size = sizeof buffer;
    beast::error_code ec = connection.read_some(parser, next_deadline());
    if (ec == bhttp::error::need_buffer) ec = {};
    const std::size_t got = sizeof buffer - parser.get().body().size;
    if (got > 0) {
      if (!ok) {
        if (error_body.size() < (1u << 20)) error_body.append(buffer, got);
      } else if (!on_data(std::string_view(buffer, got))) {
        return StreamEnd::kStopped;
      }
    }
    if (ec == bhttp::error::end_of_stream || ec == net::error::eof) break;
    if (ec) {
      if (ec == beast::error::timeout && past_deadline()) return StreamEnd::kDeadline;
      return connection_error(ec, url_);
    }
  }
  if (!ok) return error_from_response(status, error_body, url_);
  return StreamEnd::kClosed;
}

Result<StreamEnd> ApiClient::events(const std::string& target, const std::optional<std::string>& last_event_id,
                                    const std::function<bool()>& on_open,
                                    const std::function<bool(const ServerEvent&)>& on_event,
                                    std::optional<Clock::time_point> deadline) {
  std::vector<std::pair<std::string, std::string>> headers = {{"Accept", "text/event-stream"}};
  if (last_event_id) headers.emplace_back("Last-Event-ID", *last_event_id);
  ServerEventParser parser;
  return stream(
      target, headers, [&](std::string_view) { return on_open ? on_open() : true; },
      [&](std::string_view data) { return parser.feed(data, on_event); }, deadline);
}

bool ServerEventParser::feed(std::string_view bytes, const std::function<bool(const ServerEvent&)>& on_event) {
  pending_.append(bytes.data(), bytes.size());
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = pending_.find_first_of("\r\n", start);
    if (end == std::string::npos) break;
    // A CR LF pair is one line end; a lone CR at the buffer's end waits for more.
    if (pending_[end] == '\r' && end + 1 == pending_.size()) break;
    std::string line = pending_.substr(start, end - start);
    start = end + ((pending_[end] == '\r' && pending_[end + 1] == '\n') ? 2 : 1);
    if (line.empty()) {
      if (has_data_) {
        if (event_.type.empty()) event_.type = "message";
        const bool more = on_event(event_);
        event_ = ServerEvent{};
        has_data_ = false;
        if (!more) {
          pending_.erase(0, start);
          return false;
        }
      } else {
        event_ = ServerEvent{};
      }
      continue;
    }
    if (line.front() == ':') continue;  // a comment (keep-alive)
    const auto colon = line.find(':');
    std::string field = line.substr(0, colon);
    std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.erase(0, 1);
    if (field == "data") {
      if (has_data_) event_.data += '\n';
      event_.data += value;
      has_data_ = true;
    } else if (field == "event") {
      event_.type = value;
    } else if (field == "id") {
      event_.id = value;
    }
  }
  pending_.erase(0, start);
  return true;
}

std::string url_encode(std::string_view text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace cascade::tools
