#include "kernels/logits_ops.h"

#include <algorithm>
#include <cstring>

namespace loraserve::logits_ops {
namespace {

// 16-byte vectors: native on SSE2 and NEON, no ABI caveats.
typedef float F4 __attribute__((vector_size(16)));
typedef int32_t I4 __attribute__((vector_size(16)));

inline F4 Load(const float* p) {
  F4 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline void Store(float* p, F4 v) { std::memcpy(p, &v, sizeof(v)); }
inline F4 Splat(float s) { return F4{s, s, s, s}; }

constexpr float kMinExponent = -87.0f;  // exp(-87) ~ 1.6e-38, near FLT_MIN

// exp(x) for x <= 0 (x > 88 is clamped): 2^n * e^f with n = round(x / ln2)
// and f = x - n ln2 (Cody-Waite: ln2 split in two so f keeps its bits),
// |f| <= ln2 / 2, e^f by its degree-6 Taylor polynomial (error < 2e-7).
inline F4 Exp4(F4 x) {
  F4 xc = x < kMinExponent ? Splat(kMinExponent) : x;
  xc = xc > 88.0f ? Splat(88.0f) : xc;
  const F4 t = xc * 1.44269504088896341f;
  const F4 r = (t + 12582912.0f) - 12582912.0f;  // round to nearest integer (|t| < 2^22)
  const F4 f = (xc - r * 0.693359375f) - r * -2.12194440e-4f;
  F4 p = Splat(1.0f / 720.0f);
  p = p * f + 1.0f / 120.0f;
  p = p * f + 1.0f / 24.0f;
  p = p * f + 1.0f / 6.0f;
  p = p * f + 0.5f;
  p = p * f + 1.0f;
  p = p * f + 1.0f;
  const I4 n = __builtin_convertvector(r, I4);
  const F4 scale = reinterpret_cast<F4>((n + 127) << 23);
  return x < kMinExponent ? Splat(0.0f) : p * scale;
}

float ExpScalar(float x) {
  float in[4] = {x, x, x, x};
  float out[4];
  Store(out, Exp4(Load(in)));
  return out[0];
}

// ExpWeights (kStore) and ExpSum: one loop, so both return the same sum.
template <bool kStore>
double ExpSumImpl(const float* x, int32_t n, float x_max, float scale, float* w) {
  int32_t i = 0;
  double sum = 0.0;
  double acc[4] = {0.0, 0.0, 0.0, 0.0};
  for (; i + 4 <= n; i += 4) {
    const F4 v = Exp4((Load(x + i) - x_max) * scale);
    if constexpr (kStore) Store(w + i, v);
    for (int j = 0; j < 4; ++j) acc[j] += v[j];
  }
  for (; i < n; ++i) {
    const float v = ExpScalar((x[i] - x_max) * scale);
    if constexpr (kStore) w[i] = v;
    sum += v;
  }
  return sum + (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

}  // namespace

bool Before(const Scored& a, const Scored& b) {
  const bool a_nan = a.value != a.value;
  const bool b_nan = b.value != b.value;
  if (a_nan || b_nan) return a_nan == b_nan ? a.id < b.id : b_nan;
  return a.value > b.value || (a.value == b.value && a.id < b.id);
}

float MaxOf(const float* x, int32_t n) {
  int32_t i = 0;
  float m = x[0];
  if (n >= 8) {
    F4 m0 = Load(x), m1 = Load(x + 4);
    for (i = 8; i + 8 <= n; i += 8) {
      const F4 a = Load(x + i), b = Load(x + i + 4);
      m0 = a > m0 ? a : m0;
      m1 = b > m1 ? b : m1;
    }
    m0 = m1 > m0 ? m1 : m0;
    for (int j = 0; j < 4; ++j) m = m0[j] > m ? m0[j] : m;
  }
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

int32_t ArgMax(const float* x, int32_t n) {
  const float m = MaxOf(x, n);
  for (int32_t i = 0; i < n; ++i) {
    if (x[i] == m) return i;
  }
  return 0;  // all NaN
}

double ExpWeights(const float* x, int32_t n, float x_max, float scale, float* w) {
  return ExpSumImpl<true>(x, n, x_max, scale, w);
}

double ExpSum(const float* x, int32_t n, float x_max, float scale) {
  return ExpSumImpl<false>(x, n, x_max, scale, nullptr);
}

void TopK(const float* x, int32_t n, int32_t k, std::vector<Scored>* out) {
  k = std::max(0, std::min(k, n));
  out->clear();
  if (k == 0) return;
  out->reserve(k);
  for (int32_t i = 0; i < k; ++i) out->push_back({x[i], i});
  // Heap order: "worse" entries compare greater, so the heap top is the worst.
  std::make_heap(out->begin(), out->end(), Before);
  float worst = out->front().value;
  bool worst_nan = worst != worst;
  for (int32_t i = k; i < n; ++i) {
    // Later ids lose ties, so only a strictly larger value gets in, or any
    // number in place of a NaN.
    if (x[i] > worst || (worst_nan && x[i] == x[i])) {
      std::pop_heap(out->begin(), out->end(), Before);
      out->back() = {x[i], i};
      std::push_heap(out->begin(), out->end(), Before);
      worst = out->front().value;
      worst_nan = worst != worst;
    }
  }
  std::sort_heap(out->begin(), out->end(), Before);  // best first
}

NucleusCut FindNucleus(const float* w, int32_t n, double target, std::vector<Scored>* scratch) {
  // Non-negative floats order like their bit patterns; the top 11 bits
  // (sign 0, exponent, 3 mantissa bits) cut each octave into 8 buckets.
  constexpr int kShift = 20;
  constexpr int kBuckets = 1 << (31 - kShift);
  auto bucket = [](float v) {
    uint32_t bits;
    std::memcpy(&bits, &v, sizeof(bits));
    return static_cast<int>(bits >> kShift);
  };
  std::vector<double> mass(kBuckets, 0.0);
  for (int32_t i = 0; i < n; ++i) mass[bucket(w[i])] += w[i];
  double cum = 0.0;
  int boundary = -1;
  for (int b = kBuckets - 1; b >= 0; --b) {
    if (cum + mass[b] >= target) {
      boundary = b;
      break;
    }
    cum += mass[b];
  }
  if (boundary < 0) return {0.0f, n - 1};
  scratch->clear();
  for (int32_t i = 0; i < n; ++i) {
    if (bucket(w[i]) == boundary) scratch->push_back({w[i], i});
  }
  std::sort(scratch->begin(), scratch->end(), Before);
  for (const Scored& s : *scratch) {
    cum += s.value;
    if (cum >= target) return {s.value, s.id};
  }
  return {scratch->back().value, scratch->back().id};  // rounding
}

}  // namespace loraserve::logits_ops
