// Tokenizer::Load / FromJson refuse what they cannot reproduce exactly, with a
// message naming the problem and its JSON path.
#include <functional>

#include "engine/model/tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/tokenizer_test_util.h"

namespace loraserve {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;
using tokenizer_test::FixturePath;
using tokenizer_test::ReadFile;

Json Fixture(const std::string& name) {
  return Json::parse(ReadFile(FixturePath(name, "tokenizer.json")));
}

struct RefusalCase {
  std::string name;
  std::string fixture;
  std::function<void(Json&)> mutate;
  std::vector<std::string> expected;  // substrings of the message
};

std::vector<RefusalCase> Cases() {
  return {
      {"UnigramModel", "sentencepiece", [](Json& j) { j["model"]["type"] = "Unigram"; },
       {"model.type", "unsupported model type \"Unigram\""}},
      {"WordPieceModel", "bytelevel", [](Json& j) { j["model"]["type"] = "WordPiece"; },
       {"model.type", "\"WordPiece\""}},
      {"MissingModel", "bytelevel", [](Json& j) { j.erase("model"); },
       {"model: missing required field"}},
      {"MissingVocab", "bytelevel", [](Json& j) { j["model"].erase("vocab"); },
       {"model.vocab: missing required field"}},
      {"VocabNotObject", "bytelevel", [](Json& j) { j["model"]["vocab"] = 3; },
       {"model.vocab: expected an object, got number"}},
      {"NegativeTokenId", "bytelevel", [](Json& j) { j["model"]["vocab"]["Ġt"] = -5; },
       {"model.vocab.Ġt", "out of range"}},
      {"MergeNotInVocab", "bytelevel", [](Json& j) { j["model"]["merges"][3] = "Ġ zzzz"; },
       {"model.merges[3]", "\"zzzz\" is not in the vocab"}},
      {"MergeWithoutSpace", "bytelevel", [](Json& j) { j["model"]["merges"][0] = "abc"; },
       {"model.merges[0]", "two tokens"}},
      {"Dropout", "bytelevel", [](Json& j) { j["model"]["dropout"] = 0.1; },
       {"model.dropout", "dropout"}},
      {"UnkNotInVocab", "sentencepiece", [](Json& j) { j["model"]["unk_token"] = "<nope>"; },
       {"model.unk_token", "<nope>"}},
      {"UnknownPreTokenizer", "sentencepiece",
       [](Json& j) { j["pre_tokenizer"] = {{"type", "Whitespace"}}; },
       {"pre_tokenizer", "unsupported pre-tokenizer type \"Whitespace\""}},
      {"UnknownPreTokenizerInSequence", "bytelevel",
       [](Json& j) { j["pre_tokenizer"]["pretokenizers"][1]["type"] = "BertPreTokenizer"; },
       {"pre_tokenizer.pretokenizers[1]", "\"BertPreTokenizer\""}},
      {"UnknownSplitRegex", "bytelevel",
       [](Json& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\w+|\\s+"; },
       {"pre_tokenizer.pretokenizers[0].pattern.Regex", "unsupported Split regex"}},
      {"UnknownNormalizer", "bytelevel", [](Json& j) { j["normalizer"] = {{"type", "NFKC"}}; },
       {"normalizer", "unsupported normalizer type \"NFKC\""}},
      {"ReplaceWithRegex", "sentencepiece",
       [](Json& j) { j["normalizer"]["normalizers"][1]["pattern"] = {{"Regex", " +"}}; },
       {"normalizer.normalizers[1].pattern", "Regex"}},
      {"UnknownDecoder", "bytelevel", [](Json& j) { j["decoder"] = {{"type", "WordPiece"}}; },
       {"decoder", "unsupported decoder type \"WordPiece\""}},
      {"ByteFallbackAfterFuse", "sentencepiece",
       [](Json& j) { std::swap(j["decoder"]["decoders"][1], j["decoder"]["decoders"][2]); },
       {"decoder.decoders[2]", "after a Fuse/ByteLevel decoder"}},
      {"RobertaPostProcessor", "bytelevel",
       [](Json& j) { j["post_processor"] = {{"type", "RobertaProcessing"}}; },
       {"post_processor", "unsupported post-processor type \"RobertaProcessing\""}},
      {"TemplateUnknownSpecial", "sentencepiece",
       [](Json& j) { j["post_processor"]["special_tokens"].erase("<s>"); },
       {"post_processor.single[0].SpecialToken", "not listed in special_tokens"}},
      {"AddedTokenWithoutId", "bytelevel", [](Json& j) { j["added_tokens"][2].erase("id"); },
       {"added_tokens[2].id: missing required field"}},
      {"MetaspaceBadScheme", "sentencepiece-metaspace",
       [](Json& j) { j["pre_tokenizer"]["prepend_scheme"] = "sometimes"; },
       {"pre_tokenizer.prepend_scheme", "sometimes"}},
  };
}

class TokenizerRefusalTest : public ::testing::TestWithParam<RefusalCase> {};

TEST_P(TokenizerRefusalTest, IsRefusedWithAMessageNamingTheProblem) {
  const RefusalCase& c = GetParam();
  Json j = Fixture(c.fixture);
  // The unmodified fixture loads.
  ASSERT_TRUE(Tokenizer::FromJson(j.dump(), "").ok());
  c.mutate(j);
  auto tok = Tokenizer::FromJson(j.dump(), "");
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kInvalidArgument);
  for (const std::string& s : c.expected) {
    EXPECT_THAT(std::string(tok.status().message()), HasSubstr(s));
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, TokenizerRefusalTest, ::testing::ValuesIn(Cases()),
                         [](const auto& info) { return info.param.name; });

// Visits every node of `j` (only the first entries of vocab/merges), calling
// fn(path-to-node) where the node can be replaced through `slot`.
void ForEachNode(Json& j, const std::function<void(Json& slot)>& fn, int depth = 0) {
  fn(j);
  if (depth > 8) return;
  if (j.is_object()) {
    int n = 0;
    for (auto& [key, value] : j.items()) {
      if (n++ > 6 && depth >= 2) break;  // a few vocab entries are enough
      ForEachNode(value, fn, depth + 1);
    }
  } else if (j.is_array()) {
    for (size_t i = 0; i < j.size() && i < 4; ++i) ForEachNode(j[i], fn, depth + 1);
  }
}

TEST(TokenizerLoadTest, AnyFieldOfTheWrongTypeIsAnErrorNotACrash) {
  const Json replacements[] = {nullptr, 7, -1, 1.5, "x", Json::array(), Json::object(), true,
                               Json::array({"a", "b"})};
  for (const std::string name : {"bytelevel", "sentencepiece", "sentencepiece-metaspace"}) {
    Json j = Fixture(name);
    int loads = 0;
    ForEachNode(j, [&](Json& slot) {
      const Json saved = slot;
      for (const Json& r : replacements) {
        slot = r;
        auto tok = Tokenizer::FromJson(j.dump(), "");  // must return, ok or not
        if (tok.ok()) {
          auto ids = (*tok)->Encode("Hello <s> wörld 123 😀", true);
          ASSERT_TRUE(ids.ok());
          for (int32_t& id : *ids) id = id % (*tok)->vocab_size();
          (void)(*tok)->Decode(*ids, false);
        }
        ++loads;
      }
      slot = saved;
    });
    EXPECT_GT(loads, 300) << name;
  }
}

TEST(TokenizerLoadTest, MalformedJsonIsRefused) {
  for (const char* text : {"", "{", "{\"model\": }", "[1, 2", "not json"}) {
    auto tok = Tokenizer::FromJson(text, "", "my/tokenizer.json");
    ASSERT_FALSE(tok.ok()) << text;
    EXPECT_THAT(std::string(tok.status().message()), HasSubstr("my/tokenizer.json: malformed JSON"));
    EXPECT_EQ(tok.status().code(), absl::StatusCode::kInvalidArgument);
  }
  auto not_object = Tokenizer::FromJson("[1, 2]", "");
  ASSERT_FALSE(not_object.ok());
  EXPECT_THAT(std::string(not_object.status().message()), HasSubstr("expected an object, got array"));
}

TEST(TokenizerLoadTest, MissingFileIsNotFound) {
  auto tok = Tokenizer::Load("/nonexistent/dir/tokenizer.json");
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(tok.status().message()), HasSubstr("/nonexistent/dir/tokenizer.json"));
}

TEST(TokenizerLoadTest, LoadErrorsNameTheFile) {
  const std::string path = ::testing::TempDir() + "/bad_tokenizer.json";
  {
    std::ofstream out(path);
    out << "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}";
  }
  auto tok = Tokenizer::Load(path);
  ASSERT_FALSE(tok.ok());
  EXPECT_THAT(std::string(tok.status().message()), HasSubstr(path + ": model.type"));
}

TEST(TokenizerLoadTest, TokenizerConfigIsValidated) {
  const std::string json = ReadFile(FixturePath("bytelevel", "tokenizer.json"));
  auto missing = Tokenizer::FromJson(json, R"({"eos_token": "<|nope|>"})");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr("eos_token \"<|nope|>\" is not a token"));
  auto wrong_type = Tokenizer::FromJson(json, R"({"bos_token": 5})");
  ASSERT_FALSE(wrong_type.ok());
  EXPECT_THAT(std::string(wrong_type.status().message()), HasSubstr("bos_token"));
  auto bad_json = Tokenizer::FromJson(json, "{");
  ASSERT_FALSE(bad_json.ok());
  EXPECT_THAT(std::string(bad_json.status().message()), HasSubstr("tokenizer_config.json"));
  // AddedToken-object form, as older transformers wrote it.
  auto object_form = Tokenizer::FromJson(
      json, R"({"bos_token": {"__type": "AddedToken", "content": "<|begin_of_text|>"},
                "eos_token": {"content": "<|end_of_text|>"}})");
  ASSERT_TRUE(object_form.ok()) << object_form.status();
  EXPECT_EQ((*object_form)->bos_id(), 508);
  EXPECT_EQ((*object_form)->eos_ids(), std::vector<int32_t>{509});
}

}  // namespace
}  // namespace loraserve
