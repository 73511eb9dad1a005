// Deterministic random transforms for the synthetic trace: uniform reals and
// integers, normals, Gamma and numpy-style power variates, all computed here
// from raw std::mt19937_64 output (the standard fixes mt19937_64's output
// sequence but not the algorithms of std::*_distribution, so those would
// differ between standard libraries; these do not). Also the per-field
// sub-streams the trace synthesizer draws from.
//
// Used by trace.cc; free functions over a caller-owned engine, so thread
// safety is the engine's: one engine per thread.
#pragma once

#include <cstdint>
#include <random>

namespace loraserve::loadgen {

// The independent stream `stream` of seed `seed`: a mt19937_64 seeded through
// std::seed_seq{seed low 32 bits, seed high 32 bits, stream}. Changing how
// many values one trace field draws never shifts another field's values.
std::mt19937_64 SubStream(uint64_t seed, uint32_t stream);

// Uniform in [0, 1): the top 53 bits of one draw.
double Uniform01(std::mt19937_64& rng);

// Uniform integer in [lo, hi), lo < hi; unbiased (rejection of the partial
// top bucket).
int64_t UniformInt(std::mt19937_64& rng, int64_t lo, int64_t hi);

// Standard normal by Box-Muller (two uniform draws per call).
double StandardNormal(std::mt19937_64& rng);

// Gamma(shape k > 0, scale theta > 0): Marsaglia-Tsang squeeze for k >= 1;
// for k < 1, Gamma(k + 1) * U^(1/k).
double Gamma(std::mt19937_64& rng, double shape, double scale);

// numpy.random.power(alpha): density alpha * x^(alpha - 1) on [0, 1), by
// inversion U^(1/alpha); CDF x^alpha. alpha > 0.
double Power(std::mt19937_64& rng, double alpha);

}  // namespace loraserve::loadgen
