// Runs the real `cascade serve` (CASCADE_BINARY) as a child process on an
// ephemeral loopback port, collects what it prints, and stops it with a
// signal, waiting for its exit under a deadline (pidfd + poll: no sleeps).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <sys/time.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace cascade::testing {

class ServeProcess {
 public:
  using Clock = std::chrono::steady_clock;
  // Among the arguments: start serve with no --step-user even as root.
  static constexpr const char* kNoStepUser = "(no --step-user)";

  // Starts `cascade serve --listen 127.0.0.1:0` with `arguments` (e.g.
  // {"--data", dir}; a --listen among them replaces the default) and waits
  // until it prints the port it listens on.
  // started() is false (and output() says why) when it exits or stays silent.
  explicit ServeProcess(std::vector<std::string> arguments,
                        std::chrono::milliseconds startup = std::chrono::seconds(30)) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], STDOUT_FILENO);
      ::dup2(fds[1], STDERR_FILENO);
      std::vector<std::string> argv_strings = {CASCADE_BINARY, "serve"};
      if (std::find(arguments.begin(), arguments.end(), "--listen") == arguments.end()) {
        argv_strings.insert(argv_strings.end(), {"--listen", "127.0.0.1:0"});
      }
      // As root, serve refuses to run steps as root: they run as the user
      // tools/dev creates, unless the test names a --step-user (or
      // kNoStepUser, to see the refusal).
      const auto given = [&arguments](const char* argument) {
        return std::find(arguments.begin(), arguments.end(), argument) != arguments.end();
      };
      if (!given("--step-user") && !given(kNoStepUser) && ::geteuid() == 0) {
        argv_strings.insert(argv_strings.end(), {"--step-user", "cascade-step"});
      }
      arguments.erase(std::remove(arguments.begin(), arguments.end(), kNoStepUser), arguments.end());
      argv_strings.insert(argv_strings.end(), arguments.begin(), arguments.end());
      std::vector<char*> argv;
      for (auto& a : argv_strings) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(CASCADE_BINARY, argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    read_fd_ = fds[0];
    reader_ = std::thread([this] { drain(); });
    static const std::regex listening(R"(listening on (https?)://[^ ]*:(\d+)/)");
    std::smatch match;
    std::string text;
    if (wait_for_output([&](const std::string& out) { return std::regex_search(out, listening); }, startup)) {
      text = output();
      std::regex_search(text, match, listening);
      scheme_ = match[1];
      port_ = std::stoi(match[2]);
    }
  }

  ~ServeProcess() {
    if (pid_ > 0 && !exit_code_) {
      ::kill(pid_, SIGKILL);
      wait_exit(std::chrono::seconds(30));
    }
    if (reader_.joinable()) reader_.join();
    if (read_fd_ >= 0) ::close(read_fd_);
  }

  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  bool started() const { return port_ != 0; }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  // Loopback whatever address it listens on; https when it serves TLS.
  std::string url() const { return scheme_ + "://127.0.0.1:" + std::to_string(port_); }

  // Everything printed so far (stdout and stderr).
  std::string output() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return output_;
  }

  // The admin token printed on a first start, or "".
  std::string printed_token() const {
    static const std::regex token(R"(shown only this once\):\s*\n\s*([0-9a-f]{64}))");
    std::smatch match;
    const std::string text = output();
    return std::regex_search(text, match, token) ? match[1].str() : "";
  }

  // Until `predicate(output)` holds, the process's output ends, or the timeout.
  template <class Predicate>
  bool wait_for_output(Predicate predicate, std::chrono::milliseconds timeout) const {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait_for(lock, timeout, [&] { return predicate(output_) || closed_; });
    return predicate(output_);
  }

  // Sends `signal` and waits for the exit: its code (128 + signal when killed
  // by one), or nullopt when it is still running at the deadline.
  std::optional<int> stop(int signal, std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return std::nullopt;
    if (!exit_code_) ::kill(pid_, signal);
    return wait_exit(timeout);
  }

  std::optional<int> wait_exit(std::chrono::milliseconds timeout) {
    if (exit_code_) return exit_code_;
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    if (pidfd >= 0) {
      pollfd p{pidfd, POLLIN, 0};
      ::poll(&p, 1, static_cast<int>(timeout.count()));
      ::close(pidfd);
    }
    int status = 0;
    if (::waitpid(pid_, &status, pidfd >= 0 ? WNOHANG : 0) == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    return exit_code_;
  }

 private:
  void drain() {
    char buffer[4096];
    for (;;) {
      const ssize_t n = ::read(read_fd_, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      std::lock_guard<std::mutex> lock(mutex_);
      if (n <= 0) {
        closed_ = true;
        changed_.notify_all();
        return;
      }
      output_.append(buffer, static_cast<std::size_t>(n));
      changed_.notify_all();
    }
  }

  pid_t pid_ = -1;
  int read_fd_ = -1;
  int port_ = 0;
  std::string scheme_ = "http";
  std::optional<int> exit_code_;
  std::thread reader_;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::string output_;
  bool closed_ = false;
};

// One HTTP/1.1 exchange as the server sent it: the status, the head (status
// line and headers) and the body.
struct HttpAnswer {
  int status = 0;  // 0: no answer
  std::string head;
  std::string body;

  bool has_header(const std::string& name) const {
    std::string lower_head = head, lower_name = name + ":";
    for (char& c : lower_head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (char& c : lower_name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return lower_head.find("\r\n" + lower_name) != std::string::npos;
  }
  nlohmann::json json_body() const { return nlohmann::json::parse(body, nullptr, false); }
};

// A raw request to 127.0.0.1:port, so that the test sees every status and
// header (tools::ApiClient turns a non-2xx into an Error). Bounded: 10 s for
// sending and for each read.
inline HttpAnswer http_request(int port, const std::string& method, const std::string& target, const std::string& token,
                        const std::string& body = "") {
  HttpAnswer answer;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return answer;
  }
  std::string request = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  if (!token.empty()) request += "Authorization: Bearer " + token + "\r\n";
  if (!body.empty() || method == "POST" || method == "PUT") {
    request += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  request += "\r\n" + body;
  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string received;
  char buffer[16384];
  ssize_t n;
  while ((n = ::recv(fd, buffer, sizeof buffer, 0)) > 0) received.append(buffer, static_cast<std::size_t>(n));
  ::close(fd);
  const std::size_t head_end = received.find("\r\n\r\n");
  if (received.rfind("HTTP/1.1 ", 0) != 0 || head_end == std::string::npos) return answer;
  answer.status = std::stoi(received.substr(9, 3));
  answer.head = received.substr(0, head_end);
  answer.body = received.substr(head_end + 4);
  return answer;
}

// The status code of one raw HTTP/1.1 GET to 127.0.0.1:port, with `token` as
// bearer token when not empty; 0 when there is no answer.
inline int http_status(int port, const std::string& target, const std::string& token) {
  return http_request(port, "GET", target, token).status;
}

}  // namespace cascade::testing
