// Test-only helpers for the PEFT adapter tests: a small Llama base config and
// AdapterBuilder, which writes an adapter directory (adapter_config.json as
// PEFT writes it + adapter_model.safetensors with seeded values) and remembers
// the values written so tests can compare what PeftAdapter loaded.
// Header-only; one builder per test.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "engine/adapters/peft_adapter.h"
#include "engine/model/model_config.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/engine/safetensors_writer.h"

namespace loraserve::testutil {

using PeftJson = nlohmann::ordered_json;

inline constexpr LoraModule kQ = LoraModule::kQ, kK = LoraModule::kK, kV = LoraModule::kV,
                            kO = LoraModule::kO, kGate = LoraModule::kGate, kUp = LoraModule::kUp,
                            kDown = LoraModule::kDown;

inline std::string Msg(const absl::Status& s) { return std::string(s.message()); }

// hidden 64, 4 heads of 16, 2 kv heads, intermediate 160:
// q 64->64, k/v 64->32, o 64->64, gate/up 64->160, down 160->64.
inline ModelConfig SmallBase(int layers = 2) {
  PeftJson j = {{"architectures", PeftJson::array({"LlamaForCausalLM"})},
                {"vocab_size", 100},
                {"hidden_size", 64},
                {"intermediate_size", 160},
                {"num_hidden_layers", layers},
                {"num_attention_heads", 4},
                {"num_key_value_heads", 2}};
  absl::StatusOr<ModelConfig> c = ModelConfig::Parse(j.dump(), "");
  EXPECT_TRUE(c.ok()) << c.status();
  return *c;
}

inline std::string TensorName(int layer, LoraModule m, char ab, const std::string& suffix = "") {
  return absl::StrCat("base_model.model.model.layers.", layer, ".",
                      std::string(LoraModuleParent(m)), ".", std::string(LoraModuleName(m)),
                      ".lora_", std::string(1, ab), suffix, ".weight");
}

struct Written {
  std::vector<float> a;  // [rank, in]
  std::vector<float> b;  // [out, rank]
};

// Builds one PEFT adapter directory: adapter_config.json + adapter_model.safetensors.
class AdapterBuilder {
 public:
  AdapterBuilder(const TempDir& tmp, const std::string& name, const ModelConfig& base)
      : dir_(tmp.Sub(name, /*mkdir=*/true)), base_(base) {
    config_ = PeftJson::parse(R"({
      "alpha_pattern": {}, "base_model_name_or_path": "tiny", "bias": "none",
      "fan_in_fan_out": false, "inference_mode": true, "init_lora_weights": true,
      "layer_replication": null, "layers_pattern": null, "layers_to_transform": null,
      "loftq_config": {}, "lora_alpha": 16, "lora_dropout": 0.05, "megatron_config": null,
      "megatron_core": "megatron.core", "modules_to_save": null, "peft_type": "LORA", "r": 8,
      "rank_pattern": {}, "revision": null, "target_modules": ["q_proj", "v_proj"],
      "task_type": "CAUSAL_LM", "use_dora": false, "use_rslora": false})");
  }

  PeftJson& config() { return config_; }
  const std::string& dir() const { return dir_; }

  // Adds lora_A [rank, in] and lora_B [out, rank] of `m` in `layer`, with
  // shapes from the base model; returns the values as stored (rounded to dtype).
  Written Add(int layer, LoraModule m, int rank, const std::string& dtype = "F32",
              const std::string& suffix = "") {
    const ProjShape s = ModuleShape(base_, m);
    const uint64_t seed = static_cast<uint64_t>(layer * 100 + static_cast<int>(m) * 10 + rank);
    Written w;
    w.a = writer_.Add(TensorName(layer, m, 'A', suffix), dtype, {rank, s.in},
                      TestValues(static_cast<size_t>(rank * s.in), seed));
    w.b = writer_.Add(TensorName(layer, m, 'B', suffix), dtype, {s.out, rank},
                      TestValues(static_cast<size_t>(rank * s.out), seed + 7));
    return w;
  }
  // Adds one tensor of any name and shape (values arbitrary).
  void AddTensor(const std::string& name, std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    writer_.Add(name, "F32", std::move(shape), TestValues(static_cast<size_t>(n), 99));
  }
  // Adds A and B of `m` for every layer at rank `rank`.
  void AddAllLayers(LoraModule m, int rank) {
    for (int l = 0; l < base_.num_hidden_layers; ++l) Add(l, m, rank);
  }

  std::string Write() const {
    WriteStringToFile(dir_ + "/adapter_config.json", config_.dump(2));
    writer_.WriteTo(dir_ + "/adapter_model.safetensors");
    return dir_;
  }

  absl::StatusOr<std::unique_ptr<PeftAdapter>> Load(const AdapterLoadOptions& o = {}) const {
    Write();
    return PeftAdapter::Load(dir_, base_, o);
  }

 private:
  std::string dir_;
  ModelConfig base_;
  PeftJson config_;
  SafetensorsWriter writer_;
};

// Checks a == A and b_t is B transposed (use inside ASSERT_NO_FATAL_FAILURE or a test).
inline void ExpectWeights(const LoraModuleWeights& w, const Written& src, int rank, int64_t in,
                          int64_t out) {
  ASSERT_EQ(w.rank, rank);
  ASSERT_EQ(w.in, in);
  ASSERT_EQ(w.out, out);
  ASSERT_EQ(w.a.size(), static_cast<size_t>(rank * in));
  ASSERT_EQ(w.b_t.size(), static_cast<size_t>(rank * out));
  EXPECT_EQ(w.a, src.a);
  for (int64_t j = 0; j < rank; ++j) {
    for (int64_t o = 0; o < out; ++o) {
      ASSERT_EQ(w.b_t[static_cast<size_t>(j * out + o)], src.b[static_cast<size_t>(o * rank + j)])
          << "j=" << j << " o=" << o;
    }
  }
}

}  // namespace loraserve::testutil
