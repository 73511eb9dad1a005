// CpuBackend::FillRandom: the counter-based uniform values of
// kernels/counter_random.h, written as fp32 (the CPU storage dtype) over the
// backend's thread pool. Called through Backend (ModelWeights::CreateRandom,
// tests).
#include <cstdint>

#include "common/status.h"
#include "kernels/counter_random.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/cpu_graph.h"
#include "kernels/op_checks.h"

namespace loraserve {

namespace {
// Elements per parallel chunk: a hash costs a few ns, so chunks stay large.
constexpr int64_t kMinElementsPerChunk = int64_t{1} << 16;
}  // namespace

absl::Status CpuBackend::FillRandom(void* dst, int64_t n, uint64_t seed, float lo, float hi,
                                    StreamRef stream) {
  LS_CPU_RECORD(stream, FillRandom(dst, n, seed, lo, hi, StreamRef{}));
  ASSIGN_OR_RETURN(const bool has_work, op_checks::CheckFillRandomArgs(dst, n, lo, hi));
  if (!has_work) return absl::OkStatus();
  auto* d = static_cast<float*>(dst);
  pool_.ParallelFor(n, kMinElementsPerChunk, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      d[i] = CounterUniformIn(seed, static_cast<uint64_t>(i), lo, hi);
    }
  });
  return absl::OkStatus();
}

}  // namespace loraserve
