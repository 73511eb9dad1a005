// The built-in model shapes of the synthetic-model generator: the one table
// of benchmark architectures (Llama-2-7B, Llama-2-13B as S-LoRA benchmarks
// them, a tiny shape for tests, and SmolLM-135M for CPU forward benchmarks),
// rendered as a Hugging Face config.json.
//
// Called by loraserve-make-model, bench/forward_bench and the bench_tools tests. Pure data and
// functions, any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace loraserve::bench {

struct ModelShape {
  std::string_view name;  // "llama-7b", "llama-13b", "tiny", "smollm-135m"
  int64_t hidden_size;
  int64_t intermediate_size;
  int num_hidden_layers;
  int num_attention_heads;
  int num_key_value_heads;
  int64_t vocab_size;
  int64_t max_position_embeddings;
  double rope_theta;
  double rms_norm_eps;
  bool tie_word_embeddings;  // lm_head shares embed_tokens' weight (no lm_head.weight)
};

// Every built-in shape, in table order.
const std::vector<ModelShape>& ModelShapes();
// "llama-7b, llama-13b, tiny, smollm-135m".
std::string ModelShapeNames();
// The shape called `name`; InvalidArgument listing the known names otherwise.
[[nodiscard]] absl::StatusOr<ModelShape> FindModelShape(std::string_view name);

// A LlamaForCausalLM config.json for `shape` (bf16, the shape's
// tie_word_embeddings, bos_token_id 1, eos_token_id 2 as Llama 2 has them).
nlohmann::ordered_json ModelShapeConfig(const ModelShape& shape);

}  // namespace loraserve::bench
