// diff_json: the recursive JSON diff behind `cascade pipeline diff`.
#include "projections/pipeline_versions.hpp"

#include <gtest/gtest.h>

namespace cascade::projections {
namespace {

using nlohmann::json;
using Changes = std::vector<DefinitionChange>;

TEST(DefinitionDiffTest, EqualDocumentsHaveNoChanges) {
  const json doc = json::parse(R"({"a": [1, {"b": null}], "stages": [{"name": "x", "v": 1}]})");
  EXPECT_TRUE(diff_json(doc, doc).empty());
}

TEST(DefinitionDiffTest, ObjectsDifferKeyByKeyInKeyOrder) {
  EXPECT_EQ(diff_json(json::parse(R"({"b": 1, "a": {"x": true}, "c": "gone"})"),
                      json::parse(R"({"b": 2, "a": {"x": false}, "d": "new"})")),
            (Changes{{"replace", "/a/x", true, false, "a.x"},
                     {"replace", "/b", 1, 2, "b"},
                     {"remove", "/c", "gone", nullptr, "c"},
                     {"add", "/d", nullptr, "new", "d"}}));
}

TEST(DefinitionDiffTest, ArraysWithoutNamesDifferIndexByIndex) {
  EXPECT_EQ(diff_json(json::parse(R"({"approvers": ["alice", "bob", "carol"]})"),
                      json::parse(R"({"approvers": ["alice", "dave"]})")),
            (Changes{{"replace", "/approvers/1", "bob", "dave", "approvers[1]"}, {"remove", "/approvers/2", "carol", nullptr, "approvers[2]"}}));
  EXPECT_EQ(diff_json(json::array({1}), json::array({1, 2})), (Changes{{"add", "/1", nullptr, 2, "[1]"}}));
}

TEST(DefinitionDiffTest, NamedElementsMatchByNameWhereverTheyMoved) {
  // "b" is removed: "c" moves from index 2 to 1 and is compared with its old self.
  const json from = json::parse(R"([{"name": "a", "v": 1}, {"name": "b", "v": 1}, {"name": "c", "v": 1}])");
  const json to = json::parse(R"([{"name": "a", "v": 1}, {"name": "c", "v": 2}, {"name": "d", "v": 1}])");
  EXPECT_EQ(diff_json(from, to), (Changes{{"remove", "/1", from[1], nullptr, "[b]"},
                                          {"replace", "/1/v", 1, 2, "[c].v"},
                                          {"add", "/2", nullptr, to[2], "[d]"}}));
}

TEST(DefinitionDiffTest, ReorderedNamedElementsReplaceTheWholeArray) {
  const json from = json::parse(R"({"steps": [{"name": "a"}, {"name": "b"}]})");
  const json to = json::parse(R"({"steps": [{"name": "b"}, {"name": "a"}]})");
  EXPECT_EQ(diff_json(from, to), (Changes{{"replace", "/steps", from["steps"], to["steps"], "steps"}}));
}

TEST(DefinitionDiffTest, PointerTokensEscapeTildeAndSlashAndTypesChangeByReplace) {
  EXPECT_EQ(diff_json(json::parse(R"({"a/b~c": 1, "n": [1]})"), json::parse(R"({"a/b~c": "1", "n": {"0": 1}})")),
            (Changes{{"replace", "/a~1b~0c", 1, "1", "a/b~c"}, {"replace", "/n", json::array({1}), json{{"0", 1}}, "n"}}));
}

TEST(DefinitionDiffTest, ChangesPrintAsJsonWithOnlyTheirValues) {
  EXPECT_EQ(to_json(DefinitionChange{"add", "/x", nullptr, 1, "x"}),
            json::parse(R"({"op": "add", "path": "/x", "where": "x", "to": 1})"));
  EXPECT_EQ(to_json(DefinitionChange{"remove", "/x", 1, nullptr, "x"}),
            json::parse(R"({"op": "remove", "path": "/x", "where": "x", "from": 1})"));
  EXPECT_EQ(to_json(DefinitionChange{"replace", "/x", 1, 2, "x"}),
            json::parse(R"({"op": "replace", "path": "/x", "where": "x", "from": 1, "to": 2})"));
}

TEST(DefinitionDiffTest, EachChangeSaysWhereByTheNamesOfStagesAndSteps) {
  const json from = json::parse(R"({"stages": [{"name": "dev", "steps": [{"name": "deploy", "run": "a"}]},
                                               {"name": "qa", "steps": []}, {"name": "prod", "env": [1]}]})");
  const json to = json::parse(R"({"stages": [{"name": "dev", "steps": [{"name": "deploy", "run": "b"}]},
                                             {"name": "prod", "env": [2]}, {"name": "hotfix"}], "x": 1})");
  std::vector<std::string> where;
  for (const DefinitionChange& change : diff_json(from, to)) where.push_back(change.op + " " + change.where);
  EXPECT_EQ(where, (std::vector<std::string>{"remove stages[qa]", "replace stages[dev].steps[deploy].run",
                                             "replace stages[prod].env[0]", "add stages[hotfix]", "add x"}));
}

}  // namespace
}  // namespace cascade::projections
