// The engine harness with helpers for the read models: people's commands,
// and every projection's stored bytes to compare a rebuild with.
#pragma once

#include "tests/support/engine_harness.hpp"

#include <gtest/gtest.h>

#include <map>

namespace cascade::testing {

using ProjectionContents = std::map<std::string, std::vector<projections::Projection::StoredEntry>>;

class ProjectionsHarness : public EngineHarness {
 protected:
  static constexpr std::int64_t kHourMs = 3600LL * 1000;
  static constexpr std::int64_t kDayMs = 24 * kHourMs;

  void act(const std::string& release, const engine::Command& command, const std::string& actor) {
    auto done = service().execute(release, command, engine::Invocation{actor, "", ""});
    ASSERT_TRUE(done) << done.error().message;
  }
  void approve(const std::string& release, const std::string& stage, const std::string& actor) {
    act(release, engine::ApproveStage{stage, "", 0}, actor);
  }
  void reject(const std::string& release, const std::string& stage, const std::string& actor) {
    act(release, engine::RejectStage{stage, "no"}, actor);
  }
  void cancel(const std::string& release, const std::string& stage, const std::string& actor) {
    act(release, engine::CancelStage{stage, "not now"}, actor);
  }
  void redeploy(const std::string& release, const std::string& stage, const std::string& actor) {
    act(release, engine::RedeployStage{stage, ""}, actor);
  }

  projections::ProjectionSet& projections() { return *projections_; }

  using Contents = ProjectionContents;
  // Every projection's stored keys and values.
  Contents contents() {
    Contents out;
    for (const projections::Projection* projection : projections_->all()) {
      auto entries = projection->contents();
      EXPECT_TRUE(entries) << entries.error().message;
      if (entries) out[projection->name()] = std::move(entries).value();
    }
    return out;
  }

  // The ids of JSON items (their "id", else their "release").
  static std::vector<std::string> ids(const std::vector<nlohmann::json>& items) {
    std::vector<std::string> out;
    for (const auto& item : items) out.push_back(item.contains("id") ? item["id"] : item["release"]);
    return out;
  }
};

// Comparing contents directly would print megabytes of bytes on failure:
// name the first difference instead.
inline ::testing::AssertionResult same_contents(const ProjectionContents& expected, const ProjectionContents& actual) {
  for (const auto& [name, entries] : expected) {
    auto other = actual.find(name);
    if (other == actual.end()) return ::testing::AssertionFailure() << "no projection " << name;
    const auto& got = other->second;
    for (std::size_t i = 0; i < std::max(entries.size(), got.size()); ++i) {
      if (i >= entries.size() || i >= got.size()) {
        return ::testing::AssertionFailure() << name << ": " << entries.size() << " entries expected, " << got.size()
                                             << " stored";
      }
      if (!(entries[i] == got[i])) {
        return ::testing::AssertionFailure() << name << " entry " << i << " in " << entries[i].family
                                             << " differs:\n  expected " << entries[i].value << "\n  stored   "
                                             << got[i].value;
      }
    }
  }
  if (expected.size() != actual.size()) return ::testing::AssertionFailure() << "different projections";
  return ::testing::AssertionSuccess();
}

}  // namespace cascade::testing
