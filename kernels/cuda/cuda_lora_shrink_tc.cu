// LoRA shrink on tensor cores (LoraKernel::kSgmvTc, kernels/cuda/cuda_lora_tc.h):
// v[t, s, i] = x[t, :] . A_{g,s}[i, :] in fp32 for i < rank of token t's
// segment g and slice s; nothing else of v is written. Launched only by
// LaunchLoraShrinkWith (kernels/cuda/cuda_lora_shrink.cu); the CPU twin is
// CpuBackend::LoraShrink (kernels/cpu/cpu_lora.cc).
//
// Work. grid = (token tiles, slices x 64-rank tiles, k_splits), 128 threads,
//   thread block clusters of (1, 1, k_splits). A CTA owns up to 64 tokens of
//   one segment (TileOfBlock), up to 64 rank-rows of one slice, and the input
//   columns [z * span, (z + 1) * span) (span = whole 64-column steps). Warp w
//   multiplies token rows 16w..16w+15 by every 16-rank fragment below the
//   slice's rank (wmma bf16 16x16x16, fp32 accumulators); warps past the
//   tile's last token and fragments past the rank do no MMAs.
// Staging. Per 64-column step, x[64 x 64] and A[64 x 64] go global ->
//   registers -> shared memory as raw bf16: 16-byte loads where the address is
//   16-byte aligned and 8 columns remain, 2-byte loads otherwise (A rows are
//   only 2-byte aligned in general). Columns past the split's end, rows past
//   the tile's tokens and rank-rows past the rank are stored as zeros, so the
//   padding adds exact zeros (never 0 x NaN). The next step's loads are issued
//   before this step's MMAs (register double buffering: ~16 KB in flight per
//   CTA). Shared rows are 72 bf16 (144 bytes): every fragment pointer (row
//   16i, column 16j) is 32-byte aligned, ldm = 72 is a multiple of 8, and the
//   8 rows of one ldmatrix phase start 4 banks apart (no bank conflicts).
// Reduction. Each CTA stores its accumulators as a fp32 partial tile [64][68]
//   (reusing the staging buffers). After a cluster barrier, CTA z of the
//   cluster sums rows [z * 64 / k_splits, (z + 1) * 64 / k_splits) of all the
//   cluster's partial tiles in cluster-rank order through distributed shared
//   memory (deterministic) and writes v for tokens < tile end, ranks < rank.
//   A second cluster barrier keeps every partial tile alive until read.
//   Clusters need sm_90: an image compiled for an older architecture (sm_80)
//   has no cluster code, and the launcher runs it with k_splits = 1.
// Numerics (u = 2^-24). bf16 x bf16 products are exact in fp32. A 16-deep
//   MMA adds 16 products to the accumulator c; modelled as in Fasi et al.
//   2021 ("Numerical behavior of NVIDIA tensor cores"; products aligned to
//   the largest addend and truncated, the sum normalised by truncation, in
//   sums of 8 or 16 terms) each MMA errs by at most 40 u (|c| + sum |p|). So
//   |v - exact| <= (40 ceil(in / 16) + k_splits) u sum_k |x_k a_k|, the
//   k_splits term for the fp32 adds of the partial tiles.
#include <cooperative_groups.h>
#include <cuda_bf16.h>
#include <mma.h>

#include <limits>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

#include "common/cuda/cuda_status.h"
#include "common/status.h"
#include "kernels/cuda/cuda_batched_util.cuh"
#include "kernels/cuda/cuda_lora_device.cuh"
#include "kernels/cuda/cuda_lora_internal.h"
#include "kernels/cuda/cuda_lora_tc.h"

namespace loraserve::cuda::lora_internal {
namespace {

namespace cg = cooperative_groups;
namespace wmma = nvcuda::wmma;
using batched_internal::Bf16;
using batched_internal::RowTile;
using batched_internal::TileOfBlock;

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kK = 64;                                  // input columns per step
constexpr int kStride = kK + 8;                         // bf16 per staged row (144 bytes)
constexpr int kOutStride = kTcShrinkRanks + 4;          // floats per partial-tile row (272 bytes)
constexpr int kChunksPerRow = kK / 8;                   // 16-byte chunks per staged row
constexpr int kRowsPerPass = kThreads / kChunksPerRow;  // staged rows covered by one pass
constexpr int kChunks = kTcTokens / kRowsPerPass;       // x chunks (and A chunks) per thread
constexpr int kRankFrags = kTcShrinkRanks / 16;
constexpr int kStageBytes = (kTcTokens + kTcShrinkRanks) * kStride * 2;
constexpr int kOutBytes = kTcTokens * kOutStride * 4;
constexpr int kSmemBytes = kStageBytes > kOutBytes ? kStageBytes : kOutBytes;
static_assert(kTcTokens == 16 * kWarps, "one 16-row fragment per warp");
static_assert(kTcShrinkRanks == kTcTokens, "x and A tiles share the chunk mapping");
static_assert((16 * kStride * 2) % 32 == 0 && (kTcTokens * kStride * 2) % 32 == 0,
              "bf16 fragment pointers 32-byte aligned");
static_assert((16 * kOutStride * 4) % 32 == 0, "fp32 fragment pointers 32-byte aligned");
static_assert(kStride % 8 == 0 && kOutStride % 4 == 0, "wmma ldm");
static_assert(kTcTokens % kTcShrinkMaxSplits == 0, "reduction rows split evenly");

__global__ void __launch_bounds__(kThreads)
    SgmvTcShrinkKernel(const Bf16* __restrict__ x /* [num_tokens, in] */, int64_t in,
                       const LoraKernelArgs a, int64_t num_main_tiles, int32_t rank_tiles,
                       int64_t split_span,
                       float* __restrict__ v /* [num_tokens, num_slices, max_rank] */) {
  __shared__ __align__(128) unsigned char smem[kSmemBytes];
  Bf16* x_s = reinterpret_cast<Bf16*>(smem);       // [kTcTokens][kStride]: x rows of the tile
  Bf16* a_s = x_s + kTcTokens * kStride;           // [kTcShrinkRanks][kStride]: A rows r0..
  float* part_s = reinterpret_cast<float*>(smem);  // [kTcTokens][kOutStride], after the K loop

  // Every return below depends on blockIdx.x and blockIdx.y only, so a whole
  // cluster (clusters span blockIdx.z) takes it or none of it does.
  const int32_t s = blockIdx.y / rank_tiles;
  const int32_t r0 = (blockIdx.y - s * rank_tiles) * kTcShrinkRanks;
  SgmvWork work;
  if (!FindSgmvWork(a, num_main_tiles, kTcTokens, s, &work)) return;
  const RowTile& tile = work.tile;
  const LoraSlice& sl = work.slice;
  const int32_t rank = work.rank;
  if (r0 >= rank) return;
  const int32_t nr = min(kTcShrinkRanks, rank - r0);
  const int32_t nt = work.nt;
  const int32_t n_frags = (nr + 15) / 16;
  const int64_t k_begin = min(in, static_cast<int64_t>(blockIdx.z) * split_span);
  const int64_t k_end = min(in, k_begin + split_span);

  const int tid = threadIdx.x;
  const int warp = tid >> 5;
  const int row0 = tid / kChunksPerRow;        // staged rows row0 + kRowsPerPass * l
  const int col8 = (tid % kChunksPerRow) * 8;  // first of this thread's 8 staged columns
  const Bf16* x_rows[kChunks];                 // [in] each, or null past the tile
  const Bf16* a_rows[kChunks];                 // [in] each, or null past the rank
#pragma unroll
  for (int l = 0; l < kChunks; ++l) {
    const int m = row0 + kRowsPerPass * l;
    x_rows[l] = m < nt ? x + (tile.begin + m) * in : nullptr;
    a_rows[l] =
        m < nr ? reinterpret_cast<const Bf16*>(a.rows_base + sl.a_row_offsets[r0 + m]) : nullptr;
  }
  uint4 x_next[kChunks];
  uint4 a_next[kChunks];
  auto load_step = [&](int64_t k0) {
    const int64_t k = k0 + col8;
#pragma unroll
    for (int l = 0; l < kChunks; ++l) {
      x_next[l] = x_rows[l] != nullptr && k < k_end ? LoadRaw8(x_rows[l] + k, k_end - k)
                                                    : make_uint4(0, 0, 0, 0);
      a_next[l] = a_rows[l] != nullptr && k < k_end ? LoadRaw8(a_rows[l] + k, k_end - k)
                                                    : make_uint4(0, 0, 0, 0);
    }
  };

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[kRankFrags];
#pragma unroll
  for (int j = 0; j < kRankFrags; ++j) wmma::fill_fragment(acc[j], 0.0f);
  const bool warp_has_rows = 16 * warp < nt;  // warp-uniform
  if (k_begin < k_end) load_step(k_begin);
  for (int64_t k0 = k_begin; k0 < k_end; k0 += kK) {
#pragma unroll
    for (int l = 0; l < kChunks; ++l) {
      const int m = row0 + kRowsPerPass * l;
      *reinterpret_cast<uint4*>(x_s + m * kStride + col8) = x_next[l];
      *reinterpret_cast<uint4*>(a_s + m * kStride + col8) = a_next[l];
    }
    __syncthreads();
    if (k0 + kK < k_end) load_step(k0 + kK);
    if (warp_has_rows) {
      const int k_frags = static_cast<int>((min(int64_t{kK}, k_end - k0) + 15) / 16);
#pragma unroll
      for (int kf = 0; kf < kK / 16; ++kf) {
        if (kf >= k_frags) break;  // the rest of the step is zero padding
        wmma::fragment<wmma::matrix_a, 16, 16, 16, Bf16, wmma::row_major> xf;
        wmma::load_matrix_sync(xf, x_s + 16 * warp * kStride + 16 * kf, kStride);
#pragma unroll
        for (int j = 0; j < kRankFrags; ++j) {
          if (j < n_frags) {
            // B[k][n] = A[r0 + 16j + n][k]: the staged A rows read column-major.
            wmma::fragment<wmma::matrix_b, 16, 16, 16, Bf16, wmma::col_major> af;
            wmma::load_matrix_sync(af, a_s + 16 * j * kStride + 16 * kf, kStride);
            wmma::mma_sync(acc[j], xf, af, acc[j]);
          }
        }
      }
    }
    __syncthreads();  // staging is read; the next step (or part_s) overwrites it
  }
#pragma unroll
  for (int j = 0; j < kRankFrags; ++j) {
    if (j < n_frags) {
      wmma::store_matrix_sync(part_s + 16 * warp * kOutStride + 16 * j, acc[j], kOutStride,
                              wmma::mem_row_major);
    }
  }

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
  // Compiled without thread block clusters (before sm_90): the launcher then
  // runs k_splits == 1 only (KernelHasClusters), so this tile is the whole sum.
  __syncthreads();  // every warp's fragments are in part_s
  for (int e = tid; e < kTcTokens * kTcShrinkRanks; e += kThreads) {
    const int m = e / kTcShrinkRanks;
    const int c = e % kTcShrinkRanks;
    if (m >= nt || c >= nr) continue;
    v[((tile.begin + m) * a.num_slices + s) * a.max_rank + r0 + c] = part_s[m * kOutStride + c];
  }
#else
  cg::cluster_group cluster = cg::this_cluster();
  cluster.sync();  // every partial tile of the cluster is in shared memory
  const int splits = static_cast<int>(cluster.num_blocks());
  const int rows_per_cta = kTcTokens / splits;
  const int m0 = static_cast<int>(cluster.block_rank()) * rows_per_cta;
  for (int e = tid; e < rows_per_cta * kTcShrinkRanks; e += kThreads) {
    const int m = m0 + e / kTcShrinkRanks;
    const int c = e % kTcShrinkRanks;
    if (m >= nt || c >= nr) continue;
    const int off = m * kOutStride + c;
    float sum = cluster.map_shared_rank(part_s, 0)[off];
    for (int q = 1; q < splits; ++q) sum += cluster.map_shared_rank(part_s, q)[off];
    v[((tile.begin + m) * a.num_slices + s) * a.max_rank + r0 + c] = sum;
  }
  cluster.sync();  // no CTA leaves while another still reads its partial tile
#endif
}

// True when the kernel image the current device runs was compiled with
// thread block clusters (virtual architecture sm_90 or newer: the
// __CUDA_ARCH__ the cluster code above is guarded by). A build for sm_80
// (A100, which CudaBackend accepts) has no cluster code: k_splits is 1 there.
absl::StatusOr<bool> KernelHasClusters() {
  cudaFuncAttributes attr;
  const cudaError_t err = cudaFuncGetAttributes(&attr, SgmvTcShrinkKernel);
  if (err != cudaSuccess) (void)cudaGetLastError();  // not left for the next launch check
  RETURN_IF_CUDA_ERROR(err);
  return attr.ptxVersion >= 90;
}

}  // namespace

absl::Status LaunchSgmvTcShrink(const Bf16* x, int64_t in, const LoraKernelArgs& args,
                                int32_t k_splits, float* v, cudaStream_t stream) {
  ASSIGN_OR_RETURN(const bool clusters, KernelHasClusters());
  if (!clusters) k_splits = 1;
  const int64_t main_tiles = (args.num_tokens + kTcTokens - 1) / kTcTokens;
  if (main_tiles + args.num_segments > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat("LoraShrink: ", main_tiles, " token tiles + num_segments=", args.num_segments,
                     " exceed the 2^31-1 CTAs of a grid row"));
  }
  const int32_t rank_tiles = (args.max_rank + kTcShrinkRanks - 1) / kTcShrinkRanks;
  const int64_t steps = (in + kK - 1) / kK;
  const int64_t split_span = (steps + k_splits - 1) / k_splits * kK;

  cudaLaunchAttribute cluster;
  cluster.id = cudaLaunchAttributeClusterDimension;
  cluster.val.clusterDim.x = 1;
  cluster.val.clusterDim.y = 1;
  cluster.val.clusterDim.z = static_cast<unsigned>(k_splits);
  cudaLaunchConfig_t config = {};
  config.gridDim =
      dim3(static_cast<unsigned>(main_tiles + args.num_segments),
           static_cast<unsigned>(args.num_slices * rank_tiles), static_cast<unsigned>(k_splits));
  config.blockDim = dim3(kThreads);
  config.dynamicSmemBytes = 0;
  config.stream = stream;
  config.attrs = &cluster;
  config.numAttrs = clusters ? 1 : 0;  // no cluster attribute where the image has none
  const cudaError_t launched = cudaLaunchKernelEx(&config, SgmvTcShrinkKernel, x, in, args,
                                                  main_tiles, rank_tiles, split_span, v);
  // A failed launch is also the thread's last error: clear it, or the next
  // op's launch check (cudaGetLastError) would report it a second time.
  if (launched != cudaSuccess) (void)cudaGetLastError();
  RETURN_IF_CUDA_ERROR(launched);
  RETURN_IF_CUDA_ERROR(cudaGetLastError());
  return absl::OkStatus();
}

}  // namespace loraserve::cuda::lora_internal
