// Kernel and launcher of kernels/cuda/cuda_sample_candidates.h.
#include "kernels/cuda/cuda_sample_candidates.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "common/cuda/cuda_status.h"
#include "kernels/op_args.h"

namespace loraserve::cuda {
namespace {

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;
constexpr unsigned kFull = 0xffffffffu;
// Two list positions per lane: lane and lane + 32.
static_assert(kMaxSampleCandidates == 64, "the warp lists hold 2 keys per lane");

// A 64-bit key whose unsigned order is logits_ops::Before's ranking: the high
// word orders the value (NaN lowest, -0 == +0), the low word is ~id, so a
// lower id wins a tie. Every element's key is > 0 and distinct; 0 marks an
// empty list position (below every element).
__device__ __forceinline__ uint64_t RankKey(float x, uint32_t id) {
  const uint32_t bits = __float_as_uint(x);
  uint32_t order;
  if (x != x) {
    order = 0;
  } else if (x == 0.0f) {
    order = 0x80000000u;
  } else {
    order = (bits & 0x80000000u) != 0 ? ~bits : (bits | 0x80000000u);
  }
  return (static_cast<uint64_t>(order) << 32) | static_cast<uint64_t>(~id);
}

__device__ __forceinline__ uint32_t KeyId(uint64_t key) {
  return ~static_cast<uint32_t>(key & 0xffffffffu);
}

// logits_ops' Exp4 for one lane, operation for operation, every product and
// sum rounded on its own (the host file is built without contraction):
// 2^n e^f with n = round(x / ln2), f by Cody-Waite, e^f by a degree-6
// Taylor polynomial; exactly 0 below -87.
__device__ __forceinline__ float SamplerExp(float x) {
  constexpr float kMinExponent = -87.0f;
  float xc = x < kMinExponent ? kMinExponent : x;
  xc = xc > 88.0f ? 88.0f : xc;
  const float t = __fmul_rn(xc, 1.44269504088896341f);
  const float r = __fsub_rn(__fadd_rn(t, 12582912.0f), 12582912.0f);
  const float f =
      __fsub_rn(__fsub_rn(xc, __fmul_rn(r, 0.693359375f)), __fmul_rn(r, -2.12194440e-4f));
  float p = 1.0f / 720.0f;
  p = __fadd_rn(__fmul_rn(p, f), 1.0f / 120.0f);
  p = __fadd_rn(__fmul_rn(p, f), 1.0f / 24.0f);
  p = __fadd_rn(__fmul_rn(p, f), 1.0f / 6.0f);
  p = __fadd_rn(__fmul_rn(p, f), 0.5f);
  p = __fadd_rn(__fmul_rn(p, f), 1.0f);
  p = __fadd_rn(__fmul_rn(p, f), 1.0f);
  const int n = static_cast<int>(r);  // integral, in [-126, 127] (0 for NaN: p is NaN anyway)
  const float scale = __int_as_float((n + 127) << 23);
  return x < kMinExponent ? 0.0f : __fmul_rn(p, scale);
}

// Inserts key e (greater than the list's k-th key) into a warp's sorted list
// (descending; lane holds positions lane and lane + 32 in lo and hi; positions
// >= k are don't-care): e goes after the entries greater than it, the
// entries from there on move down one, the k-th falls out.
__device__ __forceinline__ void Insert(uint64_t e, int k, int lane, uint64_t& lo, uint64_t& hi) {
  const unsigned above_lo = __ballot_sync(kFull, lane < k && lo > e);
  const unsigned above_hi = __ballot_sync(kFull, lane + 32 < k && hi > e);
  const int p = __popc(above_lo) + __popc(above_hi);      // e's position, < k
  const uint64_t lo_prev = __shfl_up_sync(kFull, lo, 1);  // position lane - 1 (lane >= 1)
  const uint64_t hi_up = __shfl_up_sync(kFull, hi, 1);    // position lane + 31 (lane >= 1)
  const uint64_t lo_last = __shfl_sync(kFull, lo, 31);    // position 31
  const uint64_t hi_prev = lane == 0 ? lo_last : hi_up;
  const int j0 = lane;
  const int j1 = lane + 32;
  lo = j0 < p ? lo : (j0 == p ? e : lo_prev);
  hi = j1 < p ? hi : (j1 == p ? e : hi_prev);
}

// Entries of a descending list[0, k) greater than e.
__device__ __forceinline__ int CountAbove(const uint64_t* list, int k, uint64_t e) {
  int lo = 0;
  int hi = k;
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (list[mid] > e) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

__global__ void __launch_bounds__(kThreads)
    SampleCandidatesKernel(const float* __restrict__ logits, int64_t vocab,
                           const float* __restrict__ temperature, int k, int32_t* __restrict__ ids,
                           float* __restrict__ values, double* __restrict__ total) {
  __shared__ uint64_t lists[kWarps][kMaxSampleCandidates];
  __shared__ float warp_max[kWarps];
  __shared__ double warp_sum[kWarps];
  __shared__ float row_max;
  const int64_t row = blockIdx.x;
  const float* x = logits + row * vocab;
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int warp = static_cast<int>(threadIdx.x) >> 5;

  // Pass 1: each warp's k best keys over its 32-element chunks (the row's
  // k best are among the union of the lists), and each thread's max
  // (fmaxf skips NaN; an all-NaN row gives NaN, as the weights will anyway).
  uint64_t lo = 0;
  uint64_t hi = 0;
  uint64_t kth = 0;  // the list's k-th key
  float m = __int_as_float(0x7fc00000);
  for (int64_t base = int64_t{warp} * 32; base < vocab; base += kThreads) {
    const int64_t j = base + lane;
    uint64_t key = 0;
    if (j < vocab) {
      const float xj = x[j];
      m = fmaxf(m, xj);
      key = RankKey(xj, static_cast<uint32_t>(j));
    }
    unsigned pending = __ballot_sync(kFull, key > kth);
    while (pending != 0) {
      const int src = __ffs(pending) - 1;
      Insert(__shfl_sync(kFull, key, src), k, lane, lo, hi);
      kth = __shfl_sync(kFull, k - 1 < 32 ? lo : hi, (k - 1) & 31);
      pending &= ~(1u << src);
      pending &= __ballot_sync(kFull, key > kth);
    }
  }
  if (lane < k) lists[warp][lane] = lo;
  if (lane + 32 < k) lists[warp][lane + 32] = hi;
  for (int offset = 16; offset > 0; offset >>= 1) {
    m = fmaxf(m, __shfl_xor_sync(kFull, m, offset));
  }
  if (lane == 0) warp_max[warp] = m;
  __syncthreads();
  if (threadIdx.x == 0) {
    float all = warp_max[0];
    for (int w = 1; w < kWarps; ++w) all = fmaxf(all, warp_max[w]);
    row_max = all;
  }

  // Each listed key's rank among all lists. Every element better than one of
  // the row's k best is itself among them, so in its warp's list: the k best
  // get their exact rank, any other listed key (or an empty 0) a rank >= k.
  for (int q = static_cast<int>(threadIdx.x); q < kWarps * k; q += kThreads) {
    const uint64_t e = lists[q / k][q % k];
    int rank = 0;
    for (int w = 0; w < kWarps && rank < k; ++w) rank += CountAbove(lists[w], k, e);
    if (rank < k && e != 0) {
      const uint32_t id = KeyId(e);
      ids[row * k + rank] = static_cast<int32_t>(id);
      values[row * k + rank] = x[id];
    }
  }
  __syncthreads();  // row_max is set

  // Pass 2: the weights exp((x - max) * (1 / T)) as logits_ops::ExpWeights
  // computes them, summed in double.
  const float x_max = row_max;
  const float scale = __fdiv_rn(1.0f, temperature[row]);
  double sum = 0.0;
  for (int64_t j = threadIdx.x; j < vocab; j += kThreads) {
    sum += static_cast<double>(SamplerExp(__fmul_rn(__fsub_rn(x[j], x_max), scale)));
  }
  for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_xor_sync(kFull, sum, offset);
  if (lane == 0) warp_sum[warp] = sum;
  __syncthreads();
  if (threadIdx.x == 0) {
    double all = 0.0;
    for (int w = 0; w < kWarps; ++w) all += warp_sum[w];
    total[row] = all;
  }
}

}  // namespace

absl::Status LaunchSampleCandidates(const float* logits, int64_t rows, int64_t vocab,
                                    const float* temperature, int32_t k, int32_t* ids,
                                    float* values, double* total, cudaStream_t stream) {
  if (rows <= 0 || vocab <= 0) return absl::OkStatus();
  if (rows > 0x7fffffff) {
    return absl::InvalidArgumentError(
        absl::StrCat("SampleCandidates: rows=", rows, " exceeds the grid"));
  }
  if (k < 1 || k > kMaxSampleCandidates || k > vocab) {
    return absl::InvalidArgumentError(absl::StrCat("SampleCandidates: k=", k, " outside [1, ",
                                                   kMaxSampleCandidates,
                                                   "] or above vocab=", vocab));
  }
  SampleCandidatesKernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
      logits, vocab, temperature, k, ids, values, total);
  RETURN_IF_CUDA_ERROR(cudaGetLastError());
  return absl::OkStatus();
}

}  // namespace loraserve::cuda
