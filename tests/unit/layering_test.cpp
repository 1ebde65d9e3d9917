// The layering the READMEs promise, checked on the sources: every project
// `#include "…"` of a file is allowed by the "may include" column of the
// README table that governs the file's folder, and HTTP routes are registered
// only under adapters/http/. The rules live in the READMEs (the top-level
// Layout table, and a table per folder that refines it), so the documentation
// and the check cannot drift apart.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
const fs::path kRoot = CASCADE_SOURCE_DIR;
const std::vector<std::string> kSourceFolders = {"events", "engine", "projections", "adapters", "tools"};

struct Rule {
  std::string readme;                // where the rule is written, for messages
  bool everything = false;           // "everything"
  std::set<std::string> may_include; // folders, each ending in '/'
};

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> cells_of(const std::string& line) {
  std::vector<std::string> cells;
  std::string cell;
  for (std::size_t i = 1; i < line.size(); ++i) {
    if (line[i] == '|') {
      cells.push_back(cell);
      cell.clear();
    } else {
      cell += line[i];
    }
  }
  return cells;
}

std::vector<std::string> backticked_folders(const std::string& cell) {
  std::vector<std::string> folders;
  static const std::regex kFolder("`([a-z_]+(/[a-z_]+)*/)`");
  for (std::sregex_iterator it(cell.begin(), cell.end(), kFolder), end; it != end; ++it) folders.push_back((*it)[1]);
  return folders;
}

// Every table whose header has a "may include" column, in every README.md of
// the repository root and the source folders (not build trees).
std::map<std::string, Rule> load_rules() {
  std::map<std::string, Rule> rules;
  std::vector<fs::path> readmes = {kRoot / "README.md"};
  for (const std::string& folder : kSourceFolders) {
    for (auto it = fs::recursive_directory_iterator(kRoot / folder); it != fs::recursive_directory_iterator(); ++it) {
      if (it->is_directory() && it->path().filename() == "node_modules") it.disable_recursion_pending();
      if (it->is_regular_file() && it->path().filename() == "README.md") readmes.push_back(it->path());
    }
  }
  for (const fs::path& readme : readmes) {
    std::istringstream lines(read_file(readme));
    std::string line;
    int include_column = -1;
    while (std::getline(lines, line)) {
      if (line.empty() || line[0] != '|') {
        include_column = -1;
        continue;
      }
      const std::vector<std::string> cells = cells_of(line);
      if (include_column < 0) {
        for (std::size_t i = 0; i < cells.size(); ++i) {
          if (cells[i].find("may include") != std::string::npos) include_column = static_cast<int>(i);
        }
        continue;
      }
      if (cells.size() <= static_cast<std::size_t>(include_column)) continue;
      const std::vector<std::string> folders = backticked_folders(cells[0]);
      if (folders.size() != 1) continue;  // the header's separator row, or a row that is not about one folder
      Rule rule;
      rule.readme = fs::relative(readme, kRoot).string();
      const std::string& allowed = cells[include_column];
      rule.everything = allowed.find("everything") != std::string::npos;
      for (const std::string& folder : backticked_folders(allowed)) rule.may_include.insert(folder);
      EXPECT_EQ(rules.count(folders[0]), 0u) << folders[0] << " has two rules (" << rule.readme << ")";
      rules[folders[0]] = rule;
    }
  }
  return rules;
}

// The most specific folder with a rule that holds `path` ("adapters/http/api/x.hpp" → "adapters/http/api/").
std::string governing_folder(const std::map<std::string, Rule>& rules, const std::string& path) {
  std::string best;
  for (const auto& [folder, rule] : rules) {
    if (path.compare(0, folder.size(), folder) == 0 && folder.size() > best.size()) best = folder;
  }
  return best;
}

struct Source {
  std::string path;  // from the repository root
  std::string text;
};

std::vector<Source> project_sources() {
  std::vector<Source> sources;
  for (const std::string& folder : kSourceFolders) {
    for (auto it = fs::recursive_directory_iterator(kRoot / folder); it != fs::recursive_directory_iterator(); ++it) {
      if (it->is_directory() && it->path().filename() == "node_modules") it.disable_recursion_pending();
      const std::string extension = it->path().extension().string();
      if (!it->is_regular_file() || (extension != ".cpp" && extension != ".hpp" && extension != ".in")) continue;
      sources.push_back({fs::relative(it->path(), kRoot).string(), read_file(it->path())});
    }
  }
  return sources;
}

TEST(Layering, EveryProjectFolderHasARule) {
  const auto rules = load_rules();
  for (const std::string& folder : kSourceFolders) {
    EXPECT_EQ(rules.count(folder + "/"), 1u) << "README.md's Layout table has no \"may include\" for " << folder << "/";
  }
  EXPECT_EQ(rules.count("tests/"), 1u);
}

TEST(Layering, EachFolderIncludesOnlyWhatItsReadmeAllows) {
  const auto rules = load_rules();
  ASSERT_FALSE(rules.empty()) << "no README table with a \"may include\" column was found";
  static const std::regex kInclude(R"re(^\s*#\s*include\s+"([^"]+)")re");
  std::size_t checked = 0;
  for (const Source& source : project_sources()) {
    const std::string own = governing_folder(rules, source.path);
    ASSERT_FALSE(own.empty()) << source.path << " lies in no folder with a rule";
    const Rule& rule = rules.at(own);
    std::istringstream lines(source.text);
    std::string line;
    for (int number = 1; std::getline(lines, line); ++number) {
      std::smatch match;
      if (!std::regex_search(line, match, kInclude)) continue;
      const std::string target = match[1];
      const std::string target_folder = governing_folder(rules, target);
      if (target_folder.empty()) continue;  // a generated header or one beside the file, not a project folder
      ++checked;
      if (rule.everything || target_folder == own || rule.may_include.count(target_folder) != 0) continue;
      ADD_FAILURE() << source.path << ":" << number << " includes \"" << target << "\" (" << target_folder << "), but "
                    << rule.readme << " says " << own << " may include only "
                    << [&] {
                         std::string list;
                         for (const std::string& folder : rule.may_include) list += (list.empty() ? "" : ", ") + folder;
                         return list.empty() ? std::string("itself") : list;
                       }();
    }
  }
  EXPECT_GT(checked, 100u) << "suspiciously few includes were checked";
}

TEST(Layering, RoutesAreRegisteredOnlyUnderAdaptersHttp) {
  static const std::regex kRoute(R"re(\.(add|add_public|add_with_quick_path)\s*\(\s*"(GET|HEAD|POST|PUT|PATCH|DELETE)")re");
  std::size_t inside = 0;
  for (const Source& source : project_sources()) {
    const bool in_http = source.path.rfind("adapters/http/", 0) == 0;
    for (std::sregex_iterator it(source.text.begin(), source.text.end(), kRoute), end; it != end; ++it) {
      if (in_http) {
        ++inside;
      } else {
        ADD_FAILURE() << source.path << " registers the route " << (*it)[2] << " " << it->str()
                      << ": routes belong in adapters/http/";
      }
    }
  }
  EXPECT_GT(inside, 10u) << "the API's routes were not found under adapters/http/";
}

}  // namespace
