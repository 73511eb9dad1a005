// ModelWeights::Build: the tensors of a Llama-family model, their shapes and
// their fusion into the buffers of LayerWeights, shared by Create (from
// safetensors, model_weights_safetensors.cc) and CreateRandom (generated,
// model_weights_random.cc).
#include "engine/model/model_weights.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "engine/model/model_weights_source.h"

namespace loraserve {

absl::StatusOr<std::unique_ptr<ModelWeights>> ModelWeights::Build(Backend* backend,
                                                                  const ModelConfig& c,
                                                                  WeightSource& source) {
  const int64_t h = c.hidden_size;
  const int64_t q_out = int64_t{c.num_attention_heads} * c.head_dim;
  const int64_t kv_out = int64_t{c.num_key_value_heads} * c.head_dim;
  const int64_t inter = c.intermediate_size;
  if (h <= 0 || q_out <= 0 || kv_out <= 0 || inter <= 0 || c.vocab_size <= 0 ||
      c.num_hidden_layers <= 0) {
    return absl::InvalidArgumentError("ModelWeights: config has a non-positive dimension");
  }
  auto weights = std::unique_ptr<ModelWeights>(new ModelWeights());
  // One buffer holding `parts` (rows concatenated), filled by the source.
  auto make = [&](WeightRole role, const std::vector<WeightPart>& parts)
      -> absl::StatusOr<DeviceBuffer> {
    int64_t numel = 0;
    for (const WeightPart& p : parts) numel += p.numel();
    absl::StatusOr<DeviceBuffer> buf =
        backend->Allocate(static_cast<size_t>(numel) * backend->elt_size());
    if (!buf.ok()) {
      return AnnotateStatus(buf.status(), absl::StrCat("allocating \"", parts.front().name, "\""));
    }
    RETURN_IF_ERROR(source.Fill(role, parts, buf->data()));
    weights->bytes_ += buf->size();
    return buf;
  };
  // An optional bias: an empty buffer when absent.
  auto make_if = [&](bool present, const std::vector<WeightPart>& parts)
      -> absl::StatusOr<DeviceBuffer> {
    if (!present) return DeviceBuffer();
    return make(WeightRole::kBias, parts);
  };
  constexpr WeightRole kMatrix = WeightRole::kMatrix;
  constexpr WeightRole kNorm = WeightRole::kNorm;

  ASSIGN_OR_RETURN(weights->embed_, make(kMatrix, {{"model.embed_tokens.weight", {c.vocab_size, h}}}));
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = absl::StrCat("model.layers.", l, ".");
    const std::string attn = p + "self_attn.";
    const std::string mlp = p + "mlp.";
    LayerWeights lw;
    ASSIGN_OR_RETURN(lw.qkv, make(kMatrix, {{attn + "q_proj.weight", {q_out, h}},
                                            {attn + "k_proj.weight", {kv_out, h}},
                                            {attn + "v_proj.weight", {kv_out, h}}}));
    ASSIGN_OR_RETURN(lw.qkv_bias, make_if(c.qkv_bias, {{attn + "q_proj.bias", {q_out}},
                                                       {attn + "k_proj.bias", {kv_out}},
                                                       {attn + "v_proj.bias", {kv_out}}}));
    ASSIGN_OR_RETURN(lw.o, make(kMatrix, {{attn + "o_proj.weight", {h, q_out}}}));
    ASSIGN_OR_RETURN(lw.o_bias, make_if(c.o_bias, {{attn + "o_proj.bias", {h}}}));
    ASSIGN_OR_RETURN(lw.gate_up, make(kMatrix, {{mlp + "gate_proj.weight", {inter, h}},
                                                {mlp + "up_proj.weight", {inter, h}}}));
    ASSIGN_OR_RETURN(lw.gate_up_bias, make_if(c.mlp_bias, {{mlp + "gate_proj.bias", {inter}},
                                                           {mlp + "up_proj.bias", {inter}}}));
    ASSIGN_OR_RETURN(lw.down, make(kMatrix, {{mlp + "down_proj.weight", {h, inter}}}));
    ASSIGN_OR_RETURN(lw.down_bias, make_if(c.mlp_bias, {{mlp + "down_proj.bias", {h}}}));
    ASSIGN_OR_RETURN(lw.input_norm, make(kNorm, {{p + "input_layernorm.weight", {h}}}));
    ASSIGN_OR_RETURN(lw.post_attn_norm,
                     make(kNorm, {{p + "post_attention_layernorm.weight", {h}}}));
    weights->layers_.push_back(std::move(lw));
    source.LayerDone(l + 1, c.num_hidden_layers, weights->bytes_);
  }
  ASSIGN_OR_RETURN(weights->final_norm_, make(kNorm, {{"model.norm.weight", {h}}}));
  if (!c.tie_word_embeddings) {
    ASSIGN_OR_RETURN(weights->lm_head_, make(kMatrix, {{"lm_head.weight", {c.vocab_size, h}}}));
  }
  return weights;
}

}  // namespace loraserve
