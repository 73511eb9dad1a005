#include "engine/model/model_weights.h"

#include <cstring>
#include <set>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/status.h"
#include "common/strings.h"

namespace loraserve {

namespace {

// Models above this many bytes log progress per layer.
constexpr size_t kLogPerLayerBytes = size_t{1} << 30;

// One tensor of a (possibly fused) destination: `name` must have `shape`.
struct Part {
  std::string name;
  std::vector<int64_t> shape;
};

class Loader {
 public:
  Loader(Backend* backend, const SafetensorsBundle* tensors)
      : backend_(backend), tensors_(tensors) {}

  // Uploads `parts` one after the other (rows concatenated) into one buffer.
  absl::StatusOr<DeviceBuffer> Load(const std::vector<Part>& parts) {
    int64_t total = 0;
    std::vector<const TensorView*> views;
    for (const Part& p : parts) {
      ASSIGN_OR_RETURN(const TensorView* view, Find(p));
      views.push_back(view);
      total += view->numel();
    }
    ASSIGN_OR_RETURN(DeviceBuffer buf,
                     backend_->Allocate(static_cast<size_t>(total) * backend_->elt_size()));
    int64_t offset = 0;
    for (const TensorView* view : views) {
      RETURN_IF_ERROR(AnnotateStatus(Upload(*view, buf.bytes_at(offset * backend_->elt_size())),
                                     absl::StrCat("tensor \"", view->name, "\"")));
      offset += view->numel();
    }
    bytes_ += buf.size();
    return buf;
  }

  // Loads only when `present` (an optional bias); an empty buffer otherwise.
  absl::StatusOr<DeviceBuffer> LoadIf(bool present, const std::vector<Part>& parts) {
    if (!present) return DeviceBuffer();
    return Load(parts);
  }

  const std::set<std::string>& used() const { return used_; }
  size_t bytes() const { return bytes_; }

 private:
  absl::StatusOr<const TensorView*> Find(const Part& p) {
    const TensorView* view = tensors_->Find(p.name);
    if (view == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor \"", p.name, "\" is missing from the model"));
    }
    if (view->shape != p.shape) {
      return absl::InvalidArgumentError(absl::StrCat("tensor \"", p.name, "\" has shape ",
                                                     ShapeString(view->shape), ", config.json implies ",
                                                     ShapeString(p.shape)));
    }
    used_.insert(p.name);
    return view;
  }

  // The mapping may leave `data` unaligned for its dtype: stage through an
  // aligned host copy then.
  absl::Status Upload(const TensorView& view, void* dst) {
    const size_t elt = DTypeSize(view.dtype);
    if (reinterpret_cast<uintptr_t>(view.data) % elt == 0) {
      return backend_->UploadConverted(view.data, view.dtype, view.numel(), dst);
    }
    staging_.resize((view.nbytes + 7) / 8);
    std::memcpy(staging_.data(), view.data, view.nbytes);
    return backend_->UploadConverted(staging_.data(), view.dtype, view.numel(), dst);
  }

  Backend* backend_;
  const SafetensorsBundle* tensors_;
  std::set<std::string> used_;
  std::vector<uint64_t> staging_;
  size_t bytes_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ModelWeights>> ModelWeights::Create(const Options& options) {
  if (options.backend == nullptr || options.config == nullptr || options.tensors == nullptr) {
    return absl::InvalidArgumentError("ModelWeights: backend, config and tensors are required");
  }
  const ModelConfig& c = *options.config;
  const int64_t h = c.hidden_size;
  const int64_t q_out = int64_t{c.num_attention_heads} * c.head_dim;
  const int64_t kv_out = int64_t{c.num_key_value_heads} * c.head_dim;
  const int64_t inter = c.intermediate_size;
  if (h <= 0 || q_out <= 0 || kv_out <= 0 || inter <= 0 || c.vocab_size <= 0 ||
      c.num_hidden_layers <= 0) {
    return absl::InvalidArgumentError("ModelWeights: config has a non-positive dimension");
  }
  const bool per_layer_log = options.tensors->tensor_bytes() > kLogPerLayerBytes;

  Loader loader(options.backend, options.tensors);
  auto weights = std::unique_ptr<ModelWeights>(new ModelWeights());
  ASSIGN_OR_RETURN(weights->embed_, loader.Load({{"model.embed_tokens.weight", {c.vocab_size, h}}}));
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = absl::StrCat("model.layers.", l, ".");
    const std::string attn = p + "self_attn.";
    const std::string mlp = p + "mlp.";
    LayerWeights lw;
    ASSIGN_OR_RETURN(lw.qkv, loader.Load({{attn + "q_proj.weight", {q_out, h}},
                                          {attn + "k_proj.weight", {kv_out, h}},
                                          {attn + "v_proj.weight", {kv_out, h}}}));
    ASSIGN_OR_RETURN(lw.qkv_bias, loader.LoadIf(c.qkv_bias, {{attn + "q_proj.bias", {q_out}},
                                                             {attn + "k_proj.bias", {kv_out}},
                                                             {attn + "v_proj.bias", {kv_out}}}));
    ASSIGN_OR_RETURN(lw.o, loader.Load({{attn + "o_proj.weight", {h, q_out}}}));
    ASSIGN_OR_RETURN(lw.o_bias, loader.LoadIf(c.o_bias, {{attn + "o_proj.bias", {h}}}));
    ASSIGN_OR_RETURN(lw.gate_up, loader.Load({{mlp + "gate_proj.weight", {inter, h}},
                                              {mlp + "up_proj.weight", {inter, h}}}));
    ASSIGN_OR_RETURN(lw.gate_up_bias, loader.LoadIf(c.mlp_bias, {{mlp + "gate_proj.bias", {inter}},
                                                                 {mlp + "up_proj.bias", {inter}}}));
    ASSIGN_OR_RETURN(lw.down, loader.Load({{mlp + "down_proj.weight", {h, inter}}}));
    ASSIGN_OR_RETURN(lw.down_bias, loader.LoadIf(c.mlp_bias, {{mlp + "down_proj.bias", {h}}}));
    ASSIGN_OR_RETURN(lw.input_norm, loader.Load({{p + "input_layernorm.weight", {h}}}));
    ASSIGN_OR_RETURN(lw.post_attn_norm, loader.Load({{p + "post_attention_layernorm.weight", {h}}}));
    weights->layers_.push_back(std::move(lw));
    if (per_layer_log) {
      LS_LOG(INFO) << "loaded layer " << (l + 1) << "/" << c.num_hidden_layers << " ("
                   << (loader.bytes() >> 20) << " MiB so far)";
    }
  }
  ASSIGN_OR_RETURN(weights->final_norm_, loader.Load({{"model.norm.weight", {h}}}));
  if (!c.tie_word_embeddings) {
    ASSIGN_OR_RETURN(weights->lm_head_, loader.Load({{"lm_head.weight", {c.vocab_size, h}}}));
  }
  weights->bytes_ = loader.bytes();

  // Tensors the forward pass does not read (e.g. lm_head.weight of a tied
  // model, rotary_emb.inv_freq of old checkpoints): Hugging Face ignores them
  // too, so they are reported, not refused.
  std::vector<std::string> unused;
  for (const std::string& name : options.tensors->names()) {
    if (loader.used().count(name) == 0) unused.push_back(name);
  }
  if (!unused.empty()) {
    if (unused.size() > 5) unused.resize(5);
    LS_LOG(WARNING) << "model weights: " << (options.tensors->names().size() - loader.used().size())
                    << " tensor(s) not used by the forward pass, e.g. "
                    << absl::StrJoin(unused, ", ");
  }
  LS_LOG(INFO) << "model weights: " << c.num_hidden_layers << " layers, "
               << (weights->bytes_ >> 20) << " MiB in " << DTypeName(options.backend->dtype());
  return weights;
}

}  // namespace loraserve
