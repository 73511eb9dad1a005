// IncrementalDecoder: chunks are valid UTF-8 and concatenate to Decode (and to
// the Hugging Face golden text), for every golden of every fixture.
#include "engine/model/tokenizer_incremental_decoder.h"

#include "engine/model/tokenizer.h"
#include "engine/model/tokenizer_unicode.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/tokenizer_test_util.h"

namespace loraserve {
namespace {

using ::testing::ElementsAre;
using tokenizer_internal::IsValidUtf8;
using tokenizer_test::FixtureNames;
using tokenizer_test::FixturePath;
using tokenizer_test::Ids;
using tokenizer_test::ReadJsonLines;

// Streams `ids`, checking every chunk; returns the chunks (Finish's last).
std::vector<std::string> Stream(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip) {
  IncrementalDecoder dec(&tok, skip);
  std::vector<std::string> chunks;
  for (int32_t id : ids) {
    auto chunk = dec.Step(id);
    EXPECT_TRUE(chunk.ok()) << chunk.status();
    if (!chunk.ok()) return chunks;
    EXPECT_TRUE(IsValidUtf8(*chunk)) << "invalid UTF-8 chunk after id " << id;
    chunks.push_back(*chunk);
  }
  chunks.push_back(dec.Finish());
  EXPECT_TRUE(IsValidUtf8(chunks.back()));
  std::string all;
  for (const auto& c : chunks) all += c;
  EXPECT_EQ(dec.text(), all);
  EXPECT_EQ(dec.num_tokens(), static_cast<int64_t>(ids.size()));
  return chunks;
}

std::string Join(const std::vector<std::string>& chunks) {
  std::string all;
  for (const auto& c : chunks) all += c;
  return all;
}

class TokenizerIncrementalTest : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerIncrementalTest, ConcatenationEqualsDecodeOnEveryGolden) {
  auto tok = Tokenizer::Load(FixturePath(GetParam(), "tokenizer.json"));
  ASSERT_TRUE(tok.ok()) << tok.status();
  for (const std::string file : {"golden.jsonl", "decode_golden.jsonl"}) {
    for (const auto& row : ReadJsonLines(FixturePath(GetParam(), file))) {
      SCOPED_TRACE(file + " ids: " + row["ids"].dump());
      const auto ids = Ids(row["ids"]);
      EXPECT_EQ(Join(Stream(**tok, ids, false)), row["decoded"].get<std::string>());
      EXPECT_EQ(Join(Stream(**tok, ids, true)), row["decoded_skip_special"].get<std::string>());
    }
  }
}

TEST_P(TokenizerIncrementalTest, EveryPrefixOfEveryGoldenIsConsistent) {
  // Streaming a prefix and finishing equals decoding that prefix: the held-back
  // state never leaks into earlier output.
  auto tok = Tokenizer::Load(FixturePath(GetParam(), "tokenizer.json"));
  ASSERT_TRUE(tok.ok()) << tok.status();
  for (const auto& row : ReadJsonLines(FixturePath(GetParam(), "decode_golden.jsonl"))) {
    const auto ids = Ids(row["ids"]);
    for (size_t n = 0; n <= ids.size(); ++n) {
      std::vector<int32_t> prefix(ids.begin(), ids.begin() + n);
      auto full = (*tok)->Decode(prefix, false);
      ASSERT_TRUE(full.ok());
      EXPECT_EQ(Join(Stream(**tok, prefix, false)), *full);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TokenizerIncrementalTest, ::testing::ValuesIn(FixtureNames()),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) c = c == '-' ? '_' : c;
                           return n;
                         });

TEST(TokenizerIncrementalDecoderTest, ByteLevelHoldsAnIncompleteCharacter) {
  auto tok = Tokenizer::Load(FixturePath("bytelevel", "tokenizer.json"));
  ASSERT_TRUE(tok.ok());
  // "𝄞" is F0 9D 84 9E, never seen in training: each byte is its own token.
  auto ids = (*tok)->Encode("𝄞!", false);
  ASSERT_TRUE(ids.ok());
  ASSERT_EQ(ids->size(), 5u);
  EXPECT_THAT(Stream(**tok, *ids, false), ElementsAre("", "", "", "𝄞", "!", ""));
  // Cut after two bytes: the unfinished sequence becomes one U+FFFD at Finish,
  // as from_utf8_lossy does.
  std::vector<int32_t> cut(ids->begin(), ids->begin() + 2);
  EXPECT_THAT(Stream(**tok, cut, false), ElementsAre("", "", "\xEF\xBF\xBD"));
  // A byte that cannot continue the sequence makes it provably invalid at once.
  std::vector<int32_t> broken = {(*ids)[0], (*ids)[1], *(*tok)->TokenToId("a")};
  EXPECT_THAT(Stream(**tok, broken, false), ElementsAre("", "", "\xEF\xBF\xBD" "a", ""));
}

TEST(TokenizerIncrementalDecoderTest, SentencePieceHoldsAByteRunAndStripsOnlyTheFirstSpace) {
  auto tok = Tokenizer::Load(FixturePath("sentencepiece", "tokenizer.json"));
  ASSERT_TRUE(tok.ok());
  // "😀" is not in the vocab: four <0xNN> tokens after "▁".
  auto ids = (*tok)->Encode("😀 a", false);
  ASSERT_TRUE(ids.ok());
  ASSERT_EQ((*tok)->IdToToken((*ids)[0]), "▁");
  ASSERT_EQ((*tok)->IdToToken((*ids)[1]), "<0xF0>");
  const auto chunks = Stream(**tok, *ids, false);
  // The leading "▁" -> " " is stripped (start of text); the run is released by
  // the next non-byte token.
  EXPECT_EQ(chunks[0], "");
  EXPECT_EQ(chunks[1], "");
  EXPECT_EQ(chunks[4], "");
  EXPECT_EQ(Join(chunks), "😀 a");
  // A second stream decoding " a" alone keeps no stripped state from the first.
  auto again = (*tok)->Encode("a a", false);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(Join(Stream(**tok, *again, false)), "a a");
}

// Stages after a fusing decoder see one growing token: a multi-character
// Replace must not miss a match split across tokens, and Strip(stop) must only
// remove what ends the whole text. Expected values follow HF's definitions on
// the whole string (replace all "lo w"; strip 1 leading and <= 2 trailing " ").
TEST(TokenizerIncrementalDecoderTest, FusedReplaceAndStripHoldBackAcrossTokens) {
  nlohmann::json j = nlohmann::json::parse(tokenizer_test::ReadFile(FixturePath("bytelevel", "tokenizer.json")));
  j["decoder"] = {{"type", "Sequence"},
                  {"decoders",
                   {{{"type", "ByteLevel"}},
                    {{"type", "Replace"}, {"pattern", {{"String", "lo w"}}}, {"content", "_"}},
                    {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 2}}}}};
  auto tok = Tokenizer::FromJson(j.dump(), "");
  ASSERT_TRUE(tok.ok()) << tok.status();
  struct Case {
    std::string text, expected;
  };
  for (const Case& c : {Case{"hello world", "hel_orld"}, Case{"  hello wo   ", " hel_o "},
                        Case{"lo lo wlo w", "lo __"}, Case{"   ", ""}, Case{"x    ", "x  "}}) {
    auto ids = (*tok)->Encode(c.text, false);
    ASSERT_TRUE(ids.ok());
    if (c.text.size() > 3) {
      ASSERT_GT(ids->size(), 1u) << c.text;  // so a match can straddle tokens
    }
    auto full = (*tok)->Decode(*ids, false);
    ASSERT_TRUE(full.ok());
    EXPECT_EQ(*full, c.expected) << c.text;
    EXPECT_EQ(Join(Stream(**tok, *ids, false)), c.expected) << c.text;
  }
}

TEST(TokenizerIncrementalDecoderTest, ErrorsLeaveTheStreamUsable) {
  auto tok = Tokenizer::Load(FixturePath("bytelevel", "tokenizer.json"));
  ASSERT_TRUE(tok.ok());
  IncrementalDecoder dec(tok->get(), true);
  auto a = dec.Step(*(*tok)->TokenToId("a"));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, "a");
  auto bad = dec.Step(100000);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  auto bos = dec.Step(508);  // special, skipped
  ASSERT_TRUE(bos.ok());
  EXPECT_EQ(*bos, "");
  EXPECT_EQ(dec.Finish(), "");
  EXPECT_EQ(dec.text(), "a");
  auto after = dec.Step(64);
  ASSERT_FALSE(after.ok());
  EXPECT_EQ(after.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(dec.Finish(), "");
}

}  // namespace
}  // namespace loraserve
