// Tokenizer against Hugging Face goldens for five tokenizer.json families,
// plus refusals, errors, invalid input and thread safety.
#include "engine/model/tokenizer.h"

#include <chrono>
#include <random>
#include <thread>

#include "engine/model/tokenizer_unicode.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/tokenizer_test_util.h"

namespace loraserve {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using tokenizer_test::FixtureNames;
using tokenizer_test::FixturePath;
using tokenizer_test::Ids;
using tokenizer_test::ReadFile;
using tokenizer_test::ReadJsonLines;

std::unique_ptr<Tokenizer> LoadFixture(const std::string& name) {
  auto tok = Tokenizer::Load(FixturePath(name, "tokenizer.json"));
  EXPECT_TRUE(tok.ok()) << tok.status();
  return tok.ok() ? std::move(*tok) : nullptr;
}

class TokenizerGoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerGoldenTest, EncodeAndDecodeMatchHuggingFace) {
  auto tok = LoadFixture(GetParam());
  ASSERT_NE(tok, nullptr);
  const auto rows = ReadJsonLines(FixturePath(GetParam(), "golden.jsonl"));
  ASSERT_GE(rows.size(), 60u);
  for (const auto& row : rows) {
    const std::string text = row["text"].get<std::string>();
    SCOPED_TRACE("text: \"" + text + "\"");
    auto ids = tok->Encode(text, /*add_special_tokens=*/true);
    ASSERT_TRUE(ids.ok()) << ids.status();
    EXPECT_EQ(*ids, Ids(row["ids"]));
    auto ids_ns = tok->Encode(text, /*add_special_tokens=*/false);
    ASSERT_TRUE(ids_ns.ok()) << ids_ns.status();
    EXPECT_EQ(*ids_ns, Ids(row["ids_no_special"]));
    auto decoded = tok->Decode(Ids(row["ids"]), /*skip_special_tokens=*/false);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, row["decoded"].get<std::string>());
    auto decoded_skip = tok->Decode(Ids(row["ids"]), /*skip_special_tokens=*/true);
    ASSERT_TRUE(decoded_skip.ok()) << decoded_skip.status();
    EXPECT_EQ(*decoded_skip, row["decoded_skip_special"].get<std::string>());
  }
}

TEST_P(TokenizerGoldenTest, DecodeOfRandomIdsMatchesHuggingFace) {
  auto tok = LoadFixture(GetParam());
  ASSERT_NE(tok, nullptr);
  const auto rows = ReadJsonLines(FixturePath(GetParam(), "decode_golden.jsonl"));
  ASSERT_GE(rows.size(), 100u);
  for (const auto& row : rows) {
    SCOPED_TRACE("ids: " + row["ids"].dump());
    auto decoded = tok->Decode(Ids(row["ids"]), false);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, row["decoded"].get<std::string>());
    auto decoded_skip = tok->Decode(Ids(row["ids"]), true);
    ASSERT_TRUE(decoded_skip.ok()) << decoded_skip.status();
    EXPECT_EQ(*decoded_skip, row["decoded_skip_special"].get<std::string>());
  }
}

TEST_P(TokenizerGoldenTest, ConcurrentEncodeGivesIdenticalResults) {
  auto tok = LoadFixture(GetParam());
  ASSERT_NE(tok, nullptr);
  const auto rows = ReadJsonLines(FixturePath(GetParam(), "golden.jsonl"));
  std::vector<std::string> texts;
  for (const auto& row : rows) texts.push_back(row["text"].get<std::string>());
  std::vector<std::vector<int32_t>> expected;
  for (const auto& row : rows) expected.push_back(Ids(row["ids"]));
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round) {
        for (size_t i = 0; i < texts.size(); ++i) {
          const size_t k = (i * 7 + t * 13 + round) % texts.size();  // different orders
          auto ids = tok->Encode(texts[k], true);
          if (!ids.ok() || *ids != expected[k]) ++mismatches[t];
          auto text = tok->Decode(expected[k], false);
          if (!text.ok() || *text != rows[k]["decoded"].get<std::string>()) ++mismatches[t];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_THAT(mismatches, ElementsAre(0, 0, 0, 0));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TokenizerGoldenTest, ::testing::ValuesIn(FixtureNames()),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) c = c == '-' ? '_' : c;
                           return n;
                         });

TEST(TokenizerTest, MergesAsPairsGiveTheSameIds) {
  // tokenizers >= 0.20 writes merges as ["a", "b"] instead of "a b".
  nlohmann::json j = nlohmann::json::parse(ReadFile(FixturePath("bytelevel", "tokenizer.json")));
  nlohmann::json pairs = nlohmann::json::array();
  for (const auto& m : j["model"]["merges"]) {
    const std::string s = m.get<std::string>();
    const size_t space = s.find(' ');
    pairs.push_back({s.substr(0, space), s.substr(space + 1)});
  }
  j["model"]["merges"] = pairs;
  auto tok = Tokenizer::FromJson(j.dump(), "");
  ASSERT_TRUE(tok.ok()) << tok.status();
  for (const auto& row : ReadJsonLines(FixturePath("bytelevel", "golden.jsonl"))) {
    auto ids = (*tok)->Encode(row["text"].get<std::string>(), true);
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ(*ids, Ids(row["ids"])) << row["text"];
  }
}

TEST(TokenizerTest, ByteLevelAccessors) {
  auto tok = LoadFixture("bytelevel");
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->vocab_size(), 512);
  EXPECT_EQ(tok->TokenToId("<|begin_of_text|>"), 508);
  EXPECT_EQ(tok->TokenToId("<think>"), 511);
  EXPECT_EQ(tok->TokenToId("Ġt"), std::optional<int32_t>(257));  // from the HF vocab
  EXPECT_EQ(tok->TokenToId("no such token"), std::nullopt);
  EXPECT_EQ(tok->IdToToken(510), "<|eot_id|>");
  EXPECT_EQ(tok->IdToToken(257), "Ġt");
  EXPECT_EQ(tok->IdToToken(512), "");
  EXPECT_EQ(tok->IdToToken(-1), "");
  EXPECT_EQ(tok->bos_id(), 508);
  EXPECT_THAT(tok->eos_ids(), ElementsAre(510));
  EXPECT_TRUE(tok->IsSpecial(508));
  EXPECT_TRUE(tok->IsSpecial(510));
  EXPECT_FALSE(tok->IsSpecial(511));  // <think> is added but not special
  EXPECT_FALSE(tok->IsSpecial(257));
  EXPECT_FALSE(tok->IsSpecial(100000));
}

TEST(TokenizerTest, SentencePieceAccessors) {
  auto tok = LoadFixture("sentencepiece");
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->vocab_size(), 599);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_THAT(tok->eos_ids(), ElementsAre(2));
  EXPECT_EQ(tok->TokenToId("<0x0A>"), 3 + 0x0A);
  EXPECT_EQ(tok->IdToToken(3 + 0xFF), "<0xFF>");
  EXPECT_TRUE(tok->IsSpecial(0));
  EXPECT_FALSE(tok->IsSpecial(3));
  auto qwen = LoadFixture("bytelevel-qwen2");
  ASSERT_NE(qwen, nullptr);
  EXPECT_EQ(qwen->bos_id(), std::nullopt);  // bos_token: null
  EXPECT_THAT(qwen->eos_ids(), ElementsAre(509));
}

TEST(TokenizerTest, DecodeRejectsIdsOutsideTheVocab) {
  auto tok = LoadFixture("bytelevel");
  ASSERT_NE(tok, nullptr);
  for (int32_t bad : {-1, 512, 1 << 30}) {
    std::vector<int32_t> ids = {64, bad};
    auto text = tok->Decode(ids, false);
    ASSERT_FALSE(text.ok()) << bad;
    EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(text.status().message()),
                HasSubstr("token id " + std::to_string(bad) + " at position 1"));
  }
}

TEST(TokenizerTest, InvalidUtf8InputIsRepairedLikeFromUtf8Lossy) {
  for (const std::string& name : FixtureNames()) {
    auto tok = LoadFixture(name);
    ASSERT_NE(tok, nullptr);
    // "\xE6\x97" is a truncated 3-byte sequence (one U+FFFD), "\xFF" one more.
    auto bad = tok->Encode("ab\xE6\x97 c\xFF", true);
    auto repaired = tok->Encode("ab\xEF\xBF\xBD c\xEF\xBF\xBD", true);
    ASSERT_TRUE(bad.ok() && repaired.ok()) << name;
    EXPECT_EQ(*bad, *repaired) << name;
  }
}

TEST(TokenizerTest, RandomBytesNeverCrashAndDecodeToValidUtf8) {
  std::mt19937 rng(42);
  for (const std::string& name : FixtureNames()) {
    auto tok = LoadFixture(name);
    ASSERT_NE(tok, nullptr);
    for (int i = 0; i < 300; ++i) {
      std::string s(rng() % 40, '\0');
      for (char& c : s) c = static_cast<char>(rng() % 4 == 0 ? "<s>|' \n\xE2\x96\x81"[rng() % 10] : rng());
      auto ids = tok->Encode(s, true);
      ASSERT_TRUE(ids.ok());
      auto text = tok->Decode(*ids, false);
      ASSERT_TRUE(text.ok());
      EXPECT_TRUE(tokenizer_internal::IsValidUtf8(*text));
    }
  }
}

// A long text of varied content: Encode speed (reported) and round trips.
std::string LongText() {
  std::string text;
  const auto rows = ReadJsonLines(FixturePath("bytelevel", "golden.jsonl"));
  while (text.size() < (1 << 20)) {
    for (const auto& row : rows) {
      const std::string t = row["text"].get<std::string>();
      // No special tokens, and no literal "▁" (sentencepiece decodes it as a space).
      if (t.find('<') == std::string::npos && t.find('[') == std::string::npos &&
          t.find("\xE2\x96\x81") == std::string::npos) {
        text += t + " ";
      }
    }
  }
  return text;
}

TEST(TokenizerTest, LongTextRoundTripsAndReportsSpeed) {
  const std::string text = LongText();
  for (const std::string& name : {std::string("bytelevel"), std::string("sentencepiece")}) {
    auto tok = LoadFixture(name);
    ASSERT_NE(tok, nullptr);
    const auto start = std::chrono::steady_clock::now();
    auto ids = tok->Encode(text, false);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_TRUE(ids.ok());
    std::printf("%s: %zu bytes -> %zu tokens in %.3f s (%.2f M tokens/s)\n", name.c_str(),
                text.size(), ids->size(), seconds, ids->size() / seconds / 1e6);
    auto back = tok->Decode(*ids, true);
    ASSERT_TRUE(back.ok());
    EXPECT_TRUE(*back == text) << name << ": round trip differs";
  }
}

TEST(TokenizerTest, VeryLongWordWithoutPreTokenizerIsFast) {
  // The sentencepiece form has no pre-tokenizer: the whole text is one BPE
  // word, so merging must not be quadratic.
  auto tok = LoadFixture("sentencepiece");
  ASSERT_NE(tok, nullptr);
  std::string word;
  while (word.size() < 200000) word += "licensedistributionwarranty";
  const auto start = std::chrono::steady_clock::now();
  auto ids = tok->Encode(word, false);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(ids.ok());
  EXPECT_LT(ids->size(), word.size() / 2);  // merges happened
  EXPECT_LT(seconds, 5.0);
  auto back = tok->Decode(*ids, true);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(*back == word);
}

}  // namespace
}  // namespace loraserve
