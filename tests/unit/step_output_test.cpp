// A step's output on its way to the log: secrets masked in the raw stream
// (across reads, the 64 KiB cut and lines), bytes that are not UTF-8 replaced,
// long lines cut between characters, and a cap on how much a step may write.
// The runner tests run real processes.
#include "adapters/process/process_step_runner.hpp"
#include "engine/secret_masker.hpp"
#include "events/utf8.hpp"

#include "tests/support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

namespace cascade {
namespace {

using engine::SecretMasker;

// Feeds `chunks` one by one and returns everything the masker let out.
std::string mask_in_chunks(std::vector<std::string> secrets, const std::vector<std::string>& chunks) {
  SecretMasker masker(std::move(secrets));
  std::string out;
  for (const std::string& chunk : chunks) out += masker.feed(chunk);
  return out + masker.finish();
}

TEST(SecretMasker, MasksWhereverTheReadsSplitASecret) {
  const std::string text = "token=s3cr3t-Value; again s3cr3t-Value.";
  const std::string expected = "token=***; again ***.";
  for (std::size_t cut = 0; cut <= text.size(); ++cut) {
    EXPECT_EQ(mask_in_chunks({"s3cr3t-Value"}, {text.substr(0, cut), text.substr(cut)}), expected) << cut;
  }
  std::vector<std::string> bytes;
  for (char c : text) bytes.emplace_back(1, c);
  EXPECT_EQ(mask_in_chunks({"s3cr3t-Value"}, bytes), expected);
}

TEST(SecretMasker, LongestFirstAndALongerSecretIsNotGivenAwayByAShorterOne) {
  EXPECT_EQ(mask_in_chunks({"abc", "abcdef"}, {"xx abcdef yy abc zz"}), "xx *** yy *** zz");
  EXPECT_EQ(mask_in_chunks({"abc", "abcdef"}, {"xx abc", "def yy"}), "xx *** yy");
  // The shorter secret inside a longer one that more output completes.
  EXPECT_EQ(mask_in_chunks({"abcdef", "cd"}, {"abcd", "ef!"}), "***!");
  EXPECT_EQ(mask_in_chunks({"abcdef", "cd"}, {"abcd", "xx"}), "ab***xx");
  EXPECT_EQ(mask_in_chunks({"abcdef"}, {"abcde"}), "abcde");  // the end of the stream decides
}

TEST(SecretMasker, HoldsBackOnlyWhatCouldStillBeASecret) {
  SecretMasker masker({"password123"});
  EXPECT_EQ(masker.feed("hello world\n"), "hello world\n");
  EXPECT_EQ(masker.feed("my pass"), "my ");
  EXPECT_EQ(masker.feed("port\n"), "passport\n");
  EXPECT_EQ(masker.finish(), "");
  SecretMasker none({"", ""});
  EXPECT_EQ(none.feed("anything"), "anything");
  EXPECT_EQ(none.finish(), "");
}

TEST(SecretMasker, AMultiLinePemKey) {
  const std::string pem =
      "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----";
  EXPECT_EQ(mask_in_chunks({pem}, {"key:\n" + pem.substr(0, 40), pem.substr(40) + "\ndone\n"}), "key:\n***\ndone\n");
}

TEST(Utf8, InvalidBytesAreReplacedValidTextIsKept) {
  EXPECT_EQ(events::valid_utf8("plain"), "plain");
  EXPECT_EQ(events::valid_utf8("caf\xC3\xA9 \xE2\x86\x92 \xF0\x9F\x9A\x80"), "caf\xC3\xA9 \xE2\x86\x92 \xF0\x9F\x9A\x80");
  EXPECT_EQ(events::valid_utf8("a\xFF" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(events::valid_utf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");           // overlong
  EXPECT_EQ(events::valid_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(events::valid_utf8("\xE2\x86"), "\xEF\xBF\xBD\xEF\xBF\xBD");           // truncated
  EXPECT_EQ(events::valid_utf8("\xF4\x90\x80\x80").substr(0, 3), "\xEF\xBF\xBD");  // above U+10FFFF
}

TEST(Utf8, CutsBetweenCharacters) {
  const std::string arrow = "\xE2\x86\x92";  // 3 bytes
  const std::string text = "ab" + arrow + "c";
  EXPECT_EQ(events::utf8_cut(text, 2), 2u);
  EXPECT_EQ(events::utf8_cut(text, 3), 2u);
  EXPECT_EQ(events::utf8_cut(text, 4), 2u);
  EXPECT_EQ(events::utf8_cut(text, 5), 5u);
  EXPECT_EQ(events::utf8_cut(text, 99), text.size());
  EXPECT_EQ(events::utf8_cut("\xFF\xFF\xFF\xFF", 2), 2u);
}

class StepOutputRunner : public ::testing::Test {
 protected:
  engine::StepOutcome run(const std::string& command, std::vector<std::string> secrets = {},
                          std::uint64_t max_output = 0) {
    engine::StepRequest request;
    request.command = command;
    request.env = {{"PATH", "/usr/bin:/bin"}};
    request.work_dir = dir_ / "work";
    request.secrets = std::move(secrets);
    request.max_output_bytes = max_output;
    request.on_line = [this](const engine::LogLine& line) { lines_.push_back(line.text); };
    return runner_.run(request);
  }
  std::string joined() const {
    std::string all;
    for (const std::string& line : lines_) all += line + "\n";
    return all;
  }

  testing::TempDir dir_;
  engine::ManualClock clock_;
  adapters::ProcessStepRunner runner_{clock_};
  std::vector<std::string> lines_;
};

TEST_F(StepOutputRunner, APemSecretPrintedByAStepIsMaskedWhole) {
  const std::string pem =
      "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----";
  std::ofstream(dir_ / "key.pem") << pem << "\n";
  const auto outcome = run("echo before; cat '" + (dir_ / "key.pem") + "'; echo after", {pem});
  EXPECT_TRUE(outcome.succeeded()) << outcome.error;
  EXPECT_EQ(joined(), "before\n***\nafter\n");
}

TEST_F(StepOutputRunner, ASecretAcrossThe64KiBCutIsMasked) {
  // 65530 'x', then the secret: the line's first 64 KiB end inside the secret.
  const auto outcome = run("head -c 65530 /dev/zero | tr '\\0' x; printf 'TOPSECRET-42\\n'", {"TOPSECRET-42"});
  EXPECT_TRUE(outcome.succeeded()) << outcome.error;
  EXPECT_EQ(joined().find("TOPSECRET"), std::string::npos);
  EXPECT_NE(joined().find("***"), std::string::npos);
}

TEST_F(StepOutputRunner, ALongLineIsCutBetweenCharacters) {
  // 65535 bytes of 'a' then a 3-byte character: a cut at 65536 would split it.
  const auto outcome = run("head -c 65535 /dev/zero | tr '\\0' a; printf '\\342\\206\\222tail\\n'");
  EXPECT_TRUE(outcome.succeeded()) << outcome.error;
  ASSERT_EQ(lines_.size(), 2u);
  EXPECT_EQ(lines_[0].size(), 65535u);
  EXPECT_EQ(lines_[1], "\xE2\x86\x92tail");
}

TEST_F(StepOutputRunner, OutputPastTheLimitKillsTheStep) {
  const auto outcome = run("yes 0123456789abcdef", {}, 64 * 1024);
  EXPECT_FALSE(outcome.succeeded());
  EXPECT_TRUE(outcome.output_limit_exceeded);
  EXPECT_EQ(outcome.exit_code, -1);
  std::size_t total = 0;
  for (const std::string& line : lines_) total += line.size() + 1;
  EXPECT_LE(total, 64u * 1024 + 1);
  lines_.clear();
  const auto small = run("echo fits", {}, 64 * 1024);
  EXPECT_TRUE(small.succeeded());
  EXPECT_FALSE(small.output_limit_exceeded);
}

}  // namespace
}  // namespace cascade
