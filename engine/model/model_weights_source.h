// WeightSource: what fills the buffers of ModelWeights::Build, the layout
// shared by ModelWeights::Create (a safetensors loader,
// model_weights_safetensors.cc) and ModelWeights::CreateRandom (a
// Backend::FillRandom generator, model_weights_random.cc). Build allocates
// each buffer, then calls Fill once per buffer, in a fixed order; sources
// count on that order. Private to the ModelWeights files. Not thread-safe:
// one Build at a time per source.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace loraserve {

// One Hugging Face tensor of a ModelWeights buffer; a fused buffer has
// several, their rows concatenated in order.
struct WeightPart {
  std::string name;            // e.g. "model.layers.0.self_attn.q_proj.weight"
  std::vector<int64_t> shape;  // what config.json implies
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

enum class WeightRole : uint8_t {
  kMatrix,  // projection weights, the embedding table, lm_head
  kNorm,    // RMSNorm weights
  kBias,    // projection biases
};

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  // Fills dst ([sum of the parts' numel], the backend's storage dtype) with
  // `parts`, one after the other. Errors name the tensor.
  virtual absl::Status Fill(WeightRole role, const std::vector<WeightPart>& parts,
                            void* dst /* [sum numel] storage dtype */) = 0;
  // After each layer's buffers: `done` of `total` layers, `bytes` so far.
  virtual void LayerDone(int /*done*/, int /*total*/, size_t /*bytes*/) {}
};

}  // namespace loraserve
