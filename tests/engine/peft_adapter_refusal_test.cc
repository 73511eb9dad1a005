// Everything PeftAdapter::Load must refuse, and how it says so.
#include "engine/adapters/peft_adapter.h"

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "engine/model/safetensors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/engine/peft_test_util.h"
#include "tests/engine/safetensors_writer.h"

namespace loraserve {
namespace {

using ::loraserve::testutil::AdapterBuilder;
using ::loraserve::testutil::ExpectWeights;
using ::loraserve::testutil::kDown;
using ::loraserve::testutil::kGate;
using ::loraserve::testutil::kK;
using ::loraserve::testutil::kO;
using ::loraserve::testutil::kQ;
using ::loraserve::testutil::kUp;
using ::loraserve::testutil::kV;
using ::loraserve::testutil::Msg;
using ::loraserve::testutil::SmallBase;
using ::loraserve::testutil::TempDir;
using ::loraserve::testutil::TensorName;
using ::loraserve::testutil::WriteStringToFile;
using ::loraserve::testutil::Written;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Json = nlohmann::ordered_json;

struct RefusalCase {
  std::string name;
  std::function<void(AdapterBuilder&)> edit;  // starts from a valid q,v r=8 adapter
  absl::StatusCode code;
  std::string substr;
  bool add_valid_tensors = true;
};

TEST(PeftAdapterRefusal, NamesTheFieldOrTensor) {
  using C = absl::StatusCode;
  const std::vector<RefusalCase> cases = {
      {"use_dora", [](AdapterBuilder& b) { b.config()["use_dora"] = true; }, C::kInvalidArgument,
       "\"use_dora\": DoRA adapters are not supported"},
      {"modules_to_save",
       [](AdapterBuilder& b) { b.config()["modules_to_save"] = Json::array({"lm_head"}); },
       C::kInvalidArgument, "\"modules_to_save\": [\"lm_head\"] is not supported"},
      {"bias_all", [](AdapterBuilder& b) { b.config()["bias"] = "all"; }, C::kInvalidArgument,
       "\"bias\": \"all\" is not supported"},
      {"fan_in_fan_out", [](AdapterBuilder& b) { b.config()["fan_in_fan_out"] = true; },
       C::kInvalidArgument, "\"fan_in_fan_out\""},
      {"rank_above_max", [](AdapterBuilder& b) { b.config()["r"] = 128; }, C::kInvalidArgument,
       "rank 128 of model.layers.0.self_attn.q_proj (from \"r\" / \"rank_pattern\") exceeds the "
       "server's maximum LoRA rank 64"},
      {"rank_pattern_above_max",
       [](AdapterBuilder& b) {
         b.config()["rank_pattern"] = {{"layers.1.self_attn.v_proj", 65}};
       },
       C::kInvalidArgument, "rank 65 of model.layers.1.self_attn.v_proj"},
      {"r_zero", [](AdapterBuilder& b) { b.config()["r"] = 0; }, C::kInvalidArgument,
       "\"r\" must be a positive rank, got 0"},
      {"r_string", [](AdapterBuilder& b) { b.config()["r"] = "8"; }, C::kInvalidArgument,
       "\"r\" must be an integer, got string"},
      {"base_shape_mismatch",
       [](AdapterBuilder& b) {
         b.AddTensor(TensorName(0, kK, 'A'), {8, 65});
         b.AddTensor(TensorName(0, kK, 'B'), {32, 8});
         b.config()["target_modules"] = Json::array({"q_proj", "v_proj", "k_proj"});
       },
       C::kInvalidArgument,
       "shape [8, 65], expected [r, in] = [8, 64]: it does not match the base model's "
       "model.layers.0.self_attn.k_proj (in = 64)"},
      {"rank_mismatch",
       [](AdapterBuilder& b) {
         b.config()["rank_pattern"] = {{"layers.0.self_attn.q_proj", 4}};
       },
       C::kInvalidArgument,
       "rank 8 differs from the rank 4 that adapter_config.json gives "
       "model.layers.0.self_attn.q_proj"},
      {"b_out_mismatch",
       [](AdapterBuilder& b) {
         b.AddTensor(TensorName(0, kK, 'A'), {8, 64});
         b.AddTensor(TensorName(0, kK, 'B'), {64, 8});  // k is 64 -> 32
         b.config()["target_modules"] = Json::array({"q_proj", "v_proj", "k_proj"});
       },
       C::kInvalidArgument, "(out = 32)"},
      {"unknown_tensor",
       [](AdapterBuilder& b) {
         b.AddTensor("base_model.model.model.layers.0.self_attn.qq_proj.lora_A.weight", {8, 64});
       },
       C::kInvalidArgument,
       "tensor \"base_model.model.model.layers.0.self_attn.qq_proj.lora_A.weight\": unknown "
       "tensor name"},
      {"wrong_parent",
       [](AdapterBuilder& b) {
         b.AddTensor("base_model.model.model.layers.0.mlp.q_proj.lora_A.weight", {8, 64});
       },
       C::kInvalidArgument, "mlp.q_proj.lora_A.weight\": unknown tensor name"},
      {"other_adapter_name",
       [](AdapterBuilder& b) {
         b.AddTensor("base_model.model.model.layers.0.self_attn.k_proj.lora_A.other.weight",
                     {8, 64});
       },
       C::kInvalidArgument, "unknown tensor name"},
      {"a_without_b",
       [](AdapterBuilder& b) {
         b.config()["target_modules"] = Json::array({"q_proj", "v_proj", "k_proj"});
         b.AddTensor(TensorName(0, kK, 'A'), {8, 64});
         b.Add(1, kK, 8);
       },
       C::kInvalidArgument,
       "tensor \"base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight\" has no matching "
       "lora_B"},
      {"b_without_a",
       [](AdapterBuilder& b) {
         b.config()["target_modules"] = Json::array({"q_proj", "v_proj", "up_proj"});
         b.AddTensor(TensorName(0, kUp, 'B'), {160, 8});
         b.Add(1, kUp, 8);
       },
       C::kInvalidArgument,
       "tensor \"base_model.model.model.layers.0.mlp.up_proj.lora_B.weight\" has no matching "
       "lora_A"},
      {"lm_head_tensor",
       [](AdapterBuilder& b) {
         b.AddTensor("base_model.model.lm_head.lora_A.weight", {8, 64});
       },
       C::kInvalidArgument, "lm_head.lora_A.weight\": LoRA on lm_head is not supported"},
      {"embed_tensor",
       [](AdapterBuilder& b) {
         b.AddTensor("base_model.model.model.embed_tokens.lora_embedding_A", {8, 100});
       },
       C::kInvalidArgument, "LoRA on embed_tokens is not supported"},
      {"dora_magnitude",
       [](AdapterBuilder& b) {
         b.AddTensor("base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector",
                     {64});
       },
       C::kInvalidArgument, "DoRA (lora_magnitude_vector) is not supported"},
      {"lora_bias_tensor",
       [](AdapterBuilder& b) {
         b.AddTensor("base_model.model.model.layers.0.self_attn.q_proj.lora_B.bias", {64});
       },
       C::kInvalidArgument, "LoRA biases (lora_bias) are not supported"},
      {"layer_out_of_range",
       [](AdapterBuilder& b) {
         b.AddTensor(TensorName(2, kQ, 'A'), {8, 64});
       },
       C::kInvalidArgument, "layer 2 is out of range: the base model has 2 layers"},
      {"target_lm_head",
       [](AdapterBuilder& b) {
         b.config()["target_modules"] = Json::array({"q_proj", "lm_head"});
       },
       C::kInvalidArgument, "\"target_modules\": \"lm_head\": LoRA on embed_tokens / lm_head"},
      {"target_embed",
       [](AdapterBuilder& b) { b.config()["target_modules"] = Json::array({"embed_tokens"}); },
       C::kInvalidArgument, "\"embed_tokens\": LoRA on embed_tokens / lm_head"},
      {"target_regex_lm_head",
       [](AdapterBuilder& b) { b.config()["target_modules"] = ".*(q_proj|v_proj|lm_head)"; },
       C::kInvalidArgument, "selects lm_head"},
      {"unknown_target",
       [](AdapterBuilder& b) { b.config()["target_modules"] = Json::array({"c_attn"}); },
       C::kInvalidArgument, "unknown target module \"c_attn\""},
      {"bad_regex", [](AdapterBuilder& b) { b.config()["target_modules"] = "(q_proj"; },
       C::kInvalidArgument, "\"target_modules\": invalid regular expression \"(q_proj\""},
      {"untargeted_tensor", [](AdapterBuilder& b) { b.AddAllLayers(kK, 8); }, C::kInvalidArgument,
       "tensor \"base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight\": "
       "model.layers.0.self_attn.k_proj is not targeted"},
      {"targeted_but_missing",
       [](AdapterBuilder& b) {
         b.config()["target_modules"] = Json::array({"q_proj", "v_proj", "o_proj"});
         b.Add(0, kO, 8);
       },
       C::kInvalidArgument,
       "adapter_config.json targets model.layers.1.self_attn.o_proj but "
       "adapter_model.safetensors has no lora_A / lora_B tensors for it"},
      {"layers_pattern_mismatch",
       [](AdapterBuilder& b) {
         b.config()["layers_to_transform"] = Json::array({0});
         b.config()["layers_pattern"] = "h";
       },
       C::kInvalidArgument, "targets no projection of the base model"},
      {"peft_type_ia3", [](AdapterBuilder& b) { b.config()["peft_type"] = "IA3"; },
       C::kInvalidArgument, "\"peft_type\": \"IA3\" is not supported (only LORA)"},
      {"missing_peft_type", [](AdapterBuilder& b) { b.config().erase("peft_type"); },
       C::kInvalidArgument, "missing required field \"peft_type\""},
      {"missing_target_modules", [](AdapterBuilder& b) { b.config()["target_modules"] = nullptr; },
       C::kInvalidArgument, "missing \"target_modules\""},
      {"layer_replication",
       [](AdapterBuilder& b) { b.config()["layer_replication"] = Json::parse("[[0, 2]]"); },
       C::kInvalidArgument, "\"layer_replication\""},
  };
  for (const RefusalCase& c : cases) {
    SCOPED_TRACE(c.name);
    TempDir tmp;
    const ModelConfig base = SmallBase();
    AdapterBuilder b(tmp, "adapter_" + c.name, base);
    if (c.add_valid_tensors) {
      b.AddAllLayers(kQ, 8);
      b.AddAllLayers(kV, 8);
    }
    c.edit(b);
    absl::StatusOr<std::unique_ptr<PeftAdapter>> ad = b.Load();
    ASSERT_FALSE(ad.ok());
    EXPECT_EQ(ad.status().code(), c.code) << ad.status();
    EXPECT_THAT(Msg(ad.status()), HasSubstr(c.substr));
    EXPECT_THAT(Msg(ad.status()), HasSubstr("adapter \"" + b.dir() + "\""));
  }
}

TEST(PeftAdapterRefusal, FileLevel) {
  TempDir tmp;
  const ModelConfig base = SmallBase();
  const std::string dir = tmp.Sub("x", /*mkdir=*/true);
  // No adapter_config.json.
  absl::StatusOr<std::unique_ptr<PeftAdapter>> ad = PeftAdapter::Load(dir, base, {});
  EXPECT_EQ(ad.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(ad.status()), HasSubstr("adapter_config.json not found"));
  EXPECT_THAT(Msg(ad.status()), HasSubstr(dir));
  // Invalid JSON.
  WriteStringToFile(dir + "/adapter_config.json", "{\"r\": 8,");
  ad = PeftAdapter::Load(dir, base, {});
  EXPECT_EQ(ad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(ad.status()), HasSubstr("adapter_config.json: not valid JSON"));
  // Valid config, pickle weights only.
  AdapterBuilder b(tmp, "x", base);
  WriteStringToFile(dir + "/adapter_config.json", b.config().dump());
  WriteStringToFile(dir + "/adapter_model.bin", "PK\x03\x04");
  ad = PeftAdapter::Load(dir, base, {});
  EXPECT_EQ(ad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(ad.status()),
              HasSubstr("pickle .bin adapters are not supported; convert to safetensors"));
  // No weights at all.
  std::filesystem::remove(dir + "/adapter_model.bin");
  ad = PeftAdapter::Load(dir, base, {});
  EXPECT_EQ(ad.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(ad.status()), HasSubstr("adapter_model.safetensors not found"));
  // Corrupt safetensors.
  WriteStringToFile(dir + "/adapter_model.safetensors", "garbage");
  ad = PeftAdapter::Load(dir, base, {});
  EXPECT_EQ(ad.status().code(), absl::StatusCode::kDataLoss);
  // A server configured with a larger max rank accepts r=128.
  AdapterBuilder big(tmp, "big", base);
  big.config()["r"] = 128;
  big.AddAllLayers(kQ, 128);
  big.AddAllLayers(kV, 128);
  EXPECT_FALSE(big.Load().ok());
  AdapterLoadOptions opts;
  opts.max_rank = 128;
  ad = big.Load(opts);
  ASSERT_TRUE(ad.ok()) << ad.status();
  EXPECT_EQ((*ad)->max_rank(), 128);
}

}  // namespace
}  // namespace loraserve
