// Backend: the list of operations the model needs, implemented once per
// device (kernels/cpu/ = the exact fp32 reference, kernels/cuda/ later) and
// created only by kernels/backend_factory.h. Callers: the model (engine/model),
// the memory pool and adapter residency (memory/), tests and benchmarks.
//
// Conventions for every op launcher:
//  - Pointers are backend memory (host memory on CPU) unless marked "host".
//    Each is commented with its shape, row-major.
//  - Activations, weights, KV cache and adapter rank-rows are in the
//    backend's storage dtype, dtype() (F32 on CPU, BF16 on CUDA), and are
//    passed as void*. The LoRA intermediate and logits are always fp32.
//  - Launchers enqueue on `stream` and return at once on CUDA (all work is
//    synchronous on CPU); they never allocate and never synchronise.
//  - Bad sizes return InvalidArgument naming the op and the bad shape. Data
//    behind pointers (token ids, block ids, ranks inside slices) is checked
//    exhaustively by the CPU backend; the CUDA backend checks host-known values.
//
// Thread-safety: one Backend may be used from several threads (the engine
// thread computes while a prefetch thread copies), but each stream from one
// thread at a time. DeviceBuffer/HostBuffer/Stream/Event handles must not
// outlive it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/dtype.h"
#include "kernels/backend_kind.h"
#include "kernels/device_handles.h"
#include "kernels/kv_layout.h"
#include "kernels/op_args.h"

namespace loraserve {

class Backend {
 public:
  virtual ~Backend() = default;
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  virtual BackendKind kind() const = 0;
  // e.g. "cpu (fp32, 8 threads)".
  virtual std::string_view name() const = 0;
  // Storage dtype of activations, weights, KV cache and adapter rows.
  virtual DType dtype() const = 0;
  size_t elt_size() const { return DTypeSize(dtype()); }

  // ---------------------------------------------------------------- memory
  // A zero-byte request returns an empty buffer. ResourceExhausted when out of memory.
  virtual absl::StatusOr<DeviceBuffer> Allocate(size_t bytes) = 0;
  // Host memory for asynchronous copies (see HostBuffer): cudaHostAlloc
  // (pinned) on CUDA, 64-byte-aligned heap on CPU. A zero-byte request returns
  // an empty buffer; ResourceExhausted when out of memory. The default (for
  // test doubles that wrap another backend) is Unimplemented; every real
  // backend overrides it together with FreeHostBuffer.
  virtual absl::StatusOr<HostBuffer> AllocateHost(size_t bytes);
  // Free and total bytes of the memory Allocate draws from (device memory on
  // CUDA, physical RAM on CPU), for sizing the unified pool. The default (test
  // doubles) is Unimplemented.
  struct MemoryInfo {
    size_t free_bytes = 0;
    size_t total_bytes = 0;
  };
  virtual absl::StatusOr<MemoryInfo> GetMemoryInfo();
  // Asynchronous on CUDA: `src` (host) must stay valid until the stream passes the copy.
  virtual absl::Status CopyToDevice(void* dst /* [bytes] */, const void* src /* host [bytes] */,
                                    size_t bytes, StreamRef stream) = 0;
  virtual absl::Status CopyToHost(void* dst /* host [bytes] */, const void* src /* [bytes] */,
                                  size_t bytes, StreamRef stream) = 0;
  virtual absl::Status CopyDeviceToDevice(void* dst /* [bytes] */, const void* src /* [bytes] */,
                                          size_t bytes, StreamRef stream) = 0;
  virtual absl::Status Memset(void* dst /* [bytes] */, uint8_t value, size_t bytes,
                              StreamRef stream) = 0;
  // Converts n host elements of `src_dtype` (F32/F16/BF16) into the storage
  // dtype at dst. Synchronous: `src` may be reused when it returns. This and
  // DownloadToF32 go through the compute stream: call them from the thread
  // that owns it (the forward thread), never during a graph capture.
  virtual absl::Status UploadConverted(const void* src /* host [n] src_dtype */, DType src_dtype,
                                       int64_t n, void* dst /* [n] */) = 0;
  // Converts n storage-dtype elements at src into host fp32. Synchronous.
  virtual absl::Status DownloadToF32(const void* src /* [n] */, int64_t n,
                                     float* dst /* host [n] */) = 0;

  // -------------------------------------------------------- streams/events
  virtual absl::StatusOr<Stream> CreateStream() = 0;
  virtual absl::StatusOr<Event> CreateEvent() = 0;
  // Marks the point `stream` has reached; a later Record moves the mark.
  virtual absl::Status RecordEvent(const Event& event, StreamRef stream) = 0;
  // Work enqueued on `stream` after this waits for the event's last record.
  virtual absl::Status StreamWaitEvent(StreamRef stream, const Event& event) = 0;
  // True when the event's last record has completed (never blocks).
  virtual absl::StatusOr<bool> EventDone(const Event& event) = 0;
  virtual absl::Status SynchronizeEvent(const Event& event) = 0;
  // Blocks until everything enqueued on `stream` has completed.
  virtual absl::Status Synchronize(StreamRef stream) = 0;

  // ----------------------------------------------------------------- graphs
  // Between BeginCapture and EndCapture, the ops and copies the calling
  // thread enqueues on the compute stream (StreamRef{}) are recorded, not
  // run: each with its arguments as given (pointers and host-known sizes are
  // fixed in the recording; data behind the pointers is read when it runs).
  // LaunchGraph enqueues the whole recording on the compute stream, as one
  // CUDA graph launch on CUDA, so a caller re-uploads step metadata into the
  // same buffers and launches again. Work on other streams runs as usual;
  // no other thread may use the compute stream during a capture (CUDA would
  // record its work too; the CPU twin would run it at once). An op that fails during capture returns its error at once
  // on CUDA (its launch is not recorded) and at LaunchGraph on CPU; either
  // way the caller must still call EndCapture, and may drop its Graph.
  // SupportsGraphs() is false for backends without them (test doubles): the
  // three calls are then Unimplemented.
  virtual bool SupportsGraphs() const { return false; }
  // FailedPrecondition when a capture is already open.
  virtual absl::Status BeginCapture();
  // FailedPrecondition when no capture is open; the CUDA error when the
  // recording cannot be made into a launchable graph.
  virtual absl::StatusOr<Graph> EndCapture();
  // The first failing op's status on CPU; launch errors on CUDA.
  virtual absl::Status LaunchGraph(const Graph& graph);

  // ------------------------------------------------------------------ ops
  // dst[i, :] = src[indices[i], :]. The embedding lookup (src = embed table)
  // and the selection of rows that need logits. Index outside [0, src_rows)
  // is InvalidArgument (CPU).
  virtual absl::Status GatherRows(const void* src /* [src_rows, width] */, int64_t src_rows,
                                  int64_t width, const int32_t* indices /* [num_indices] */,
                                  int64_t num_indices, void* dst /* [num_indices, width] */,
                                  StreamRef stream) = 0;

  // out[t, :] = weight * x[t, :] / sqrt(mean(x[t, :]^2) + eps), in fp32
  // (Hugging Face LlamaRMSNorm). out may equal x.
  virtual absl::Status RmsNorm(const void* x /* [rows, hidden] */,
                               const void* weight /* [hidden] */, int64_t rows, int64_t hidden,
                               float eps, void* out /* [rows, hidden] */, StreamRef stream) = 0;

  // y[M, N] = x[M, K] . w[N, K]^T (+ bias[N]) (+ y when accumulate).
  virtual absl::Status Gemm(const void* x /* [m, k] */, const void* w /* [n, k] */,
                            const void* bias /* [n] or nullptr */, int64_t m, int64_t n,
                            int64_t k, bool accumulate, void* y /* [m, n] */,
                            StreamRef stream) = 0;

  // Rotates, in place, the q heads (columns [0, num_q_heads * head_dim)) and
  // the k heads (the next num_kv_heads * head_dim columns) of each row of a
  // fused qkv activation, neox / HF "rotate_half" layout: for i < head_dim/2,
  // with a = positions[t] * inv_freq[i] (fp32 product):
  //   x'[i] = x[i] cos a - x[i + half] sin a,  x'[i + half] = x[i + half] cos a + x[i] sin a.
  virtual absl::Status Rope(void* qkv /* [num_tokens, row_stride] */, int64_t row_stride,
                            int64_t num_tokens, int32_t num_q_heads, int32_t num_kv_heads,
                            int32_t head_dim, const int32_t* positions /* [num_tokens] */,
                            const float* inv_freq /* [head_dim / 2] */, StreamRef stream) = 0;

  // Writes token t's K and V heads (row t of k / v, num_kv_heads * head_dim
  // elements each) into layer `layer` of the paged cache at slot
  // slot_mapping[t] = block_id * block_tokens + offset_in_block; -1 skips t.
  virtual absl::Status WriteKv(const void* k /* [num_tokens, k_row_stride] */,
                               int64_t k_row_stride,
                               const void* v /* [num_tokens, v_row_stride] */,
                               int64_t v_row_stride, int64_t num_tokens,
                               const int64_t* slot_mapping /* [num_tokens] */,
                               void* kv_base /* KvLayout blocks */, const KvLayout& layout,
                               int32_t layer, StreamRef stream) = 0;

  // Causal GQA attention of a mixed batch (see AttentionBatch) for layer
  // `layer`: q head h uses kv head h / (num_q_heads / num_kv_heads); scores
  // are scaled by `scale` and softmaxed in fp32. K/V of the new tokens must
  // already be in the cache (WriteKv first).
  virtual absl::Status PagedAttention(const void* q /* [num_tokens, q_row_stride] */,
                                      int64_t q_row_stride, int64_t num_tokens,
                                      int32_t num_q_heads, const AttentionBatch& batch,
                                      const void* kv_base /* KvLayout blocks */,
                                      const KvLayout& layout, int32_t layer, float scale,
                                      void* out /* [num_tokens, num_q_heads * head_dim] */,
                                      StreamRef stream) = 0;

  // out[t, i] = silu(gate_up[t, i]) * gate_up[t, intermediate + i].
  virtual absl::Status SiluAndMul(const void* gate_up /* [rows, 2 * intermediate] */,
                                  int64_t rows, int64_t intermediate,
                                  void* out /* [rows, intermediate] */, StreamRef stream) = 0;

  // residual[i] += delta[i].
  virtual absl::Status ResidualAdd(void* residual /* [n] */, const void* delta /* [n] */,
                                   int64_t n, StreamRef stream) = 0;

  // LoRA shrink: for each segment g and slice s with rank r > 0, for each of
  // its tokens t: v[t, s, :r] = x[t, :] . A_{g,s}^T (fp32). See LoraSegments
  // for v's layout and what is left untouched.
  virtual absl::Status LoraShrink(const void* x /* [num_tokens, in] */, int64_t num_tokens,
                                  int64_t in, const LoraSegments& lora,
                                  float* v /* [num_tokens, lora.num_slices, lora.max_rank] */,
                                  StreamRef stream) = 0;

  // LoRA expand: for each segment g and slice s with rank r > 0, for each of
  // its tokens t: y[t, cols.offsets[s] + j] += scale_{g,s} * sum_{i<r} v[t, s, i] * B^T_{g,s}[i, j]
  // for j < cols.offsets[s+1] - cols.offsets[s].
  virtual absl::Status LoraExpand(const float* v /* [num_tokens, lora.num_slices, lora.max_rank] */,
                                  int64_t num_tokens, const LoraSegments& lora,
                                  const LoraSliceColumns& cols, void* y /* [num_tokens, y_cols] */,
                                  int64_t y_cols, StreamRef stream) = 0;

  // out[r] = the index of the largest of logits[r, :vocab] (ties: the lowest
  // index; NaN never wins; an all-NaN row gives 0): greedy sampling without
  // copying the logits to the host. Matches the host sampler's ArgMax.
  virtual absl::Status ArgMaxRows(const float* logits /* [rows, vocab] */, int64_t rows,
                                  int64_t vocab, int32_t* out /* [rows] */,
                                  StreamRef stream) = 0;

  // logits[r, :] = hidden[r, :] . lm_head^T, in fp32.
  virtual absl::Status Logits(const void* hidden /* [rows, hidden_size] */,
                              const void* lm_head /* [vocab, hidden_size] */, int64_t rows,
                              int64_t vocab, int64_t hidden_size,
                              float* logits /* [rows, vocab] */, StreamRef stream) = 0;

  // dst[i] = fmaf(hi - lo, u(seed, i), lo) rounded to the storage dtype, for
  // i < n, where u(seed, i) in [0, 1) is CounterUniform of
  // kernels/counter_random.h (a SplitMix64 hash of (seed, i), top 24 bits
  // times 2^-24), so CPU and CUDA compute bit-identical fp32 values before
  // the rounding. lo == hi fills a constant. For random weights
  // (ModelWeights::CreateRandom). InvalidArgument naming FillRandom for
  // n < 0, a non-finite lo or hi, or lo > hi; n == 0 does nothing.
  virtual absl::Status FillRandom(void* dst /* [n] storage dtype */, int64_t n, uint64_t seed,
                                  float lo, float hi, StreamRef stream) = 0;

  // The device half of sampling a row without copying its logits (the
  // common case: temperature, top-k, top-p, min-p; see
  // Sampler::SampleFromCandidates). Per row r, with x = logits[r, :vocab]:
  //  - ids[r, :] / values[r, :]: the k best (id, x[id]) by the host sampler's
  //    ranking (logits_ops::Before: larger value first, ties to the lower id,
  //    NaN only after every number), best first;
  //  - total[r] = sum over the whole row of exp((x[i] - m) / T), the sum the
  //    sampler's full-vocabulary draw uses: m = logits_ops::MaxOf(x),
  //    T = temperature[r], weights as logits_ops::ExpWeights (fp32 exponent
  //    and exp, 0 below exp(-87)), summed in double. NaN when the row holds a
  //    NaN or +inf, or is all -inf.
  // The CPU twin calls the logits_ops functions themselves (bit-identical to
  // the sampler); CUDA computes the same weights bit for bit and sums them in
  // another order (relative difference below 2 n 2^-53).
  // InvalidArgument naming SampleCandidates for rows < 0, vocab <= 0 or past
  // int32, k outside [1, min(kMaxSampleCandidates, vocab)], and (CPU) a
  // temperature[r] that is not finite and > 0.
  virtual absl::Status SampleCandidates(const float* logits /* [rows, vocab] */, int64_t rows,
                                        int64_t vocab, const float* temperature /* [rows] */,
                                        int32_t k, int32_t* ids /* [rows, k] */,
                                        float* values /* [rows, k] */,
                                        double* total /* [rows] */, StreamRef stream) = 0;

 protected:
  Backend() = default;

  // Handle constructors for subclasses.
  DeviceBuffer MakeBuffer(void* data, size_t bytes) { return DeviceBuffer(this, data, bytes); }
  HostBuffer MakeHostBuffer(void* data, size_t bytes) { return HostBuffer(this, data, bytes); }
  Stream MakeStream(void* native) { return Stream(this, native); }
  Event MakeEvent(void* native) { return Event(this, native); }
  Graph MakeGraph(void* native) { return Graph(this, native); }

 private:
  friend class DeviceBuffer;
  friend class HostBuffer;
  friend class Stream;
  friend class Event;
  friend class Graph;
  // Called by the handles' destructors.
  virtual void FreeBuffer(void* data, size_t bytes) noexcept = 0;
  // Frees what AllocateHost returned (the default does nothing: the default
  // AllocateHost never allocates).
  virtual void FreeHostBuffer(void* data, size_t bytes) noexcept;
  virtual void DestroyStream(void* native) noexcept = 0;
  virtual void DestroyEvent(void* native) noexcept = 0;
  // Frees what EndCapture returned (the default does nothing).
  virtual void DestroyGraph(void* native) noexcept;
};

}  // namespace loraserve
