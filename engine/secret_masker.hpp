// Masks secret values in a step's raw output, before it is cut into lines, so
// that a secret is masked wherever it falls: across the reads of a pipe, across
// the 64 KiB cut of a long line, and over several lines (a PEM private key).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace cascade::engine {

// Not thread-safe: one per output stream.
class SecretMasker {
 public:
  static constexpr std::string_view kMask = "***";

  // Empty secrets are ignored. Where two secrets start at the same place the
  // longest is masked.
  explicit SecretMasker(std::vector<std::string> secrets);

  // Returns the output of `data` that is known not to be part of a secret
  // any more, every secret replaced by kMask. Holds back only a tail that could
  // still be the start of a secret (at most the longest secret's length - 1).
  std::string feed(std::string_view data);
  // The held-back tail, masked; call at the end of the stream.
  std::string finish();
  // `text` as a whole stream of its own, every secret masked.
  std::string mask(std::string_view text) const;

 private:
  // Masks and removes from `pending` what is decided; at_end: all of it.
  std::string take(std::string& pending, bool at_end) const;

  std::vector<std::string> secrets_;  // longest first
  std::string pending_;
};

}  // namespace cascade::engine
