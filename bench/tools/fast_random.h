// FastRandom: a seeded xoshiro256** generator and fills of random weights
// written straight into a tensor's storage bytes (F32 / F16 / BF16), so the
// benchmark generators never build an fp32 copy of a 7B-shaped tensor.
// Deterministic: the same seed gives the same bytes on every machine.
//
// Used by the adapter-set and synthetic-model generators (bench/tools/).
// One FastRandom per thread: not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/dtype.h"

namespace loraserve::bench {

// SplitMix64: mixes a counter into a well-spread 64-bit value (seeding,
// deriving per-adapter seeds from (seed, index)).
uint64_t SplitMix64(uint64_t x);
// A seed for stream `index` of `seed`: SplitMix64 over both.
uint64_t DeriveSeed(uint64_t seed, uint64_t index);

class FastRandom {
 public:
  explicit FastRandom(uint64_t seed);

  uint64_t Next();
  // Uniform in [0, n); n > 0.
  uint64_t Below(uint64_t n);
  // Uniform in [0, 1).
  double Uniform();

  // Fills `n` elements of `dtype` at `dst` with values uniform in [-bound, bound).
  void FillUniform(void* dst /* [n] dtype */, DType dtype, size_t n, float bound);
  // Fills `n` elements with an approximately normal distribution of mean 0
  // and standard deviation `stddev` (Irwin-Hall: the sum of four uniforms,
  // rescaled; tails bounded at +-3.46 stddev, which random weights never miss).
  void FillNormal(void* dst /* [n] dtype */, DType dtype, size_t n, float stddev);
  // Fills `n` elements with `value`.
  static void FillConstant(void* dst /* [n] dtype */, DType dtype, size_t n, float value);

 private:
  uint64_t s_[4];
};

}  // namespace loraserve::bench
