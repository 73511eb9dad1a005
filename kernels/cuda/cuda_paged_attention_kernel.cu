// The paged attention kernel behind LaunchPagedAttention
// (kernels/cuda/cuda_attention.h; host side in cuda_paged_attention.cc):
// causal GQA attention of a mixed batch of prefill chunks and decodes over
// the paged bf16 KV cache, fp32 online softmax (log2 domain), with split-K
// over the keys for long contexts.
//
// One kernel for every row kind. A CTA (128 threads) owns up to 16 "query
// vectors": the rows of a tile of one sequence's query rows (rows_per_cta,
// never crossing a sequence: TileOfBlock) times the q heads of one kv head
// (heads_per_cta), so GQA groups share every K/V load. grid = (row tiles,
// kv heads x head chunks, splits). Per 64-key tile of its key range:
//   1. key row offsets through the block table (threads 0..63);
//   2. K and V rows staged in shared memory with 16-byte loads (K rows padded
//      so the score reads are bank-conflict free);
//   3. scores: two threads per key (interleaved 16-byte chunks) against all
//      vectors, causal mask per vector (key <= its position);
//   4. online softmax: one warp per vector updates (max, sum, correction);
//   5. P.V: warp w accumulates keys [16w, 16w+16) into its own fp32 partials
//      (lane owns dim pairs), rescaled by the correction.
// At the end the 4 warp partials are summed through shared memory; rows whose
// keys fit in one split are normalised and written as bf16, the others write
// (o, m, l) partials to scratch for the merge kernel (cuda_attention_merge.cu).
#include <cuda_bf16.h>

#include "common/cuda/cuda_status.h"
#include "kernels/cuda/cuda_attention_plan.h"
#include "kernels/cuda/cuda_batched_util.cuh"

namespace loraserve::cuda::attention_internal {
namespace {

using batched_internal::Bf16;
using batched_internal::Bf16BitsHi;
using batched_internal::Bf16BitsLo;
using batched_internal::LoadBf16;
using batched_internal::RowTile;
using batched_internal::TileOfBlock;
using batched_internal::Unpack8;
using batched_internal::WarpMax;
using batched_internal::WarpSum;

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kKeys = kKeysPerTile;
constexpr int kVecs = kMaxVectorsPerCta;
constexpr int kKeysPerWarp = kKeys / kWarps;
static_assert(kKeys == 64, "the softmax step reads two scores per lane");
static_assert(2 * kKeys == kThreads, "the score step runs two threads per key");

template <int D>
struct Smem {
  static constexpr int kChunks = D / 8;  // 16-byte chunks per K/V row
  // K rows padded to 2 (mod 4) chunks: the 8 threads of one 16-byte access
  // phase (4 keys x 2 halves) then hit 8 distinct bank groups.
  static constexpr int kPadChunks = ((2 - kChunks) % 4 + 4) % 4;
  static constexpr int kKStride = D + 8 * kPadChunks;  // elements
  static constexpr int kKBytes = kKeys * kKStride * 2;
  static constexpr int kVBytes = kKeys * D * 2;
  static constexpr int kRedBytes = kWarps * kVecs * D * 4;  // final warp partials
  static constexpr int kTileBytes =
      kKBytes + kVBytes > kRedBytes ? kKBytes + kVBytes : kRedBytes;
};

// 16 bytes from a 2-byte aligned address, packed as one aligned load would be.
__device__ __forceinline__ uint4 Load16Unaligned(const uint8_t* p) {
  const auto* h = reinterpret_cast<const uint16_t*>(p);
  uint32_t w[4];
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    w[e] = static_cast<uint32_t>(__ldg(h + 2 * e)) | (static_cast<uint32_t>(__ldg(h + 2 * e + 1)) << 16);
  }
  return make_uint4(w[0], w[1], w[2], w[3]);
}

template <int D>
__global__ void __launch_bounds__(kThreads) PagedAttentionKernel(const AttentionParams p) {
  using L = Smem<D>;
  constexpr int kChunks = L::kChunks;
  constexpr int kPairs = D / 2;
  constexpr int kPairsPerLane = (kPairs + 31) / 32;
  constexpr int kLoads = kKeys * kChunks / kThreads;  // 16-byte K (and V) loads per thread
  static_assert(D % 16 == 0 && (kKeys * kChunks) % kThreads == 0, "unsupported head_dim");

  __shared__ __align__(16) uint8_t tile_mem[L::kTileBytes];
  __shared__ __align__(16) float q_s[kVecs * D];     // query vectors, fp32 (exact bf16)
  __shared__ __align__(16) float p_s[kVecs * kKeys]; // scores, then probabilities
  __shared__ float m_s[kVecs];                       // running max (log2 domain)
  __shared__ float l_s[kVecs];                       // running sum
  __shared__ float corr_s[kVecs];                    // rescale of this tile
  __shared__ int32_t pos_s[kVecs];                   // position of each vector's row
  __shared__ int64_t key_off_s[kKeys];               // K row byte offset, -1 past the range
  Bf16* k_s = reinterpret_cast<Bf16*>(tile_mem);              // [kKeys, kKStride]
  Bf16* v_s = reinterpret_cast<Bf16*>(tile_mem + L::kKBytes); // [kKeys, D]
  float* red_s = reinterpret_cast<float*>(tile_mem);          // [kWarps, kVecs, D] at the end

  const auto* q = static_cast<const Bf16*>(p.q);
  auto* out = static_cast<Bf16*>(p.out);
  const auto* kv_base = static_cast<const uint8_t*>(p.kv_base);
  const int tid = threadIdx.x;
  const int lane = tid & 31;
  const int warp = tid >> 5;

  // Rows, heads and keys of this CTA (uniform across the block).
  const RowTile tile = TileOfBlock(blockIdx.x, p.num_main_tiles, p.rows_per_cta, p.query_start,
                                   p.num_seqs, p.num_tokens);
  if (tile.begin >= tile.end) return;
  const int32_t seq = tile.group;
  const int64_t q_begin = p.query_start[seq];
  const int64_t q_len = p.query_start[seq + 1] - q_begin;
  const int64_t first_pos = static_cast<int64_t>(p.seq_lens[seq]) - q_len;  // of row q_begin
  const int64_t tile_keys = first_pos + (tile.end - q_begin);  // keys of the tile's last row
  const int32_t kvh = blockIdx.y / p.head_chunks;
  const int32_t chunk = blockIdx.y - kvh * p.head_chunks;
  const int32_t h0 = kvh * p.group + chunk * p.heads_per_cta;
  const int32_t nh = min(p.heads_per_cta, p.group - chunk * p.heads_per_cta);
  const int32_t nq = static_cast<int32_t>(tile.end - tile.begin) * nh;  // <= kVecs (host plan)
  const int32_t split = blockIdx.z;
  const int64_t kb = split * p.keys_per_split;
  if (kb >= tile_keys) return;
  const int64_t ke =
      split == p.num_splits - 1 ? tile_keys : min(tile_keys, kb + p.keys_per_split);

  // Vector i: tile row i / nh, q head h0 + i % nh.
  if (tid < kVecs) {
    m_s[tid] = -INFINITY;
    l_s[tid] = 0.0f;
    corr_s[tid] = 1.0f;
    pos_s[tid] =
        tid < nq ? static_cast<int32_t>(first_pos + (tile.begin - q_begin) + tid / nh) : -1;
  }
  for (int idx = tid; idx < kVecs * D; idx += kThreads) {
    const int i = idx / D;
    const int d = idx - i * D;
    float value = 0.0f;
    if (i < nq) {
      const int64_t row = tile.begin + i / nh;
      const int64_t h = h0 + i % nh;
      value = LoadBf16(q + row * p.q_row_stride + h * D + d);
    }
    q_s[idx] = value;
  }

  float acc[kVecs][kPairsPerLane][2];
#pragma unroll
  for (int i = 0; i < kVecs; ++i) {
#pragma unroll
    for (int pl = 0; pl < kPairsPerLane; ++pl) acc[i][pl][0] = acc[i][pl][1] = 0.0f;
  }
  const int32_t* table = p.block_tables + static_cast<int64_t>(seq) * p.max_blocks_per_seq;
  const int64_t head_offset = static_cast<int64_t>(kvh) * D;

  for (int64_t t0 = kb; t0 < ke; t0 += kKeys) {
    const int nkeys = static_cast<int>(min(static_cast<int64_t>(kKeys), ke - t0));
    // 1. Where each key's K row lives.
    if (tid < kKeys) {
      int64_t off = -1;
      if (tid < nkeys) {
        const int64_t pos = t0 + tid;
        const int64_t block = table[pos / p.block_tokens];
        off = block * p.block_stride_bytes +
              (p.k_layer_offset + (pos % p.block_tokens) * p.slot_stride + head_offset) * 2;
      }
      key_off_s[tid] = off;
    }
    __syncthreads();  // also: every warp is past the previous tile's P.V

    // 2. Stage K and V (zeros past nkeys, so 0 * V never meets garbage).
    {
      uint4 kr[kLoads];
      uint4 vr[kLoads];
#pragma unroll
      for (int l = 0; l < kLoads; ++l) {
        const int c = tid + l * kThreads;
        const int j = c / kChunks;
        const int cc = c - j * kChunks;
        const int64_t off = key_off_s[j];
        if (off < 0) {
          kr[l] = make_uint4(0u, 0u, 0u, 0u);
          vr[l] = kr[l];
        } else {
          const uint8_t* krow = kv_base + off + cc * 16;
          const uint8_t* vrow = krow + p.v_minus_k * 2;
          if (p.kv_vec_ok) {
            kr[l] = __ldg(reinterpret_cast<const uint4*>(krow));
            vr[l] = __ldg(reinterpret_cast<const uint4*>(vrow));
          } else {
            kr[l] = Load16Unaligned(krow);
            vr[l] = Load16Unaligned(vrow);
          }
        }
      }
#pragma unroll
      for (int l = 0; l < kLoads; ++l) {
        const int c = tid + l * kThreads;
        const int j = c / kChunks;
        const int cc = c - j * kChunks;
        *reinterpret_cast<uint4*>(k_s + j * L::kKStride + cc * 8) = kr[l];
        *reinterpret_cast<uint4*>(v_s + j * D + cc * 8) = vr[l];
      }
    }
    __syncthreads();

    // 3. Scores (log2 domain), masked to -inf past the range or the row's position.
    {
      const int j = tid >> 1;
      const int half = tid & 1;
      float s[kVecs];
#pragma unroll
      for (int i = 0; i < kVecs; ++i) s[i] = 0.0f;
#pragma unroll
      for (int c = 0; c < kChunks / 2; ++c) {
        const int cc = 2 * c + half;
        float kf[8];
        Unpack8(*reinterpret_cast<const uint4*>(k_s + j * L::kKStride + cc * 8), kf);
#pragma unroll
        for (int i = 0; i < kVecs; ++i) {
          if (i < nq) {
            const float4 qa = *reinterpret_cast<const float4*>(q_s + i * D + cc * 8);
            const float4 qb = *reinterpret_cast<const float4*>(q_s + i * D + cc * 8 + 4);
            float t = s[i];
            t = fmaf(qa.x, kf[0], t);
            t = fmaf(qa.y, kf[1], t);
            t = fmaf(qa.z, kf[2], t);
            t = fmaf(qa.w, kf[3], t);
            t = fmaf(qb.x, kf[4], t);
            t = fmaf(qb.y, kf[5], t);
            t = fmaf(qb.z, kf[6], t);
            t = fmaf(qb.w, kf[7], t);
            s[i] = t;
          }
        }
      }
      const int64_t key = t0 + j;
#pragma unroll
      for (int i = 0; i < kVecs; ++i) {
        if (i < nq) {
          const float total = s[i] + __shfl_xor_sync(0xffffffffu, s[i], 1);
          if ((i & 1) == half) {
            const bool live = j < nkeys && key <= pos_s[i];
            p_s[i * kKeys + j] = live ? total * p.scale_log2 : -INFINITY;
          }
        }
      }
    }
    __syncthreads();

    // 4. Online softmax: one warp per vector, two keys per lane.
    for (int i = warp; i < nq; i += kWarps) {
      const float a = p_s[i * kKeys + lane];
      const float b = p_s[i * kKeys + lane + 32];
      const float m_old = m_s[i];
      const float m_new = fmaxf(m_old, WarpMax(fmaxf(a, b)));
      float pa = 0.0f;
      float pb = 0.0f;
      float corr = 1.0f;
      if (m_new != -INFINITY) {  // else nothing live yet: keep zeros
        pa = exp2f(a - m_new);
        pb = exp2f(b - m_new);
        corr = exp2f(m_old - m_new);
      }
      p_s[i * kKeys + lane] = pa;
      p_s[i * kKeys + lane + 32] = pb;
      const float sum = WarpSum(pa + pb);
      if (lane == 0) {
        m_s[i] = m_new;
        l_s[i] = fmaf(l_s[i], corr, sum);
        corr_s[i] = corr;
      }
    }
    __syncthreads();

    // 5. P.V into this warp's partials.
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      if (i < nq) {
        const float c = corr_s[i];
#pragma unroll
        for (int pl = 0; pl < kPairsPerLane; ++pl) {
          acc[i][pl][0] *= c;
          acc[i][pl][1] *= c;
        }
      }
    }
    const int j_end = min(warp * kKeysPerWarp + kKeysPerWarp, nkeys);
    for (int j = warp * kKeysPerWarp; j < j_end; ++j) {
      float vf[kPairsPerLane][2];
#pragma unroll
      for (int pl = 0; pl < kPairsPerLane; ++pl) {
        const int pr = lane + 32 * pl;
        if (pr < kPairs) {
          const uint32_t w = *reinterpret_cast<const uint32_t*>(v_s + j * D + 2 * pr);
          vf[pl][0] = Bf16BitsLo(w);
          vf[pl][1] = Bf16BitsHi(w);
        } else {
          vf[pl][0] = vf[pl][1] = 0.0f;
        }
      }
#pragma unroll
      for (int i = 0; i < kVecs; ++i) {
        if (i < nq) {
          const float pij = p_s[i * kKeys + j];
#pragma unroll
          for (int pl = 0; pl < kPairsPerLane; ++pl) {
            acc[i][pl][0] = fmaf(pij, vf[pl][0], acc[i][pl][0]);
            acc[i][pl][1] = fmaf(pij, vf[pl][1], acc[i][pl][1]);
          }
        }
      }
    }
  }

  // Sum the warp partials; write the output or this split's partial.
  __syncthreads();  // red_s overlays k_s / v_s
#pragma unroll
  for (int i = 0; i < kVecs; ++i) {
    if (i < nq) {
#pragma unroll
      for (int pl = 0; pl < kPairsPerLane; ++pl) {
        const int pr = lane + 32 * pl;
        if (pr < kPairs) {
          *reinterpret_cast<float2*>(red_s + (warp * kVecs + i) * D + 2 * pr) =
              make_float2(acc[i][pl][0], acc[i][pl][1]);
        }
      }
    }
  }
  __syncthreads();
  for (int idx = tid; idx < nq * D; idx += kThreads) {
    const int i = idx / D;
    const int d = idx - i * D;
    float o = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) o += red_s[(w * kVecs + i) * D + d];
    const int64_t row = tile.begin + i / nh;
    const int64_t h = h0 + i % nh;
    const int32_t n = SplitsOfRow(pos_s[i], p.keys_per_split, p.num_splits);
    if (n <= 1) {
      // All of this row's keys are in split 0.
      if (split == 0) out[row * p.out_row_stride + h * D + d] = __float2bfloat16_rn(o / l_s[i]);
    } else if (split < n) {
      const int64_t base = (row * p.num_q_heads + h) * p.num_splits + split;
      p.o_part[base * D + d] = o;
      if (d == 0) p.ml_part[base] = make_float2(m_s[i], l_s[i]);
    }
  }
}

template <int D>
absl::Status LaunchForDim(const AttentionParams& params, const AttentionLaunchShape& shape,
                          cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(shape.grid_x), static_cast<unsigned>(shape.grid_y),
                  static_cast<unsigned>(shape.num_splits));
  PagedAttentionKernel<D><<<grid, kThreads, 0, stream>>>(params);
  RETURN_IF_CUDA_ERROR(cudaGetLastError());
  return absl::OkStatus();
}

}  // namespace

absl::Status LaunchAttentionKernel(const AttentionParams& params,
                                   const AttentionLaunchShape& shape, cudaStream_t stream) {
  switch (params.head_dim) {
    case 64:
      return LaunchForDim<64>(params, shape, stream);
    case 80:
      return LaunchForDim<80>(params, shape, stream);
    case 96:
      return LaunchForDim<96>(params, shape, stream);
    case 128:
      return LaunchForDim<128>(params, shape, stream);
    default:
      return absl::InvalidArgumentError("PagedAttention: unsupported head_dim");
  }
}

}  // namespace loraserve::cuda::attention_internal
