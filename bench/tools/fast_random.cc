#include "bench/tools/fast_random.h"

#include <cstring>

namespace loraserve::bench {
namespace {

inline uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

// Stores fp32 `v` as `dtype` at element `i` of `dst`.
inline void Store(void* dst, DType dtype, size_t i, float v) {
  switch (dtype) {
    case DType::kF32:
      static_cast<float*>(dst)[i] = v;
      return;
    case DType::kBF16:
      static_cast<uint16_t*>(dst)[i] = FloatToBf16(v);
      return;
    case DType::kF16:
      static_cast<uint16_t*>(dst)[i] = FloatToHalf(v);
      return;
  }
}

}  // namespace

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t DeriveSeed(uint64_t seed, uint64_t index) {
  return SplitMix64(SplitMix64(seed) ^ SplitMix64(index + 0x632be59bd9b4e019ull));
}

FastRandom::FastRandom(uint64_t seed) {
  uint64_t x = seed;
  for (uint64_t& s : s_) {
    x = SplitMix64(x);
    s = x;
  }
}

uint64_t FastRandom::Next() {
  const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = Rotl(s_[3], 45);
  return result;
}

uint64_t FastRandom::Below(uint64_t n) {
  // Rejection keeps it exactly uniform.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x = Next();
  while (x >= limit) x = Next();
  return x % n;
}

double FastRandom::Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

void FastRandom::FillUniform(void* dst, DType dtype, size_t n, float bound) {
  // Two 32-bit uniforms per draw.
  const float k = 2.0f * bound * 0x1.0p-32f;
  size_t i = 0;
  for (; i + 1 < n; i += 2) {
    const uint64_t r = Next();
    Store(dst, dtype, i, static_cast<float>(r & 0xffffffffu) * k - bound);
    Store(dst, dtype, i + 1, static_cast<float>(r >> 32) * k - bound);
  }
  if (i < n) Store(dst, dtype, i, static_cast<float>(Next() >> 32) * k - bound);
}

void FastRandom::FillNormal(void* dst, DType dtype, size_t n, float stddev) {
  // Sum of four 16-bit uniforms: mean 2 * 65535, variance 4 * (65536^2 - 1) / 12.
  constexpr float kMean = 2.0f * 65535.0f;
  const float k = stddev / (65536.0f / 1.7320508f);  // 1 / sqrt(var) = sqrt(3) / 65536
  for (size_t i = 0; i < n; ++i) {
    const uint64_t r = Next();
    const uint32_t sum = static_cast<uint32_t>(r & 0xffff) +
                         static_cast<uint32_t>((r >> 16) & 0xffff) +
                         static_cast<uint32_t>((r >> 32) & 0xffff) + static_cast<uint32_t>(r >> 48);
    Store(dst, dtype, i, (static_cast<float>(sum) - kMean) * k);
  }
}

void FastRandom::FillConstant(void* dst, DType dtype, size_t n, float value) {
  for (size_t i = 0; i < n; ++i) Store(dst, dtype, i, value);
}

}  // namespace loraserve::bench
