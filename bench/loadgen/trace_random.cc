#include "bench/loadgen/trace_random.h"

#include <cmath>
#include <limits>
#include <numbers>

#include "common/logging.h"

namespace loraserve::loadgen {

std::mt19937_64 SubStream(uint64_t seed, uint32_t stream) {
  std::seed_seq seq{static_cast<uint32_t>(seed & 0xffffffffu), static_cast<uint32_t>(seed >> 32),
                    stream};
  return std::mt19937_64(seq);
}

double Uniform01(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

int64_t UniformInt(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  LS_CHECK_LT(lo, hi);
  const uint64_t range = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
  // Largest multiple of `range` representable: draws at or above it would
  // make the low residues more likely, so they are redrawn.
  const uint64_t limit = std::numeric_limits<uint64_t>::max() -
                         std::numeric_limits<uint64_t>::max() % range;
  uint64_t x = rng();
  while (x >= limit) x = rng();
  return static_cast<int64_t>(static_cast<uint64_t>(lo) + x % range);
}

double StandardNormal(std::mt19937_64& rng) {
  const double u1 = 1.0 - Uniform01(rng);  // (0, 1]: log is finite
  const double u2 = Uniform01(rng);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

double Gamma(std::mt19937_64& rng, double shape, double scale) {
  LS_CHECK(shape > 0 && scale > 0) << "shape " << shape << " scale " << scale;
  if (shape < 1.0) {
    const double u = 1.0 - Uniform01(rng);  // (0, 1]
    return Gamma(rng, shape + 1.0, scale) * std::pow(u, 1.0 / shape);
  }
  // Marsaglia & Tsang (2000), "A simple method for generating gamma variables".
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  while (true) {
    double x;
    double v;
    do {
      x = StandardNormal(rng);
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    const double u = 1.0 - Uniform01(rng);  // (0, 1]
    if (u < 1.0 - 0.0331 * x * x * x * x) return d * v * scale;
    if (std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v * scale;
  }
}

double Power(std::mt19937_64& rng, double alpha) {
  LS_CHECK(alpha > 0) << "alpha " << alpha;
  return std::pow(Uniform01(rng), 1.0 / alpha);
}

}  // namespace loraserve::loadgen
