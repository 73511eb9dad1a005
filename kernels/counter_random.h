// Counter-based random numbers computed bit for bit the same on the host and
// on the device: the values of Backend::FillRandom (kernels/cpu/cpu_random.cc,
// kernels/cuda/cuda_random.cu) and the per-tensor seeds of
// ModelWeights::CreateRandom. Element i of a stream is a pure function of
// (seed, i), so any thread may compute any element in any order.
//
// The exact formulas (all integer arithmetic modulo 2^64, G = 0x9E3779B97F4A7C15):
//   SplitMix64Mix(z):  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
//                      z = (z ^ (z >> 27)) * 0x94D049BB133111EB
//                      return z ^ (z >> 31)
//   CounterHash(seed, i)  = SplitMix64Mix(seed + (i + 1) * G)
//       i.e. output number i (from 0) of Vigna's SplitMix64 generator whose
//       state starts at `seed` (CounterHash(0, 0) = 0xE220A8397B1DCDAF).
//   CounterUniform(seed, i) = float(CounterHash(seed, i) >> 40) * 2^-24
//       a multiple of 2^-24 in [0, 1 - 2^-24], exact in fp32.
//   CounterUniformIn(seed, i, lo, hi) = fmaf(hi - lo, CounterUniform(seed, i), lo)
//       with hi - lo an fp32 subtraction and one fused multiply-add (fmaf on
//       both sides, so no compiler contraction choice can differ). The result
//       lies in [lo, hi]; it reaches hi only through rounding, when hi - lo is
//       below about 2^-23 |hi| (never for lo = -hi, nor lo = 0 < hi).
//       lo == hi gives exactly lo.
//
// Header-only, no dependencies; included by .cc and .cu files alike. Pure
// functions; any thread.
#pragma once

#include <math.h>

#include <cstdint>

#if defined(__CUDACC__)
#define LS_HOST_DEVICE __host__ __device__
#else
#define LS_HOST_DEVICE
#endif

namespace loraserve {

inline constexpr uint64_t kSplitMix64Gamma = 0x9E3779B97F4A7C15ull;

LS_HOST_DEVICE inline uint64_t SplitMix64Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

LS_HOST_DEVICE inline uint64_t CounterHash(uint64_t seed, uint64_t i) {
  return SplitMix64Mix(seed + (i + 1) * kSplitMix64Gamma);
}

LS_HOST_DEVICE inline float CounterUniform(uint64_t seed, uint64_t i) {
  return static_cast<float>(static_cast<uint32_t>(CounterHash(seed, i) >> 40)) * 0x1p-24f;
}

LS_HOST_DEVICE inline float CounterUniformIn(uint64_t seed, uint64_t i, float lo, float hi) {
  return fmaf(hi - lo, CounterUniform(seed, i), lo);
}

}  // namespace loraserve
