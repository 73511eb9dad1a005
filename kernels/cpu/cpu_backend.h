// CpuBackend: the exact fp32 reference implementation of Backend. Storage
// dtype F32; GEMMs through OpenBLAS cblas_sgemm; attention and elementwise
// ops over a small owned thread pool. All work is synchronous: streams and
// events exist only to keep the CUDA shape. Created by CreateBackend
// (kernels/backend_factory.h) or directly by kernel tests.
// Thread-safety: as Backend (ops may be called from several threads; the
// thread pool serialises its loops).
// The op implementations are split by family: cpu_memory.cc, cpu_gemm.cc,
// cpu_elementwise.cc, cpu_norm_rope.cc, cpu_attention.cc, cpu_lora.cc,
// cpu_random.cc (FillRandom), cpu_sample_candidates.cc (SampleCandidates),
// cpu_graph.cc (graph capture).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "kernels/backend.h"
#include "kernels/cpu/cpu_thread_pool.h"

namespace loraserve {

class CpuBackend final : public Backend {
 public:
  struct Options {
    int num_threads = 0;  // 0 = hardware concurrency
  };
  static absl::StatusOr<std::unique_ptr<CpuBackend>> Create(const Options& options);
  ~CpuBackend() override;  // cpu_graph.cc (Recording is private to it)

  BackendKind kind() const override { return BackendKind::kCpu; }
  std::string_view name() const override { return name_; }
  DType dtype() const override { return DType::kF32; }

  // memory (cpu_memory.cc)
  absl::StatusOr<DeviceBuffer> Allocate(size_t bytes) override;
  // 64-byte-aligned heap memory (the CPU has nothing to pin).
  absl::StatusOr<HostBuffer> AllocateHost(size_t bytes) override;
  // Physical RAM: total and currently available (sysconf).
  absl::StatusOr<MemoryInfo> GetMemoryInfo() override;
  absl::Status CopyToDevice(void* dst, const void* src, size_t bytes, StreamRef stream) override;
  absl::Status CopyToHost(void* dst, const void* src, size_t bytes, StreamRef stream) override;
  absl::Status CopyDeviceToDevice(void* dst, const void* src, size_t bytes,
                                  StreamRef stream) override;
  absl::Status Memset(void* dst, uint8_t value, size_t bytes, StreamRef stream) override;
  absl::Status UploadConverted(const void* src, DType src_dtype, int64_t n, void* dst) override;
  absl::Status DownloadToF32(const void* src, int64_t n, float* dst) override;

  // streams/events (cpu_memory.cc): trivially complete.
  absl::StatusOr<Stream> CreateStream() override;
  absl::StatusOr<Event> CreateEvent() override;
  absl::Status RecordEvent(const Event& event, StreamRef stream) override;
  absl::Status StreamWaitEvent(StreamRef stream, const Event& event) override;
  absl::StatusOr<bool> EventDone(const Event& event) override;
  absl::Status SynchronizeEvent(const Event& event) override;
  absl::Status Synchronize(StreamRef stream) override;

  // Graphs: a recording of deferred calls (cpu_graph.cc), so the model's
  // graph path runs, and is tested, on CPU exactly as it is captured on CUDA.
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
  // cpu_random.cc: the fp32 values of kernels/counter_random.h, unrounded.
  absl::Status FillRandom(void* dst, int64_t n, uint64_t seed, float lo, float hi,
                          StreamRef stream) override;
  // cpu_sample_candidates.cc: logits_ops::TopK and ExpSum per row.
  absl::Status SampleCandidates(const float* logits, int64_t rows, int64_t vocab,
                                const float* temperature, int32_t k, int32_t* ids, float* values,
                                double* total, StreamRef stream) override;

 private:
  explicit CpuBackend(int num_threads);

  void FreeBuffer(void* data, size_t bytes) noexcept override;
  void FreeHostBuffer(void* data, size_t bytes) noexcept override;
  void DestroyStream(void* native) noexcept override;
  void DestroyEvent(void* native) noexcept override;
  void DestroyGraph(void* native) noexcept override;

  // Graph capture (cpu_graph.cc). True when a call on `stream` is to be
  // recorded rather than run: a capture is open on this thread and `stream`
  // is the compute stream. Every op and copy starts with the check
  // (LS_CPU_RECORD in cpu_graph.h), which then stores the call with Record.
  bool ShouldRecord(StreamRef stream) const { return stream.native == nullptr && CapturingHere(); }
  void Record(std::function<absl::Status()> op);
  // True when a capture is open and was opened by the calling thread.
  bool CapturingHere() const;
  // FailedPrecondition for `op`, which CUDA forbids during a capture.
  static absl::Status CaptureForbids(const char* op);
  struct Recording;
  std::atomic<bool> capturing_{false};
  std::atomic<std::thread::id> capture_thread_{};  // the capturing thread
  std::unique_ptr<Recording> recording_;           // the open capture

  CpuThreadPool pool_;
  std::string name_;
  std::atomic<uintptr_t> next_stream_id_{1};
};

}  // namespace loraserve
