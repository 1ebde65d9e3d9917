// The dashboard's files (adapters/http/dashboard/), built into the binary by
// embed_assets.cmake, so `cascade serve` needs nothing installed beside it.
#pragma once

#include <cstddef>
#include <string_view>

namespace cascade::adapters::http {

struct StaticAsset {
  std::string_view path;          // the file's name in the dashboard folder: "index.html", "app.js"
  std::string_view content_type;  // "text/javascript; charset=utf-8"
  std::string_view bytes;         // the file's contents
  std::string_view etag;          // a strong entity tag, quoted: "\"9f2c…\"" (from the contents' SHA-256)
};

// The asset called `path` (a bare file name, no folders), or nullptr. The
// asset lives for the whole program. Thread-safe: the table is constant.
const StaticAsset* find_static_asset(std::string_view path);

// True when an If-None-Match header value ("\"a\", W/\"b\"" or "*") matches
// `etag` by the weak comparison RFC 9110 prescribes for If-None-Match.
bool etag_matches(std::string_view if_none_match, std::string_view etag);

}  // namespace cascade::adapters::http
