// Host-side operations over one row of logits (a vocabulary of 32k-256k
// floats), the hot loops of the Sampler: max, argmax, exp weights with their
// sum, and top-k selection. Written with GCC/Clang vector extensions so they
// run 4 floats at a time on any x86-64 or ARM build, whatever -march says.
//
// Pure functions; any thread. Callers: engine/sampler/sampler.cc.
#pragma once

#include <cstdint>
#include <vector>

namespace loraserve::logits_ops {

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

struct Scored {
  float value;
  int32_t id;
};

// The k best entries of x[0, n) (larger value first, ties to the lower id),
// sorted best first, in `out` (resized to min(k, n)). One pass with a k-entry
// heap: O(n) compares for small k.
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
