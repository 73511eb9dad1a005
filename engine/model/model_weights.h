// ModelWeights: every tensor of a Llama-family base model, held in backend
// buffers in the backend's storage dtype, with q/k/v fused into one
// [q_out + 2 * kv_out, hidden] matrix and gate/up into one [2 * intermediate,
// hidden] matrix (so each fused projection is one GEMM). Either uploaded from
// safetensors (Create: shapes are checked against the ModelConfig and every
// error names the tensor) or generated on the backend (CreateRandom, for
// benchmarking large shapes without weight files). The layout both share is
// in model_weights.cc, the safetensors loader in model_weights_safetensors.cc,
// the random fill in model_weights_random.cc.
// Built by LlamaModel at load; immutable afterwards: any thread may read it
// (the buffers are read by the backend ops).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model/model_config.h"
#include "engine/model/safetensors.h"
#include "kernels/backend.h"

namespace loraserve {

class WeightSource;  // engine/model/model_weights_source.h

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

  struct RandomOptions {
    Backend* backend = nullptr;           // must outlive the weights
    const ModelConfig* config = nullptr;  // read during CreateRandom only
    uint64_t seed = 0;
    // Matrices, the embedding table and lm_head are uniform in [-a, a] with
    // a = sqrt(3) * init_std (standard deviation init_std; 0.02 is Hugging
    // Face's initializer_range); RMSNorm weights are 1, biases 0.
    float init_std = 0.02f;
  };
  // The tensors, shapes and fusion of Create, each generated on the backend
  // by Backend::FillRandom with its own seed CounterHash(seed, k)
  // (kernels/counter_random.h), k = the tensor's index in Hugging Face's
  // order as Create reads them (embed_tokens, then per layer q, k, v
  // [+ biases], o [+ bias], gate, up [+ biases], down [+ bias], the two
  // norms; then the final norm and lm_head unless tie_word_embeddings).
  // Returns after a Synchronize; logs the bytes and the time taken.
  // InvalidArgument for a missing backend / config or a bad init_std;
  // ResourceExhausted naming the tensor when the backend's memory runs out.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ModelWeights>> CreateRandom(
      const RandomOptions& options);

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

  // Allocates every buffer of the model `config` describes (shapes and
  // fusion above) on `backend` and has `source` fill it; shared by Create and
  // CreateRandom (model_weights.cc).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ModelWeights>> Build(
      Backend* backend, const ModelConfig& config, WeightSource& source);

  std::vector<LayerWeights> layers_;
  DeviceBuffer embed_;
  DeviceBuffer final_norm_;
  DeviceBuffer lm_head_;  // empty when tied
  size_t bytes_ = 0;
};

}  // namespace loraserve
