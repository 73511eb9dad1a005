// ModelWeights: fused q/k/v and gate/up land row-concatenated in the order the
// forward pass expects, dtypes are converted exactly, tied embeddings share
// the table, and every missing or misshapen tensor is refused by name.
#include "engine/model/model_weights.h"

#include <functional>
#include <map>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/backend_factory.h"
#include "tests/engine/safetensors_writer.h"

namespace loraserve {
namespace {

using ::loraserve::testutil::SafetensorsWriter;
using ::loraserve::testutil::TempDir;
using ::loraserve::testutil::TestValues;
using ::testing::HasSubstr;

// hidden 8, 2 heads / 1 kv head of 4, intermediate 12, vocab 10, 2 layers.
constexpr char kConfig[] = R"({
  "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 8,
  "intermediate_size": 12, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 4,
  "num_hidden_layers": 2, "vocab_size": 10, "rms_norm_eps": 1e-5, "hidden_act": "silu",
  "max_position_embeddings": 64, "tie_word_embeddings": TIE, "attention_bias": BIAS})";

class ModelWeightsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto backend = CreateBackend(BackendKind::kCpu, {});
    ASSERT_TRUE(backend.ok());
    backend_ = std::move(backend).value();
  }

  // The tensor list of a valid model; `edit` may change shapes or drop names.
  std::map<std::string, std::vector<int64_t>> Shapes(bool tie, bool bias) {
    std::map<std::string, std::vector<int64_t>> s;
    s["model.embed_tokens.weight"] = {10, 8};
    s["model.norm.weight"] = {8};
    if (!tie) s["lm_head.weight"] = {10, 8};
    for (int l = 0; l < 2; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      s[p + "self_attn.q_proj.weight"] = {8, 8};
      s[p + "self_attn.k_proj.weight"] = {4, 8};
      s[p + "self_attn.v_proj.weight"] = {4, 8};
      s[p + "self_attn.o_proj.weight"] = {8, 8};
      if (bias) {
        for (const char* m : {"q", "k", "v"}) {
          s[p + "self_attn." + m + "_proj.bias"] = {m[0] == 'q' ? 8 : 4};
        }
        s[p + "self_attn.o_proj.bias"] = {8};
      }
      s[p + "mlp.gate_proj.weight"] = {12, 8};
      s[p + "mlp.up_proj.weight"] = {12, 8};
      s[p + "mlp.down_proj.weight"] = {8, 12};
      s[p + "input_layernorm.weight"] = {8};
      s[p + "post_attention_layernorm.weight"] = {8};
    }
    return s;
  }

  // Writes the model (BF16 weights, F32 norms) and loads it.
  absl::StatusOr<std::unique_ptr<ModelWeights>> Build(
      bool tie, bool bias, const std::map<std::string, std::vector<int64_t>>& shapes) {
    std::string cfg = kConfig;
    cfg.replace(cfg.find("TIE"), 3, tie ? "true" : "false");
    cfg.replace(cfg.find("BIAS"), 4, bias ? "true" : "false");
    auto config = ModelConfig::Parse(cfg, "");
    EXPECT_TRUE(config.ok()) << config.status();
    config_ = *config;
    SafetensorsWriter w;
    uint64_t seed = 1;
    values_.clear();
    for (const auto& [name, shape] : shapes) {
      int64_t n = 1;
      for (int64_t d : shape) n *= d;
      const bool norm = name.find("norm") != std::string::npos;
      values_[name] = w.Add(name, norm ? "F32" : "BF16", shape, TestValues(n, seed++));
    }
    w.WriteTo(dir_.Sub("model.safetensors"));
    auto bundle = SafetensorsBundle::OpenDir(dir_.path());
    EXPECT_TRUE(bundle.ok()) << bundle.status();
    bundle_ = std::move(bundle).value();
    ModelWeights::Options o;
    o.backend = backend_.get();
    o.config = &config_;
    o.tensors = bundle_.get();
    return ModelWeights::Create(o);
  }

  std::vector<float> Get(const void* p, size_t n) {
    std::vector<float> out(n);
    EXPECT_TRUE(backend_->DownloadToF32(p, static_cast<int64_t>(n), out.data()).ok());
    return out;
  }

  std::vector<float> Concat(std::initializer_list<std::string> names) {
    std::vector<float> out;
    for (const auto& n : names) out.insert(out.end(), values_[n].begin(), values_[n].end());
    return out;
  }

  std::unique_ptr<Backend> backend_;
  TempDir dir_;
  ModelConfig config_;
  std::unique_ptr<SafetensorsBundle> bundle_;
  std::map<std::string, std::vector<float>> values_;
};

TEST_F(ModelWeightsTest, FusesQkvAndGateUpInOrder) {
  auto w = Build(false, true, Shapes(false, true));
  ASSERT_TRUE(w.ok()) << w.status();
  const std::string p = "model.layers.1.";
  const LayerWeights& l = (*w)->layer(1);
  EXPECT_EQ(Get(l.qkv.data(), 16 * 8),
            Concat({p + "self_attn.q_proj.weight", p + "self_attn.k_proj.weight",
                    p + "self_attn.v_proj.weight"}));
  EXPECT_EQ(Get(l.qkv_bias.data(), 16),
            Concat({p + "self_attn.q_proj.bias", p + "self_attn.k_proj.bias",
                    p + "self_attn.v_proj.bias"}));
  EXPECT_EQ(Get(l.gate_up.data(), 24 * 8),
            Concat({p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight"}));
  EXPECT_EQ(Get(l.down.data(), 8 * 12), values_[p + "mlp.down_proj.weight"]);
  EXPECT_EQ(Get(l.o_bias.data(), 8), values_[p + "self_attn.o_proj.bias"]);
  EXPECT_TRUE(l.gate_up_bias.empty());
  EXPECT_EQ(Get(l.post_attn_norm.data(), 8), values_[p + "post_attention_layernorm.weight"]);
  EXPECT_EQ(Get((*w)->lm_head(), 80), values_["lm_head.weight"]);
  EXPECT_NE((*w)->lm_head(), (*w)->embed());
  EXPECT_EQ((*w)->num_layers(), 2);
}

TEST_F(ModelWeightsTest, TiedEmbeddingsShareTheTable) {
  auto w = Build(true, false, Shapes(true, false));
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ((*w)->lm_head(), (*w)->embed());
  EXPECT_EQ(Get((*w)->embed(), 80), values_["model.embed_tokens.weight"]);
  EXPECT_TRUE((*w)->layer(0).qkv_bias.empty());
}

TEST_F(ModelWeightsTest, MissingOrMisshapenTensorsAreNamed) {
  auto shapes = Shapes(false, false);
  shapes.erase("model.layers.1.mlp.up_proj.weight");
  auto w = Build(false, false, shapes);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(w.status().message()),
              HasSubstr("\"model.layers.1.mlp.up_proj.weight\" is missing"));

  shapes = Shapes(false, false);
  shapes["model.layers.0.self_attn.k_proj.weight"] = {8, 8};  // MHA shape on a GQA config
  w = Build(false, false, shapes);
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(std::string(w.status().message()),
              HasSubstr("\"model.layers.0.self_attn.k_proj.weight\" has shape [8, 8]"));

  // attention_bias in config.json but no bias tensors.
  w = Build(false, true, Shapes(false, false));
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(std::string(w.status().message()), HasSubstr("q_proj.bias\" is missing"));

  // Untied model without lm_head.
  w = Build(false, false, Shapes(true, false));
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(std::string(w.status().message()), HasSubstr("\"lm_head.weight\" is missing"));
}

}  // namespace
}  // namespace loraserve
