// A PEFT LoRA adapter loaded from disk into fp32 host memory, checked against
// the base model it will run on. The directory holds adapter_config.json
// (see adapter_config.h for the rules) and adapter_model.safetensors with
// tensors "base_model.model.model.layers.N.{self_attn,mlp}.X_proj.lora_{A,B}[.default].weight",
// A of shape [r, in] and B of shape [out, r].
//
// Load is all-or-nothing: every tensor of the file must be understood and
// belong to a (layer, projection) the config targets, every targeted pair
// must have both A and B with the base model's shapes at the resolved rank.
// Otherwise a Status names the adapter directory and the field or tensor; a
// server never silently serves a partial adapter or the base model instead.
//
// PeftAdapter owns the weights in "rank-rows" form, the layout the adapter
// pool and LoRA kernels use: A's r rows ([r, in]) and B transposed ([r, out]).
// Built by the adapter manager (admin LoadAdapter, startup), then immutable:
// any number of threads may read it. Implements memory/'s AdapterWeights view
// so the unified pool's adapter residency can pack it without knowing engine/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/adapters/adapter_config.h"
#include "engine/model/model_config.h"
#include "memory/adapter_weights.h"

namespace loraserve {

// The LoRA of one projection of one layer: y += scale * (x A^T) B^T.
struct LoraModuleWeights {
  int rank = 0;            // 0: this layer/projection has no LoRA (a and b_t empty)
  float scale = 0;         // lora_alpha / rank, or lora_alpha / sqrt(rank) with use_rslora
  int64_t in = 0;          // input features of the projection
  int64_t out = 0;         // output features of the projection
  std::vector<float> a;    // [rank, in] row-major: PEFT's lora_A as stored
  std::vector<float> b_t;  // [rank, out] row-major: PEFT's lora_B ([out, rank]) transposed

  bool empty() const { return rank == 0; }
};

class PeftAdapter final : public AdapterWeights {
 public:
  // Loads the adapter in `dir` for `base`. Errors (all naming `dir`):
  //   NotFound         no adapter_config.json, or no adapter_model.safetensors;
  //   InvalidArgument  a config field or tensor loraserve cannot serve exactly
  //                    (including pickle-only adapter_model.bin directories);
  //   DataLoss         a malformed safetensors file.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<PeftAdapter>> Load(
      const std::string& dir, const ModelConfig& base, const AdapterLoadOptions& options);

  PeftAdapter(const PeftAdapter&) = delete;
  PeftAdapter& operator=(const PeftAdapter&) = delete;

  // The LoRA of `m` in `layer` (rank 0 when untargeted). 0 <= layer < num_layers().
  const LoraModuleWeights& module(int layer, LoraModule m) const;
  // The base model's layer count.
  int num_layers() const override { return num_layers_; }
  // AdapterWeights: module(layer, kAllLoraModules[module]) as a view.
  ModuleWeightsView ModuleView(int layer, int module) const override;
  // Distinct non-zero ranks, ascending.
  std::vector<int> ranks() const;
  // The largest rank of any module (> 0 after a successful Load).
  int max_rank() const;
  // The projections with a LoRA in at least one layer, in LoraModule order.
  std::vector<LoraModule> target_modules() const;
  // The largest scale of any module.
  float max_scale() const;
  // Number of (layer, projection) pairs with a LoRA.
  int num_lora_modules() const;
  // fp32 bytes held: sum over modules of (a.size() + b_t.size()) * 4.
  size_t bytes() const override { return bytes_; }
  const std::string& path() const { return path_; }
  const LoraAdapterConfig& config() const { return config_; }

 private:
  PeftAdapter() = default;

  std::string path_;
  LoraAdapterConfig config_;
  int num_layers_ = 0;
  std::vector<LoraModuleWeights> modules_;  // [num_layers_ * kNumLoraModules], layer-major
  size_t bytes_ = 0;
};

}  // namespace loraserve
