// events/did_you_mean.hpp: the one suggestion rule for misspelt names.
#include "events/did_you_mean.hpp"

#include <gtest/gtest.h>

namespace cascade::events {
namespace {

const std::vector<std::string_view> kFields = {"steps", "delay_s", "on_behalf_of", "id", "comment"};

TEST(DidYouMeanTest, SuggestsUpToTwoEditsIncludingSwappedNeighbours) {
  EXPECT_EQ(did_you_mean("stpes", kFields), "steps");      // one swap
  EXPECT_EQ(did_you_mean("Comment", kFields), "comment");  // one substitution
  EXPECT_EQ(did_you_mean("delay", kFields), "delay_s");    // two insertions
  EXPECT_EQ(did_you_mean("onbehalfof", kFields), "on_behalf_of");
  EXPECT_FALSE(did_you_mean("reason", kFields).has_value());
  EXPECT_FALSE(did_you_mean("dlay", kFields).has_value());  // three edits
}

TEST(DidYouMeanTest, NeverReplacesAShortNameWhole) {
  EXPECT_EQ(did_you_mean("ix", kFields), "id");
  EXPECT_FALSE(did_you_mean("ab", kFields).has_value());  // two edits of two characters
  EXPECT_FALSE(did_you_mean("x", kFields).has_value());
  EXPECT_FALSE(did_you_mean("", kFields).has_value());
}

TEST(DidYouMeanTest, TheFirstOfEquallyCloseCandidatesWins) {
  EXPECT_EQ(did_you_mean("abd", {"abc", "abe"}), "abc");
  EXPECT_EQ(did_you_mean("abc", {"abd", "abc"}), "abc");  // exact beats close
}

TEST(DidYouMeanTest, AHugeNameIsNoTypo) {
  EXPECT_FALSE(did_you_mean(std::string(100'000, 's'), kFields).has_value());
  EXPECT_FALSE(did_you_mean("steps", {}).has_value());
}

}  // namespace
}  // namespace cascade::events
