// Tests bench/tools/synthetic_model.cc, model_shapes.cc and
// synthetic_tokenizer.cc: the tiny synthetic model loads through the engine
// on the CPU backend and generates; every token id decodes; sharding and the
// index are consistent; output is a function of the seed; without weights
// (make-model --no-weights) only config and tokenizer files are written; bad
// options are refused naming the option.
#include "bench/tools/synthetic_model.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_format.h"
#include "bench/tools/adapter_set.h"
#include "bench/tools/model_shapes.h"
#include "bench/tools/synthetic_tokenizer.h"
#include "engine/model/model_config.h"
#include "engine/model/safetensors.h"
#include "engine/model/tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/bench_tools/bench_tools_test_util.h"
#include "tests/engine/engine_test_util.h"

namespace loraserve::bench {
namespace {

using ::testing::HasSubstr;
using testing::ReadAll;
using testing::ScopedTempDir;

SyntheticModelOptions Tiny(const std::string& out) {
  SyntheticModelOptions o;
  o.shape = "tiny";
  o.out_dir = out;
  o.seed = 1;
  return o;
}

TEST(ModelShapesTest, BuiltInShapesParseAsLlama) {
  absl::StatusOr<ModelShape> s7 = FindModelShape("llama-7b");
  ASSERT_TRUE(s7.ok());
  absl::StatusOr<ModelConfig> c = ModelConfig::Parse(ModelShapeConfig(*s7).dump(), "");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->hidden_size, 4096);
  EXPECT_EQ(c->intermediate_size, 11008);
  EXPECT_EQ(c->num_hidden_layers, 32);
  EXPECT_EQ(c->num_attention_heads, 32);
  EXPECT_EQ(c->num_key_value_heads, 32);
  EXPECT_EQ(c->vocab_size, 32000);
  EXPECT_EQ(c->max_position_embeddings, 4096);
  EXPECT_DOUBLE_EQ(c->rope_theta, 10000.0);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-5);
  absl::StatusOr<ModelShape> s13 = FindModelShape("llama-13b");
  ASSERT_TRUE(s13.ok());
  c = ModelConfig::Parse(ModelShapeConfig(*s13).dump(), "");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->hidden_size, 5120);
  EXPECT_EQ(c->intermediate_size, 13824);
  EXPECT_EQ(c->num_hidden_layers, 40);
  EXPECT_EQ(c->num_attention_heads, 40);
  EXPECT_THAT(FindModelShape("llama-70b").status().message(),
              HasSubstr("known: llama-7b, llama-13b, tiny"));
}

TEST(SyntheticTokenizerTest, EveryIdDecodesAndTextRoundTrips) {
  absl::StatusOr<SyntheticTokenizerFiles> files = MakeSyntheticTokenizer(600, 1, 2, 512);
  ASSERT_TRUE(files.ok()) << files.status();
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok =
      Tokenizer::FromJson(files->tokenizer_json, files->tokenizer_config_json);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->vocab_size(), 600);
  EXPECT_EQ((*tok)->bos_id(), 1);
  EXPECT_EQ((*tok)->eos_ids(), std::vector<int32_t>{2});
  for (int32_t id = 0; id < 600; ++id) {
    const int32_t one[] = {id};
    absl::StatusOr<std::string> text = (*tok)->Decode(one, /*skip_special_tokens=*/false);
    ASSERT_TRUE(text.ok()) << "id " << id << ": " << text.status();
    EXPECT_FALSE((*tok)->IdToToken(id).empty()) << id;
  }
  const int32_t filler[] = {599};
  EXPECT_EQ(*(*tok)->Decode(filler, false), "<tok_599>");
  // Byte-level: one token per byte, BOS first, and back to the same text.
  const std::string text = "Hello, wörld! 123\n";
  absl::StatusOr<std::vector<int32_t>> ids = (*tok)->Encode(text, /*add_special_tokens=*/true);
  ASSERT_TRUE(ids.ok()) << ids.status();
  ASSERT_EQ(ids->size(), text.size() + 1);
  EXPECT_EQ(ids->front(), 1);
  EXPECT_EQ(*(*tok)->Decode(*ids, /*skip_special_tokens=*/true), text);
}

// tests/bench_tools/synthetic_tokenizer_hf_golden.json: Hugging Face's ids and
// text for the tiny shape's tokenizer (see its "generated_by").
TEST(SyntheticTokenizerTest, MatchesHuggingFaceGolden) {
  absl::StatusOr<SyntheticTokenizerFiles> files = MakeSyntheticTokenizer(512, 1, 2, 512);
  ASSERT_TRUE(files.ok()) << files.status();
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok =
      Tokenizer::FromJson(files->tokenizer_json, files->tokenizer_config_json);
  ASSERT_TRUE(tok.ok()) << tok.status();
  const nlohmann::json golden = nlohmann::json::parse(
      ReadAll(testing::BenchToolsTestDir() + "/synthetic_tokenizer_hf_golden.json"));
  ASSERT_FALSE(golden["encode"].empty());
  for (const auto& c : golden["encode"]) {
    const std::string text = c["text"];
    absl::StatusOr<std::vector<int32_t>> ids = (*tok)->Encode(text, /*add_special_tokens=*/true);
    ASSERT_TRUE(ids.ok()) << ids.status();
    EXPECT_EQ(*ids, c["ids"].get<std::vector<int32_t>>()) << text;
  }
  for (const auto& c : golden["decode"]) {
    const std::vector<int32_t> ids = c["ids"].get<std::vector<int32_t>>();
    absl::StatusOr<std::string> text = (*tok)->Decode(ids, /*skip_special_tokens=*/false);
    ASSERT_TRUE(text.ok()) << text.status();
    EXPECT_EQ(*text, c["text"].get<std::string>());
  }
}

TEST(SyntheticTokenizerTest, SpecialIdsAnywhereAndTooSmallVocab) {
  absl::StatusOr<SyntheticTokenizerFiles> files = MakeSyntheticTokenizer(300, 299, 298, 64);
  ASSERT_TRUE(files.ok()) << files.status();
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok =
      Tokenizer::FromJson(files->tokenizer_json, files->tokenizer_config_json);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->bos_id(), 299);
  EXPECT_EQ((*tok)->TokenToId("</s>"), 298);
  EXPECT_FALSE(MakeSyntheticTokenizer(257, 1, 2, 64).ok());
  EXPECT_TRUE(MakeSyntheticTokenizer(257, 0, 0, 64).ok());
  EXPECT_FALSE(MakeSyntheticTokenizer(400, 1, 400, 64).ok());
}

TEST(SyntheticModelTest, TinyModelLoadsInTheEngineAndGenerates) {
  ScopedTempDir tmp;
  SyntheticModelOptions o = Tiny(tmp.Sub("tiny"));
  o.shard_bytes = 64 << 10;  // force several shards
  absl::StatusOr<SyntheticModelSummary> s = MakeSyntheticModel(o);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_GT(s->num_shards, 2);
  EXPECT_EQ(s->num_tensors, 2 + 2 * 9 + 1);  // embed, 9 per layer, norm, lm_head

  // The index names every tensor once and each shard holds what it says.
  const nlohmann::json index =
      nlohmann::json::parse(ReadAll(o.out_dir + "/model.safetensors.index.json"));
  EXPECT_EQ(index["weight_map"].size(), static_cast<size_t>(s->num_tensors));
  EXPECT_EQ(index["metadata"]["total_size"].get<int64_t>(), s->weight_bytes);
  EXPECT_EQ(index["weight_map"]["model.embed_tokens.weight"],
            absl::StrFormat("model-00001-of-%05d.safetensors", s->num_shards));

  EngineOptions eo = loraserve::testing::TestOptions();
  eo.model_dir = o.out_dir;
  std::unique_ptr<Engine> engine = loraserve::testing::MakeEngine(eo, /*load_adapters=*/false);
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->vocab_size(), 512);
  EXPECT_EQ(engine->tokenizer().vocab_size(), 512);
  absl::StatusOr<std::vector<int32_t>> prompt = engine->tokenizer().Encode("synthetic", true);
  ASSERT_TRUE(prompt.ok());
  auto sink =
      loraserve::testing::RunAlone(*engine, loraserve::testing::Greedy("r0", "", *prompt, 6));
  EXPECT_EQ(sink->terminal().kind, GenerationEvent::Kind::kFinished) << sink->terminal().error;
  ASSERT_EQ(sink->tokens().size(), 6u);
  const std::vector<int32_t> tokens = sink->tokens();
  EXPECT_TRUE(engine->tokenizer().Decode(tokens, false).ok());

  // An adapter set generated for the synthetic model loads and changes nothing
  // about the base request's validity.
  AdapterSetOptions ao;
  ao.base_dir = o.out_dir;
  ao.out_dir = tmp.Sub("adapters");
  ao.num = 2;
  ao.ranks = {8};
  ASSERT_TRUE(MakeAdapterSet(ao).ok());
  ASSERT_TRUE(engine->LoadAdapter("a0", ao.out_dir + "/adapter-0000").ok());
  auto adapted =
      loraserve::testing::RunAlone(*engine, loraserve::testing::Greedy("r1", "a0", *prompt, 6));
  EXPECT_EQ(adapted->terminal().kind, GenerationEvent::Kind::kFinished)
      << adapted->terminal().error;
  EXPECT_EQ(adapted->tokens().size(), 6u);
}

TEST(SyntheticModelTest, SameSeedSameBytesOtherSeedOtherBytes) {
  ScopedTempDir tmp;
  SyntheticModelOptions o = Tiny(tmp.Sub("a"));
  ASSERT_TRUE(MakeSyntheticModel(o).ok());
  o.out_dir = tmp.Sub("b");
  ASSERT_TRUE(MakeSyntheticModel(o).ok());
  o.out_dir = tmp.Sub("c");
  o.seed = 2;
  ASSERT_TRUE(MakeSyntheticModel(o).ok());
  const std::string shard = "/model-00001-of-00001.safetensors";
  EXPECT_EQ(ReadAll(tmp.Sub("a") + shard), ReadAll(tmp.Sub("b") + shard));
  EXPECT_NE(ReadAll(tmp.Sub("a") + shard), ReadAll(tmp.Sub("c") + shard));
  EXPECT_EQ(ReadAll(tmp.Sub("a") + "/tokenizer.json"), ReadAll(tmp.Sub("c") + "/tokenizer.json"));

  // Weights: norms are ones, linear weights ~ normal(0, 0.02), in bf16.
  absl::StatusOr<std::unique_ptr<SafetensorsBundle>> bundle =
      SafetensorsBundle::OpenDir(tmp.Sub("a"));
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  auto values = [&](const char* name) {
    const TensorView* t = (*bundle)->Find(name);
    EXPECT_NE(t, nullptr) << name;
    std::vector<float> v(t == nullptr ? 0 : static_cast<size_t>(t->numel()));
    if (t != nullptr) {
      EXPECT_EQ(t->dtype, DType::kBF16);
      ConvertToF32(t->data, t->dtype, v.data(), v.size());
    }
    return v;
  };
  for (float x : values("model.layers.1.post_attention_layernorm.weight")) ASSERT_EQ(x, 1.0f);
  const std::vector<float> w = values("model.layers.0.mlp.down_proj.weight");
  ASSERT_EQ(w.size(), 64u * 160u);
  double sum = 0, sq = 0;
  for (float x : w) {
    sum += x;
    sq += static_cast<double>(x) * x;
  }
  const double mean = sum / static_cast<double>(w.size());
  const double sd = std::sqrt(sq / static_cast<double>(w.size()) - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.001);
  EXPECT_NEAR(sd, 0.02, 0.001);
}

TEST(SyntheticModelTest, ConfigFileAndRewriteRemovesStaleShards) {
  ScopedTempDir tmp;
  absl::StatusOr<ModelShape> shape = FindModelShape("tiny");
  ASSERT_TRUE(shape.ok());
  nlohmann::ordered_json cfg = ModelShapeConfig(*shape);
  cfg["num_hidden_layers"] = 1;
  cfg["tie_word_embeddings"] = true;
  { std::ofstream(tmp.Sub("config.json")) << cfg.dump(); }
  SyntheticModelOptions o;
  o.config_file = tmp.Sub("config.json");
  o.out_dir = tmp.Sub("m");
  o.shard_bytes = 16 << 10;
  absl::StatusOr<SyntheticModelSummary> many = MakeSyntheticModel(o);
  ASSERT_TRUE(many.ok()) << many.status();
  EXPECT_EQ(many->num_tensors, 1 + 9 + 1);  // tied: no lm_head
  o.shard_bytes = int64_t{1} << 30;
  ASSERT_TRUE(MakeSyntheticModel(o).ok());
  int shards = 0;
  for (const auto& e : std::filesystem::directory_iterator(o.out_dir)) {
    if (e.path().extension() == ".safetensors") ++shards;
  }
  EXPECT_EQ(shards, 1);
  absl::StatusOr<ModelConfig> loaded = ModelConfig::Load(o.out_dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->num_hidden_layers, 1);
}

TEST(SyntheticModelTest, NoWeightsWritesConfigAndTokenizerOnly) {
  ScopedTempDir tmp;
  SyntheticModelOptions o = Tiny(tmp.Sub("m"));
  o.shard_bytes = 64 << 10;
  ASSERT_TRUE(MakeSyntheticModel(o).ok());  // an earlier run's weights, to be removed
  o.write_weights = false;
  absl::StatusOr<SyntheticModelSummary> s = MakeSyntheticModel(o);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->num_tensors, 0);
  EXPECT_EQ(s->num_shards, 0);
  EXPECT_EQ(s->weight_bytes, 0);
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(o.out_dir)) {
    files.push_back(e.path().filename().string());
  }
  std::sort(files.begin(), files.end());
  EXPECT_EQ(files, (std::vector<std::string>{"config.json", "generation_config.json",
                                             "tokenizer.json", "tokenizer_config.json"}));
  // What random weights need: the config and the tokenizer load.
  absl::StatusOr<ModelConfig> config = ModelConfig::Load(o.out_dir);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->vocab_size, 512);
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = Tokenizer::Load(o.out_dir + "/tokenizer.json");
  ASSERT_TRUE(tok.ok()) << tok.status();
}

TEST(SyntheticModelTest, BadOptionsAreClearErrors) {
  ScopedTempDir tmp;
  auto error_of = [&](auto mutate) {
    SyntheticModelOptions o = Tiny(tmp.Sub("m"));
    mutate(o);
    absl::StatusOr<SyntheticModelSummary> s = MakeSyntheticModel(o);
    EXPECT_FALSE(s.ok());
    return std::string(s.status().message());
  };
  EXPECT_THAT(error_of([](SyntheticModelOptions& o) { o.shape = "llama-70b"; }),
              HasSubstr("--shape unknown model shape \"llama-70b\""));
  EXPECT_THAT(error_of([](SyntheticModelOptions& o) { o.config_file = "/x/config.json"; }),
              HasSubstr("exactly one"));
  EXPECT_THAT(error_of([](SyntheticModelOptions& o) { o.shape.clear(); }),
              HasSubstr("exactly one"));
  EXPECT_THAT(error_of([&](SyntheticModelOptions& o) {
                o.shape.clear();
                o.config_file = tmp.Sub("missing.json");
              }),
              HasSubstr("--config"));
  EXPECT_THAT(error_of([](SyntheticModelOptions& o) { o.out_dir.clear(); }), HasSubstr("--out"));
  EXPECT_THAT(error_of([](SyntheticModelOptions& o) { o.shard_bytes = 0; }),
              HasSubstr("--shard-bytes"));
  EXPECT_FALSE(std::filesystem::exists(tmp.Sub("m")));
}

}  // namespace
}  // namespace loraserve::bench
