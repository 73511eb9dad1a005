// The base model's architecture, parsed from a Hugging Face `config.json`
// (+ optional `generation_config.json`) for the Llama family loraserve serves:
// LlamaForCausalLM (Llama 2/3, SmolLM), MistralForCausalLM, Qwen2ForCausalLM.
// Anything the forward pass cannot reproduce exactly (another architecture, an
// activation other than SiLU, an unknown RoPE scaling, a quantized checkpoint)
// is refused by name at load time.
//
// Also the names and shapes of the seven projections a LoRA adapter may
// target. A ModelConfig is a plain value: built once by the model loader, read
// by the weights loader, the forward pass, the KV cache and the PEFT loader.
// Any thread may read it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace loraserve {

enum class RopeScalingType : uint8_t {
  kNone,    // plain RoPE with rope_theta
  kLinear,  // positions divided by factor (inv_freq / factor)
  kLlama3,  // Llama 3.1 frequency-dependent scaling
};

struct RopeScaling {
  RopeScalingType type = RopeScalingType::kNone;
  double factor = 1.0;                           // kLinear, kLlama3
  double low_freq_factor = 1.0;                  // kLlama3
  double high_freq_factor = 4.0;                 // kLlama3 (> low_freq_factor)
  int64_t original_max_position_embeddings = 0;  // kLlama3
};

struct ModelConfig {
  std::string architecture;  // "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"
  std::string model_type;    // "llama", "mistral", "qwen2" (as written; may be empty)

  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int num_hidden_layers = 0;
  int num_attention_heads = 0;
  int num_key_value_heads = 0;  // defaults to num_attention_heads; divides it
  int64_t head_dim = 0;         // defaults to hidden_size / num_attention_heads; even

  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;

  bool qkv_bias = false;             // q/k/v projections have a bias (Qwen2; Llama attention_bias)
  bool o_bias = false;               // o_proj has a bias (Llama attention_bias)
  bool mlp_bias = false;             // gate/up/down have a bias (Llama mlp_bias)
  bool tie_word_embeddings = false;  // lm_head shares embed_tokens' weight

  int64_t max_position_embeddings = 0;
  // Sliding-window attention size: Mistral's "sliding_window", or Qwen2's when
  // "use_sliding_window" is true. loraserve implements full attention only, so
  // it serves such a model exactly by never letting a sequence exceed the
  // window (inside the window, sliding and full attention are the same): see
  // max_context().
  std::optional<int64_t> sliding_window;

  std::string hidden_act = "silu";  // always "silu" once loaded
  std::string torch_dtype;          // "bfloat16", "float16", "float32" or "" if unstated

  std::optional<int32_t> bos_token_id;
  // Union of generation_config.json's and config.json's eos ids, generation
  // config's first, no duplicates. May be empty (then only max tokens stops).
  std::vector<int32_t> eos_token_ids;
  std::optional<int32_t> pad_token_id;

  // The longest sequence (prompt + generated) this server will run:
  // min(max_position_embeddings, sliding_window) when a window is set.
  int64_t max_context() const;

  // Reads `model_dir`/config.json and, if present, generation_config.json.
  // Errors name the file and the field.
  [[nodiscard]] static absl::StatusOr<ModelConfig> Load(const std::string& model_dir);

  // Parses the two files' contents; `generation_config_json` may be empty
  // (no generation config). InvalidArgument naming the field on any problem.
  [[nodiscard]] static absl::StatusOr<ModelConfig> Parse(std::string_view config_json,
                                                         std::string_view generation_config_json);
};

// The projections of a decoder layer a LoRA adapter may target, in the order
// kernels and adapter storage use.
enum class LoraModule : uint8_t { kQ, kK, kV, kO, kGate, kUp, kDown };
inline constexpr int kNumLoraModules = 7;
inline constexpr LoraModule kAllLoraModules[kNumLoraModules] = {
    LoraModule::kQ,    LoraModule::kK,  LoraModule::kV,   LoraModule::kO,
    LoraModule::kGate, LoraModule::kUp, LoraModule::kDown};

// "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj".
std::string_view LoraModuleName(LoraModule m);
// "self_attn" for q/k/v/o, "mlp" for gate/up/down: the parent module's name.
std::string_view LoraModuleParent(LoraModule m);
// The inverse of LoraModuleName; nullopt for any other string.
std::optional<LoraModule> ParseLoraModule(std::string_view name);

// A projection y = x W^T with W of shape [out, in].
struct ProjShape {
  int64_t in = 0;
  int64_t out = 0;
};
// q: hidden -> heads*head_dim; k, v: hidden -> kv_heads*head_dim;
// o: heads*head_dim -> hidden; gate, up: hidden -> intermediate;
// down: intermediate -> hidden.
ProjShape ModuleShape(const ModelConfig& config, LoraModule m);

}  // namespace loraserve
