// StopChecker tests: text chunks in, text safe to emit and finish reasons
// out. Expected outputs written by hand.
#include "engine/stopping/stop_checker.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace loraserve {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

constexpr int32_t kText = 100;  // an ordinary token id (not eos, not stop)

StopConfig Config(std::vector<std::string> stops = {}) {
  StopConfig c;
  c.stop_strings = std::move(stops);
  c.eos_token_ids = {2};
  c.context_length = 1000;
  c.num_prompt_tokens = 5;
  return c;
}

struct StopRun {
  std::vector<std::string> emitted;  // per Append
  std::optional<FinishInfo> finish;
  int finished_at = -1;  // index of the Append that finished
  std::string Joined() const {
    std::string s;
    for (const std::string& e : emitted) s += e;
    return s;
  }
};

// Feeds (token, text) pairs until one finishes.
StopRun Feed(StopConfig config, const std::vector<std::pair<int32_t, std::string>>& tokens) {
  auto checker = StopChecker::Create(std::move(config));
  EXPECT_TRUE(checker.ok()) << checker.status();
  StopRun run;
  for (size_t i = 0; i < tokens.size(); ++i) {
    StopUpdate u = checker->Append(tokens[i].first, tokens[i].second);
    run.emitted.push_back(u.text);
    if (u.finish.has_value()) {
      run.finish = u.finish;
      run.finished_at = static_cast<int>(i);
      EXPECT_TRUE(checker->finished());
      break;
    }
  }
  return run;
}

// Text-only tokens.
std::vector<std::pair<int32_t, std::string>> Chunks(const std::vector<std::string>& texts) {
  std::vector<std::pair<int32_t, std::string>> out;
  for (const std::string& t : texts) out.emplace_back(kText, t);
  return out;
}

void ExpectStopString(const StopRun& run, const std::string& matched) {
  ASSERT_TRUE(run.finish.has_value());
  EXPECT_EQ(run.finish->reason, FinishReason::kStop);
  EXPECT_EQ(run.finish->matched_stop_string, matched);
  EXPECT_FALSE(run.finish->matched_token.has_value());
}

TEST(StopCheckerTest, StopStringSplitAcrossChunks) {
  StopRun two = Feed(Config({"STOP"}), Chunks({"abc ST", "OP and more"}));
  EXPECT_THAT(two.emitted, ElementsAreArray({"abc ", ""}));
  ExpectStopString(two, "STOP");

  StopRun three = Feed(Config({"###"}), Chunks({"Hello #", "#", "# world", "never"}));
  EXPECT_THAT(three.emitted, ElementsAreArray({"Hello ", "", ""}));
  EXPECT_EQ(three.finished_at, 2);
  ExpectStopString(three, "###");
}

TEST(StopCheckerTest, HeldPrefixIsReleasedWhenItIsNotAStop) {
  StopRun run = Feed(Config({"<end>"}), Chunks({"a<e", "nx", "<", "<en", "d>"}));
  EXPECT_THAT(run.emitted, ElementsAreArray({"a", "<enx", "", "<", ""}));
  ExpectStopString(run, "<end>");
  EXPECT_EQ(run.Joined(), "a<enx<");

  auto checker = *StopChecker::Create(Config({"<end>"}));
  EXPECT_EQ(checker.Append(kText, "x<en").text, "x");
  EXPECT_EQ(checker.held_text(), "<en");
}

TEST(StopCheckerTest, OverlappingAndPrefixStopStrings) {
  // One stop string a prefix of another: the shorter completes first and wins.
  StopRun prefix = Feed(Config({"abc", "ab"}), Chunks({"xa", "b", "c"}));
  EXPECT_THAT(prefix.emitted, ElementsAreArray({"x", ""}));
  ExpectStopString(prefix, "ab");
  // Both complete at the same position in one chunk: first in the list.
  ExpectStopString(Feed(Config({"abc", "ab"}), Chunks({"xabcy"})), "abc");
  // A complete match stops at once, even if a longer one starting earlier might follow.
  StopRun early = Feed(Config({"abcd", "bc"}), Chunks({"a", "bc"}));
  EXPECT_THAT(early.emitted, ElementsAreArray({"", "a"}));
  ExpectStopString(early, "bc");
  // The longest possible prefix is held; the part before a later match is released.
  StopRun held = Feed(Config({"xyz", "yq"}), Chunks({"axy", "q"}));
  EXPECT_THAT(held.emitted, ElementsAreArray({"a", "x"}));
  ExpectStopString(held, "yq");
}

TEST(StopCheckerTest, StopStringAtTheVeryStart) {
  StopRun run = Feed(Config({"Hi"}), Chunks({"Hi there"}));
  EXPECT_THAT(run.emitted, ElementsAreArray({""}));
  ExpectStopString(run, "Hi");
  StopRun split = Feed(Config({"Hi"}), Chunks({"H", "i"}));
  EXPECT_EQ(split.Joined(), "");
  ExpectStopString(split, "Hi");
}

TEST(StopCheckerTest, UnicodeStopStrings) {
  StopRun jp = Feed(Config({"終わり"}), Chunks({"それで終", "わ", "り。"}));
  EXPECT_THAT(jp.emitted, ElementsAreArray({"それで", "", ""}));
  ExpectStopString(jp, "終わり");

  StopRun emoji = Feed(Config({"🛑"}), Chunks({"go ", "🛑 now"}));
  EXPECT_EQ(emoji.Joined(), "go ");
  ExpectStopString(emoji, "🛑");

  // A held multi-byte character is released whole.
  StopRun accent = Feed(Config({"éa"}), Chunks({"xé", "b", "éa"}));
  EXPECT_THAT(accent.emitted, ElementsAreArray({"x", "éb", ""}));
  ExpectStopString(accent, "éa");
}

TEST(StopCheckerTest, EosAndStopTokenIds) {
  // eos: the token stops generation, its text is dropped, held text released.
  StopRun eos = Feed(Config({"##"}), {{kText, "a#"}, {2, ""}});
  EXPECT_THAT(eos.emitted, ElementsAreArray({"a", "#"}));
  ASSERT_TRUE(eos.finish.has_value());
  EXPECT_EQ(eos.finish->reason, FinishReason::kStop);
  EXPECT_EQ(eos.finish->matched_token, 2);
  EXPECT_EQ(eos.finish->matched_stop_string, "");

  StopConfig ignore = Config();
  ignore.ignore_eos = true;
  StopRun ignored = Feed(ignore, {{2, "</s>"}, {kText, "b"}});
  EXPECT_FALSE(ignored.finish.has_value());
  EXPECT_EQ(ignored.Joined(), "</s>b");

  StopConfig stop_ids = Config();
  stop_ids.ignore_eos = true;
  stop_ids.stop_token_ids = {7};
  StopRun stopped = Feed(stop_ids, {{kText, "a"}, {7, ""}});
  ASSERT_TRUE(stopped.finish.has_value());
  EXPECT_EQ(stopped.finish->reason, FinishReason::kStop);
  EXPECT_EQ(stopped.finish->matched_token, 7);
  EXPECT_EQ(stopped.Joined(), "a");
}

TEST(StopCheckerTest, TextFlushedWithAnEndTokenIsStillCheckedForStops) {
  // A detokenizer flushes held-back bytes of earlier tokens with the eos token:
  // a stop string completed by them ends generation there, before the eos.
  StopRun run = Feed(Config({"##"}), {{kText, "a#"}, {2, "#b"}});
  ASSERT_TRUE(run.finish.has_value());
  EXPECT_EQ(run.finish->matched_stop_string, "##");
  EXPECT_FALSE(run.finish->matched_token.has_value());
  EXPECT_EQ(run.Joined(), "a");

  // Without a stop inside it, the flushed text is emitted and eos ends it.
  StopRun plain = Feed(Config({"##"}), {{kText, "a#"}, {2, "b"}});
  ASSERT_TRUE(plain.finish.has_value());
  EXPECT_EQ(plain.finish->matched_token, 2);
  EXPECT_EQ(plain.Joined(), "a#b");
}

TEST(StopCheckerTest, MaxTokensIsLength) {
  StopConfig c = Config({"##"});
  c.max_tokens = 3;
  StopRun run = Feed(c, Chunks({"a", "b", "c#", "d"}));
  EXPECT_EQ(run.finished_at, 2);
  ASSERT_TRUE(run.finish.has_value());
  EXPECT_EQ(run.finish->reason, FinishReason::kLength);
  EXPECT_EQ(run.Joined(), "abc#") << "held text is released at the end";
  // A stop string completed by the last allowed token is a stop.
  c.max_tokens = 2;
  ExpectStopString(Feed(c, Chunks({"#", "#"})), "##");
  // So is an eos.
  StopRun eos = Feed(c, {{kText, "a"}, {2, ""}});
  EXPECT_EQ(eos.finish->reason, FinishReason::kStop);
}

TEST(StopCheckerTest, ContextLimitIsContextLength) {
  StopConfig c = Config();
  c.context_length = 8;
  c.num_prompt_tokens = 5;
  StopRun run = Feed(c, Chunks({"a", "b", "c", "d"}));
  EXPECT_EQ(run.finished_at, 2);  // 5 + 3 = 8 tokens fill the context
  ASSERT_TRUE(run.finish.has_value());
  EXPECT_EQ(run.finish->reason, FinishReason::kContextLength);
  EXPECT_EQ(run.Joined(), "abc");
  c.max_tokens = 3;  // both limits on the same token: max_tokens is reported
  EXPECT_EQ(Feed(c, Chunks({"a", "b", "c"})).finish->reason, FinishReason::kLength);
  EXPECT_STREQ(FinishReasonName(FinishReason::kContextLength), "context_length");
}

TEST(StopCheckerTest, CreateValidatesAndNamesTheField) {
  struct Case {
    std::string name;
    StopConfig config;
    std::string message;
  };
  std::vector<Case> cases;
  auto add = [&](std::string name, auto mutate, std::string message) {
    StopConfig c = Config();
    mutate(c);
    cases.push_back({std::move(name), std::move(c), std::move(message)});
  };
  add(
      "max_tokens_zero", [](StopConfig& c) { c.max_tokens = 0; }, "stopping.max_tokens");
  add(
      "empty_stop",
      [](StopConfig& c) {
        c.stop_strings = {"a", ""};
      },
      "stopping.stop[1]");
  add(
      "long_stop", [](StopConfig& c) { c.stop_strings = {std::string(257, 'x')}; },
      "stopping.stop[0]");
  add(
      "bad_utf8",
      [](StopConfig& c) {
        c.stop_strings = {"ok", "\xC3"};
      },
      "stopping.stop[1]");
  add(
      "overlong_utf8", [](StopConfig& c) { c.stop_strings = {"\xC0\xAF"}; }, "stopping.stop[0]");
  add(
      "too_many", [](StopConfig& c) { c.stop_strings.assign(17, "s"); }, "at most 16");
  add(
      "stop_token_negative",
      [](StopConfig& c) {
        c.stop_token_ids = {3, -1};
      },
      "stopping.stop_token_ids[1]");
  add(
      "prompt_fills_context", [](StopConfig& c) { c.num_prompt_tokens = c.context_length; },
      "no room");
  for (Case& c : cases) {
    auto checker = StopChecker::Create(std::move(c.config));
    EXPECT_EQ(checker.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(std::string(checker.status().message()), HasSubstr(c.message)) << c.name;
  }
  StopConfig ok = Config({std::string(256, 'x'), "終わり"});
  ok.stop_strings.resize(16, "z");
  EXPECT_TRUE(StopChecker::Create(ok).ok());
}

// The predictions a caller uses to flush its detokenizer must agree with
// what Append then decides.
TEST(StopChecker, PredictsTokenAndLimitEndsBeforeAppend) {
  StopConfig c = Config();
  c.stop_token_ids = {7};
  c.max_tokens = 3;
  absl::StatusOr<StopChecker> sc = StopChecker::Create(c);
  ASSERT_TRUE(sc.ok()) << sc.status();
  EXPECT_TRUE(sc->IsEndToken(2));  // eos
  EXPECT_TRUE(sc->IsEndToken(7));  // stop token id
  EXPECT_FALSE(sc->IsEndToken(kText));
  EXPECT_FALSE(sc->NextTokenReachesLimit());  // token 1 of 3
  EXPECT_FALSE(sc->Append(kText, "a").finish.has_value());
  EXPECT_FALSE(sc->NextTokenReachesLimit());  // token 2 of 3
  EXPECT_FALSE(sc->Append(kText, "b").finish.has_value());
  EXPECT_TRUE(sc->NextTokenReachesLimit());  // token 3 of 3
  StopUpdate last = sc->Append(kText, "c");
  ASSERT_TRUE(last.finish.has_value());
  EXPECT_EQ(last.finish->reason, FinishReason::kLength);

  StopConfig ignore = Config();
  ignore.ignore_eos = true;
  ignore.context_length = 7;  // prompt 5: the 2nd output token fills the context
  absl::StatusOr<StopChecker> ig = StopChecker::Create(ignore);
  ASSERT_TRUE(ig.ok()) << ig.status();
  EXPECT_FALSE(ig->IsEndToken(2));
  EXPECT_FALSE(ig->NextTokenReachesLimit());
  EXPECT_FALSE(ig->Append(2, "x").finish.has_value());
  EXPECT_TRUE(ig->NextTokenReachesLimit());
  StopUpdate full = ig->Append(kText, "y");
  ASSERT_TRUE(full.finish.has_value());
  EXPECT_EQ(full.finish->reason, FinishReason::kContextLength);
}

}  // namespace
}  // namespace loraserve
