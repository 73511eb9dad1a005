// ModelWeights: every tensor of a Llama-family base model, uploaded once into
// backend buffers in the backend's storage dtype, with q/k/v fused into one
// [q_out + 2 * kv_out, hidden] matrix and gate/up into one [2 * intermediate,
// hidden] matrix (so each fused projection is one GEMM). Shapes are checked
// against the ModelConfig and every error names the tensor.
// Built by LlamaModel at load; immutable afterwards: any thread may read it
// (the buffers are read by the backend ops).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model/model_config.h"
#include "engine/model/safetensors.h"
#include "kernels/backend.h"

namespace loraserve {

struct LayerWeights {
  DeviceBuffer qkv;            // [q_out + 2 * kv_out, hidden]: rows q, then k, then v
  DeviceBuffer qkv_bias;       // [q_out + 2 * kv_out], empty without qkv_bias
  DeviceBuffer o;              // [hidden, q_out]
  DeviceBuffer o_bias;         // [hidden], empty without o_bias
  DeviceBuffer gate_up;        // [2 * intermediate, hidden]: rows gate, then up
  DeviceBuffer gate_up_bias;   // [2 * intermediate], empty without mlp_bias
  DeviceBuffer down;           // [hidden, intermediate]
  DeviceBuffer down_bias;      // [hidden], empty without mlp_bias
  DeviceBuffer input_norm;     // [hidden]
  DeviceBuffer post_attn_norm; // [hidden]
};

class ModelWeights {
 public:
  struct Options {
    Backend* backend = nullptr;             // must outlive the weights
    const ModelConfig* config = nullptr;    // read during Create only
    const SafetensorsBundle* tensors = nullptr;  // read during Create only
  };
  // Uploads every tensor. InvalidArgument naming the tensor for a missing
  // tensor or a wrong shape; tensors the model does not use are logged.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ModelWeights>> Create(const Options& options);

  const LayerWeights& layer(int i) const { return layers_[static_cast<size_t>(i)]; }
  int num_layers() const { return static_cast<int>(layers_.size()); }
  const void* embed() const { return embed_.data(); }            // [vocab, hidden]
  const void* final_norm() const { return final_norm_.data(); }  // [hidden]
  // [vocab, hidden]: embed() when tie_word_embeddings.
  const void* lm_head() const { return lm_head_.empty() ? embed_.data() : lm_head_.data(); }
  // Bytes of backend memory held.
  size_t bytes() const { return bytes_; }

 private:
  ModelWeights() = default;

  std::vector<LayerWeights> layers_;
  DeviceBuffer embed_;
  DeviceBuffer final_norm_;
  DeviceBuffer lm_head_;  // empty when tied
  size_t bytes_ = 0;
};

}  // namespace loraserve
