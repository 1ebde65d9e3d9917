// Event streams of the real `cascade serve` under abuse: many clients
// replaying a large log from its start, one user opening too many streams,
// a stream kept open forever. What must hold: the server's memory does not
// depend on how far back clients ask; every replayed event arrives once, in
// order; the per-user cap and the lifetime bite, say so, and are counted.
#include "adapters/rocksdb/store.hpp"
#include "events/codec.hpp"
#include "tests/support/cli_runner.hpp"
#include "tests/support/serve_process.hpp"
#include "tests/support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

namespace cascade {
namespace {

using testing::ServeProcess;

constexpr std::size_t kMillion = 1'000'000;

// A StageTriggered of a few hundred bytes, as the benchmarks append.
events::NewEvent filler_event(const std::string& stream, std::size_t n) {
  events::NewEvent e;
  e.event_id = events::random_uuid();
  events::StageTriggered triggered;
  triggered.stage = "prod";
  triggered.reason = "after test, qa";
  triggered.attempt = 1;
  e.data = triggered;
  e.recorded_at = 1'800'000'000'000 + static_cast<std::int64_t>(n);
  e.actor = "orchestrator";
  e.command_id = events::random_uuid();
  e.causation_id = events::random_uuid();
  e.correlation_id = stream;
  return e;
}

// Writes `count` events straight into <data>/log, 1,000 to a stream.
void fill_log(const std::string& data, std::size_t count) {
  std::filesystem::create_directories(data);
  auto store = adapters::RocksStore::open(data + "/log");
  ASSERT_TRUE(store) << store.error().message;
  constexpr std::size_t kPerStream = 1000;
  for (std::size_t first = 0; first < count; first += kPerStream) {
    const std::string stream = "filler-" + std::to_string(first / kPerStream);
    std::vector<events::NewEvent> batch;
    for (std::size_t n = first; n < std::min(count, first + kPerStream); ++n) batch.push_back(filler_event(stream, n));
    auto appended = store.value()->log().append(stream, 0, std::move(batch));
    ASSERT_TRUE(appended) << appended.error().message;
  }
}

// A kB figure of /proc/<pid>/status ("VmRSS", "VmHWM").
std::size_t status_kib(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoul(line.substr(field.size() + 1));
  }
  return 0;
}

int connect_loopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// One raw GET of an event stream; the client reads (or does not) as it likes.
class StreamClient {
 public:
  StreamClient(int port, const std::string& token, const std::string& last_event_id = "",
               const std::string& target = "/api/v1/stream")
      : fd_(connect_loopback(port)) {
    std::string request = "GET " + target + " HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\nConnection: close\r\n" +
                          "Authorization: Bearer " + token + "\r\n";
    if (!last_event_id.empty()) request += "Last-Event-ID: " + last_event_id + "\r\n";
    request += "\r\n";
    if (fd_ >= 0) ::send(fd_, request.data(), request.size(), MSG_NOSIGNAL);
  }
  ~StreamClient() { close(); }
  StreamClient(const StreamClient&) = delete;
  StreamClient& operator=(const StreamClient&) = delete;

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // Reads more within `timeout`; false at EOF, an error or the timeout.
  bool read_more(std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
    char buffer[65536];
    const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
    if (n <= 0) return false;
    feed(std::string_view(buffer, static_cast<std::size_t>(n)));
    return true;
  }

  // Reads until the response's head is in; its status code (0: none).
  int status() {
    while (!head_done_ && read_more()) {
    }
    return head_done_ && head_.size() >= 12 ? std::stoi(head_.substr(9, 3)) : 0;
  }
  const std::string& head() const { return head_; }
  // The body so far, de-chunked.
  const std::string& body() const { return body_; }
  // Reads until EOF (true) or `timeout` of silence (false).
  bool read_to_end(std::chrono::milliseconds timeout) {
    while (read_more(timeout)) {
    }
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1;  // readable and nothing more: EOF
  }

  // Ids of the events received so far are consumed with this: the numeric
  // ids in order, the body trimmed of whole frames.
  std::vector<std::uint64_t> take_ids() {
    std::vector<std::uint64_t> ids;
    std::size_t at = 0;
    for (;;) {
      const std::size_t end = body_.find("\n\n", at);
      if (end == std::string::npos) break;
      const std::size_t id = body_.find("id: ", at);
      if (id != std::string::npos && id < end && (id == at || body_[id - 1] == '\n')) {
        ids.push_back(std::stoull(body_.substr(id + 4, body_.find('\n', id) - id - 4)));
      }
      at = end + 2;
    }
    body_.erase(0, at);
    return ids;
  }

 private:
  // Splits the head from the body and undoes the chunked framing as bytes arrive.
  void feed(std::string_view bytes) {
    if (!head_done_) {
      head_.append(bytes);
      const std::size_t end = head_.find("\r\n\r\n");
      if (end == std::string::npos) return;
      raw_ = head_.substr(end + 4);
      head_.resize(end + 4);
      head_done_ = true;
      chunked_ = head_.find("Transfer-Encoding: chunked") != std::string::npos;
    } else {
      raw_.append(bytes);
    }
    if (!chunked_) {
      body_ += raw_;
      raw_.clear();
      return;
    }
    std::size_t at = 0;
    for (;;) {
      if (chunk_left_ == 0) {
        const std::size_t line_end = raw_.find("\r\n", at);
        if (line_end == std::string::npos) break;
        if (line_end == at) {  // the CRLF after a chunk's data
          at += 2;
          continue;
        }
        chunk_left_ = std::stoul(raw_.substr(at, line_end - at), nullptr, 16);
        at = line_end + 2;
        if (chunk_left_ == 0) break;  // the last chunk
      }
      const std::size_t take = std::min(chunk_left_, raw_.size() - at);
      if (take == 0) break;
      body_.append(raw_, at, take);
      chunk_left_ -= take;
      at += take;
    }
    raw_.erase(0, at);
  }

  int fd_;
  bool head_done_ = false;
  bool chunked_ = false;
  std::string head_, raw_, body_;
  std::size_t chunk_left_ = 0;
};

// The body of GET /metrics.
std::string metrics_of(const ServeProcess& server, const std::string& token) {
  StreamClient get(server.port(), token, "", "/metrics");
  get.status();
  get.read_to_end(std::chrono::seconds(10));
  return get.body();
}

// The token `cascade users add` printed: the indented line after the notice.
std::string printed_token(const std::string& output) {
  const std::size_t notice = output.find("(shown only this once):\n  ");
  if (notice == std::string::npos) return "";
  const std::size_t start = notice + std::string("(shown only this once):\n  ").size();
  return output.substr(start, output.find('\n', start) - start);
}

class ServeStreamsTest : public ::testing::Test {
 protected:
  std::string data() const { return dir_ / "data"; }
  testing::TempDir dir_;
};

// 64 clients ask for the whole log of a million events at once and read
// nothing past the first frames; one reads it all. The server pages each
// replay as its client reads, so its memory stays what 64 backlog bounds
// make it, and the reader gets every event once, in order.
TEST_F(ServeStreamsTest, SixtyFourReplaysOfAMillionEventsKeepTheServersMemoryBounded) {
  fill_log(data(), kMillion);
  // One user opens them all: the per-user cap (16 by default) is raised.
  ServeProcess server({"--data", data(), "--max-streams-per-user", "100"});
  ASSERT_TRUE(server.started()) << server.output();
  const std::string token = server.printed_token();
  const std::size_t rss_before_kib = status_kib(server.pid(), "VmRSS");

  std::vector<std::unique_ptr<StreamClient>> stalled;
  for (int i = 0; i < 64; ++i) {
    stalled.push_back(std::make_unique<StreamClient>(server.port(), token, "0"));
    ASSERT_EQ(stalled.back()->status(), 200) << stalled.back()->head();
  }
  for (auto& client : stalled) {
    // The first page arrives; afterwards the client stops reading.
    std::vector<std::uint64_t> ids;
    while (ids.empty() && client->read_more()) ids = client->take_ids();
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(ids.front(), 1u);
  }

  StreamClient reader(server.port(), token, "0");
  ASSERT_EQ(reader.status(), 200) << reader.head();
  std::uint64_t expected = 1;
  std::string first_disorder;
  while (expected <= kMillion && reader.read_more()) {
    for (std::uint64_t id : reader.take_ids()) {
      if (id != expected && first_disorder.empty()) {
        first_disorder = "event " + std::to_string(id) + " where " + std::to_string(expected) + " was due";
      }
      expected = id + 1;
    }
  }
  EXPECT_EQ(first_disorder, "") << "an event was lost or repeated";
  EXPECT_EQ(expected, kMillion + 1) << "the reader got every event";

  const std::size_t peak_kib = status_kib(server.pid(), "VmHWM");
  const std::size_t rss_after_kib = status_kib(server.pid(), "VmRSS");
  std::cout << "64 stalled replays + 1 full replay of " << kMillion << " events: server RSS " << rss_before_kib / 1024
            << " MiB before, " << rss_after_kib / 1024 << " MiB after, peak " << peak_kib / 1024 << " MiB\n";
  // Each stalled stream holds at most its backlog bound (1 MiB) and a page.
  EXPECT_LT(peak_kib, rss_before_kib + 256 * 1024) << "peak RSS " << peak_kib / 1024 << " MiB";
}

TEST_F(ServeStreamsTest, AUserPastTheStreamCapIsRefusedAndOthersAreNot) {
  ServeProcess server({"--data", data(), "--max-streams-per-user", "2"});
  ASSERT_TRUE(server.started()) << server.output();
  const std::string admin = server.printed_token();
  auto added = testing::run("users add watcher --role viewer --data " + data(), false);
  ASSERT_EQ(added.exit_code, 0) << added.output;
  const std::string watcher = printed_token(added.output);
  ASSERT_EQ(::kill(server.pid(), SIGHUP), 0);  // the users file is re-read

  StreamClient first(server.port(), admin), second(server.port(), admin);
  ASSERT_EQ(first.status(), 200);
  ASSERT_EQ(second.status(), 200);
  StreamClient third(server.port(), admin);
  ASSERT_EQ(third.status(), 429) << third.head();
  third.read_to_end(std::chrono::seconds(5));
  EXPECT_NE(third.head().find("Retry-After"), std::string::npos) << third.head();
  EXPECT_NE(third.body().find("'admin' already has 2 event streams open"), std::string::npos) << third.body();

  // Another user is not held back by admin's streams (once SIGHUP took it in).
  int watcher_status = 0;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
       watcher_status != 200 && std::chrono::steady_clock::now() < deadline;) {
    StreamClient attempt(server.port(), watcher);
    watcher_status = attempt.status();
  }
  EXPECT_EQ(watcher_status, 200);

  // A stream closed frees its slot (the server notices the client leaving).
  first.close();
  int again = 0;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
       again != 200 && std::chrono::steady_clock::now() < deadline;) {
    StreamClient attempt(server.port(), admin);
    again = attempt.status();
  }
  EXPECT_EQ(again, 200);
  const std::string metrics = metrics_of(server, admin);
  EXPECT_NE(metrics.find("cascade_http_streams_refused_total{reason=\"user\"}"), std::string::npos) << metrics;
}

TEST_F(ServeStreamsTest, AStreamEndsAtItsLifetimeAndResumesFromItsLastEventId) {
  ServeProcess server({"--data", data(), "--max-stream-lifetime", "1"});
  ASSERT_TRUE(server.started()) << server.output();
  const std::string token = server.printed_token();
  StreamClient stream(server.port(), token, "0");
  ASSERT_EQ(stream.status(), 200);
  // The server ends the response (its last chunk) about a second in.
  EXPECT_TRUE(stream.read_to_end(std::chrono::seconds(10))) << "the stream did not end";
  const std::string metrics = metrics_of(server, token);
  EXPECT_NE(metrics.find("cascade_http_streams_expired_total 1"), std::string::npos) << metrics;
}

}  // namespace
}  // namespace cascade
