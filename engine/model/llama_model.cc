#include "engine/model/llama_model.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status.h"
#include "engine/model/llama_model_workspace.h"
#include "engine/model/safetensors.h"
#include "kernels/rope_frequencies.h"

namespace loraserve {

namespace {

RopeScalingParams ToKernelRope(const RopeScaling& s) {
  RopeScalingParams p;
  switch (s.type) {
    case RopeScalingType::kNone:
      p.type = RopeScalingParams::Type::kNone;
      break;
    case RopeScalingType::kLinear:
      p.type = RopeScalingParams::Type::kLinear;
      break;
    case RopeScalingType::kLlama3:
      p.type = RopeScalingParams::Type::kLlama3;
      break;
  }
  p.factor = s.factor;
  p.low_freq_factor = s.low_freq_factor;
  p.high_freq_factor = s.high_freq_factor;
  p.original_max_position_embeddings = static_cast<double>(s.original_max_position_embeddings);
  return p;
}

// `p` advanced by `elements` of the storage dtype.
void* At(void* p, int64_t elements, size_t elt) {
  return static_cast<uint8_t*>(p) + elements * static_cast<int64_t>(elt);
}

}  // namespace

LlamaModel::~LlamaModel() = default;

absl::StatusOr<std::unique_ptr<LlamaModel>> LlamaModel::Create(const Options& options) {
  if (options.backend == nullptr) return absl::InvalidArgumentError("LlamaModel: backend is null");
  auto model = std::unique_ptr<LlamaModel>(new LlamaModel());
  model->backend_ = options.backend;
  ASSIGN_OR_RETURN(model->config_, ModelConfig::Load(options.model_dir));
  const ModelConfig& c = model->config_;
  if (c.head_dim > kMaxHeadDim) {
    return absl::InvalidArgumentError(
        absl::StrCat("LlamaModel: head_dim ", c.head_dim, " exceeds the supported ", kMaxHeadDim));
  }
  if (options.random_weights_seed.has_value()) {
    ModelWeights::RandomOptions ro;
    ro.backend = options.backend;
    ro.config = &c;
    ro.seed = *options.random_weights_seed;
    ASSIGN_OR_RETURN(model->weights_, ModelWeights::CreateRandom(ro));
  } else {
    ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsBundle> tensors,
                     SafetensorsBundle::OpenDir(options.model_dir));
    ModelWeights::Options wo;
    wo.backend = options.backend;
    wo.config = &c;
    wo.tensors = tensors.get();
    ASSIGN_OR_RETURN(model->weights_, ModelWeights::Create(wo));
  }

  ASSIGN_OR_RETURN(std::vector<float> inv_freq,
                   ComputeRopeInvFreq(static_cast<int>(c.head_dim), c.rope_theta,
                                      ToKernelRope(c.rope_scaling)));
  ASSIGN_OR_RETURN(model->inv_freq_, options.backend->Allocate(inv_freq.size() * sizeof(float)));
  RETURN_IF_ERROR(options.backend->CopyToDevice(model->inv_freq_.data(), inv_freq.data(),
                                                inv_freq.size() * sizeof(float), {}));
  RETURN_IF_ERROR(options.backend->Synchronize({}));

  AdapterRowCache::Options co;
  co.backend = options.backend;
  co.config = c;
  co.max_bytes = options.adapter_cache_bytes;
  ASSIGN_OR_RETURN(model->adapter_cache_, AdapterRowCache::Create(co));
  model->lora_batch_ = std::make_unique<LoraBatch>(options.backend, c.num_hidden_layers);
  for (int g = 0; g < kNumLoraGroups; ++g) {
    model->lora_columns_[g] = LoraGroupColumns(c, static_cast<LoraGroup>(g));
  }
  model->ws_ = std::make_unique<Workspace>();
  const bool can_graph = options.backend->SupportsGraphs();
  switch (options.graphs) {
    case GraphMode::kAuto:
      model->graphs_enabled_ = can_graph && options.backend->kind() == BackendKind::kCuda;
      break;
    case GraphMode::kOn:
      model->graphs_enabled_ = can_graph;
      break;
    case GraphMode::kOff:
      model->graphs_enabled_ = false;
      break;
  }
  model->max_graph_batch_ = std::max<int32_t>(0, options.max_graph_batch);
  LS_LOG(INFO) << "model " << c.architecture << ": " << c.num_hidden_layers << " layers, hidden "
               << c.hidden_size << ", heads " << c.num_attention_heads << "/"
               << c.num_key_value_heads << " x " << c.head_dim << ", vocab " << c.vocab_size
               << ", on " << options.backend->name()
               << (model->graphs_enabled_
                       ? absl::StrCat(", decode graphs up to batch ", model->max_graph_batch_)
                       : std::string(", no decode graphs"));
  return model;
}

absl::Status LlamaModel::GrowActivations(int64_t t, int64_t r, int64_t max_rank) {
  Workspace& w = *ws_;
  Backend& b = *backend_;
  const ModelConfig& c = config_;
  const size_t elt = b.elt_size();
  const int64_t hidden = c.hidden_size;
  const int64_t q_out = int64_t{c.num_attention_heads} * c.head_dim;
  const int64_t qkv_out = q_out + 2 * int64_t{c.num_key_value_heads} * c.head_dim;
  RETURN_IF_ERROR(GrowBuffer(b, w.x, t * hidden * elt));
  RETURN_IF_ERROR(GrowBuffer(b, w.h, t * hidden * elt));
  RETURN_IF_ERROR(GrowBuffer(b, w.qkv, t * qkv_out * elt));
  RETURN_IF_ERROR(GrowBuffer(b, w.attn, t * q_out * elt));
  RETURN_IF_ERROR(GrowBuffer(b, w.proj, t * hidden * elt));
  RETURN_IF_ERROR(GrowBuffer(b, w.gate_up, t * 2 * c.intermediate_size * elt));
  RETURN_IF_ERROR(GrowBuffer(b, w.act, t * c.intermediate_size * elt));
  RETURN_IF_ERROR(GrowBuffer(b, w.lora_v, std::max<int64_t>(1, t * kMaxLoraSlices * max_rank) * 4));
  RETURN_IF_ERROR(GrowBuffer(b, w.sel, std::max<int64_t>(1, r) * hidden * elt));
  RETURN_IF_ERROR(GrowBuffer(b, w.logits, std::max<int64_t>(1, r) * c.vocab_size * 4));
  RETURN_IF_ERROR(GrowBuffer(b, w.d_argmax, std::max<int64_t>(1, r) * 4));
  const int64_t k = std::min<int64_t>(kMaxSampleCandidates, c.vocab_size);
  RETURN_IF_ERROR(GrowBuffer(b, w.d_temperature, std::max<int64_t>(1, r) * 4));
  RETURN_IF_ERROR(GrowBuffer(b, w.d_cand_ids, std::max<int64_t>(1, r) * k * 4));
  RETURN_IF_ERROR(GrowBuffer(b, w.d_cand_values, std::max<int64_t>(1, r) * k * 4));
  RETURN_IF_ERROR(GrowBuffer(b, w.d_cand_totals, std::max<int64_t>(1, r) * 8));
  // Step metadata sized by tokens and rows (UploadPlan grows the rest), so a
  // reservation keeps these addresses, which decode graphs hold, in place.
  RETURN_IF_ERROR(GrowBuffer(b, w.d_tokens, std::max<int64_t>(2, t) * 4));
  RETURN_IF_ERROR(GrowBuffer(b, w.d_positions, std::max<int64_t>(2, t) * 4));
  RETURN_IF_ERROR(GrowBuffer(b, w.d_slots, std::max<int64_t>(1, t) * 8));
  RETURN_IF_ERROR(GrowBuffer(b, w.d_logit_rows, std::max<int64_t>(2, r) * 4));
  return absl::OkStatus();
}

absl::Status LlamaModel::ReserveActivations(int64_t max_tokens, int64_t max_logit_rows,
                                            int32_t max_rank) {
  if (max_tokens <= 0 || max_logit_rows <= 0 || max_rank < 0 || max_rank > kMaxLoraRank) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ReserveActivations: max_tokens=", max_tokens, ", max_logit_rows=", max_logit_rows,
        ", max_rank=", max_rank, " (need tokens, rows > 0 and rank in [0, ", kMaxLoraRank, "])"));
  }
  return GrowActivations(max_tokens, max_logit_rows, max_rank);
}

absl::Status LlamaModel::Forward(const ForwardBatch& batch, const KvCacheView& kv,
                                 ForwardOutput* out) {
  if (out == nullptr) return absl::InvalidArgumentError("Forward: out is null");
  ws_->logits_rows = 0;  // the last step's logits are gone from here on
  RETURN_IF_ERROR(Plan(batch, kv, out));
  Workspace& w = *ws_;
  Backend& b = *backend_;
  const ModelConfig& c = config_;
  // Rows the caller gets; a graph step computes padding rows after them.
  const int64_t real_rows = static_cast<int64_t>(w.logit_rows.size());
  const bool graph = graphs_enabled_ && IsDecodeOnly(batch.sequences) &&
                     static_cast<int64_t>(batch.sequences.size()) <= max_graph_batch_;
  GraphKey key;
  LoraPadding pad;
  if (graph) {
    key = GraphKeyFor();
    PadPlanForGraph(key, kv.layout.block_tokens);
    pad.num_segments = key.batch;
  }
  if (batch.lora != nullptr) {
    RETURN_IF_ERROR(lora_batch_->Build(*batch.lora, w.seg_keys, w.seg_starts, pad));
  } else {
    RETURN_IF_ERROR(adapter_cache_->Prepare(w.adapters));
    RETURN_IF_ERROR(lora_batch_->Build(*adapter_cache_, w.seg_adapters, w.seg_starts, pad));
  }
  key.rank = lora_batch_->max_rank();
  const int64_t t = static_cast<int64_t>(w.tokens.size());
  const int64_t r = static_cast<int64_t>(w.logit_rows.size());

  RETURN_IF_ERROR(GrowActivations(t, r, lora_batch_->max_rank()));
  AttentionBatch attn;
  RETURN_IF_ERROR(UploadPlan(&attn));

  out->vocab = c.vocab_size;
  out->argmax.assign(static_cast<size_t>(real_rows), 0);
  // The logits come to the host unless only argmaxes and candidates are wanted.
  bool host_logits = false;
  bool device_argmax = false;
  bool device_candidates = false;
  for (const SequenceStep& s : batch.sequences) {
    const bool one_row = s.compute_logits && !s.all_logits;
    host_logits |= s.all_logits || (one_row && !s.greedy_on_device && !s.candidates_on_device);
    device_argmax |= one_row && s.greedy_on_device;
    device_candidates |= one_row && s.candidates_on_device;
  }
  out->logits.resize(host_logits ? static_cast<size_t>(real_rows * c.vocab_size) : 0);
  if (graph) {
    RETURN_IF_ERROR(RunGraph(key, t, r, attn, kv));  // always computes the argmaxes
  } else {
    ++w.graph_stats.eager_steps;
    RETURN_IF_ERROR(Compute(t, r, attn, kv, device_argmax));  // only greedy_on_device rows read it
  }
  // Outside the graph: which rows want candidates changes from step to step.
  if (device_candidates) {
    RETURN_IF_ERROR(ComputeCandidates(batch, real_rows, out));
  } else {
    out->num_candidates = 0;
    out->candidate_ids.clear();
    out->candidate_values.clear();
    out->candidate_totals.clear();
  }
  if (real_rows > 0 && device_argmax) {
    RETURN_IF_ERROR(b.CopyToHost(out->argmax.data(), w.d_argmax.data(),
                                 out->argmax.size() * sizeof(int32_t), {}));
  }
  if (real_rows > 0 && host_logits) {
    RETURN_IF_ERROR(b.CopyToHost(out->logits.data(), w.logits.data(),
                                 out->logits.size() * sizeof(float), {}));
  }
  RETURN_IF_ERROR(b.Synchronize({}));
  w.logits_rows = real_rows;
  return absl::OkStatus();
}

absl::Status LlamaModel::Compute(int64_t t, int64_t r, const AttentionBatch& attn,
                                 const KvCacheView& kv, bool argmax) {
  Workspace& w = *ws_;
  Backend& b = *backend_;
  const ModelConfig& c = config_;
  const int64_t hidden = c.hidden_size;
  RETURN_IF_ERROR(b.GatherRows(weights_->embed(), c.vocab_size, hidden,
                               w.d_tokens.as<const int32_t>(), t, w.x.data(), {}));
  for (int l = 0; l < c.num_hidden_layers; ++l) RETURN_IF_ERROR(Layer(l, t, attn, kv));
  if (r == 0) return absl::OkStatus();
  RETURN_IF_ERROR(b.GatherRows(w.x.data(), t, hidden, w.d_logit_rows.as<const int32_t>(), r,
                               w.sel.data(), {}));
  RETURN_IF_ERROR(b.RmsNorm(w.sel.data(), weights_->final_norm(), r, hidden,
                            static_cast<float>(c.rms_norm_eps), w.sel.data(), {}));
  RETURN_IF_ERROR(b.Logits(w.sel.data(), weights_->lm_head(), r, c.vocab_size, hidden,
                           w.logits.as<float>(), {}));
  if (!argmax) return absl::OkStatus();
  return b.ArgMaxRows(w.logits.as<const float>(), r, c.vocab_size, w.d_argmax.as<int32_t>(), {});
}

absl::Status LlamaModel::Lora(int l, LoraGroup group, const void* x, int64_t in, int64_t tokens,
                              void* y, int64_t y_cols) {
  if (!lora_batch_->active(l, group)) return absl::OkStatus();  // no-LoRA path: zero cost
  const LoraSegments segs = lora_batch_->segments(l, group);
  float* v = ws_->lora_v.as<float>();
  RETURN_IF_ERROR(backend_->LoraShrink(x, tokens, in, segs, v, {}));
  return backend_->LoraExpand(v, tokens, segs, lora_columns_[static_cast<int>(group)], y, y_cols,
                              {});
}

absl::Status LlamaModel::Layer(int l, int64_t t, const AttentionBatch& attn,
                               const KvCacheView& kv) {
  Workspace& w = *ws_;
  Backend& b = *backend_;
  const ModelConfig& c = config_;
  const LayerWeights& lw = weights_->layer(l);
  const size_t elt = b.elt_size();
  const int64_t hidden = c.hidden_size;
  const int64_t inter = c.intermediate_size;
  const int32_t hq = c.num_attention_heads;
  const int32_t hkv = c.num_key_value_heads;
  const int32_t d = static_cast<int32_t>(c.head_dim);
  const int64_t q_out = int64_t{hq} * d;
  const int64_t kv_out = int64_t{hkv} * d;
  const int64_t qkv_out = q_out + 2 * kv_out;
  const float eps = static_cast<float>(c.rms_norm_eps);
  auto bias = [](const DeviceBuffer& buf) -> const void* { return buf.empty() ? nullptr : buf.data(); };

  // Attention block.
  RETURN_IF_ERROR(b.RmsNorm(w.x.data(), lw.input_norm.data(), t, hidden, eps, w.h.data(), {}));
  RETURN_IF_ERROR(b.Gemm(w.h.data(), lw.qkv.data(), bias(lw.qkv_bias), t, qkv_out, hidden, false,
                         w.qkv.data(), {}));
  RETURN_IF_ERROR(Lora(l, LoraGroup::kQkv, w.h.data(), hidden, t, w.qkv.data(), qkv_out));
  RETURN_IF_ERROR(b.Rope(w.qkv.data(), qkv_out, t, hq, hkv, d, w.d_positions.as<const int32_t>(),
                         inv_freq_.as<const float>(), {}));
  RETURN_IF_ERROR(b.WriteKv(At(w.qkv.data(), q_out, elt), qkv_out,
                            At(w.qkv.data(), q_out + kv_out, elt), qkv_out, t,
                            w.d_slots.as<const int64_t>(), kv.base, kv.layout, l, {}));
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
  RETURN_IF_ERROR(b.PagedAttention(w.qkv.data(), qkv_out, t, hq, attn, kv.base, kv.layout, l,
                                   scale, w.attn.data(), {}));
  RETURN_IF_ERROR(b.Gemm(w.attn.data(), lw.o.data(), bias(lw.o_bias), t, hidden, q_out, false,
                         w.proj.data(), {}));
  RETURN_IF_ERROR(Lora(l, LoraGroup::kO, w.attn.data(), q_out, t, w.proj.data(), hidden));
  RETURN_IF_ERROR(b.ResidualAdd(w.x.data(), w.proj.data(), t * hidden, {}));

  // MLP block.
  RETURN_IF_ERROR(
      b.RmsNorm(w.x.data(), lw.post_attn_norm.data(), t, hidden, eps, w.h.data(), {}));
  RETURN_IF_ERROR(b.Gemm(w.h.data(), lw.gate_up.data(), bias(lw.gate_up_bias), t, 2 * inter,
                         hidden, false, w.gate_up.data(), {}));
  RETURN_IF_ERROR(Lora(l, LoraGroup::kGateUp, w.h.data(), hidden, t, w.gate_up.data(), 2 * inter));
  RETURN_IF_ERROR(b.SiluAndMul(w.gate_up.data(), t, inter, w.act.data(), {}));
  RETURN_IF_ERROR(b.Gemm(w.act.data(), lw.down.data(), bias(lw.down_bias), t, hidden, inter, false,
                         w.proj.data(), {}));
  RETURN_IF_ERROR(Lora(l, LoraGroup::kDown, w.act.data(), inter, t, w.proj.data(), hidden));
  return b.ResidualAdd(w.x.data(), w.proj.data(), t * hidden, {});
}

}  // namespace loraserve
