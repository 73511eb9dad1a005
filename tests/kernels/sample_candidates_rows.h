// Test rows for Backend::SampleCandidates (CPU and CUDA tests): fp32
// logits of the shapes that stress a top-k ranking and a weight sum. Test-only.
#pragma once

#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace loraserve::testing {

inline constexpr int kSampleRowKinds = 5;

// A row of `vocab` logits; `kind` picks: 0 normal (sigma 5), 1 a coarse grid
// (exact ties, signed zeros), 2 ascending (every element enters the warp
// lists), 3 descending, 4 mostly -inf. NaN sprinkled in when `nan`.
inline std::vector<float> MakeLogitsRow(int64_t vocab, int kind, bool nan, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 5.0f);
  std::vector<float> x(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) {
    float v = 0.0f;
    switch (kind) {
      case 0:
        v = normal(rng);
        break;
      case 1:
        v = static_cast<float>(static_cast<int>(rng() % 11) - 5) * 0.25f;
        if (v == 0.0f && rng() % 2 == 0) v = -0.0f;
        break;
      case 2:
        v = static_cast<float>(i) * 1e-3f;
        break;
      case 3:
        v = -static_cast<float>(i) * 1e-3f;
        break;
      default:
        v = rng() % 16 == 0 ? normal(rng) : -std::numeric_limits<float>::infinity();
        break;
    }
    if (nan && rng() % 97 == 0) v = std::numeric_limits<float>::quiet_NaN();
    x[static_cast<size_t>(i)] = v;
  }
  return x;
}

}  // namespace loraserve::testing
