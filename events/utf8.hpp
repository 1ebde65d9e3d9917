// UTF-8 for text that arrives as bytes (a step's output): what is not valid
// UTF-8 is replaced, never refused, so such bytes can fail neither a step nor
// a request that shows them.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace cascade::events {

// `bytes` with every byte that does not belong to a well-formed UTF-8
// sequence (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF)
// replaced by U+FFFD. Valid input comes back unchanged.
std::string valid_utf8(std::string_view bytes);

// The largest n <= limit such that bytes[0, n) does not end inside a UTF-8
// sequence that continues after it: where a long line may be cut. Returns
// `limit` when no sequence straddles it (or for invalid input).
std::size_t utf8_cut(std::string_view bytes, std::size_t limit);

}  // namespace cascade::events
