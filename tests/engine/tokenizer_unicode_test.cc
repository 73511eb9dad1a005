// The tokenizer's Unicode pieces against external references: the split regex
// scanners against HF's Split(Regex) (Oniguruma) on random strings, NFC
// against HF's NFC normalizer, and lossy UTF-8 against the Unicode standard's
// worked example (Table 3-8, "U+FFFD for maximal subparts").
#include "engine/model/tokenizer_unicode.h"

#include "engine/model/tokenizer_regex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/tokenizer_test_util.h"

namespace loraserve::tokenizer_internal {
namespace {

using tokenizer_test::ReadJsonLines;
using tokenizer_test::TokenizerDataDir;

// HF Split(..., behavior="isolated"): matches and the gaps between them.
std::vector<std::string> IsolatedSplit(SplitRegex regex, const std::string& text) {
  std::vector<std::pair<size_t, size_t>> matches;
  FindRegexMatches(regex, text, &matches);
  std::vector<std::string> pieces;
  size_t prev = 0;
  for (const auto& [b, e] : matches) {
    EXPECT_LE(prev, b);
    if (prev < b) pieces.push_back(text.substr(prev, b - prev));
    pieces.push_back(text.substr(b, e - b));
    prev = e;
  }
  if (prev < text.size()) pieces.push_back(text.substr(prev));
  return pieces;
}

TEST(TokenizerRegexTest, ScannersMatchOnigurumaOnRandomStrings) {
  const auto rows = ReadJsonLines(TokenizerDataDir() + "/pretokenize_golden.jsonl");
  ASSERT_GE(rows.size(), 400u);
  const std::pair<const char*, SplitRegex> patterns[] = {
      {"llama3", SplitRegex::kLlama3}, {"qwen2", SplitRegex::kQwen2}, {"gpt2", SplitRegex::kGpt2}};
  for (const auto& row : rows) {
    const std::string text = row["text"].get<std::string>();
    for (const auto& [name, regex] : patterns) {
      EXPECT_EQ(IsolatedSplit(regex, text), row[name].get<std::vector<std::string>>())
          << name << " on \"" << text << "\"";
    }
  }
}

TEST(TokenizerRegexTest, RecognisesOnlyTheKnownPatterns) {
  for (SplitRegex r : {SplitRegex::kLlama3, SplitRegex::kQwen2, SplitRegex::kGpt2}) {
    EXPECT_EQ(RecognizeSplitRegex(SplitRegexText(r)), r);
  }
  EXPECT_EQ(RecognizeSplitRegex("\\s+"), std::nullopt);
  std::string almost(SplitRegexText(SplitRegex::kLlama3));
  almost.back() = '*';
  EXPECT_EQ(RecognizeSplitRegex(almost), std::nullopt);
}

TEST(TokenizerRegexTest, Llama3SplitsContractionsNumbersAndNewlines) {
  EXPECT_THAT(IsolatedSplit(SplitRegex::kLlama3, "I'M 12345 ok!!\n\n  x"),
              ::testing::ElementsAre("I", "'M", " ", "123", "45", " ok", "!!\n\n", " ", " x"));
}

TEST(TokenizerUnicodeTest, NfcMatchesHuggingFace) {
  const auto rows = ReadJsonLines(TokenizerDataDir() + "/nfc_golden.jsonl");
  ASSERT_GE(rows.size(), 300u);
  for (const auto& row : rows) {
    EXPECT_EQ(NfcNormalize(row["text"].get<std::string>()), row["nfc"].get<std::string>())
        << row["text"];
  }
  EXPECT_EQ(NfcNormalize("e\xCC\x81"), "\xC3\xA9");          // e + U+0301 -> é
  EXPECT_EQ(NfcNormalize("\xE1\x84\x80\xE1\x85\xA1"), "가");  // L + V jamo -> U+AC00
  EXPECT_EQ(NfcNormalize("plain ascii"), "plain ascii");
}

TEST(TokenizerUnicodeTest, LossyUtf8FollowsMaximalSubparts) {
  // Unicode 15 Table 3-8: 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64.
  const std::string in = "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64";
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(Utf8Lossy(in), "a" + r + r + r + "b" + r + "c" + r + r + "d");
  EXPECT_FALSE(IsValidUtf8(in));
  EXPECT_TRUE(IsValidUtf8("a\xC3\xA9\xF0\x9F\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));  // surrogate
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));      // overlong
  // The streaming assembler agrees with the batch conversion byte by byte.
  std::string streamed;
  Utf8Assembler a;
  for (char c : in) a.Push(static_cast<uint8_t>(c), &streamed);
  a.Flush(&streamed);
  EXPECT_EQ(streamed, Utf8Lossy(in));
  std::string tail;
  Utf8Assembler b;
  for (char c : std::string("x\xF0\x9F\x98")) b.Push(static_cast<uint8_t>(c), &tail);
  EXPECT_EQ(tail, "x");  // incomplete sequence held back
  b.Flush(&tail);
  EXPECT_EQ(tail, "x" + r);
}

TEST(TokenizerUnicodeTest, ByteLevelMapIsGpt2s) {
  EXPECT_EQ(ByteToChar()['A'], U'A');
  EXPECT_EQ(ByteToChar()[' '], U'\u0120');   // Ġ
  EXPECT_EQ(ByteToChar()['\n'], U'\u010A');  // Ċ
  EXPECT_EQ(ByteToChar()[0xAD], U'\u0143');
  for (int b = 0; b < 256; ++b) EXPECT_EQ(CharToByte(ByteToChar()[b]), b);
  EXPECT_EQ(CharToByte(U'\u0400'), -1);
}

TEST(TokenizerUnicodeTest, CharClasses) {
  EXPECT_TRUE(IsLetter(U'a'));
  EXPECT_TRUE(IsLetter(U'\u4e2d'));
  EXPECT_TRUE(IsLetter(U'\U00010400'));
  EXPECT_FALSE(IsLetter(U'\u0301'));  // a combining mark is not \p{L}
  EXPECT_TRUE(IsNumber(U'\u00bd'));
  EXPECT_TRUE(IsNumber(U'\u0663'));
  EXPECT_TRUE(IsWhitespace(U'\u3000'));
  EXPECT_TRUE(IsWhitespace(U'\u0085'));
  EXPECT_FALSE(IsWhitespace(U'\u200b'));
  EXPECT_FALSE(IsWhitespace(U'\u001c'));
}

}  // namespace
}  // namespace loraserve::tokenizer_internal
