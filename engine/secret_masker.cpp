#include "engine/secret_masker.hpp"

#include <algorithm>

namespace cascade::engine {

SecretMasker::SecretMasker(std::vector<std::string> secrets) {
  for (std::string& secret : secrets) {
    if (!secret.empty()) secrets_.push_back(std::move(secret));
  }
  std::sort(secrets_.begin(), secrets_.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  secrets_.erase(std::unique(secrets_.begin(), secrets_.end()), secrets_.end());
}

std::string SecretMasker::feed(std::string_view data) {
  if (secrets_.empty()) return std::string(data);
  pending_.append(data);
  return take(pending_, false);
}

std::string SecretMasker::finish() { return secrets_.empty() ? std::string() : take(pending_, true); }

std::string SecretMasker::mask(std::string_view text) const {
  std::string whole(text);
  return secrets_.empty() ? whole : take(whole, true);
}

std::string SecretMasker::take(std::string& pending, bool at_end) const {
  const std::string_view text = pending;
  const std::size_t longest = secrets_.front().size();
  // The first place at or after `from` where the rest of the text is a proper
  // prefix of a secret, so more output could complete that secret (npos: none,
  // or the stream has ended). Only the last `longest - 1` places can be one.
  const auto first_unfinished = [&](std::size_t from) {
    if (at_end) return std::string_view::npos;
    for (std::size_t at = std::max(from, text.size() >= longest ? text.size() - longest + 1 : 0); at < text.size();
         ++at) {
      const std::string_view rest = text.substr(at);
      const bool unfinished = std::any_of(secrets_.begin(), secrets_.end(), [&](const std::string& secret) {
        return secret.size() > rest.size() && secret.compare(0, rest.size(), rest) == 0;
      });
      if (unfinished) return at;
    }
    return std::string_view::npos;
  };
  std::string out;
  std::size_t done = 0;  // the text before this is decided
  for (;;) {
    // The earliest secret in the rest; at one place the longest (secrets_ is sorted so).
    std::size_t match = std::string_view::npos;
    std::size_t length = 0;
    for (const std::string& secret : secrets_) {
      const std::size_t at = text.find(secret, done);
      if (at < match) {
        match = at;
        length = secret.size();
      }
    }
    // A secret that more output could complete, starting no later, decides first.
    if (match == std::string_view::npos || first_unfinished(done) <= match) break;
    out.append(text.substr(done, match - done));
    out.append(kMask);
    done = match + length;
  }
  const std::size_t unfinished = first_unfinished(done);
  const std::size_t hold = unfinished == std::string_view::npos ? text.size() : unfinished;
  out.append(text.substr(done, hold - done));
  pending.erase(0, hold);
  return out;
}

}  // namespace cascade::engine
