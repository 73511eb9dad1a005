// LlamaModel: the Llama-family forward pass (Llama 2/3, Mistral, Qwen2,
// SmolLM) over a Backend, for a batch that mixes prefill chunks and decodes of
// several sequences and several LoRA adapters of different ranks. Owns the
// weights, the RoPE frequencies, a workspace that grows to the largest batch
// seen, and an adapter row cache used only when the batch brings no
// LoraSliceSource (the engine passes its unified-pool residency instead).
//
// Per layer: RMSNorm -> fused qkv GEMM (+ LoRA slices q,k,v) -> RoPE ->
// write K/V into the paged cache -> paged attention -> o GEMM (+ LoRA) ->
// residual -> RMSNorm -> fused gate_up GEMM (+ LoRA slices) -> SiLU-and-mul ->
// down GEMM (+ LoRA) -> residual; then the final norm and fp32 logits for the
// requested rows only, and for rows that ask, instead of copying their logits
// to the host, their argmax (greedy) or their sampling candidates
// (Backend::SampleCandidates, run after any decode graph, outside it;
// llama_model_sampling.cc), with CopyLogitsRow to fetch one row when the
// candidates cannot decide. Sequences are grouped by adapter internally (stable:
// base first, then adapters in order of first appearance), so each adapter is
// one segment; results come back in the caller's order.
//
// Called by the engine thread (model runner) and tests. Not thread-safe: one
// Forward at a time.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/adapters/peft_adapter.h"
#include "engine/model/adapter_row_cache.h"
#include "engine/model/kv_cache.h"
#include "engine/model/llama_model_graph.h"
#include "engine/model/lora_batch.h"
#include "engine/model/model_config.h"
#include "engine/model/model_weights.h"
#include "kernels/backend.h"

namespace loraserve {

// One sequence's part of a step. The spans must stay valid during Forward.
struct SequenceStep {
  std::span<const int32_t> tokens;       // the new tokens this step (>= 1)
  int32_t num_cached = 0;                // tokens already in its KV cache
  std::span<const int32_t> block_table;  // covers num_cached + tokens.size() tokens
  std::shared_ptr<const PeftAdapter> adapter;  // nullptr = base model (no lora source)
  uint64_t adapter_id = 0;  // with ForwardBatch::lora: the adapter key; 0 = base model
  bool compute_logits = true;            // logits of the last new token
  bool all_logits = false;               // logits of every new token (overrides the above)
  // With compute_logits: only the argmax of the row is needed (greedy), so
  // its logits may stay on the device (ForwardOutput::argmax has it).
  bool greedy_on_device = false;
  // With compute_logits (not all_logits): the row is sampled from its
  // candidates (Backend::SampleCandidates at `temperature`, finite and > 0;
  // ForwardOutput::candidate_*), so its logits stay on the device too;
  // LlamaModel::CopyLogitsRow fetches them when the candidates cannot decide.
  bool candidates_on_device = false;
  float temperature = 1.0f;
};

struct ForwardBatch {
  std::vector<SequenceStep> sequences;
  // When set, LoRA slices come from here by SequenceStep::adapter_id (the
  // engine's unified pool) and `adapter` is ignored; when null, the model's
  // own AdapterRowCache packs SequenceStep::adapter.
  const LoraSliceSource* lora = nullptr;
};

struct ForwardOutput {
  int64_t vocab = 0;
  // [num_rows, vocab] fp32, sequences in the caller's order: 1 row for
  // compute_logits, tokens.size() rows for all_logits, none otherwise.
  // Empty instead when every sequence with a row set greedy_on_device or
  // candidates_on_device.
  std::vector<float> logits;
  // Per sequence: its first row in `logits`, -1 when it has none.
  std::vector<int64_t> first_row;
  // [num_rows]: each row's argmax (Backend::ArgMaxRows: ties to the lowest
  // id), computed only when some sequence set greedy_on_device (else 0s).
  std::vector<int32_t> argmax;
  // Computed only when some sequence set candidates_on_device (else empty,
  // num_candidates 0), for every row (those of other sequences at
  // temperature 1): Backend::SampleCandidates with k = num_candidates =
  // min(kMaxSampleCandidates, vocab).
  int32_t num_candidates = 0;
  std::vector<int32_t> candidate_ids;    // [num_rows, num_candidates], best first
  std::vector<float> candidate_values;   // [num_rows, num_candidates] their logits
  std::vector<double> candidate_totals;  // [num_rows] full-row exp weight sums

  int64_t num_rows() const { return static_cast<int64_t>(argmax.size()); }
  std::span<const float> row(int64_t r) const {
    return std::span<const float>(logits).subspan(static_cast<size_t>(r * vocab),
                                                  static_cast<size_t>(vocab));
  }
  std::span<const int32_t> candidate_ids_of(int64_t r) const {
    return std::span<const int32_t>(candidate_ids)
        .subspan(static_cast<size_t>(r * num_candidates), static_cast<size_t>(num_candidates));
  }
  std::span<const float> candidate_values_of(int64_t r) const {
    return std::span<const float>(candidate_values)
        .subspan(static_cast<size_t>(r * num_candidates), static_cast<size_t>(num_candidates));
  }
};

// Counters of the decode-graph path (see LlamaModel::Forward).
struct GraphStats {
  int64_t captures = 0;   // graphs captured (first use of a key, or after its buffers moved)
  int64_t launches = 0;   // steps run by launching a graph
  int64_t eager_steps = 0;  // steps run op by op
  int64_t cached = 0;     // graphs held now
};

class LlamaModel {
 public:
  // When decode-only steps are replayed from captured graphs (see Forward).
  enum class GraphMode : uint8_t {
    kAuto,  // on when the backend is CUDA
    kOn,    // on whenever the backend supports graphs (CPU too: tests)
    kOff,
  };
  struct Options {
    Backend* backend = nullptr;  // must outlive the model
    std::string model_dir;       // config.json (+ safetensors unless random weights)
    size_t adapter_cache_bytes = 0;  // AdapterRowCache limit; 0 = unlimited
    // Set: the weights are not read from safetensors but generated on the
    // backend from this seed (ModelWeights::CreateRandom), for benchmarking
    // large shapes from a config.json alone.
    std::optional<uint64_t> random_weights_seed;
    GraphMode graphs = GraphMode::kAuto;
    // Decode steps of more sequences than this run without a graph.
    int32_t max_graph_batch = 256;
  };
  // Loads config and weights from options.model_dir.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<LlamaModel>> Create(const Options& options);
  ~LlamaModel();
  LlamaModel(const LlamaModel&) = delete;
  LlamaModel& operator=(const LlamaModel&) = delete;

  // One step for `batch` over the KV cache `kv` (layout must match the
  // model). Writes the new tokens' K/V into their block-table slots.
  // With graphs on (Options::graphs) a decode-only step of at most
  // max_graph_batch sequences runs as one launch of a graph captured for its
  // key (engine/model/llama_model_graph.h), padded to the key's batch; other
  // steps, and every step with graphs off, run op by op. Same results either
  // way up to summation order: GEMM blocking for the padded row count, and on
  // CUDA the attention split-K plan (made for the context bucket, not the
  // actual length) and the LoRA kernel (BGMV over the padded segments).
  // InvalidArgument naming the sequence on a bad step (token id outside the
  // vocab, empty step, block table too short, context past max_context()).
  [[nodiscard]] absl::Status Forward(const ForwardBatch& batch, const KvCacheView& kv,
                                     ForwardOutput* out);

  // Copies row `row` of the last successful Forward's logits (its
  // ForwardOutput row numbering) to dst, synchronously: the fallback for a
  // candidates_on_device or greedy_on_device row whose logits were not
  // copied. Valid until the next Forward; InvalidArgument naming the row
  // when it is outside that step's rows (or after a failed Forward).
  [[nodiscard]] absl::Status CopyLogitsRow(int64_t row, float* dst /* host [vocab] */);

  // Grows the activation workspace now to what a step of up to `max_tokens`
  // tokens, `max_logit_rows` rows needing logits and LoRA ranks up to
  // `max_rank` needs, so that memory is taken before the unified pool is sized
  // from what is left (a later larger step still grows it).
  [[nodiscard]] absl::Status ReserveActivations(int64_t max_tokens, int64_t max_logit_rows,
                                                int32_t max_rank);

  const ModelConfig& config() const { return config_; }
  Backend& backend() const { return *backend_; }
  const ModelWeights& weights() const { return *weights_; }
  const AdapterRowCache& adapter_cache() const { return *adapter_cache_; }
  // True when decode steps may run from graphs on this backend.
  bool graphs_enabled() const { return graphs_enabled_; }
  GraphStats graph_stats() const;

 private:
  struct Workspace;
  LlamaModel() = default;
  // Grows every activation buffer for t tokens, r logit rows, LoRA rank max_rank.
  absl::Status GrowActivations(int64_t t, int64_t r, int64_t max_rank);
  // Groups, validates and lays out the batch into the workspace's host
  // staging; fills `attn` host fields and out->first_row.
  absl::Status Plan(const ForwardBatch& batch, const KvCacheView& kv, ForwardOutput* out);
  absl::Status UploadPlan(AttentionBatch* attn);
  // The graph key of a decode step already planned (batch and context
  // buckets; rank filled in after the LoRA tables are built).
  GraphKey GraphKeyFor() const;
  // Pads the planned step to key.batch sequences and re-strides its block
  // tables for key.context (llama_model_graph.cc).
  void PadPlanForGraph(const GraphKey& key, int32_t block_tokens);
  // Launches the graph for `key`, capturing it first when absent or stale.
  absl::Status RunGraph(const GraphKey& key, int64_t tokens, int64_t rows,
                        const AttentionBatch& attn, const KvCacheView& kv);
  // Every op of the step, enqueued on the compute stream: embedding, layers,
  // final norm and logits of `rows` rows, and their argmax when `argmax`.
  absl::Status Compute(int64_t tokens, int64_t rows, const AttentionBatch& attn,
                       const KvCacheView& kv, bool argmax);
  // After Compute / RunGraph (never recorded in a graph): uploads the rows'
  // temperatures and enqueues SampleCandidates over the first `rows` rows,
  // then the copies of its results into `out`.
  absl::Status ComputeCandidates(const ForwardBatch& batch, int64_t rows, ForwardOutput* out);
  absl::Status Layer(int l, int64_t tokens, const AttentionBatch& attn, const KvCacheView& kv);
  absl::Status Lora(int l, LoraGroup group, const void* x, int64_t in, int64_t tokens, void* y,
                    int64_t y_cols);

  Backend* backend_ = nullptr;
  ModelConfig config_;
  std::unique_ptr<ModelWeights> weights_;
  std::unique_ptr<AdapterRowCache> adapter_cache_;
  std::unique_ptr<LoraBatch> lora_batch_;
  DeviceBuffer inv_freq_;  // [head_dim / 2] fp32
  std::array<LoraSliceColumns, kNumLoraGroups> lora_columns_;
  std::unique_ptr<Workspace> ws_;
  bool graphs_enabled_ = false;
  int32_t max_graph_batch_ = 0;
};

}  // namespace loraserve
