// Host-side operations over one row of logits (a vocabulary of 32k-256k
// floats), the hot loops of the Sampler: max, argmax, exp weights with their
// sum, and top-k selection. Written with GCC/Clang vector extensions so they
// run 4 floats at a time on any x86-64 or ARM build, whatever -march says
// (compiled with -ffp-contract=off, so no build fuses their multiply-adds and
// the CUDA candidate kernel can reproduce ExpWeights' weights bit for bit).
//
// Pure functions; any thread. Callers: engine/sampler/sampler.cc and the CPU
// twin of Backend::SampleCandidates (kernels/cpu/cpu_sample_candidates.cc),
// which must rank and sum exactly as the sampler does.
#pragma once

#include <cstdint>
#include <vector>

namespace loraserve::logits_ops {

// How many of the most likely tokens the sampler's top-p pass looks at before
// it searches the whole vocabulary, and so the most candidates per row
// Backend::SampleCandidates returns (kMaxSampleCandidates).
inline constexpr int32_t kTopCandidates = 64;

// Largest value of x[0, n), n >= 1 (NaN entries are skipped unless x[0] is NaN).
float MaxOf(const float* x /* [n] */, int32_t n);

// Index of the largest value, ties to the lowest index; 0 when none compares.
int32_t ArgMax(const float* x /* [n] */, int32_t n);

// w[i] = exp((x[i] - x_max) * scale), the exponent rounded to float and its
// exp computed to within 1e-6 relative,
// exactly 0 where the exponent is below -87 (including -inf logits). Returns
// the sum of w in double precision. x_max >= every x[i] keeps w in [0, 1].
double ExpWeights(const float* x /* [n] */, int32_t n, float x_max, float scale,
                  float* w /* [n] */);

// ExpWeights' return value, bit for bit, without storing the weights.
double ExpSum(const float* x /* [n] */, int32_t n, float x_max, float scale);

struct Scored {
  float value;
  int32_t id;
};

// The ranking every selection here uses: larger value first, ties to the
// lower id, NaN after every number (NaNs among themselves by id), -0 == +0.
bool Before(const Scored& a, const Scored& b);

// The k best entries of x[0, n) by Before, sorted best first, in `out`
// (resized to min(k, n)); a NaN is kept only when fewer than k numbers exist.
// One pass with a k-entry heap: O(n) compares for small k.
void TopK(const float* x /* [n] */, int32_t n, int32_t k, std::vector<Scored>* out);

// The nucleus of weights w[0, n) (all >= 0): the smallest set of largest
// weights (ties to the lower id) whose sum reaches `target`, described as
//   kept(t) = w[t] > threshold || (w[t] == threshold && t <= last_id).
// Everything is kept when the whole sum falls short (rounding). O(n): one
// pass histograms the mass by the top bits of each float, a second gathers
// the boundary bucket, and only that bucket is sorted. `scratch` is reused.
struct NucleusCut {
  float threshold;
  int32_t last_id;
};
NucleusCut FindNucleus(const float* w /* [n] */, int32_t n, double target,
                       std::vector<Scored>* scratch);

}  // namespace loraserve::logits_ops
