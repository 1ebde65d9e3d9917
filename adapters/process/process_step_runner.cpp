#include "adapters/process/process_step_runner.hpp"

#include "engine/secret_masker.hpp"
#include "events/codec.hpp"
#include "events/utf8.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <filesystem>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace cascade::adapters {
namespace {

using SteadyClock = std::chrono::steady_clock;
using OnLine = std::function<void(const engine::LogLine&)>;

// Longest line delivered in one piece; bounds the memory a step's output can take.
constexpr std::size_t kMaxLineBytes = 64 * 1024;
constexpr std::size_t kReadBytes = 64 * 1024;
// Once the shell has exited and its group is killed, output still in the pipes
// is read for at most this long: a process that left the group (setsid) may
// hold a pipe open forever, and it must not hold the step with it.
constexpr std::chrono::milliseconds kDrainGrace{1000};
// Without pidfd_open, how often the runner looks whether the shell has exited.
constexpr std::chrono::milliseconds kExitCheckInterval{10};
// How often a running step's cancel flag is read: a flag has no fd to poll,
// and the port promises a kill within ~100 ms of the flag turning true.
constexpr std::chrono::milliseconds kCancelCheckInterval{50};

std::string errno_message(int err) { return std::system_category().message(err); }

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// The child dup2()s these fds onto 0, 1 and 2; were one of them already 0, 1
// or 2 (the embedding process closed its stdio), an earlier dup2 would clobber
// it. Keeping them at 3 and above makes the child's redirection order-free.
bool lift_above_stdio(UniqueFd& fd, std::string& error) {
  if (fd.get() > 2) return true;
  const int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
  if (moved < 0) {
    error = "cannot duplicate a file descriptor: " + errno_message(errno);
    return false;
  }
  fd = UniqueFd(moved);
  return true;
}

// O_CLOEXEC is set atomically at creation: steps run concurrently on other
// threads, and a write end leaked into another step's process would keep this
// step's reader from ever seeing EOF.
enum class ReadEnd { kBlocking, kNonBlocking };
bool make_pipe(UniqueFd& read_end, UniqueFd& write_end, ReadEnd mode, std::string& error) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    error = "cannot create a pipe: " + errno_message(errno);
    return false;
  }
  read_end = UniqueFd(fds[0]);
  write_end = UniqueFd(fds[1]);
  // Only the read end may be non-blocking: the flag lives on the open file
  // description, which the child's end must not share.
  if (mode == ReadEnd::kBlocking) return lift_above_stdio(write_end, error);
  const int flags = ::fcntl(read_end.get(), F_GETFL);
  if (flags < 0 || ::fcntl(read_end.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    error = "cannot configure a pipe: " + errno_message(errno);
    return false;
  }
  return lift_above_stdio(write_end, error);
}

bool has_nul(std::string_view text) { return text.find('\0') != std::string_view::npos; }

// Splits one stream's bytes into LogLines, after masking the secrets in the
// raw bytes (so a secret is masked across reads, cuts and lines). Not
// thread-safe; one per stream.
class LineSplitter {
 public:
  LineSplitter(const char* stream, const engine::Clock& clock, const OnLine& on_line,
               const std::vector<std::string>& secrets)
      : stream_(stream), clock_(clock), on_line_(on_line), masker_(secrets) {}

  void feed(const char* data, std::size_t size) {
    if (!on_line_) return;
    split(masker_.feed(std::string_view(data, size)));
  }

  // Delivers a final line that had no newline.
  void finish() {
    if (!on_line_) return;
    split(masker_.finish());
    if (!pending_.empty()) emit(std::exchange(pending_, std::string()));
  }

 private:
  void split(const std::string& masked) {
    const char* data = masked.data();
    std::size_t size = masked.size();
    while (size > 0) {
      const auto* newline = static_cast<const char*>(std::memchr(data, '\n', size));
      const std::size_t take = newline != nullptr ? static_cast<std::size_t>(newline - data) : size;
      pending_.append(data, take);
      // Cut only when a byte of the same line is known to follow, so that a
      // line of exactly kMaxLineBytes stays whole and no empty line appears.
      // The cut never splits a UTF-8 character.
      while (pending_.size() > kMaxLineBytes) {
        const std::size_t cut = std::max<std::size_t>(events::utf8_cut(pending_, kMaxLineBytes), 1);
        emit(pending_.substr(0, cut));
        pending_.erase(0, cut);
      }
      if (newline == nullptr) return;
      emit(std::exchange(pending_, std::string()));
      data += take + 1;
      size -= take + 1;
    }
  }

  void emit(std::string text) { on_line_(engine::LogLine{clock_.now(), stream_, std::move(text)}); }

  const char* stream_;
  const engine::Clock& clock_;
  const OnLine& on_line_;
  engine::SecretMasker masker_;
  std::string pending_;
};

// What the child reports through the exec-status pipe when it cannot become
// the step. Nothing arrives (EOF at exec) when it can.
enum class ChildStage : int {
  kSetProcessGroup = 1,
  kRedirect,
  kSetGroups,
  kSetGid,
  kSetUid,
  kChangeDir,
  kExec,
  kSupervise
};
struct ChildFailure {
  ChildStage stage;
  int err;
};

// Everything the child needs, built before fork(): between fork and exec the
// child may call only async-signal-safe functions, so it must not allocate.
struct ChildPlan {
  std::vector<std::string> env_entries;
  std::vector<char*> envp;
  std::vector<char*> argv;
  const char* work_dir = nullptr;
  const StepIdentity* step_user = nullptr;  // null: stay who the engine is
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  int report_fd = -1;
  int lifeline_fd = -1;  // read end of a pipe only the engine writes: EOF when it is gone
  int lock_fd = -1;      // the deployment's lock, held while the step runs (or -1)
};

[[noreturn]] void become_step(const ChildPlan& plan) noexcept {
  const auto fail = [&plan](ChildStage stage) {
    const ChildFailure failure{stage, errno};
    const ssize_t ignored = ::write(plan.report_fd, &failure, sizeof failure);
    (void)ignored;
    ::_exit(127);
  };
  // Handled signals reset at exec anyway, but ignored ones would stay ignored
  // (a SIG_IGN'd SIGPIPE would break `yes | head` in a step); the mask the
  // parent blocked around fork() is cleared so the step starts clean.
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  ::sigemptyset(&default_action.sa_mask);
  for (int signal = 1; signal < NSIG; ++signal) {
    if (signal != SIGKILL && signal != SIGSTOP) ::sigaction(signal, &default_action, nullptr);
  }
  sigset_t empty;
  ::sigemptyset(&empty);
  ::sigprocmask(SIG_SETMASK, &empty, nullptr);

  if (::dup2(plan.stdin_fd, STDIN_FILENO) < 0 || ::dup2(plan.stdout_fd, STDOUT_FILENO) < 0 ||
      ::dup2(plan.stderr_fd, STDERR_FILENO) < 0) {
    fail(ChildStage::kRedirect);
  }
#ifdef CLOSE_RANGE_CLOEXEC
  // Descriptors the embedding process opened without O_CLOEXEC are no
  // business of the step; best effort (needs Linux 5.11).
  ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
#endif
  // Groups and gid first: once the uid is dropped the child may no longer
  // change them, and a root group kept would still open root's group files.
  if (plan.step_user != nullptr) {
    const StepIdentity& user = *plan.step_user;
    if (::setgroups(user.groups.size(), user.groups.data()) != 0) fail(ChildStage::kSetGroups);
    if (::setgid(user.gid) != 0) fail(ChildStage::kSetGid);
    if (::setuid(user.uid) != 0) fail(ChildStage::kSetUid);
  }
  if (::chdir(plan.work_dir) != 0) fail(ChildStage::kChangeDir);
  ::execve("/bin/sh", plan.argv.data(), plan.envp.data());
  fail(ChildStage::kExec);
  ::_exit(127);  // not reached; fail() does not return
}

// Closes every descriptor from 3 up but those in `keep` (-1 entries
// ignored). Async-signal-safe: no allocation.
void close_all_fds_but(int (&keep)[6]) noexcept {
  // Sorted in place (insertion sort), so the gaps between them are ranges.
  for (int i = 1; i < 6; ++i) {
    for (int j = i; j > 0 && keep[j - 1] > keep[j]; --j) std::swap(keep[j - 1], keep[j]);
  }
  const auto close_range_of = [](unsigned first, unsigned last) {
    if (first > last) return;
#ifdef SYS_close_range
    if (::syscall(SYS_close_range, first, last, 0) == 0) return;
#endif
    rlimit limit{};
    const unsigned highest =
        ::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < 65536
            ? static_cast<unsigned>(limit.rlim_cur)
            : 65536;
    for (unsigned fd = first; fd <= last && fd < highest; ++fd) ::close(static_cast<int>(fd));
  };
  unsigned next = 3;
  for (int fd : keep) {
    if (fd < static_cast<int>(next)) continue;
    close_range_of(next, static_cast<unsigned>(fd) - 1);
    next = static_cast<unsigned>(fd) + 1;
  }
  close_range_of(next, ~0U);
}

// The forked child: it leads the step's process group, runs the step as its
// own child, and ends as the step ended (its exit code, or its signal). It
// exists so that no step outlives the engine: when the engine's process ends
// for any reason (kill -9 included), the lifeline pipe reaches EOF and the
// supervisor kills the whole group, itself included. PR_SET_PDEATHSIG could
// not do this: it follows the forking thread, not the process. It does not
// exec — a forked copy of a threaded process may make only async-signal-safe
// calls, and these are all it makes — and keeps the deployment's lock until
// it ends, so a restarted engine can tell when nothing of it runs any more.
[[noreturn]] void supervise_step(const ChildPlan& plan) noexcept {
  const auto fail = [&plan](ChildStage stage) {
    const ChildFailure failure{stage, errno};
    const ssize_t ignored = ::write(plan.report_fd, &failure, sizeof failure);
    (void)ignored;
    ::_exit(127);
  };
  if (::setpgid(0, 0) != 0) fail(ChildStage::kSetProcessGroup);
  // Descriptors of other steps (their lifeline copies, pipes, locks) must not
  // be kept alive by this long-lived process.
  int keep[6] = {plan.stdin_fd, plan.stdout_fd, plan.stderr_fd, plan.report_fd, plan.lifeline_fd, plan.lock_fd};
  close_all_fds_but(keep);
  const pid_t step = ::fork();
  if (step < 0) fail(ChildStage::kSupervise);
  if (step == 0) become_step(plan);
  // Only the step may hold these: the engine reads them to EOF.
  ::close(plan.stdin_fd);
  ::close(plan.stdout_fd);
  ::close(plan.stderr_fd);
  ::close(plan.report_fd);
#ifdef SYS_pidfd_open
  const int step_fd = static_cast<int>(::syscall(SYS_pidfd_open, step, 0));
#else
  const int step_fd = -1;
#endif
  for (;;) {
    pollfd fds[2] = {{plan.lifeline_fd, POLLIN, 0}, {step_fd, POLLIN, 0}};
    const int ready = ::poll(fds, step_fd >= 0 ? 2 : 1, step_fd >= 0 ? -1 : 50);
    if ((ready < 0 && errno != EINTR) || (ready > 0 && fds[0].revents != 0)) {
      // The engine is gone (or cannot be watched): nothing of the step stays.
      ::kill(0, SIGKILL);
      ::_exit(137);
    }
    int status = 0;
    if (::waitpid(step, &status, WNOHANG) != step) continue;
    if (WIFEXITED(status)) ::_exit(WEXITSTATUS(status));
    // Dies of the step's signal, so the engine reads the same status.
    const int signal = WIFSIGNALED(status) ? WTERMSIG(status) : SIGKILL;
    const rlimit no_core{0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    ::sigemptyset(&default_action.sa_mask);
    ::sigaction(signal, &default_action, nullptr);
    sigset_t only;
    ::sigemptyset(&only);
    ::sigaddset(&only, signal);
    ::sigprocmask(SIG_UNBLOCK, &only, nullptr);
    ::kill(::getpid(), signal);
    ::_exit(128 + signal);
  }
}

// Owns the child until it is reaped. If run() leaves early (an error, or
// on_line threw), the destructor kills the group and reaps so that no step
// outlives its call and no zombie is left.
class ChildProcess {
 public:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() {
    if (reaped_) return;
    kill_group();
    ::kill(pid_, SIGKILL);  // in case the group was never formed
    int status = 0;
    reap(status);
  }

  pid_t pid() const { return pid_; }

  // Safe only while the shell is unreaped: its pid (the group id) cannot be
  // reused before that, so the signal cannot reach a stranger's group.
  void kill_group() const { ::kill(-pid_, SIGKILL); }

  bool reap(int& status) {
    while (::waitpid(pid_, &status, 0) < 0) {
      if (errno != EINTR) return false;
    }
    reaped_ = true;
    return true;
  }

  // True once the shell has exited; leaves it unreaped (WNOWAIT).
  bool has_exited() const {
    siginfo_t info{};
    return ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
           info.si_pid == pid_;
  }

 private:
  pid_t pid_;
  bool reaped_ = false;
};

// A pidfd turns "the shell exited" into a poll() event; where the kernel lacks
// it (before 5.3) the runner falls back to checking every kExitCheckInterval.
UniqueFd open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  return UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
#else
  (void)pid;
  return UniqueFd();
#endif
}

struct OutputStream {
  UniqueFd fd;
  LineSplitter lines;
};

// What both streams of a step may still write (request.max_output_bytes).
struct OutputBudget {
  bool limited = false;
  std::uint64_t left = 0;
  bool exceeded = false;
};

// Reads what is available; at EOF delivers the partial line and closes.
// Output past the budget is read (so the step cannot block on a full pipe
// while it is being killed) and dropped.
bool read_available(OutputStream& stream, std::vector<char>& buffer, OutputBudget& budget, std::string& error) {
  const ssize_t n = ::read(stream.fd.get(), buffer.data(), buffer.size());
  if (n > 0) {
    std::size_t take = static_cast<std::size_t>(n);
    if (budget.limited) {
      if (take > budget.left) {
        take = static_cast<std::size_t>(budget.left);
        budget.exceeded = true;
      }
      budget.left -= take;
    }
    stream.lines.feed(buffer.data(), take);
  } else if (n == 0) {
    stream.lines.finish();
    stream.fd.reset();
  } else if (errno != EINTR && errno != EAGAIN) {
    error = "cannot read the step's output: " + errno_message(errno);
    return false;
  }
  return true;
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::string describe(const ChildFailure& failure, const std::string& work_dir, const StepIdentity* step_user) {
  const std::string reason = errno_message(failure.err);
  const std::string user_name = step_user != nullptr ? step_user->name : std::string();
  switch (failure.stage) {
    case ChildStage::kSetGroups:
      return "cannot become step user '" + user_name + "': setgroups: " + reason;
    case ChildStage::kSetGid:
      return "cannot become step user '" + user_name + "': setgid " + std::to_string(step_user->gid) + ": " + reason;
    case ChildStage::kSetUid:
      return "cannot become step user '" + user_name + "': setuid " + std::to_string(step_user->uid) + ": " + reason;
    case ChildStage::kSetProcessGroup:
      return "cannot give the step its own process group: " + reason;
    case ChildStage::kRedirect:
      return "cannot redirect the step's stdin, stdout and stderr: " + reason;
    case ChildStage::kChangeDir:
      return "cannot enter work dir '" + work_dir + "': " + reason;
    case ChildStage::kExec:
      return "cannot execute /bin/sh: " + reason;
    case ChildStage::kSupervise:
      return "cannot start the step under its supervisor: " + reason;
  }
  return "the step could not start: " + reason;
}

std::optional<std::string> check_request(const engine::StepRequest& request) {
  if (has_nul(request.command)) return "command contains a NUL byte";
  if (request.work_dir.empty()) return "work_dir is empty";
  if (has_nul(request.work_dir)) return "work_dir contains a NUL byte";
  for (const auto& [name, value] : request.env) {
    if (name.empty() || name.find('=') != std::string::npos || has_nul(name)) {
      return "invalid environment variable name '" + name + "'";
    }
    if (has_nul(value)) return "environment variable '" + name + "' contains a NUL byte";
  }
  return std::nullopt;
}

// Created here, in the parent, and then handed to the step user (chown)
// rather than created by the child after it dropped privileges: the parents
// (<data>/work/<release>/<stage>) belong to the engine and must stay
// unwritable by steps, so the step user could not create the dir itself; and
// an error here is reported with the whole message, not just an errno.
std::optional<std::string> create_work_dir(const std::string& path, const StepIdentity* step_user) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (!ec && !std::filesystem::is_directory(path, ec) && !ec) {
    ec = std::make_error_code(std::errc::not_a_directory);
  }
  if (ec) return "cannot create work dir '" + path + "': " + ec.message();
  if (step_user == nullptr) return std::nullopt;
  // O_NOFOLLOW: a symlink in the dir's place must not hand its target over.
  UniqueFd dir(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir.valid() || ::fchown(dir.get(), step_user->uid, step_user->gid) != 0 ||
      ::fchmod(dir.get(), 0700) != 0) {
    return "cannot give work dir '" + path + "' to step user '" + step_user->name + "': " + errno_message(errno);
  }
  return std::nullopt;
}

engine::StepOutcome fail_with(std::string error) {
  engine::StepOutcome outcome;
  outcome.error = std::move(error);
  return outcome;
}

// Forks the step and returns its pid; the caller still holds (and must close)
// the child's ends of the pipes.
std::optional<pid_t> spawn(const ChildPlan& plan, std::string& error) {
  // All signals stay blocked across fork() so that no handler of the
  // embedding process runs in the child before become_step() resets them.
  sigset_t all;
  sigset_t previous;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &previous);
  const pid_t pid = ::fork();
  if (pid == 0) supervise_step(plan);
  const int fork_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (pid < 0) {
    error = "cannot fork: " + errno_message(fork_errno);
    return std::nullopt;
  }
  // Also set here: whichever of parent and child runs first, the group exists
  // before the parent may signal it. EACCES (the child already exec'd, having
  // set it itself) and ESRCH are expected.
  ::setpgid(pid, pid);
  return pid;
}

bool cancel_requested(const engine::StepRequest& request) {
  return request.cancel != nullptr && request.cancel->load();
}

// The lock file of `deployment` in `run_dir`: named by a digest, so any
// release or stage name makes a plain file name.
std::string lock_path(const std::string& run_dir, const std::string& deployment) {
  events::Sha256 digest;
  digest.update(deployment);
  return run_dir + "/" + digest.finish() + ".lock";
}

// Takes the deployment's lock for the step about to start (the supervisor
// keeps it): an invalid fd when the deployment is not tracked.
UniqueFd lock_deployment(const std::string& run_dir, const std::string& deployment, std::string& error) {
  if (run_dir.empty() || deployment.empty()) return UniqueFd();
  const std::string path = lock_path(run_dir, deployment);
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd.valid() || !lift_above_stdio(fd, error)) {
    if (error.empty()) error = "cannot open the deployment lock '" + path + "': " + errno_message(errno);
    return UniqueFd();
  }
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    error = errno == EWOULDBLOCK ? "a step of deployment " + deployment + " is still running"
                                 : "cannot lock '" + path + "': " + errno_message(errno);
    return UniqueFd();
  }
  return fd;
}

engine::StepOutcome run_step(const engine::StepRequest& request, const engine::Clock& clock, int lifeline_fd,
                             const std::string& run_dir, const StepIdentity* step_user) {
  // Checked before anything else so that a canceled step has no side effect,
  // not even its work dir.
  if (cancel_requested(request)) {
    engine::StepOutcome outcome;
    outcome.canceled = true;
    return outcome;
  }
  if (auto problem = check_request(request)) return fail_with(std::move(*problem));
  if (auto problem = create_work_dir(request.work_dir, step_user)) return fail_with(std::move(*problem));

  std::string error;
  UniqueFd stdin_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!stdin_fd.valid()) return fail_with("cannot open /dev/null: " + errno_message(errno));
  if (!lift_above_stdio(stdin_fd, error)) return fail_with(std::move(error));
  OutputStream out{UniqueFd(), LineSplitter("stdout", clock, request.on_line, request.secrets)};
  OutputStream err{UniqueFd(), LineSplitter("stderr", clock, request.on_line, request.secrets)};
  UniqueFd out_write;
  UniqueFd err_write;
  UniqueFd report_read;
  UniqueFd report_write;
  if (!make_pipe(out.fd, out_write, ReadEnd::kNonBlocking, error) ||
      !make_pipe(err.fd, err_write, ReadEnd::kNonBlocking, error) ||
      !make_pipe(report_read, report_write, ReadEnd::kBlocking, error)) {
    return fail_with(std::move(error));
  }

  UniqueFd lock = lock_deployment(run_dir, request.deployment, error);
  if (!error.empty()) return fail_with(std::move(error));

  ChildPlan plan;
  plan.lifeline_fd = lifeline_fd;
  plan.lock_fd = lock.get();
  plan.env_entries.reserve(request.env.size());
  for (const auto& [name, value] : request.env) plan.env_entries.push_back(name + "=" + value);
  for (auto& entry : plan.env_entries) plan.envp.push_back(entry.data());
  plan.envp.push_back(nullptr);
  static char kShellName[] = "sh";
  static char kCommandFlag[] = "-c";
  std::string command = request.command;
  plan.argv = {kShellName, kCommandFlag, command.data(), nullptr};
  plan.work_dir = request.work_dir.c_str();
  plan.step_user = step_user;
  plan.stdin_fd = stdin_fd.get();
  plan.stdout_fd = out_write.get();
  plan.stderr_fd = err_write.get();
  plan.report_fd = report_write.get();

  const std::optional<pid_t> pid = spawn(plan, error);
  if (!pid) return fail_with(std::move(error));
  ChildProcess child(*pid);
  const auto started = SteadyClock::now();
  // Only the child may hold the write ends now, or EOF would never come.
  stdin_fd.reset();
  out_write.reset();
  err_write.reset();
  report_write.reset();
  // The supervisor holds the lock from here until it ends.
  lock.reset();

  // Blocks until exec (EOF, since the pipe is O_CLOEXEC) or a failure report.
  ChildFailure failure{};
  ssize_t reported = 0;
  do {
    reported = ::read(report_read.get(), &failure, sizeof failure);
  } while (reported < 0 && errno == EINTR);
  if (reported < 0) return fail_with("cannot learn whether the step started: " + errno_message(errno));
  if (reported == static_cast<ssize_t>(sizeof failure)) return fail_with(describe(failure, request.work_dir, step_user));
  report_read.reset();

  UniqueFd pidfd = open_pidfd(child.pid());
  std::optional<SteadyClock::time_point> deadline;
  if (request.timeout.count() > 0) deadline = started + request.timeout;
  std::optional<SteadyClock::time_point> drain_until;  // set once the shell is reaped
  bool timed_out = false;
  bool canceled = false;
  int status = 0;
  OutputBudget budget{request.max_output_bytes > 0, request.max_output_bytes, false};
  std::vector<char> buffer(kReadBytes);

  // Kills what is left of the group, then reaps the shell (in that order:
  // see ChildProcess::kill_group).
  const auto finish_child = [&](SteadyClock::time_point now) {
    child.kill_group();
    if (!child.reap(status)) {
      error = "cannot reap the step's process: " + errno_message(errno);
      return false;
    }
    drain_until = now + kDrainGrace;
    return true;
  };

  for (;;) {
    const bool exited = drain_until.has_value();
    if (exited && !out.fd.valid() && !err.fd.valid()) break;
    const auto now = SteadyClock::now();
    if (exited && now >= *drain_until) break;
    if (!exited && deadline && now >= *deadline) {
      timed_out = true;
      if (!finish_child(now)) return fail_with(std::move(error));
      continue;
    }
    // Once the shell has exited on its own its status stands: a cancel that
    // arrives during the drain changes nothing.
    if (!exited && cancel_requested(request)) {
      canceled = true;
      if (!finish_child(now)) return fail_with(std::move(error));
      continue;
    }
    if (!exited && budget.exceeded) {
      if (!finish_child(now)) return fail_with(std::move(error));
      continue;
    }

    int wait_ms = -1;
    const std::optional<SteadyClock::time_point> limit = exited ? drain_until : deadline;
    if (limit) {
      const auto remaining = std::chrono::ceil<std::chrono::milliseconds>(*limit - now).count();
      wait_ms = static_cast<int>(std::min<std::int64_t>(remaining, std::numeric_limits<int>::max()));
    }
    const auto cap_wait = [&wait_ms](std::chrono::milliseconds interval) {
      const int cap_ms = static_cast<int>(interval.count());
      wait_ms = wait_ms < 0 ? cap_ms : std::min(wait_ms, cap_ms);
    };
    if (!exited && !pidfd.valid()) cap_wait(kExitCheckInterval);
    if (!exited && request.cancel != nullptr) cap_wait(kCancelCheckInterval);

    pollfd fds[3];
    nfds_t count = 0;
    OutputStream* polled[2] = {nullptr, nullptr};
    for (OutputStream* stream : {&out, &err}) {
      if (!stream->fd.valid()) continue;
      polled[count] = stream;
      fds[count++] = pollfd{stream->fd.get(), POLLIN, 0};
    }
    const nfds_t streams_polled = count;
    if (!exited && pidfd.valid()) fds[count++] = pollfd{pidfd.get(), POLLIN, 0};

    if (::poll(fds, count, wait_ms) < 0) {
      if (errno == EINTR) continue;
      return fail_with("cannot wait for the step's output: " + errno_message(errno));
    }
    for (nfds_t i = 0; i < streams_polled; ++i) {
      if (fds[i].revents != 0 && !read_available(*polled[i], buffer, budget, error)) {
        return fail_with(std::move(error));
      }
    }
    if (!exited) {
      const bool shell_exited =
          pidfd.valid() ? fds[count - 1].revents != 0 : child.has_exited();
      if (shell_exited && !finish_child(SteadyClock::now())) return fail_with(std::move(error));
    }
  }
  // Streams abandoned at the end of the grace period still deliver their last partial line.
  out.lines.finish();
  err.lines.finish();
  // The supervisor has ended, and the lock with it.
  if (!run_dir.empty() && !request.deployment.empty()) ::unlink(lock_path(run_dir, request.deployment).c_str());

  engine::StepOutcome outcome;
  outcome.timed_out = timed_out;
  outcome.canceled = canceled;
  outcome.output_limit_exceeded = budget.exceeded && !timed_out && !canceled;
  outcome.exit_code = timed_out || canceled || outcome.output_limit_exceeded ? -1 : exit_code_of(status);
  return outcome;
}

}  // namespace

Result<StepIdentity> resolve_step_identity(const std::string& name) {
  long size_hint = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buffer(size_hint > 0 ? static_cast<std::size_t>(size_hint) : 16384);
  passwd entry{};
  passwd* found = nullptr;
  int err = 0;
  while ((err = ::getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found)) == ERANGE) {
    buffer.resize(buffer.size() * 2);
  }
  if (err != 0) {
    return make_error(ErrorCode::kInternal, "cannot look up step user '" + name + "': " + errno_message(err));
  }
  if (found == nullptr) return make_error(ErrorCode::kNotFound, "step user '" + name + "' does not exist");
  StepIdentity identity;
  identity.name = name;
  identity.uid = entry.pw_uid;
  identity.gid = entry.pw_gid;
  int count = 16;
  for (;;) {
    identity.groups.resize(static_cast<std::size_t>(count));
    const int previous = count;
    if (::getgrouplist(name.c_str(), entry.pw_gid, identity.groups.data(), &count) >= 0) break;
    if (count <= previous) count = previous * 2;  // some libcs do not report the size needed
  }
  identity.groups.resize(static_cast<std::size_t>(count));
  return identity;
}

ProcessStepRunner::ProcessStepRunner(const engine::Clock& clock, std::string run_dir,
                                     std::optional<StepIdentity> step_user)
    : clock_(clock), run_dir_(std::move(run_dir)), step_user_(std::move(step_user)) {
  int fds[2];
  // Nothing is ever written: the write end only has to stay open while this
  // process lives (it is closed with the process, never before).
  if (::pipe2(fds, O_CLOEXEC) == 0) {
    lifeline_read_ = fds[0];
    lifeline_write_ = fds[1];
  }
  if (!run_dir_.empty()) {
    std::error_code ignored;
    std::filesystem::create_directories(run_dir_, ignored);
    ::chmod(run_dir_.c_str(), 0700);
  }
}

ProcessStepRunner::~ProcessStepRunner() {
  // Steps still running would be killed by their supervisors on EOF; the
  // runner outlives every run() call, so none are.
  if (lifeline_read_ >= 0) ::close(lifeline_read_);
  if (lifeline_write_ >= 0) ::close(lifeline_write_);
}

Status ProcessStepRunner::await_stopped(const std::string& deployment, std::chrono::milliseconds timeout) {
  if (run_dir_.empty()) return outcome::success();
  const std::string path = lock_path(run_dir_, deployment);
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return outcome::success();  // no step of it ever ran here
    return make_error(ErrorCode::kUnavailable, "cannot open '" + path + "': " + errno_message(errno));
  }
  const auto deadline = SteadyClock::now() + timeout;
  while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) {
      return make_error(ErrorCode::kUnavailable, "cannot lock '" + path + "': " + errno_message(errno));
    }
    if (SteadyClock::now() >= deadline) {
      return make_error(ErrorCode::kUnavailable, "a step of deployment " + deployment +
                                                     " still runs (its supervisor holds " + path + ")");
    }
    // Its supervisor is being killed by the kernel: a moment, not a poll loop
    // a test depends on.
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::unlink(path.c_str());
  return outcome::success();
}

engine::StepOutcome ProcessStepRunner::run(const engine::StepRequest& request) {
  const auto started = SteadyClock::now();
  engine::StepOutcome outcome;
  try {
    if (lifeline_read_ < 0) return fail_with("cannot start steps: the runner has no lifeline pipe");
    outcome = run_step(request, clock_, lifeline_read_, run_dir_, step_user_ ? &*step_user_ : nullptr);
  } catch (const std::exception& e) {
    outcome = fail_with(std::string("step aborted: ") + e.what());
  } catch (...) {
    outcome = fail_with("step aborted by an unknown exception");
  }
  outcome.duration_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started).count();
  return outcome;
}

}  // namespace cascade::adapters
