// A directory under /tmp that lives as long as the object.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace cascade::testing {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "cascade-test-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
    // As root, `cascade serve` runs steps as an unprivileged user, who must
    // create files here as steps do in /tmp (the sample's SITES_ROOT) and
    // pass through to the data dir's work/; the data dir guards itself.
    if (::geteuid() == 0) ::chmod(path_.c_str(), 01777);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& child) const { return path_ + "/" + child; }

 private:
  std::string path_;
};

}  // namespace cascade::testing
