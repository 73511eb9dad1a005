#include "engine/model/model_config.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/engine/safetensors_writer.h"

namespace loraserve {
namespace {

using ::loraserve::testutil::TempDir;
using ::loraserve::testutil::WriteStringToFile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Json = nlohmann::ordered_json;

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

// Meta-Llama-3.1-8B's config.json (abridged to the fields transformers reads).
constexpr char kLlama31[] = R"({
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "silu", "hidden_size": 4096,
  "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 131072,
  "mlp_bias": false, "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 32,
  "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
  "transformers_version": "4.43.0.dev0", "use_cache": true, "vocab_size": 128256})";

constexpr char kLlama31Generation[] = R"({
  "bos_token_id": 128000, "do_sample": true, "eos_token_id": [128001, 128008, 128009],
  "temperature": 0.6, "top_p": 0.9, "transformers_version": "4.43.0.dev0"})";

TEST(ModelConfig, Llama31WithLlama3RopeScaling) {
  absl::StatusOr<ModelConfig> c = ModelConfig::Parse(kLlama31, kLlama31Generation);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->architecture, "LlamaForCausalLM");
  EXPECT_EQ(c->model_type, "llama");
  EXPECT_EQ(c->vocab_size, 128256);
  EXPECT_EQ(c->hidden_size, 4096);
  EXPECT_EQ(c->intermediate_size, 14336);
  EXPECT_EQ(c->num_hidden_layers, 32);
  EXPECT_EQ(c->num_attention_heads, 32);
  EXPECT_EQ(c->num_key_value_heads, 8);
  EXPECT_EQ(c->head_dim, 128);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c->rope_theta, 500000.0);
  EXPECT_EQ(c->rope_scaling.type, RopeScalingType::kLlama3);
  EXPECT_DOUBLE_EQ(c->rope_scaling.factor, 8.0);
  EXPECT_DOUBLE_EQ(c->rope_scaling.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(c->rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(c->rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_FALSE(c->qkv_bias);
  EXPECT_FALSE(c->o_bias);
  EXPECT_FALSE(c->mlp_bias);
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_EQ(c->max_position_embeddings, 131072);
  EXPECT_FALSE(c->sliding_window.has_value());
  EXPECT_EQ(c->max_context(), 131072);
  EXPECT_EQ(c->torch_dtype, "bfloat16");
  EXPECT_EQ(c->bos_token_id, 128000);
  // generation_config's list first; config.json's 128001 is already there.
  EXPECT_THAT(c->eos_token_ids, ElementsAre(128001, 128008, 128009));
  EXPECT_FALSE(c->pad_token_id.has_value());

  // GQA shapes of the seven projections.
  auto shape = [&](LoraModule m) {
    ProjShape s = ModuleShape(*c, m);
    return std::vector<int64_t>{s.in, s.out};
  };
  EXPECT_THAT(shape(LoraModule::kQ), ElementsAre(4096, 4096));
  EXPECT_THAT(shape(LoraModule::kK), ElementsAre(4096, 1024));
  EXPECT_THAT(shape(LoraModule::kV), ElementsAre(4096, 1024));
  EXPECT_THAT(shape(LoraModule::kO), ElementsAre(4096, 4096));
  EXPECT_THAT(shape(LoraModule::kGate), ElementsAre(4096, 14336));
  EXPECT_THAT(shape(LoraModule::kUp), ElementsAre(4096, 14336));
  EXPECT_THAT(shape(LoraModule::kDown), ElementsAre(14336, 4096));
}

TEST(ModelConfig, EosUnionKeepsGenerationConfigFirst) {
  Json cfg = Json::parse(kLlama31);
  cfg["eos_token_id"] = Json::array({7, 9});
  cfg["pad_token_id"] = 3;
  absl::StatusOr<ModelConfig> c =
      ModelConfig::Parse(cfg.dump(), R"({"eos_token_id": 9, "bos_token_id": 5})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->eos_token_ids, ElementsAre(9, 7));
  EXPECT_EQ(c->bos_token_id, 5);  // generation config overrides config.json
  EXPECT_EQ(c->pad_token_id, 3);

  // An int eos without a generation config.
  cfg["eos_token_id"] = 11;
  c = ModelConfig::Parse(cfg.dump(), "");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->eos_token_ids, ElementsAre(11));
  EXPECT_EQ(c->bos_token_id, 128000);

  // Explicit null: no eos at all; absent: LlamaConfig's defaults (bos 1, eos 2).
  cfg["eos_token_id"] = nullptr;
  c = ModelConfig::Parse(cfg.dump(), "");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->eos_token_ids.empty());
  cfg.erase("eos_token_id");
  cfg.erase("bos_token_id");
  c = ModelConfig::Parse(cfg.dump(), "");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->eos_token_ids, ElementsAre(2));
  EXPECT_EQ(c->bos_token_id, 1);

  // pad -1 (old Llama conversions) means none.
  cfg["pad_token_id"] = -1;
  c = ModelConfig::Parse(cfg.dump(), "");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->pad_token_id.has_value());
}

TEST(ModelConfig, MistralSlidingWindowLimitsContext) {
  constexpr char kMistral[] = R"({
    "architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2,
    "hidden_act": "silu", "hidden_size": 4096, "intermediate_size": 14336,
    "max_position_embeddings": 32768, "model_type": "mistral", "num_attention_heads": 32,
    "num_hidden_layers": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
    "rope_theta": 10000.0, "sliding_window": 4096, "tie_word_embeddings": false,
    "torch_dtype": "bfloat16", "vocab_size": 32000})";
  absl::StatusOr<ModelConfig> c = ModelConfig::Parse(kMistral, "");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->architecture, "MistralForCausalLM");
  EXPECT_EQ(c->sliding_window, 4096);
  EXPECT_EQ(c->max_position_embeddings, 32768);
  EXPECT_EQ(c->max_context(), 4096);
  EXPECT_EQ(c->num_key_value_heads, 8);
  EXPECT_EQ(c->rope_scaling.type, RopeScalingType::kNone);
  EXPECT_FALSE(c->qkv_bias);

  // Mistral v0.2+: sliding_window null -> full context.
  Json j = Json::parse(kMistral);
  j["sliding_window"] = nullptr;
  c = ModelConfig::Parse(j.dump(), "");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->sliding_window.has_value());
  EXPECT_EQ(c->max_context(), 32768);

  // Mistral-Nemo style explicit head_dim with heads*head_dim != hidden.
  j = Json::parse(kMistral);
  j["hidden_size"] = 5120;
  j["head_dim"] = 128;
  c = ModelConfig::Parse(j.dump(), "");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->head_dim, 128);
  EXPECT_EQ(ModuleShape(*c, LoraModule::kQ).in, 5120);
  EXPECT_EQ(ModuleShape(*c, LoraModule::kQ).out, 4096);
  EXPECT_EQ(ModuleShape(*c, LoraModule::kO).in, 4096);
  EXPECT_EQ(ModuleShape(*c, LoraModule::kO).out, 5120);
  EXPECT_EQ(ModuleShape(*c, LoraModule::kK).out, 1024);
}

TEST(ModelConfig, Qwen2HasQkvBiasAndOptionalSlidingWindow) {
  constexpr char kQwen2[] = R"({
    "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
    "eos_token_id": 151645, "hidden_act": "silu", "hidden_size": 896,
    "intermediate_size": 4864, "max_position_embeddings": 32768, "max_window_layers": 21,
    "model_type": "qwen2", "num_attention_heads": 14, "num_hidden_layers": 24,
    "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
    "sliding_window": 4096, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
    "use_cache": true, "use_sliding_window": false, "vocab_size": 151936})";
  constexpr char kQwen2Gen[] = R"({"bos_token_id": 151643, "pad_token_id": 151643,
    "eos_token_id": [151645, 151643], "do_sample": true})";
  absl::StatusOr<ModelConfig> c = ModelConfig::Parse(kQwen2, kQwen2Gen);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->qkv_bias);
  EXPECT_FALSE(c->o_bias);
  EXPECT_FALSE(c->mlp_bias);
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_EQ(c->head_dim, 64);
  EXPECT_EQ(ModuleShape(*c, LoraModule::kK).out, 128);
  EXPECT_FALSE(c->sliding_window.has_value());  // use_sliding_window: false
  EXPECT_EQ(c->max_context(), 32768);
  EXPECT_THAT(c->eos_token_ids, ElementsAre(151645, 151643));
  EXPECT_EQ(c->pad_token_id, 151643);
  EXPECT_DOUBLE_EQ(c->rope_theta, 1e6);

  Json j = Json::parse(kQwen2);
  j["use_sliding_window"] = true;
  c = ModelConfig::Parse(j.dump(), "");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->sliding_window, 4096);
  EXPECT_EQ(c->max_context(), 4096);
}

TEST(ModelConfig, SmolLmTiedEmbeddingsAndDefaults) {
  // SmolLM-135M: Llama architecture, tied embeddings, 9 heads / 3 kv heads.
  constexpr char kSmol[] = R"({
    "architectures": ["LlamaForCausalLM"], "bos_token_id": 0, "eos_token_id": 0,
    "hidden_act": "silu", "hidden_size": 576, "intermediate_size": 1536,
    "max_position_embeddings": 2048, "model_type": "llama", "num_attention_heads": 9,
    "num_hidden_layers": 30, "num_key_value_heads": 3, "rms_norm_eps": 1e-05,
    "rope_scaling": null, "rope_theta": 10000.0, "tie_word_embeddings": true,
    "torch_dtype": "bfloat16", "vocab_size": 49152})";
  absl::StatusOr<ModelConfig> c = ModelConfig::Parse(kSmol, "");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_EQ(c->head_dim, 64);
  EXPECT_EQ(ModuleShape(*c, LoraModule::kV).out, 192);
  EXPECT_EQ(c->rope_scaling.type, RopeScalingType::kNone);
  EXPECT_EQ(c->bos_token_id, 0);
  EXPECT_THAT(c->eos_token_ids, ElementsAre(0));

  // Minimal config: defaults for everything optional.
  c = ModelConfig::Parse(R"({"architectures": ["LlamaForCausalLM"], "vocab_size": 100,
      "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
      "num_attention_heads": 4})",
                         "");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->num_key_value_heads, 4);
  EXPECT_EQ(c->head_dim, 16);
  EXPECT_DOUBLE_EQ(c->rope_theta, 10000.0);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-6);
  EXPECT_EQ(c->max_position_embeddings, 2048);
  EXPECT_EQ(c->hidden_act, "silu");
  EXPECT_FALSE(c->tie_word_embeddings);
}

TEST(ModelConfig, LlamaBiasesAndLinearRope) {
  Json j = Json::parse(kLlama31);
  j["attention_bias"] = true;
  j["mlp_bias"] = true;
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  absl::StatusOr<ModelConfig> c = ModelConfig::Parse(j.dump(), "");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->qkv_bias);
  EXPECT_TRUE(c->o_bias);
  EXPECT_TRUE(c->mlp_bias);
  EXPECT_EQ(c->rope_scaling.type, RopeScalingType::kLinear);
  EXPECT_DOUBLE_EQ(c->rope_scaling.factor, 2.0);

  j["rope_scaling"] = {{"rope_type", "default"}};
  c = ModelConfig::Parse(j.dump(), "");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->rope_scaling.type, RopeScalingType::kNone);
}

TEST(ModelConfig, LoraModuleNames) {
  const char* names[] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                         "gate_proj", "up_proj", "down_proj"};
  for (int i = 0; i < kNumLoraModules; ++i) {
    const LoraModule m = kAllLoraModules[i];
    EXPECT_EQ(static_cast<int>(m), i);
    EXPECT_EQ(LoraModuleName(m), names[i]);
    EXPECT_EQ(ParseLoraModule(names[i]), m);
    EXPECT_EQ(LoraModuleParent(m), i < 4 ? "self_attn" : "mlp");
  }
  EXPECT_FALSE(ParseLoraModule("c_attn").has_value());
  EXPECT_FALSE(ParseLoraModule("q_proj ").has_value());
  EXPECT_FALSE(ParseLoraModule("lm_head").has_value());
}

TEST(ModelConfig, LoadsTheTinyLlamaFixture) {
  absl::StatusOr<ModelConfig> c =
      ModelConfig::Load(std::string(LORASERVE_TEST_DATA_DIR) + "/tiny-llama");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->hidden_size, 96);
  EXPECT_EQ(c->num_attention_heads, 6);
  EXPECT_EQ(c->num_key_value_heads, 2);
  EXPECT_EQ(c->head_dim, 16);
  EXPECT_EQ(c->rope_scaling.type, RopeScalingType::kLlama3);
  EXPECT_EQ(c->rope_scaling.original_max_position_embeddings, 32);
  EXPECT_THAT(c->eos_token_ids, ElementsAre(509));
  EXPECT_EQ(c->bos_token_id, 508);
}

TEST(ModelConfig, LoadErrorsNameTheDirectory) {
  TempDir dir;
  absl::StatusOr<ModelConfig> c = ModelConfig::Load(dir.path());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(c.status()), HasSubstr(dir.path() + "/config.json"));

  WriteStringToFile(dir.Sub("config.json"), kLlama31);
  WriteStringToFile(dir.Sub("generation_config.json"), "{oops");
  c = ModelConfig::Load(dir.path());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(c.status()), HasSubstr(dir.path()));
  EXPECT_THAT(Msg(c.status()), HasSubstr("generation_config.json: not valid JSON"));

  WriteStringToFile(dir.Sub("generation_config.json"), R"({"eos_token_id": [5, 6]})");
  c = ModelConfig::Load(dir.path());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->eos_token_ids, ElementsAre(5, 6, 128001));
}

struct RefusalCase {
  std::string name;
  Json patch;  // merged into the Llama 3.1 config (null value: erase key)
  std::string substr;
};

TEST(ModelConfig, RefusalsNameTheReason) {
  const std::vector<RefusalCase> cases = {
      {"gpt2",
       {{"architectures", Json::array({"GPT2LMHeadModel"})}},
       "unsupported architecture \"GPT2LMHeadModel\" (supported: LlamaForCausalLM, "
       "MistralForCausalLM, Qwen2ForCausalLM)"},
      {"gelu", {{"hidden_act", "gelu"}}, "unsupported \"hidden_act\" \"gelu\""},
      {"kv_not_dividing",
       {{"num_key_value_heads", 3}},
       "\"num_key_value_heads\" (3) must divide \"num_attention_heads\" (32)"},
      {"yarn",
       {{"rope_scaling", {{"rope_type", "yarn"}, {"factor", 4.0}}}},
       "unsupported rope_scaling type \"yarn\""},
      {"dynamic",
       {{"rope_scaling", {{"type", "dynamic"}, {"factor", 4.0}}}},
       "unsupported rope_scaling type \"dynamic\""},
      {"llama3_missing_field",
       {{"rope_scaling",
         {{"rope_type", "llama3"},
          {"factor", 8.0},
          {"high_freq_factor", 4.0},
          {"original_max_position_embeddings", 8192}}}},
       "missing required field \"low_freq_factor\""},
      {"llama3_bad_freqs",
       {{"rope_scaling",
         {{"rope_type", "llama3"},
          {"factor", 8.0},
          {"low_freq_factor", 4.0},
          {"high_freq_factor", 4.0},
          {"original_max_position_embeddings", 8192}}}},
       "\"high_freq_factor\" must be greater than \"low_freq_factor\""},
      {"missing_hidden", {{"hidden_size", nullptr}}, "missing required field \"hidden_size\""},
      {"missing_layers",
       {{"num_hidden_layers", nullptr}},
       "missing required field \"num_hidden_layers\""},
      {"hidden_string",
       {{"hidden_size", "4096"}},
       "\"hidden_size\" must be an integer, got string"},
      {"zero_layers", {{"num_hidden_layers", 0}}, "\"num_hidden_layers\" must be positive"},
      {"head_dim_indivisible",
       {{"num_attention_heads", 30}, {"num_key_value_heads", 10}},
       "not divisible by \"num_attention_heads\""},
      {"odd_head_dim", {{"head_dim", 63}}, "head_dim 63 must be even"},
      {"quantized", {{"quantization_config", {{"quant_method", "awq"}}}}, "quantization_config"},
      {"eos_outside_vocab", {{"eos_token_id", 200000}}, "eos_token_id 200000 is outside"},
      {"bad_architectures",
       {{"architectures", "LlamaForCausalLM"}},
       "\"architectures\" must be a non-empty list of strings"},
      {"eps_string", {{"rms_norm_eps", "1e-5"}}, "\"rms_norm_eps\" must be a number"},
  };
  for (const RefusalCase& c : cases) {
    SCOPED_TRACE(c.name);
    Json j = Json::parse(kLlama31);
    for (auto it = c.patch.begin(); it != c.patch.end(); ++it) {
      if (it.value().is_null()) {
        j.erase(it.key());
      } else {
        j[it.key()] = it.value();
      }
    }
    absl::StatusOr<ModelConfig> cfg = ModelConfig::Parse(j.dump(), "");
    ASSERT_FALSE(cfg.ok());
    EXPECT_EQ(cfg.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Msg(cfg.status()), HasSubstr(c.substr));
  }
  absl::StatusOr<ModelConfig> bad = ModelConfig::Parse("{\"architectures\": [", "");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(bad.status()), HasSubstr("config.json: not valid JSON"));
  bad = ModelConfig::Parse("[]", "");
  EXPECT_THAT(Msg(bad.status()), HasSubstr("expected a JSON object"));
}

}  // namespace
}  // namespace loraserve
