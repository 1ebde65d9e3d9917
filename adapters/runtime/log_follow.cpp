#include "adapters/runtime/log_follow.hpp"

#include <algorithm>
#include <charconv>
#include <variant>

namespace cascade::adapters {

namespace {

// "release-SampleApp-3" → "SampleApp-3".
std::string release_of_stream(const std::string& stream) {
  static const std::string kPrefix = "release-";
  return stream.compare(0, kPrefix.size(), kPrefix) == 0 ? stream.substr(kPrefix.size()) : std::string();
}

// Lines read from the store at once while catching up: small enough that a
// page of the longest lines (64 KiB each) stays a few MiB.
constexpr std::size_t kReadLines = 64;

}  // namespace

std::optional<LogCursor> LogCursor::after(std::string_view id) {
  const std::size_t colon = id.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == id.size()) return std::nullopt;
  int step = 0;
  std::uint64_t line = 0;
  const char* step_end = id.data() + colon;
  const char* line_end = id.data() + id.size();
  auto parsed_step = std::from_chars(id.data(), step_end, step);
  auto parsed_line = std::from_chars(step_end + 1, line_end, line);
  if (parsed_step.ec != std::errc() || parsed_step.ptr != step_end || step < 0 || parsed_line.ec != std::errc() ||
      parsed_line.ptr != line_end || line == UINT64_MAX) {
    return std::nullopt;
  }
  return LogCursor{step, line + 1};
}

struct LogFollowHub::CatchUp {
  Follower follower;
  AttemptKey key;
  std::function<Result<bool>()> is_finished;
};

namespace {

enum class HandOver { kPageFull, kCaughtUp, kSinkGone };

}  // namespace

Status LogFollowHub::append_line(const engine::StepLogKey& key, const engine::LogLine& line) {
  // Under the lock, so a follower going live now sees the line either in its
  // catch-up read or live, never both and never neither.
  std::lock_guard<std::mutex> lock(mutex_);
  CASCADE_TRY(inner_.append_line(key, line));
  auto it = followers_.find(AttemptKey{key.release_id, key.stage, key.attempt});
  if (it == followers_.end()) return outcome::success();
  auto& followers = it->second;
  for (auto follower = followers.begin(); follower != followers.end();) {
    LogCursor& cursor = follower->cursor;
    // Steps run one after another: a later step's first line starts it.
    if (key.step_index > cursor.step) cursor = LogCursor{key.step_index, 0};
    const std::string& name = static_cast<std::size_t>(key.step_index) < follower->step_names.size()
                                  ? follower->step_names[static_cast<std::size_t>(key.step_index)]
                                  : std::string();
    if (follower->sink->line(name, key.step_index, cursor.line++, line)) {
      ++follower;
    } else {
      follower = followers.erase(follower);
    }
  }
  if (followers.empty()) followers_.erase(it);
  return outcome::success();
}

Status LogFollowHub::handle(const std::vector<events::RecordedEvent>& batch) {
  for (const events::RecordedEvent& event : batch) {
    std::visit(
        [&](const auto& e) {
          using T = std::decay_t<decltype(e)>;
          if constexpr (std::is_same_v<T, events::DeploymentSucceeded> || std::is_same_v<T, events::DeploymentFailed> ||
                        std::is_same_v<T, events::DeploymentCanceled> || std::is_same_v<T, events::StageCanceled>) {
            end(AttemptKey{release_of_stream(event.stream), e.stage, e.attempt});
          }
        },
        event.data);
  }
  return outcome::success();
}

void LogFollowHub::end(const AttemptKey& key) {
  std::vector<Follower> ending;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = followers_.find(key);
    if (it == followers_.end()) return;
    ending.swap(it->second);
    followers_.erase(it);
  }
  for (Follower& follower : ending) follower.sink->end(std::get<0>(key), std::get<1>(key), std::get<2>(key));
}

std::function<Result<bool>()> LogFollowHub::follow(std::shared_ptr<LineSink> sink, const std::string& release_id,
                                                   const std::string& stage, int attempt,
                                                   std::vector<std::string> step_names,
                                                   std::function<Result<bool>()> is_finished, LogCursor from) {
  auto catch_up = std::make_shared<CatchUp>(CatchUp{Follower{std::move(sink), std::move(step_names), from},
                                                    AttemptKey{release_id, stage, attempt}, std::move(is_finished)});
  return [this, catch_up]() { return next_page(*catch_up); };
}

Result<bool> LogFollowHub::next_page(CatchUp& catch_up) {
  Follower& follower = catch_up.follower;
  const auto& [release_id, stage, attempt] = catch_up.key;
  const int steps = static_cast<int>(follower.step_names.size());
  auto step_key = [&, &release_id = release_id, &stage = stage, attempt = attempt](int step) {
    return engine::StepLogKey{release_id, stage, attempt, step};
  };
  // The stored lines of the cursor's step from the cursor on, while the sink
  // has room.
  auto hand_over_step = [&]() -> Result<HandOver> {
    LogCursor& cursor = follower.cursor;
    for (;;) {
      CASCADE_TRY(lines, inner_.read_page(step_key(cursor.step), cursor.line, kReadLines));
      for (const engine::LogLine& line : lines) {
        if (follower.sink->room() == 0) return HandOver::kPageFull;
        if (!follower.sink->line(follower.step_names[static_cast<std::size_t>(cursor.step)], cursor.step,
                                 cursor.line, line)) {
          return HandOver::kSinkGone;
        }
        ++cursor.line;
      }
      if (lines.size() < kReadLines) return HandOver::kCaughtUp;
    }
  };
  // Whether a step after the cursor's has a line: then the cursor's step has
  // finished, since steps run one after another.
  auto later_step_started = [&]() -> Result<bool> {
    for (int step = follower.cursor.step + 1; step < steps; ++step) {
      CASCADE_TRY(first, inner_.read_page(step_key(step), 0, 1));
      if (!first.empty()) return true;
    }
    return false;
  };
  auto hand_over_stored = [&]() -> Result<HandOver> {
    while (follower.cursor.step < steps) {
      CASCADE_TRY(handed, hand_over_step());
      if (handed != HandOver::kCaughtUp) return handed;
      CASCADE_TRY(started, later_step_started());
      if (!started) break;
      // The step finished before a later one started, so what it appended
      // since the read above is stored by now.
      CASCADE_TRY(rest, hand_over_step());
      if (rest != HandOver::kCaughtUp) return rest;
      follower.cursor = LogCursor{follower.cursor.step + 1, 0};
    }
    return HandOver::kCaughtUp;
  };

  CASCADE_TRY(handed, hand_over_stored());
  if (handed == HandOver::kSinkGone) return false;
  if (handed == HandOver::kPageFull) return true;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // What was appended during the page above: at most a page, as the sink's
    // room bounds it.
    CASCADE_TRY(rest, hand_over_stored());
    if (rest == HandOver::kSinkGone) return false;
    if (rest == HandOver::kPageFull) return true;
    // Followers whose clients left while no line came: dropped here.
    for (auto it = followers_.begin(); it != followers_.end();) {
      auto& list = it->second;
      list.erase(std::remove_if(list.begin(), list.end(), [](const Follower& f) { return f.sink->closed(); }),
                 list.end());
      it = list.empty() ? followers_.erase(it) : std::next(it);
    }
    followers_[catch_up.key].push_back(follower);
  }
  // Live first, then asked: a finish after this answer reaches handle().
  CASCADE_TRY(finished, catch_up.is_finished());
  if (finished) end(catch_up.key);
  return false;
}

std::size_t LogFollowHub::followers() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::size_t count = 0;
  for (const auto& [key, list] : followers_) count += list.size();
  return count;
}

}  // namespace cascade::adapters
