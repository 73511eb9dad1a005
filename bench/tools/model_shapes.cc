#include "bench/tools/model_shapes.h"

#include "absl/strings/str_cat.h"
#include "common/strings.h"

namespace loraserve::bench {

const std::vector<ModelShape>& ModelShapes() {
  // name, hidden, intermediate, layers, heads, kv heads, vocab, max position, rope theta,
  // rms eps, tied embeddings. New shapes go last: tests match the listed names' prefix.
  static const auto* shapes = new std::vector<ModelShape>{
      {"llama-7b", 4096, 11008, 32, 32, 32, 32000, 4096, 10000.0, 1e-5, false},
      {"llama-13b", 5120, 13824, 40, 40, 40, 32000, 4096, 10000.0, 1e-5, false},
      {"tiny", 64, 160, 2, 4, 2, 512, 512, 10000.0, 1e-5, false},
      // SmolLM-135M (HuggingFaceTB/SmolLM-135M): head_dim 576 / 9 = 64.
      {"smollm-135m", 576, 1536, 30, 9, 3, 49152, 2048, 10000.0, 1e-5, true},
  };
  return *shapes;
}

std::string ModelShapeNames() {
  std::string names;
  for (const ModelShape& s : ModelShapes())
    absl::StrAppend(&names, names.empty() ? "" : ", ", Sv(s.name));
  return names;
}

absl::StatusOr<ModelShape> FindModelShape(std::string_view name) {
  for (const ModelShape& s : ModelShapes()) {
    if (s.name == name) return s;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown model shape \"", Sv(name), "\" (known: ", ModelShapeNames(), ")"));
}

nlohmann::ordered_json ModelShapeConfig(const ModelShape& s) {
  nlohmann::ordered_json c;
  c["architectures"] = {"LlamaForCausalLM"};
  c["model_type"] = "llama";
  c["hidden_size"] = s.hidden_size;
  c["intermediate_size"] = s.intermediate_size;
  c["num_hidden_layers"] = s.num_hidden_layers;
  c["num_attention_heads"] = s.num_attention_heads;
  c["num_key_value_heads"] = s.num_key_value_heads;
  c["vocab_size"] = s.vocab_size;
  c["max_position_embeddings"] = s.max_position_embeddings;
  c["rope_theta"] = s.rope_theta;
  c["rms_norm_eps"] = s.rms_norm_eps;
  c["hidden_act"] = "silu";
  c["attention_bias"] = false;
  c["mlp_bias"] = false;
  c["tie_word_embeddings"] = s.tie_word_embeddings;
  c["bos_token_id"] = 1;
  c["eos_token_id"] = 2;
  c["initializer_range"] = 0.02;
  c["torch_dtype"] = "bfloat16";
  c["use_cache"] = true;
  return c;
}

}  // namespace loraserve::bench
