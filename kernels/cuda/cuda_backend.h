// CudaBackend: Backend on one NVIDIA GPU, storage dtype BF16 with fp32
// accumulation everywhere (GEMMs through cuBLAS, the rest in our kernels and
// in the attention / LoRA launchers of cuda_attention.h / cuda_lora.h). Every
// op matches its CPU twin (kernels/cpu/) up to bf16 rounding.
//
// Owns, for the life of the backend (all made at Create; launchers never
// allocate):
//  - the default compute stream: a non-blocking cudaStream_t; StreamRef{}
//    (native == nullptr) means this stream, never the legacy NULL stream;
//  - a cuBLAS handle bound to it (kernels/cuda/cuda_gemm.h) and its 32 MiB
//    workspace (NVIDIA's recommended size for Hopper);
//  - the attention scratch: the split-K partials of PagedAttention, sized
//    by default as the most PagedAttentionScratchBytes wants over batches of
//    1..8192 rows, 8..128 q heads, head_dim 128, 128k context, capped at
//    256 MiB (a few MiB on an H100: split-K is for small batches). Given less
//    than a launch wants, the launcher uses fewer splits (same result).
// The workspace and scratch serve only work on the compute stream (a GEMM on
// another stream uses cuBLAS's own default pool, attention there runs
// without splits), so concurrent streams never share them.
//
// Created by CreateBackend (kernels/backend_factory.h) or directly by tests.
// Thread-safety: as Backend: any thread, each stream from one thread at a
// time. Every entry point first makes the backend's device current on the
// calling thread (cudaSetDevice is per thread).
//
// Host-known arguments are validated with the CPU twins' InvalidArgument
// messages; data behind device pointers (token ids, positions, block ids,
// segment bounds) cannot be checked on the host: see each launcher for what
// it does with bad data (GatherRows writes NaN rows, for instance).
//
// The methods are split by family: cuda_backend.cc (creation, attention and
// LoRA dispatch), cuda_memory.cc (memory, streams, events),
// cuda_backend_ops.cc (the dense ops and GEMMs), cuda_backend_random.cc
// (FillRandom), cuda_backend_sample_candidates.cc (SampleCandidates).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "kernels/backend.h"

namespace loraserve {

namespace cuda {
class CublasGemm;
}  // namespace cuda

class CudaBackend final : public Backend {
 public:
  static constexpr size_t kDefaultCublasWorkspaceBytes = size_t{32} << 20;
  static constexpr size_t kMaxDefaultAttentionScratchBytes = size_t{256} << 20;

  struct Options {
    int device_index = 0;  // CUDA ordinal among the visible devices
    size_t cublas_workspace_bytes = kDefaultCublasWorkspaceBytes;
    // Bytes of PagedAttention scratch; -1 = the default described above,
    // 0 = none (attention never splits the keys).
    int64_t attention_scratch_bytes = -1;
  };

  // FailedPrecondition when no device is visible (with the CUDA reason) or
  // this binary has no code for the device; InvalidArgument for a bad
  // device_index; ResourceExhausted when the workspace does not fit.
  static absl::StatusOr<std::unique_ptr<CudaBackend>> Create(const Options& options);
  ~CudaBackend() override;

  BackendKind kind() const override { return BackendKind::kCuda; }
  // e.g. "cuda (NVIDIA H100 80GB HBM3, bf16, sm_90)".
  std::string_view name() const override { return name_; }
  DType dtype() const override { return DType::kBF16; }
  int device_index() const { return device_; }
  size_t attention_scratch_bytes() const { return attention_scratch_.size(); }

  // memory (cuda_memory.cc)
  absl::StatusOr<DeviceBuffer> Allocate(size_t bytes) override;
  // cudaHostAlloc: pinned, so copies to and from it are asynchronous DMA.
  absl::StatusOr<HostBuffer> AllocateHost(size_t bytes) override;
  // cudaMemGetInfo of this backend's device.
  absl::StatusOr<MemoryInfo> GetMemoryInfo() override;
  absl::Status CopyToDevice(void* dst, const void* src, size_t bytes, StreamRef stream) override;
  absl::Status CopyToHost(void* dst, const void* src, size_t bytes, StreamRef stream) override;
  absl::Status CopyDeviceToDevice(void* dst, const void* src, size_t bytes,
                                  StreamRef stream) override;
  absl::Status Memset(void* dst, uint8_t value, size_t bytes, StreamRef stream) override;
  // Converted on the host (common/dtype.h rounding, bit-exact with the CPU
  // helpers), copied through the compute stream and waited for.
  absl::Status UploadConverted(const void* src, DType src_dtype, int64_t n, void* dst) override;
  absl::Status DownloadToF32(const void* src, int64_t n, float* dst) override;

  // streams/events (cuda_memory.cc)
  absl::StatusOr<Stream> CreateStream() override;
  absl::StatusOr<Event> CreateEvent() override;
  absl::Status RecordEvent(const Event& event, StreamRef stream) override;
  absl::Status StreamWaitEvent(StreamRef stream, const Event& event) override;
  absl::StatusOr<bool> EventDone(const Event& event) override;
  absl::Status SynchronizeEvent(const Event& event) override;
  absl::Status Synchronize(StreamRef stream) override;

  // graphs (cuda_graph.cc): stream capture of the compute stream
  // (thread-local mode), instantiated with cudaGraphInstantiate.
  bool SupportsGraphs() const override { return true; }
  absl::Status BeginCapture() override;
  absl::StatusOr<Graph> EndCapture() override;
  absl::Status LaunchGraph(const Graph& graph) override;

  // ops: see kernels/backend.h for the contracts.
  absl::Status GatherRows(const void* src, int64_t src_rows, int64_t width, const int32_t* indices,
                          int64_t num_indices, void* dst, StreamRef stream) override;
  absl::Status RmsNorm(const void* x, const void* weight, int64_t rows, int64_t hidden, float eps,
                       void* out, StreamRef stream) override;
  absl::Status Gemm(const void* x, const void* w, const void* bias, int64_t m, int64_t n, int64_t k,
                    bool accumulate, void* y, StreamRef stream) override;
  absl::Status Rope(void* qkv, int64_t row_stride, int64_t num_tokens, int32_t num_q_heads,
                    int32_t num_kv_heads, int32_t head_dim, const int32_t* positions,
                    const float* inv_freq, StreamRef stream) override;
  absl::Status WriteKv(const void* k, int64_t k_row_stride, const void* v, int64_t v_row_stride,
                       int64_t num_tokens, const int64_t* slot_mapping, void* kv_base,
                       const KvLayout& layout, int32_t layer, StreamRef stream) override;
  absl::Status PagedAttention(const void* q, int64_t q_row_stride, int64_t num_tokens,
                              int32_t num_q_heads, const AttentionBatch& batch, const void* kv_base,
                              const KvLayout& layout, int32_t layer, float scale, void* out,
                              StreamRef stream) override;
  absl::Status SiluAndMul(const void* gate_up, int64_t rows, int64_t intermediate, void* out,
                          StreamRef stream) override;
  absl::Status ResidualAdd(void* residual, const void* delta, int64_t n, StreamRef stream) override;
  absl::Status LoraShrink(const void* x, int64_t num_tokens, int64_t in, const LoraSegments& lora,
                          float* v, StreamRef stream) override;
  absl::Status LoraExpand(const float* v, int64_t num_tokens, const LoraSegments& lora,
                          const LoraSliceColumns& cols, void* y, int64_t y_cols,
                          StreamRef stream) override;
  absl::Status Logits(const void* hidden, const void* lm_head, int64_t rows, int64_t vocab,
                      int64_t hidden_size, float* logits, StreamRef stream) override;
  absl::Status ArgMaxRows(const float* logits, int64_t rows, int64_t vocab, int32_t* out,
                          StreamRef stream) override;
  // cuda_backend_random.cc: the CPU twin's fp32 values, rounded to bf16.
  absl::Status FillRandom(void* dst, int64_t n, uint64_t seed, float lo, float hi,
                          StreamRef stream) override;
  // cuda_backend_sample_candidates.cc: one block per row
  // (cuda_sample_candidates.h).
  absl::Status SampleCandidates(const float* logits, int64_t rows, int64_t vocab,
                                const float* temperature, int32_t k, int32_t* ids, float* values,
                                double* total, StreamRef stream) override;

 private:
  CudaBackend(int device, std::string name);

  // Makes device_ current on the calling thread.
  absl::Status UseDevice() const;
  // The cudaStream_t a StreamRef names (nullptr = the compute stream).
  cudaStream_t Resolve(StreamRef stream) const {
    return stream.native != nullptr ? static_cast<cudaStream_t>(stream.native) : compute_stream_;
  }

  void FreeBuffer(void* data, size_t bytes) noexcept override;
  void FreeHostBuffer(void* data, size_t bytes) noexcept override;
  void DestroyStream(void* native) noexcept override;
  void DestroyEvent(void* native) noexcept override;
  void DestroyGraph(void* native) noexcept override;

  const int device_;
  const std::string name_;
  cudaStream_t compute_stream_ = nullptr;
  DeviceBuffer cublas_workspace_;
  DeviceBuffer attention_scratch_;
  std::unique_ptr<cuda::CublasGemm> gemm_;  // uses cublas_workspace_: destroyed first
};

}  // namespace loraserve
