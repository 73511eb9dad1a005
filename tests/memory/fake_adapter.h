// Test helpers for memory/ adapter tests: an AdapterWeights whose every value
// is a function of (seed, layer, module, A/B, row, col), so a test can check
// any element read back from the pool against the adapter it must belong to.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "memory/adapter_weights.h"

namespace loraserve {
namespace testing_memory {

// Distinct, exactly representable fp32 values per seed (< 2^24 in magnitude).
inline float FakeValue(uint32_t seed, int layer, int module, int ab, int64_t row, int64_t col) {
  const uint32_t h = seed * 1000003u + static_cast<uint32_t>(layer) * 7919u +
                     static_cast<uint32_t>(module) * 104729u + static_cast<uint32_t>(ab) * 31u +
                     static_cast<uint32_t>(row) * 131u + static_cast<uint32_t>(col);
  return static_cast<float>(h % 1000003u) - 500000.0f;
}

struct ModuleShape {
  int64_t in = 0;
  int64_t out = 0;
};

class FakeAdapter final : public AdapterWeights {
 public:
  // ranks[m] applies to module m in every layer; shapes[m] gives in/out.
  FakeAdapter(uint32_t seed, int num_layers, const std::array<int32_t, kNumAdapterModules>& ranks,
              const std::array<ModuleShape, kNumAdapterModules>& shapes)
      : seed_(seed), num_layers_(num_layers) {
    modules_.resize(static_cast<size_t>(num_layers) * kNumAdapterModules);
    for (int l = 0; l < num_layers; ++l) {
      for (int m = 0; m < kNumAdapterModules; ++m) {
        Module& mod = modules_[static_cast<size_t>(l) * kNumAdapterModules + m];
        mod.rank = ranks[m];
        mod.in = shapes[m].in;
        mod.out = shapes[m].out;
        for (int32_t r = 0; r < mod.rank; ++r) {
          for (int64_t c = 0; c < mod.in; ++c) mod.a.push_back(FakeValue(seed, l, m, 0, r, c));
          for (int64_t c = 0; c < mod.out; ++c) mod.b_t.push_back(FakeValue(seed, l, m, 1, r, c));
        }
        bytes_ += (mod.a.size() + mod.b_t.size()) * sizeof(float);
      }
    }
  }

  uint32_t seed() const { return seed_; }
  int num_layers() const override { return num_layers_; }
  ModuleWeightsView ModuleView(int layer, int module) const override {
    const Module& m = modules_[static_cast<size_t>(layer) * kNumAdapterModules + module];
    return ModuleWeightsView{m.rank, 0.5f + static_cast<float>(seed_ % 7), m.in, m.out,
                             m.a.empty() ? nullptr : m.a.data(),
                             m.b_t.empty() ? nullptr : m.b_t.data()};
  }
  size_t bytes() const override { return bytes_; }

 private:
  struct Module {
    int32_t rank = 0;
    int64_t in = 0;
    int64_t out = 0;
    std::vector<float> a;
    std::vector<float> b_t;
  };
  uint32_t seed_;
  int num_layers_;
  std::vector<Module> modules_;
  size_t bytes_ = 0;
};

// A tiny Llama-like shape: hidden 24, q 24, kv 8, intermediate 40.
inline std::array<ModuleShape, kNumAdapterModules> TinyShapes() {
  return {ModuleShape{24, 24}, ModuleShape{24, 8},  ModuleShape{24, 8}, ModuleShape{24, 24},
          ModuleShape{24, 40}, ModuleShape{24, 40}, ModuleShape{40, 24}};
}

inline std::array<int32_t, kNumAdapterModules> AllRanks(int32_t r) {
  std::array<int32_t, kNumAdapterModules> a;
  a.fill(r);
  return a;
}

}  // namespace testing_memory
}  // namespace loraserve
