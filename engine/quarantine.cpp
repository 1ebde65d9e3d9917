#include "engine/quarantine.hpp"

#include <iostream>

namespace cascade::engine {

bool Quarantine::add(const std::string& stream, const std::string& reason, events::Timestamp now) {
  {
    std::lock_guard lock(mutex_);
    if (!streams_.emplace(stream, QuarantinedStream{stream, reason, now}).second) return false;
    size_.store(streams_.size(), std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  std::cerr << "cascade: quarantined " << stream << ": " << reason << "\n";
  return true;
}

std::optional<QuarantinedStream> Quarantine::find(const std::string& stream) const {
  std::lock_guard lock(mutex_);
  auto it = streams_.find(stream);
  if (it == streams_.end()) return std::nullopt;
  return it->second;
}

std::vector<QuarantinedStream> Quarantine::list() const {
  std::lock_guard lock(mutex_);
  std::vector<QuarantinedStream> out;
  out.reserve(streams_.size());
  for (const auto& [name, entry] : streams_) out.push_back(entry);
  return out;
}

}  // namespace cascade::engine
