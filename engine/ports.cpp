#include "engine/ports.hpp"

#include <algorithm>
#include <thread>

namespace cascade::engine {

Timestamp SystemClock::now() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void SystemClock::wait_until(Timestamp due, std::chrono::milliseconds max_wait) const {
  const Timestamp left = due - now();
  if (left <= 0) return;
  std::this_thread::sleep_for(std::min(max_wait, std::chrono::milliseconds(left)));
}

std::int64_t SystemClock::monotonic_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void SystemClock::wait_until_monotonic(std::int64_t due, std::chrono::milliseconds max_wait) const {
  const std::int64_t left = due - monotonic_ms();
  if (left <= 0) return;
  std::this_thread::sleep_for(std::min(max_wait, std::chrono::milliseconds(left)));
}

void ManualClock::wait_until(Timestamp due, std::chrono::milliseconds max_wait) const {
  std::unique_lock lock(mutex_);
  moved_.wait_for(lock, max_wait, [&] { return now_.load() >= due; });
}

void ManualClock::wait_until_monotonic(std::int64_t due, std::chrono::milliseconds max_wait) const {
  std::unique_lock lock(mutex_);
  moved_.wait_for(lock, max_wait, [&] { return monotonic_.load() >= due; });
}

void ManualClock::set(Timestamp t) {
  {
    std::lock_guard lock(mutex_);
    now_.store(t);
  }
  moved_.notify_all();
}

void ManualClock::advance(std::chrono::milliseconds by) {
  {
    std::lock_guard lock(mutex_);
    now_.fetch_add(by.count());
    monotonic_.fetch_add(by.count());
  }
  moved_.notify_all();
}

std::string deployment_name(const std::string& release_id, const std::string& stage, int attempt) {
  return release_id + "/" + stage + "/" + std::to_string(attempt);
}

std::string digest_bytes(const LogLine& line) {
  return std::to_string(line.at) + "\t" + line.stream + "\t" + line.text + "\n";
}

Result<std::vector<LogLine>> StepLogStore::read_page(const StepLogKey& key, std::uint64_t first_line,
                                                     std::size_t max_lines) {
  CASCADE_TRY(lines, read(key));
  if (first_line >= lines.size()) return std::vector<LogLine>{};
  const auto begin = lines.begin() + static_cast<std::ptrdiff_t>(first_line);
  const auto end = begin + static_cast<std::ptrdiff_t>(std::min<std::size_t>(max_lines, lines.end() - begin));
  return std::vector<LogLine>(std::make_move_iterator(begin), std::make_move_iterator(end));
}

Status StepLogStore::read_each(const StepLogKey& key, const std::function<Status(const LogLine&)>& visit) {
  // Lines are at most 64 KiB (longer output arrives cut), so a page of 64
  // stays a few MiB.
  constexpr std::size_t kPageLines = 64;
  for (std::uint64_t first = 0;; first += kPageLines) {
    CASCADE_TRY(page, read_page(key, first, kPageLines));
    for (const LogLine& line : page) {
      CASCADE_TRY(visit(line));
    }
    if (page.size() < kPageLines) return success();
  }
}

}  // namespace cascade::engine
