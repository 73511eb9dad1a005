// Helpers of bench/forward_bench.cc: timing, flag lists, the forward's useful
// FLOPs and the bytes a decode step must read, and the two hardware ceilings
// measured through the Backend in the same run (device-to-device copy
// bandwidth; the backend's own Gemm on the model's weight matrices).
// Header-only (only *_bench.cc files are built); single-threaded callers.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/status.h"
#include "engine/adapters/peft_adapter.h"
#include "engine/model/model_config.h"
#include "kernels/backend.h"

namespace loraserve::forward_bench {

using Clock = std::chrono::steady_clock;

inline double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed * 6364136223846793005ull + 1442695040888963407ull) {}
  uint64_t Next() {
    s_ = s_ * 6364136223846793005ull + 1442695040888963407ull;
    return s_ >> 33;
  }
  // Uniform in [-a, a).
  float Uniform(float a) {
    return (static_cast<float>(static_cast<double>(Next() & 0xffffff) / double(1 << 24)) * 2.0f -
            1.0f) *
           a;
  }

 private:
  uint64_t s_;
};

// "1,8,32" -> {1, 8, 32}; entries < min_value are dropped.
inline std::vector<int> ParseList(const std::string& s, int min_value) {
  std::vector<int> v;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    const int x = std::atoi(s.substr(i, j - i).c_str());
    if (x >= min_value) v.push_back(x);
    i = j + 1;
  }
  return v;
}

// Nearest-rank percentile (p in (0, 1]) of a non-empty sample.
inline double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const auto k = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(k, 1, v.size()) - 1];
}

// Matmul parameters of one layer (q, k, v, o, gate, up, down).
inline double LayerMatmulParams(const ModelConfig& c) {
  double p = 0;
  for (LoraModule m : kAllLoraModules) {
    const ProjShape s = ModuleShape(c, m);
    p += double(s.in) * double(s.out);
  }
  return p;
}

// LoRA FLOPs per token of `a`: 2 x r x (in + out) per adapted projection.
inline double LoraFlopsPerToken(const PeftAdapter& a) {
  double f = 0;
  for (int l = 0; l < a.num_layers(); ++l) {
    for (LoraModule m : kAllLoraModules) {
      const LoraModuleWeights& w = a.module(l, m);
      f += 2.0 * w.rank * double(w.in + w.out);
    }
  }
  return f;
}

// Bytes of `a`'s rank-rows in a backend of `elt_size`-byte storage: what a
// step reads once per distinct adapter in the batch.
inline double AdapterRowBytes(const PeftAdapter& a, size_t elt_size) {
  double n = 0;
  for (int l = 0; l < a.num_layers(); ++l) {
    for (LoraModule m : kAllLoraModules) {
      const LoraModuleWeights& w = a.module(l, m);
      n += double(w.a.size() + w.b_t.size());
    }
  }
  return n * double(elt_size);
}

// Useful FLOPs of one step: `tokens` new tokens per sequence after `cached`,
// `seqs` sequences of which `adapted` run LoRA costing `lora_flops` per
// token, one logits row each. Attention: 4 x heads x head_dim x context per
// token and layer.
inline double StepFlops(const ModelConfig& c, double lora_flops, int seqs, int adapted, int tokens,
                        int cached) {
  double ctx_sum = 0;  // sum over a sequence's new tokens of the context each attends to
  for (int t = 0; t < tokens; ++t) ctx_sum += cached + t + 1;
  const double per_seq =
      2.0 * LayerMatmulParams(c) * c.num_hidden_layers * tokens +
      4.0 * c.num_attention_heads * double(c.head_dim) * ctx_sum * c.num_hidden_layers +
      2.0 * double(c.vocab_size) * double(c.hidden_size);
  return per_seq * seqs + lora_flops * tokens * adapted;
}

// KV bytes one sequence's decode token reads at context `ctx` (all layers, K and V).
inline double KvBytesRead(const ModelConfig& c, double ctx, size_t elt_size) {
  return 2.0 * c.num_hidden_layers * c.num_key_value_heads * double(c.head_dim) * ctx *
         double(elt_size);
}

// Device copy bandwidth, bytes read + written per second: median of
// CopyDeviceToDevice of `bytes` (memmove on CPU, cudaMemcpyAsync D2D on CUDA),
// each timed to a Synchronize, after one warm-up copy.
[[nodiscard]] inline absl::StatusOr<double> CopyBandwidth(Backend& b, size_t bytes, int reps) {
  ASSIGN_OR_RETURN(DeviceBuffer src, b.Allocate(bytes));
  ASSIGN_OR_RETURN(DeviceBuffer dst, b.Allocate(bytes));
  RETURN_IF_ERROR(b.Memset(src.data(), 0x3c, bytes, {}));
  RETURN_IF_ERROR(b.Memset(dst.data(), 0x5a, bytes, {}));
  std::vector<double> s;
  for (int r = 0; r <= reps; ++r) {
    RETURN_IF_ERROR(b.Synchronize({}));
    const auto t0 = Clock::now();
    RETURN_IF_ERROR(b.CopyDeviceToDevice(dst.data(), src.data(), bytes, {}));
    RETURN_IF_ERROR(b.Synchronize({}));
    if (r > 0) s.push_back(Seconds(t0, Clock::now()));
  }
  return 2.0 * double(bytes) / Percentile(s, 0.5);
}

// GFLOP/s of the backend's Gemm y[m,n] = x[m,k] w[n,k]^T on the model's
// weight `w` (storage dtype) with random x: best of repeats filling ~0.3 s.
[[nodiscard]] inline absl::StatusOr<double> GemmGflops(Backend& b, const void* w, int64_t m,
                                                       int64_t n, int64_t k) {
  Rng rng(7);
  std::vector<float> host(static_cast<size_t>(m * k));
  for (float& v : host) v = rng.Uniform(1.0f);
  ASSIGN_OR_RETURN(DeviceBuffer x, b.Allocate(host.size() * b.elt_size()));
  ASSIGN_OR_RETURN(DeviceBuffer y, b.Allocate(static_cast<size_t>(m * n) * b.elt_size()));
  RETURN_IF_ERROR(b.UploadConverted(host.data(), DType::kF32, m * k, x.data()));
  double best = 1e30, total = 0;
  for (int r = 0; r < 51 && (r < 4 || total < 0.3); ++r) {
    const auto t0 = Clock::now();
    RETURN_IF_ERROR(b.Gemm(x.data(), w, nullptr, m, n, k, false, y.data(), {}));
    RETURN_IF_ERROR(b.Synchronize({}));
    const double s = Seconds(t0, Clock::now());
    if (r == 0) continue;  // warm-up: handles, workspace
    best = std::min(best, s);
    total += s;
  }
  return 2.0 * double(m) * double(n) * double(k) / best / 1e9;
}

}  // namespace loraserve::forward_bench
