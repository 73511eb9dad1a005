// LoraBatch: the LoRA metadata of one forward step. Tokens are already
// grouped by adapter into segments; for every layer and every fused
// projection group (qkv, o, gate_up, down) it builds the LoraSlice table the
// LoRA ops read ([num_segments, num_slices], pointing into the adapter rows)
// and uploads it with the segment starts into one backend buffer (reused
// across steps, grown on demand). The slices come either from the model's own
// AdapterRowCache (keyed by adapter object; model tests) or from a
// LoraSliceSource (keyed by adapter id: the engine's unified-pool residency).
// Owned by LlamaModel; rebuilt each step on the forward thread. Not thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "engine/model/adapter_row_cache.h"
#include "engine/model/model_config.h"
#include "kernels/backend.h"

namespace loraserve {

// Projections that share an input and run as one fused GEMM + one LoRA launch.
enum class LoraGroup : uint8_t { kQkv, kO, kGateUp, kDown };
inline constexpr int kNumLoraGroups = 4;

// The modules of a group, in slice order: {q, k, v}, {o}, {gate, up}, {down}.
std::vector<LoraModule> LoraGroupModules(LoraGroup group);
// Output columns of each slice in the group's fused output.
LoraSliceColumns LoraGroupColumns(const ModelConfig& config, LoraGroup group);

// Where a step's LoRA slices come from when the adapters live outside the
// model (the engine's unified pool: memory/adapter_residency.h). Every key in
// a batch must be ready (Slice valid) for the whole Forward. Called on the
// forward thread only.
class LoraSliceSource {
 public:
  virtual ~LoraSliceSource() = default;
  // The base every LoraSlice's row offsets count from.
  virtual const void* rows_base() const = 0;
  // The LoRA of (layer, module) of adapter `key` (rank 0 where it has none).
  virtual LoraSlice Slice(uint64_t key, int layer, LoraModule module) const = 0;
};

// Fixed table shape for a captured decode graph (llama_model_graph.h): the
// segments padded with empty ones to `num_segments`, the rank stride set to
// `max_rank` (>= every slice rank; 0 = GraphRankBucket of the largest slice
// rank), and every (layer, group) active, so the launches depend on these two
// numbers only. When every slice has rank 0 the batch is built as one without
// LoRA (max_rank() == 0). num_segments == 0: no padding.
struct LoraPadding {
  int32_t num_segments = 0;
  int32_t max_rank = 0;
};

class LoraBatch {
 public:
  LoraBatch(Backend* backend, int num_layers) : backend_(backend), num_layers_(num_layers) {}

  // Builds the tables for segments [seg_starts[g], seg_starts[g+1]) using
  // adapters[g] (non-null, resident in `cache`). An empty `adapters` is a
  // batch with no LoRA.
  // With `pad` (only when there is some segment), see LoraPadding;
  // InvalidArgument when a slice's rank exceeds pad.max_rank or there are more
  // segments than pad.num_segments.
  [[nodiscard]] absl::Status Build(const AdapterRowCache& cache,
                                   const std::vector<const PeftAdapter*>& adapters,
                                   const std::vector<int32_t>& seg_starts,
                                   const LoraPadding& pad = {});
  // The same with slices from `source`, segment g using adapter keys[g].
  [[nodiscard]] absl::Status Build(const LoraSliceSource& source,
                                   const std::vector<uint64_t>& keys,
                                   const std::vector<int32_t>& seg_starts,
                                   const LoraPadding& pad = {});

  // True when some segment has a LoRA on some slice of (layer, group).
  bool active(int layer, LoraGroup group) const {
    return active_[static_cast<size_t>(layer) * kNumLoraGroups + static_cast<int>(group)];
  }
  // The op argument for (layer, group); valid until the next Build.
  LoraSegments segments(int layer, LoraGroup group) const;
  // Largest rank of any slice in the batch (v's innermost stride); 0 = no LoRA.
  int32_t max_rank() const { return max_rank_; }
  // Where the uploaded tables live and the rows base they point into: a
  // captured graph stays valid only while both are unchanged.
  const void* tables_address() const { return meta_.data(); }
  const void* rows_base() const { return rows_base_; }

 private:
  // Fills the tables from slice(g, layer, module) and uploads them.
  absl::Status BuildFrom(const void* rows_base, size_t num_segments,
                         const std::vector<int32_t>& seg_starts, const LoraPadding& pad,
                         absl::FunctionRef<LoraSlice(size_t, int, LoraModule)> slice);

  Backend* backend_;
  int num_layers_;
  int32_t num_segments_ = 0;
  int32_t max_rank_ = 0;
  const void* rows_base_ = nullptr;
  std::vector<bool> active_;            // [num_layers, kNumLoraGroups]
  std::vector<int64_t> table_index_;    // [num_layers, kNumLoraGroups]: first slice in slices_
  std::vector<int32_t> seg_starts_;     // host copy, [num_segments + 1]
  std::vector<LoraSlice> slices_;       // host copy of the tables
  DeviceBuffer meta_;                   // seg_starts (8-aligned), then slices
};

}  // namespace loraserve
