// AdapterWeights: the neutral, read-only view memory/ needs of one loaded LoRA
// adapter in host fp32 "rank-rows" form, so the pool and residency never
// depend on engine/ (engine/adapters/peft_adapter.h implements it).
//
// For each layer and module (q,k,v,o,gate,up,down, in that order) a module
// has rank r (0 = no LoRA there), a scale, and two row-major fp32 arrays:
// A [r, in] and B transposed [r, out]. An implementation is immutable once
// built and may be read from any thread (the prefetch worker reads it while
// the engine thread holds a reference).
//
// Also defines AdapterId, the identity residency is keyed by: a generation
// counter assigned at load and never reused, so one id never names two sets
// of weights (a new adapter loaded under an old name gets a new id).
#pragma once

#include <cstddef>
#include <cstdint>

namespace loraserve {

// Unique per loaded adapter object; never reused. 0 is the base model (no LoRA).
using AdapterId = uint64_t;
inline constexpr AdapterId kBaseModelAdapterId = 0;

// Modules in the order the kernels and the engine use (engine LoraModule).
inline constexpr int kNumAdapterModules = 7;

// One (layer, module)'s LoRA. Pointers stay valid while the AdapterWeights lives.
struct ModuleWeightsView {
  int32_t rank = 0;              // 0: no LoRA here (a and b_t may be null)
  float scale = 0.0f;            // lora_alpha / r (or / sqrt(r) with rsLoRA)
  int64_t in = 0;                // input features of the projection
  int64_t out = 0;               // output features of the projection
  const float* a = nullptr;      // [rank, in] row-major
  const float* b_t = nullptr;    // [rank, out] row-major (B transposed)
};

// One finished load, for loraserve_adapter_loads_total{tier,result} and the
// loraserve_adapter_load_seconds histogram. tier "host": disk -> host;
// tier "device": host -> pool.
struct AdapterLoadEvent {
  enum class Tier : uint8_t { kHost, kDevice };
  Tier tier = Tier::kHost;
  AdapterId id = 0;
  bool ok = false;
  double seconds = 0;
};

class AdapterWeights {
 public:
  virtual ~AdapterWeights() = default;

  virtual int num_layers() const = 0;
  // Always kNumAdapterModules today.
  virtual int num_modules() const { return kNumAdapterModules; }
  // 0 <= layer < num_layers(), 0 <= module < num_modules().
  virtual ModuleWeightsView ModuleView(int layer, int module) const = 0;
  // Host bytes held (what the host tier's budget counts).
  virtual size_t bytes() const = 0;
};

}  // namespace loraserve
