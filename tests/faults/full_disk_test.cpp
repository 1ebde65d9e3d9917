// A really full disk under the real `cascade serve`: its data directory on a
// 16 MiB tmpfs, mostly taken by a ballast file, releases created until the
// log cannot write. What must hold: the full state is clear — creates answer
// 503 with Retry-After naming the cause, /readyz answers 503 with
// log_writable false and the reason, every acknowledged release still reads
// (also one whose summary the projections could no longer write), reactors
// that cannot write say so once rather than at every retry, the process
// stays up — and after space is freed and serve restarted, every
// acknowledged release is there, verifies and went on, /readyz is 200 and
// commands go through. Twice on one data directory: stopped with SIGTERM on
// the full disk, then with kill -9.
// disk_failure_test injects the failure under RocksDB; here the kernel says
// ENOSPC to every writer at once: the log's WAL, the projections' database,
// and RocksDB's own LOG files (a failed LOG write used to abort serve, see
// adapters/rocksdb/rocksdb_env.hpp).
//
// Mounting needs root (CAP_SYS_ADMIN); without it the test is skipped,
// saying so.
#include "tests/support/cli_runner.hpp"
#include "tests/support/serve_process.hpp"
#include "tests/support/temp_dir.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace cascade {
namespace {

using nlohmann::json;
using testing::CommandRun;
using testing::ServeProcess;
using testing::HttpAnswer;
using testing::http_request;
using SteadyClock = std::chrono::steady_clock;

constexpr const char* kFilesystemSize = "16m";
// What the ballast leaves free once serve runs: a few hundred creates' worth.
constexpr std::uint64_t kLeftFree = 2u << 20;
constexpr int kMaxCreates = 20'000;  // a disk that never fills ends the test rather than hanging it
constexpr auto kFillDeadline = std::chrono::seconds(30);
constexpr auto kStopDeadline = std::chrono::seconds(20);
constexpr auto kReadyDeadline = std::chrono::seconds(20);

// A release waits for an approval at once: creating one starts no process.
json pipeline() {
  return json{{"name", "Full"},
              {"stages",
               {{{"name", "prod"},
                 {"trigger", {{"after_release", true}}},
                 {"pre_approval", {{"approvers", {"admin"}}}},
                 {"steps", {{{"name", "ship"}, {"run", "true"}}}}}}}};
}

// A tmpfs of kFilesystemSize mounted on `dir` for the object's lifetime, by
// mount(2) itself: nothing is parsed by a shell, and errno says exactly why a
// mount was refused.
class SmallFilesystem {
 public:
  explicit SmallFilesystem(std::string dir) : dir_(std::move(dir)) {
    std::filesystem::create_directories(dir_);
    const std::string options = std::string("size=") + kFilesystemSize + ",mode=0755";
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) == 0) {
      mounted_ = true;
    } else {
      const int error = errno;
      refusal_ = "mount -t tmpfs -o " + options + " tmpfs " + dir_ + " was refused: " + std::strerror(error) +
                 (error == EPERM ? " (mounting needs root, or CAP_SYS_ADMIN in the test's namespace)" : "");
    }
  }
  ~SmallFilesystem() {
    if (!mounted_) return;
    // A lazy unmount when something still holds a file open (a serve that
    // would not die): the directory is detached now and freed when it closes.
    if (::umount2(dir_.c_str(), 0) != 0) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  SmallFilesystem(const SmallFilesystem&) = delete;
  SmallFilesystem& operator=(const SmallFilesystem&) = delete;

  bool mounted() const { return mounted_; }
  const std::string& refusal() const { return refusal_; }

  std::uint64_t free_bytes() const {
    struct statvfs stats {};
    if (::statvfs(dir_.c_str(), &stats) != 0) return 0;
    return static_cast<std::uint64_t>(stats.f_bavail) * stats.f_frsize;
  }

 private:
  std::string dir_;
  bool mounted_ = false;
  std::string refusal_;
};

// Writes `path` until `filesystem` has `left_free` bytes free (or the kernel
// says ENOSPC first): written pages, not a sparse file, so tmpfs counts them.
std::uint64_t write_ballast(const std::string& path, const SmallFilesystem& filesystem, std::uint64_t left_free) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return 0;
  const std::string chunk(64 << 10, 'b');
  std::uint64_t written = 0;
  for (std::uint64_t free = filesystem.free_bytes(); free > left_free; free = filesystem.free_bytes()) {
    const std::size_t size = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), free - left_free));
    const ssize_t n = ::write(fd, chunk.data(), size);
    if (n <= 0) break;
    written += static_cast<std::uint64_t>(n);
  }
  ::close(fd);
  return written;
}

// Polls `target` until it answers `status`, or the deadline: the last answer.
HttpAnswer wait_for_status(int port, const std::string& target, int status, std::chrono::milliseconds deadline) {
  const auto until = SteadyClock::now() + deadline;
  for (;;) {
    HttpAnswer answer = http_request(port, "GET", target, "");
    if (answer.status == status || SteadyClock::now() >= until) return answer;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// How many lines of `text` contain `needle`.
std::size_t lines_containing(const std::string& text, const std::string& needle) {
  std::size_t count = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++count;
  return count;
}

class FullDiskTest : public ::testing::Test {
 protected:
  std::string mount_point() const { return dir_ / "small"; }
  std::string data() const { return mount_point() + "/data"; }
  std::string ballast() const { return mount_point() + "/ballast"; }
  std::string artifacts() const { return data() + "/artifacts"; }

  HttpAnswer create(const ServeProcess& server) {
    const int n = creates_++;
    return http_request(server.port(), "POST", "/api/v1/releases", token_,
                        json{{"pipeline", "Full"},
                             {"artifact", {{"version", "1.0." + std::to_string(n)}, {"path", artifacts() + "/app"}}}}
                            .dump());
  }

  // Fills the filesystem under a running serve until a create is refused,
  // checks that the full state is clear, stops serve with `signal` and frees
  // the space. Every create answered 2xx joins acknowledged_.
  void fill_check_and_stop(ServeProcess& server, int signal);
  // Starts serve on the freed disk: every acknowledged release is there,
  // verifies and went on to wait for its approval; commands go through.
  void restart_and_check();

  testing::TempDir dir_;  // first: removed after the filesystem is unmounted
  std::unique_ptr<SmallFilesystem> filesystem_;
  std::string token_;
  std::vector<std::string> acknowledged_;
  std::set<std::string> rejected_;  // acknowledged, then rejected after a restart
  int creates_ = 0;
};

void FullDiskTest::fill_check_and_stop(ServeProcess& server, int signal) {
  const std::uint64_t ballast_bytes = write_ballast(ballast(), *filesystem_, kLeftFree);
  std::cout << "ballast " << (ballast_bytes >> 10) << " KiB; " << (filesystem_->free_bytes() >> 10)
            << " KiB left free" << std::endl;

  // Creates until one is refused: every 2xx is a release that must outlive
  // the full disk.
  HttpAnswer refused;
  std::size_t acknowledged_now = 0;
  const auto fill_until = SteadyClock::now() + kFillDeadline;
  for (int n = 0; n < kMaxCreates && SteadyClock::now() < fill_until; ++n) {
    HttpAnswer created = create(server);
    if (created.status / 100 != 2) {
      refused = std::move(created);
      break;
    }
    const std::string id = created.json_body().value("id", "");
    ASSERT_FALSE(id.empty()) << created.body;
    acknowledged_.push_back(id);
    ++acknowledged_now;
  }
  std::cout << acknowledged_now << " creates acknowledged before the disk was full; "
            << (filesystem_->free_bytes() >> 10) << " KiB free now" << std::endl;
  if (const std::optional<int> exited = server.wait_exit(std::chrono::milliseconds(0))) {
    FAIL() << "serve exited (" << *exited << ") as the disk filled; it said:\n" << server.output();
  }
  ASSERT_NE(refused.status, 0) << "no create was refused within " << kFillDeadline.count() << " s and "
                               << kMaxCreates << " creates; the server said:\n" << server.output();
  ASSERT_GT(acknowledged_now, 0u) << "the disk was full before the first create";

  // The full disk is a clear state: the refusal says why and when to retry.
  EXPECT_EQ(refused.status, 503) << refused.head << "\n" << refused.body;
  EXPECT_TRUE(refused.has_header("Retry-After")) << refused.head;
  const std::string refusal = refused.json_body()["error"].value("message", "");
  EXPECT_NE(refusal.find("cannot write"), std::string::npos) << refused.body;
  EXPECT_NE(refusal.find("No space left on device"), std::string::npos) << refused.body;
  std::cout << "refusal: " << refused.body << std::endl;

  // And it stays so: later creates too.
  const HttpAnswer again = create(server);
  EXPECT_EQ(again.status, 503) << again.body;

  const HttpAnswer ready = http_request(server.port(), "GET", "/readyz", "");
  EXPECT_EQ(ready.status, 503) << ready.body;
  const json readiness = ready.json_body();
  EXPECT_EQ(readiness.value("log_writable", true), false) << ready.body;
  EXPECT_NE(readiness.value("log_error", "").find("No space left on device"), std::string::npos) << ready.body;
  std::cout << "readyz: " << ready.body << std::endl;

  // Reads go on, and hide nothing acknowledged: every release answers, the
  // last one verifies.
  for (const std::string& id : acknowledged_) {
    const HttpAnswer read = http_request(server.port(), "GET", "/api/v1/releases/" + id, token_);
    EXPECT_EQ(read.status, 200) << id << ": " << read.body;
  }
  const HttpAnswer verified =
      http_request(server.port(), "GET", "/api/v1/releases/" + acknowledged_.back() + "/verify", token_);
  EXPECT_EQ(verified.status, 200) << verified.body;
  EXPECT_EQ(verified.json_body().value("ok", false), true) << verified.body;

  // A reactor that cannot write (the orchestrator's reaction, a projection,
  // a checkpoint) retries every 100 ms. Once one has retried ten times, each
  // has said why at most twice (the orchestrator: the append that met the
  // full disk, then the refusals after it) rather than every time. Which
  // reactors had something to write when the disk filled is up to timing;
  // when none had, nothing retries.
  json reactors;
  for (const auto until = SteadyClock::now() + std::chrono::seconds(10);;) {
    const HttpAnswer health = http_request(server.port(), "GET", "/api/v1/health", token_);
    ASSERT_EQ(health.status, 200) << health.body;
    EXPECT_EQ(health.json_body().value("log_writable", true), false) << health.body;
    reactors = health.json_body()["reactors"];
    bool any_failing = false;
    std::uint64_t most_errors = 0;
    for (const auto& [name, reactor] : reactors.items()) {
      if (!reactor.value("failing", false)) continue;
      any_failing = true;
      most_errors = std::max(most_errors, reactor.value("errors", std::uint64_t{0}));
    }
    if (!any_failing || most_errors >= 10) break;
    ASSERT_LT(SteadyClock::now(), until) << "no failing reactor retried 10 times: " << health.body;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const std::string output = server.output();
  for (const auto& [name, reactor] : reactors.items()) {
    if (reactor.value("errors", 0) > 0) std::cout << "reactor " << name << ": " << reactor.dump() << std::endl;
    EXPECT_LE(lines_containing(output, "cascade: reactor " + name + ": "), 2u)
        << name << " failed " << reactor.value("errors", 0) << " times:\n" << output;
  }
  EXPECT_EQ(lines_containing(output, "cascade: the event log cannot write"), 1u) << output;

  // Still running; then stopped as asked.
  EXPECT_EQ(server.wait_exit(std::chrono::milliseconds(0)), std::nullopt) << output;
  const int expected_exit = signal == SIGKILL ? 128 + SIGKILL : 0;
  EXPECT_EQ(server.stop(signal, kStopDeadline), std::optional<int>(expected_exit)) << server.output();
  std::cout << "serve on the full disk printed:\n" << server.output() << std::endl;

  // Recovery, as the README says: free space, then start again.
  std::filesystem::remove(ballast());
}

void FullDiskTest::restart_and_check() {
  ServeProcess server({"--data", data()});
  ASSERT_TRUE(server.started()) << server.output();
  const HttpAnswer ready = wait_for_status(server.port(), "/readyz", 200, kReadyDeadline);
  ASSERT_EQ(ready.status, 200) << ready.body << "\n" << server.output();
  EXPECT_EQ(ready.json_body().value("log_writable", false), true) << ready.body;

  for (const std::string& id : acknowledged_) {
    SCOPED_TRACE(id);
    const HttpAnswer verified = http_request(server.port(), "GET", "/api/v1/releases/" + id + "/verify", token_);
    ASSERT_EQ(verified.status, 200) << verified.body;
    EXPECT_EQ(verified.json_body().value("ok", false), true) << verified.body;
  }
  // The orchestrator's reactions the full disk refused are made now.
  const auto settle_until = SteadyClock::now() + kReadyDeadline;
  for (const std::string& id : acknowledged_) {
    SCOPED_TRACE(id);
    std::string status;
    for (;;) {
      const HttpAnswer summary = http_request(server.port(), "GET", "/api/v1/releases/" + id, token_);
      ASSERT_EQ(summary.status, 200) << summary.body;
      const json stages = summary.json_body()["stages"];
      status = stages.is_array() && !stages.empty() ? stages[0].value("status", "") : "";
      if (status == "AwaitingPreApproval" || status == "Rejected" || SteadyClock::now() >= settle_until) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_EQ(status, rejected_.count(id) != 0 ? "Rejected" : "AwaitingPreApproval");
  }

  // Writable again: a create and a decision go through (a rejection: it
  // starts no step).
  const std::string last = acknowledged_.back();
  const HttpAnswer created = create(server);
  ASSERT_EQ(created.status, 201) << created.body;
  acknowledged_.push_back(created.json_body().value("id", ""));
  const HttpAnswer rejected =
      http_request(server.port(), "POST", "/api/v1/releases/" + last + "/stages/prod/approvals", token_,
                   json{{"decision", "reject"}, {"comment", "after the full disk"}}.dump());
  EXPECT_EQ(rejected.status / 100, 2) << rejected.body;
  rejected_.insert(last);
  ASSERT_EQ(server.stop(SIGTERM, kStopDeadline), std::optional<int>(0)) << server.output();
}

// Twice on one data directory: the first full disk ends with SIGTERM, the
// second with kill -9 (both of which the README promises to survive).
TEST_F(FullDiskTest, AReallyFullDiskRefusesWritesClearlyAndARestartAfterFreeingSpaceLosesNothing) {
  const auto started = SteadyClock::now();
  filesystem_ = std::make_unique<SmallFilesystem>(mount_point());
  if (!filesystem_->mounted()) GTEST_SKIP() << filesystem_->refusal();

  std::filesystem::create_directories(artifacts() + "/app");
  const CommandRun added = testing::run("users add admin --role admin --json --data " + data());
  ASSERT_EQ(added.exit_code, 0) << added.output;
  token_ = json::parse(added.output, nullptr, false).value("token", "");
  ASSERT_EQ(token_.size(), 64u) << added.output;

  for (const int signal : {SIGTERM, SIGKILL}) {
    SCOPED_TRACE(signal == SIGTERM ? "SIGTERM on the full disk" : "kill -9 on the full disk");
    {
      ServeProcess server({"--data", data()});
      ASSERT_TRUE(server.started()) << server.output();
      if (signal == SIGTERM) {
        const HttpAnswer applied =
            http_request(server.port(), "PUT", "/api/v1/pipelines/Full", token_, pipeline().dump());
        ASSERT_EQ(applied.status / 100, 2) << applied.head << "\n" << applied.body;
      }
      ASSERT_NO_FATAL_FAILURE(fill_check_and_stop(server, signal));
    }
    ASSERT_NO_FATAL_FAILURE(restart_and_check());
  }

  const CommandRun doctor = testing::run("doctor --data " + data());
  EXPECT_EQ(doctor.exit_code, 0) << doctor.output;
  std::cout << acknowledged_.size() << " acknowledged releases; took "
            << std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started).count() << " ms"
            << std::endl;
}

}  // namespace
}  // namespace cascade
