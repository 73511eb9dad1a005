// LoRA expand on tensor cores (LoraKernel::kSgmvTc, kernels/cuda/cuda_lora_tc.h):
//   y[t, cols.offsets[s] + j] += scale_{g,s} * sum_{i<rank} v[t, s, i] * B^T_{g,s}[i, j]
// with y read once and rounded to bf16 once, exactly as the other expand
// kernels do it (AddToY, kernels/cuda/cuda_lora_device.cuh). Launched only by
// LaunchLoraExpandWith (kernels/cuda/cuda_lora_expand.cu); the CPU twin is
// CpuBackend::LoraExpand (kernels/cpu/cpu_lora.cc).
//
// Work. grid = (token tiles, slice, 128-column chunks), 256 threads. A CTA
//   owns up to 64 tokens of one segment (TileOfBlock) x 128 columns of one
//   slice. Warp w computes token rows 16 (w % 4).. x columns 64 (w / 4)..
//   (four 16 x 16 fragments); warps past the tile's tokens or the slice's
//   width do no MMAs, fragments past the width are skipped.
// v stays fp32. Each v value is split exactly into three bf16,
//   v = hi + mid + lo (SplitBf16x3: top, middle and last 8 of its 24
//   significant bits), and B^T is bf16 already, so hi.B, mid.B and lo.B are
//   exact products. hi.B accumulates into one fp32 fragment, mid.B + lo.B
//   (at most 2^-8 of it) into a second, and the two are added once at the
//   end. Per 64-rank step, v[64 x 64] is read (float4 where aligned), split,
//   and stored as three bf16 planes; B^T[64 x 128] is staged as raw bf16 (16-
//   byte loads where aligned, 2-byte otherwise). Ranks past the slice's rank,
//   tokens past the tile and columns past the width are stored as zeros:
//   v past a rank is never read (it may be anything, NaN included).
//   Shared rows are 72 / 136 bf16 and 132 floats: every fragment pointer is
//   32-byte aligned, every ldm a multiple of 8 (bf16) or 4 (fp32).
// Epilogue. The summed fragments go to shared memory (fp32 [64][132], reusing
//   the staging buffers); each thread then adds 8 columns of a row into y with
//   AddToY<8>: y = bf16(float(y) + acc * scale), one rounding, as the SGMV and
//   BGMV expands do.
// Numerics (u = 2^-24, S = sum_i |v_i b_ij|, n = ceil(rank / 16)). The split
//   is exact (|v| >= 2^-110). With the 16-deep MMA model of
//   cuda_lora_shrink_tc.cu (<= 40 u (|c| + sum |p|) each) the hi
//   accumulator errs by <= 40 n u S, the correction accumulator (2n MMAs on
//   terms <= 2^-8 |v b|) by <= 80 n 2^-8 u S, and their final add by
//   <= u S: |acc - exact| <= (41 n + 1) u S, before the scale-and-round that
//   all expand kernels share. The alternatives lose more: v rounded to bf16
//   errs by up to 2^-8 S, a hi + lo split by 2^-16 S = 256 u S, tf32 by
//   2^-11 S; the third MMA per fragment is cheap next to y's read and write.
#include <cuda_bf16.h>
#include <mma.h>

#include <limits>

#include "absl/strings/str_cat.h"

#include "common/cuda/cuda_status.h"
#include "kernels/cuda/cuda_batched_util.cuh"
#include "kernels/cuda/cuda_lora_device.cuh"
#include "kernels/cuda/cuda_lora_internal.h"
#include "kernels/cuda/cuda_lora_tc.h"

namespace loraserve::cuda::lora_internal {
namespace {

namespace wmma = nvcuda::wmma;
using batched_internal::Aligned16;
using batched_internal::Bf16;
using batched_internal::RowTile;
using batched_internal::TileOfBlock;

constexpr int kThreads = 256;
constexpr int kRowWarps = kTcTokens / 16;  // warps along the tokens (4)
constexpr int kWarpCols = kTcExpandCols / (kThreads / 32 / kRowWarps);  // columns per warp (64)
constexpr int kColFrags = kWarpCols / 16;                               // fragments per warp (4)
constexpr int kK = 64;                                                  // ranks per step
constexpr int kVStride = kK + 8;                        // bf16 per v-plane row (144 bytes)
constexpr int kBStride = kTcExpandCols + 8;             // bf16 per B^T row (272 bytes)
constexpr int kOutStride = kTcExpandCols + 4;           // floats per output row (528 bytes)
constexpr int kPlaneElems = kTcTokens * kVStride;       // bf16 per v plane
constexpr int kVQuads = kTcTokens * kK / 4 / kThreads;  // v float4s per thread per step
constexpr int kBChunksPerRow = kTcExpandCols / 8;
constexpr int kBChunks = kK * kBChunksPerRow / kThreads;         // B^T 16-byte chunks per thread
constexpr int kYChunks = kTcTokens * kBChunksPerRow / kThreads;  // 8-column y chunks per thread
constexpr int kStageBytes = (3 * kPlaneElems + kK * kBStride) * 2;
constexpr int kOutBytes = kTcTokens * kOutStride * 4;
constexpr int kSmemBytes = kStageBytes > kOutBytes ? kStageBytes : kOutBytes;
static_assert(kRowWarps * 16 == kTcTokens && kColFrags * 16 == kWarpCols, "warp tiling");
static_assert(kTcTokens * kK == 4 * kVQuads * kThreads, "v quads per thread");
static_assert(kK * kBChunksPerRow == kBChunks * kThreads, "B^T chunks per thread");
static_assert(kTcTokens * kBChunksPerRow == kYChunks * kThreads, "y chunks per thread");
static_assert((16 * kVStride * 2) % 32 == 0 && (kPlaneElems * 2) % 32 == 0,
              "v fragment pointers 32-byte aligned");
static_assert((16 * kBStride * 2) % 32 == 0 && (3 * kPlaneElems * 2) % 32 == 0,
              "B^T fragment pointers 32-byte aligned");
static_assert((16 * kOutStride * 4) % 32 == 0, "fp32 fragment pointers 32-byte aligned");
static_assert(kVStride % 8 == 0 && kBStride % 8 == 0 && kOutStride % 4 == 0, "wmma ldm");
static_assert(kSmemBytes <= 48 * 1024, "static shared memory");

// The four bf16 of a v quad's plane as one 8-byte word pair.
__device__ __forceinline__ uint2 Pack4(__nv_bfloat16 a, __nv_bfloat16 b, __nv_bfloat16 c,
                                       __nv_bfloat16 d) {
  return make_uint2(static_cast<uint32_t>(__bfloat16_as_ushort(a)) |
                        (static_cast<uint32_t>(__bfloat16_as_ushort(b)) << 16),
                    static_cast<uint32_t>(__bfloat16_as_ushort(c)) |
                        (static_cast<uint32_t>(__bfloat16_as_ushort(d)) << 16));
}

__global__ void __launch_bounds__(kThreads)
    SgmvTcExpandKernel(const float* __restrict__ v /* [num_tokens, num_slices, max_rank] */,
                       const LoraKernelArgs a, const LoraColumnArgs cols, int64_t num_main_tiles,
                       Bf16* __restrict__ y /* [num_tokens, y_cols] */, int64_t y_cols) {
  __shared__ __align__(128) unsigned char smem[kSmemBytes];
  Bf16* v_s = reinterpret_cast<Bf16*>(smem);      // [3][kTcTokens][kVStride]: hi, mid, lo planes
  Bf16* b_s = v_s + 3 * kPlaneElems;              // [kK][kBStride]: B^T rows k0.., columns n0..
  float* out_s = reinterpret_cast<float*>(smem);  // [kTcTokens][kOutStride], after the K loop

  const int32_t s = blockIdx.y;
  const int64_t n0 = static_cast<int64_t>(blockIdx.z) * kTcExpandCols;
  const int64_t col_begin = ColumnOffset(cols, s);
  const int64_t width = ColumnOffset(cols, s + 1) - col_begin;
  if (n0 >= width) return;
  SgmvWork work;
  if (!FindSgmvWork(a, num_main_tiles, kTcTokens, s, &work)) return;
  const RowTile& tile = work.tile;
  const LoraSlice& sl = work.slice;
  const int32_t rank = work.rank;
  const int32_t nt = work.nt;
  const int64_t cols_left = width - n0;  // > 0

  const int tid = threadIdx.x;
  const int warp = tid >> 5;
  const int wm = warp % kRowWarps;  // token rows 16 wm ..
  const int wn = warp / kRowWarps;  // columns n0 + kWarpCols wn ..
  const int64_t warp_cols = cols_left - int64_t{kWarpCols} * wn;
  const bool warp_active = 16 * wm < nt && warp_cols > 0;  // warp-uniform
  const int n_frags =
      warp_cols <= 0 ? 0 : static_cast<int>(min(int64_t{kColFrags}, (warp_cols + 15) / 16));

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[kColFrags];   // hi . B^T
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> corr[kColFrags];  // (mid + lo) . B^T
#pragma unroll
  for (int j = 0; j < kColFrags; ++j) {
    wmma::fill_fragment(acc[j], 0.0f);
    wmma::fill_fragment(corr[j], 0.0f);
  }

  for (int32_t k0 = 0; k0 < rank; k0 += kK) {
    const int32_t k_valid = min(kK, rank - k0);
    // v[tile rows, s, k0 .. k0 + 63] -> three bf16 planes.
#pragma unroll
    for (int l = 0; l < kVQuads; ++l) {
      const int e = tid + l * kThreads;
      const int m = e / (kK / 4);
      const int kq = (e % (kK / 4)) * 4;
      float f[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      if (m < nt && kq < k_valid) {
        const float* p = v + ((tile.begin + m) * a.num_slices + s) * a.max_rank + k0 + kq;
        if (kq + 4 <= k_valid && Aligned16(p)) {
          const float4 q = __ldg(reinterpret_cast<const float4*>(p));
          f[0] = q.x;
          f[1] = q.y;
          f[2] = q.z;
          f[3] = q.w;
        } else {
#pragma unroll
          for (int i = 0; i < 4; ++i) f[i] = kq + i < k_valid ? __ldg(p + i) : 0.0f;
        }
      }
      const Bf16x3 s0 = SplitBf16x3(f[0]);
      const Bf16x3 s1 = SplitBf16x3(f[1]);
      const Bf16x3 s2 = SplitBf16x3(f[2]);
      const Bf16x3 s3 = SplitBf16x3(f[3]);
      Bf16* dst = v_s + m * kVStride + kq;  // 8-byte aligned
      *reinterpret_cast<uint2*>(dst) = Pack4(s0.hi, s1.hi, s2.hi, s3.hi);
      *reinterpret_cast<uint2*>(dst + kPlaneElems) = Pack4(s0.mid, s1.mid, s2.mid, s3.mid);
      *reinterpret_cast<uint2*>(dst + 2 * kPlaneElems) = Pack4(s0.lo, s1.lo, s2.lo, s3.lo);
    }
    // B^T rows k0 .. k0 + 63, columns n0 .. n0 + 127 of the slice.
#pragma unroll
    for (int l = 0; l < kBChunks; ++l) {
      const int c = tid + l * kThreads;
      const int kr = c / kBChunksPerRow;
      const int q = (c % kBChunksPerRow) * 8;
      uint4 u = make_uint4(0, 0, 0, 0);
      if (kr < k_valid && q < cols_left) {
        const Bf16* row = reinterpret_cast<const Bf16*>(a.rows_base + sl.bt_row_offsets[k0 + kr]);
        u = LoadRaw8(row + n0 + q, cols_left - q);
      }
      *reinterpret_cast<uint4*>(b_s + kr * kBStride + q) = u;
    }
    __syncthreads();
    if (warp_active) {
      const int k_frags = (k_valid + 15) / 16;
#pragma unroll
      for (int kf = 0; kf < kK / 16; ++kf) {
        if (kf >= k_frags) break;  // the rest of the step is zero padding
        wmma::fragment<wmma::matrix_a, 16, 16, 16, Bf16, wmma::row_major> hi, mid, lo;
        const Bf16* va = v_s + 16 * wm * kVStride + 16 * kf;
        wmma::load_matrix_sync(hi, va, kVStride);
        wmma::load_matrix_sync(mid, va + kPlaneElems, kVStride);
        wmma::load_matrix_sync(lo, va + 2 * kPlaneElems, kVStride);
#pragma unroll
        for (int j = 0; j < kColFrags; ++j) {
          if (j < n_frags) {
            wmma::fragment<wmma::matrix_b, 16, 16, 16, Bf16, wmma::row_major> bf;
            wmma::load_matrix_sync(bf, b_s + 16 * kf * kBStride + kWarpCols * wn + 16 * j,
                                   kBStride);
            wmma::mma_sync(acc[j], hi, bf, acc[j]);
            wmma::mma_sync(corr[j], mid, bf, corr[j]);
            wmma::mma_sync(corr[j], lo, bf, corr[j]);
          }
        }
      }
    }
    __syncthreads();  // staging is read; the next step (or out_s) overwrites it
  }

  if (warp_active) {
#pragma unroll
    for (int j = 0; j < kColFrags; ++j) {
      if (j < n_frags) {
#pragma unroll
        for (int i = 0; i < acc[j].num_elements; ++i) acc[j].x[i] += corr[j].x[i];
        wmma::store_matrix_sync(out_s + 16 * wm * kOutStride + kWarpCols * wn + 16 * j, acc[j],
                                kOutStride, wmma::mem_row_major);
      }
    }
  }
  __syncthreads();
  // Only rows < nt and columns < width are read: all stored by active warps.
#pragma unroll
  for (int l = 0; l < kYChunks; ++l) {
    const int c = tid + l * kThreads;
    const int m = c / kBChunksPerRow;
    const int q = (c % kBChunksPerRow) * 8;
    if (m >= nt || q >= cols_left) continue;
    const float* src = out_s + m * kOutStride + q;  // 16-byte aligned
    const float4 lo4 = *reinterpret_cast<const float4*>(src);
    const float4 hi4 = *reinterpret_cast<const float4*>(src + 4);
    const float sum[8] = {lo4.x, lo4.y, lo4.z, lo4.w, hi4.x, hi4.y, hi4.z, hi4.w};
    AddToY<8>(y + (tile.begin + m) * y_cols + col_begin + n0 + q, cols_left - q, sum, sl.scale);
  }
}

}  // namespace

absl::Status LaunchSgmvTcExpand(const float* v, const LoraKernelArgs& args,
                                const LoraColumnArgs& cols, int64_t col_blocks, Bf16* y,
                                int64_t y_cols, cudaStream_t stream) {
  const int64_t main_tiles = (args.num_tokens + kTcTokens - 1) / kTcTokens;
  if (main_tiles + args.num_segments > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat("LoraExpand: ", main_tiles, " token tiles + num_segments=", args.num_segments,
                     " exceed the 2^31-1 CTAs of a grid row"));
  }
  const dim3 grid(static_cast<unsigned>(main_tiles + args.num_segments),
                  static_cast<unsigned>(args.num_slices), static_cast<unsigned>(col_blocks));
  SgmvTcExpandKernel<<<grid, kThreads, 0, stream>>>(v, args, cols, main_tiles, y, y_cols);
  RETURN_IF_CUDA_ERROR(cudaGetLastError());
  return absl::OkStatus();
}

}  // namespace loraserve::cuda::lora_internal
