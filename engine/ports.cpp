#include "engine/ports.hpp"

namespace cascade::engine {

Timestamp SystemClock::now() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string digest_bytes(const LogLine& line) {
  return std::to_string(line.at) + "\t" + line.stream + "\t" + line.text + "\n";
}

}  // namespace cascade::engine
