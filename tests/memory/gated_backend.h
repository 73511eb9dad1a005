// Test helper: a Backend that forwards everything to a CpuBackend but can
// hold host->device copies (CopyToDevice) at a gate, to prove the prefetcher
// never publishes an adapter whose copy has not completed, can make Logits
// fail, to drive the engine's failed-step path, and counts SampleCandidates
// calls and one-row logits fetches (the engine's device sampling).
#pragma once

#include <memory>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "kernels/cpu/cpu_backend.h"

namespace loraserve {
namespace testing_memory {

class GatedBackend final : public Backend {
 public:
  GatedBackend() : inner_(*CpuBackend::Create({1})) {}

  void CloseGate() {
    absl::MutexLock l(&mu_);
    open_ = false;
  }
  void OpenGate() {
    absl::MutexLock l(&mu_);
    open_ = true;
  }
  // Blocks until `n` copies have entered CopyToDevice.
  void WaitForCopiesStarted(int n) {
    absl::MutexLock l(&mu_);
    struct Arg {
      GatedBackend* backend;
      int n;
    } arg{this, n};
    mu_.Await(absl::Condition(+[](Arg* a) { return a->backend->started_ >= a->n; }, &arg));
  }
  int copies_started() {
    absl::MutexLock l(&mu_);
    return started_;
  }

  BackendKind kind() const override { return inner_->kind(); }
  std::string_view name() const override { return "gated cpu"; }
  DType dtype() const override { return inner_->dtype(); }
  absl::StatusOr<DeviceBuffer> Allocate(size_t bytes) override { return inner_->Allocate(bytes); }
  absl::StatusOr<HostBuffer> AllocateHost(size_t bytes) override {
    {
      absl::MutexLock l(&mu_);
      ++host_allocations_;
    }
    return inner_->AllocateHost(bytes);
  }
  int host_allocations() {
    absl::MutexLock l(&mu_);
    return host_allocations_;
  }
  absl::Status CopyToDevice(void* dst, const void* src, size_t bytes, StreamRef s) override {
    absl::MutexLock l(&mu_);
    ++started_;
    mu_.Await(absl::Condition(&open_));
    return inner_->CopyToDevice(dst, src, bytes, s);
  }
  absl::Status CopyToHost(void* dst, const void* src, size_t bytes, StreamRef s) override {
    {
      absl::MutexLock l(&mu_);
      last_copy_bytes_ = bytes;
    }
    return inner_->CopyToHost(dst, src, bytes, s);
  }
  // From now on, counts the CopyToHost calls of exactly `bytes` that are the
  // last before a Synchronize: the shape of LlamaModel::CopyLogitsRow with
  // one logits row (a Forward's copies end with its argmaxes, candidate
  // totals or all its rows' logits).
  void CountFetchesOf(size_t bytes) {
    absl::MutexLock l(&mu_);
    fetch_bytes_ = bytes;
    fetches_ = 0;
  }
  int fetches() {
    absl::MutexLock l(&mu_);
    return fetches_;
  }
  absl::Status CopyDeviceToDevice(void* dst, const void* src, size_t bytes,
                                  StreamRef s) override {
    return inner_->CopyDeviceToDevice(dst, src, bytes, s);
  }
  absl::Status Memset(void* dst, uint8_t v, size_t bytes, StreamRef s) override {
    return inner_->Memset(dst, v, bytes, s);
  }
  absl::Status UploadConverted(const void* src, DType t, int64_t n, void* dst) override {
    return inner_->UploadConverted(src, t, n, dst);
  }
  absl::Status DownloadToF32(const void* src, int64_t n, float* dst) override {
    return inner_->DownloadToF32(src, n, dst);
  }
  absl::StatusOr<Stream> CreateStream() override { return inner_->CreateStream(); }
  absl::StatusOr<Event> CreateEvent() override { return inner_->CreateEvent(); }
  absl::Status RecordEvent(const Event& e, StreamRef s) override {
    return inner_->RecordEvent(e, s);
  }
  absl::Status StreamWaitEvent(StreamRef s, const Event& e) override {
    return inner_->StreamWaitEvent(s, e);
  }
  absl::StatusOr<bool> EventDone(const Event& e) override { return inner_->EventDone(e); }
  absl::Status SynchronizeEvent(const Event& e) override { return inner_->SynchronizeEvent(e); }
  absl::Status Synchronize(StreamRef s) override {
    {
      absl::MutexLock l(&mu_);
      if (fetch_bytes_ != 0 && last_copy_bytes_ == fetch_bytes_) ++fetches_;
      last_copy_bytes_ = 0;
    }
    return inner_->Synchronize(s);
  }
  absl::Status GatherRows(const void* src, int64_t src_rows, int64_t width,
                          const int32_t* indices, int64_t num_indices, void* dst,
                          StreamRef s) override {
    return inner_->GatherRows(src, src_rows, width, indices, num_indices, dst, s);
  }
  absl::Status RmsNorm(const void* x, const void* w, int64_t rows, int64_t hidden, float eps,
                       void* out, StreamRef s) override {
    return inner_->RmsNorm(x, w, rows, hidden, eps, out, s);
  }
  absl::Status Gemm(const void* x, const void* w, const void* bias, int64_t m, int64_t n,
                    int64_t k, bool acc, void* y, StreamRef s) override {
    return inner_->Gemm(x, w, bias, m, n, k, acc, y, s);
  }
  absl::Status Rope(void* qkv, int64_t stride, int64_t n, int32_t qh, int32_t kvh, int32_t hd,
                    const int32_t* pos, const float* inv, StreamRef s) override {
    return inner_->Rope(qkv, stride, n, qh, kvh, hd, pos, inv, s);
  }
  absl::Status WriteKv(const void* k, int64_t ks, const void* v, int64_t vs, int64_t n,
                       const int64_t* slots, void* base, const KvLayout& layout, int32_t layer,
                       StreamRef s) override {
    return inner_->WriteKv(k, ks, v, vs, n, slots, base, layout, layer, s);
  }
  absl::Status PagedAttention(const void* q, int64_t qs, int64_t n, int32_t qh,
                              const AttentionBatch& b, const void* base, const KvLayout& layout,
                              int32_t layer, float scale, void* out, StreamRef s) override {
    return inner_->PagedAttention(q, qs, n, qh, b, base, layout, layer, scale, out, s);
  }
  absl::Status SiluAndMul(const void* gu, int64_t rows, int64_t inter, void* out,
                          StreamRef s) override {
    return inner_->SiluAndMul(gu, rows, inter, out, s);
  }
  absl::Status ResidualAdd(void* r, const void* d, int64_t n, StreamRef s) override {
    return inner_->ResidualAdd(r, d, n, s);
  }
  absl::Status LoraShrink(const void* x, int64_t n, int64_t in, const LoraSegments& l, float* v,
                          StreamRef s) override {
    return inner_->LoraShrink(x, n, in, l, v, s);
  }
  absl::Status LoraExpand(const float* v, int64_t n, const LoraSegments& l,
                          const LoraSliceColumns& c, void* y, int64_t yc, StreamRef s) override {
    return inner_->LoraExpand(v, n, l, c, y, yc, s);
  }
  absl::Status Logits(const void* h, const void* lm, int64_t rows, int64_t vocab, int64_t hs,
                      float* out, StreamRef s) override {
    {
      absl::MutexLock l(&mu_);
      if (!logits_error_.ok()) return logits_error_;
    }
    return inner_->Logits(h, lm, rows, vocab, hs, out, s);
  }
  absl::Status ArgMaxRows(const float* logits, int64_t rows, int64_t vocab, int32_t* out,
                          StreamRef s) override {
    return inner_->ArgMaxRows(logits, rows, vocab, out, s);
  }
  absl::Status FillRandom(void* dst, int64_t n, uint64_t seed, float lo, float hi,
                          StreamRef s) override {
    return inner_->FillRandom(dst, n, seed, lo, hi, s);
  }
  absl::Status SampleCandidates(const float* logits, int64_t rows, int64_t vocab,
                                const float* temperature, int32_t k, int32_t* ids, float* values,
                                double* total, StreamRef s) override {
    {
      absl::MutexLock l(&mu_);
      ++sample_candidates_calls_;
    }
    return inner_->SampleCandidates(logits, rows, vocab, temperature, k, ids, values, total, s);
  }
  int sample_candidates_calls() {
    absl::MutexLock l(&mu_);
    return sample_candidates_calls_;
  }
  // Every Logits call returns `error` until set back to OK (a failing step).
  void FailLogits(absl::Status error) {
    absl::MutexLock l(&mu_);
    logits_error_ = std::move(error);
  }

 private:
  // Handles are created by inner_, so these are never called.
  void FreeBuffer(void*, size_t) noexcept override {}
  void DestroyStream(void*) noexcept override {}
  void DestroyEvent(void*) noexcept override {}

  std::unique_ptr<CpuBackend> inner_;
  absl::Mutex mu_;
  bool open_ = true;
  int started_ = 0;
  int host_allocations_ ABSL_GUARDED_BY(mu_) = 0;
  int sample_candidates_calls_ ABSL_GUARDED_BY(mu_) = 0;
  size_t last_copy_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  size_t fetch_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // 0: not counting
  int fetches_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status logits_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace testing_memory
}  // namespace loraserve
