#include "adapters/runtime/log_follow.hpp"

#include <algorithm>
#include <variant>

namespace cascade::adapters {

namespace {

std::string step_name(const std::vector<std::string>& names, int index) {
  return index >= 0 && static_cast<std::size_t>(index) < names.size() ? names[static_cast<std::size_t>(index)]
                                                                      : "step " + std::to_string(index);
}

// "release-SampleApp-3" → "SampleApp-3".
std::string release_of_stream(const std::string& stream) {
  static const std::string kPrefix = "release-";
  return stream.compare(0, kPrefix.size(), kPrefix) == 0 ? stream.substr(kPrefix.size()) : std::string();
}

}  // namespace

Status LogFollowHub::append_line(const engine::StepLogKey& key, const engine::LogLine& line) {
  // Under the lock, so a follower subscribing now sees the line either in
  // its catch-up read or live, never both and never neither.
  std::lock_guard<std::mutex> lock(mutex_);
  CASCADE_TRY(inner_.append_line(key, line));
  auto it = followers_.find(AttemptKey{key.release_id, key.stage, key.attempt});
  if (it == followers_.end()) return outcome::success();
  auto& followers = it->second;
  for (auto follower = followers.begin(); follower != followers.end();) {
    if (follower->sink->line(step_name(follower->step_names, key.step_index), line)) {
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

Status LogFollowHub::follow(std::shared_ptr<LineSink> sink, const std::string& release_id,
                            const std::string& stage, int attempt, std::vector<std::string> step_names,
                            const std::function<Result<bool>()>& is_finished) {
  const AttemptKey key{release_id, stage, attempt};
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (std::size_t i = 0; i < step_names.size(); ++i) {
      CASCADE_TRY(lines, inner_.read({release_id, stage, attempt, static_cast<int>(i)}));
      for (const engine::LogLine& line : lines) {
        if (!sink->line(step_names[i], line)) return outcome::success();
      }
    }
    // Followers whose clients left while no line came: dropped here.
    for (auto it = followers_.begin(); it != followers_.end();) {
      auto& list = it->second;
      list.erase(std::remove_if(list.begin(), list.end(), [](const Follower& f) { return f.sink->closed(); }),
                 list.end());
      it = list.empty() ? followers_.erase(it) : std::next(it);
    }
    followers_[key].push_back({std::move(sink), std::move(step_names)});
  }
  // Subscribed first, then asked: a finish after this answer reaches handle().
  CASCADE_TRY(finished, is_finished());
  if (finished) end(key);
  return outcome::success();
}

std::size_t LogFollowHub::followers() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::size_t count = 0;
  for (const auto& [key, list] : followers_) count += list.size();
  return count;
}

}  // namespace cascade::adapters
