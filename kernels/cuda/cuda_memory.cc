// CudaBackend: device and pinned host memory, copies, conversions, streams
// and events.
#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/cuda/cuda_status.h"
#include "common/logging.h"
#include "common/status.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/op_checks.h"

namespace loraserve {

namespace {

// Elements converted per host staging chunk by UploadConverted /
// DownloadToF32 (4 Mi elements: 8 MiB of bf16, 16 MiB of fp32 on the host).
constexpr int64_t kStagingElements = int64_t{1} << 22;

std::string FreeMemoryNote() {
  size_t free_bytes = 0;
  size_t total_bytes = 0;
  if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) {
    (void)cudaGetLastError();
    return "free memory unknown";
  }
  return absl::StrCat(free_bytes, " of ", total_bytes, " bytes free");
}

}  // namespace

// ------------------------------------------------------------- memory

absl::StatusOr<DeviceBuffer> CudaBackend::Allocate(size_t bytes) {
  if (bytes == 0) return DeviceBuffer();
  RETURN_IF_ERROR(UseDevice());
  void* p = nullptr;
  const cudaError_t err = cudaMalloc(&p, bytes);
  // A failed allocation is not sticky: clear it so the next launch check
  // (cudaGetLastError) does not report it again.
  if (err != cudaSuccess) (void)cudaGetLastError();
  if (err == cudaErrorMemoryAllocation) {
    return absl::ResourceExhaustedError(
        absl::StrCat("CudaBackend::Allocate: out of device memory for ", bytes, " bytes on device ",
                     device_, " (", FreeMemoryNote(), ")"));
  }
  RETURN_IF_CUDA_ERROR(err);
  return MakeBuffer(p, bytes);
}

void CudaBackend::FreeBuffer(void* data, size_t bytes) noexcept {
  (void)cudaSetDevice(device_);
  // cudaFree waits for the device to go idle: buffers are long-lived (the
  // pool, weights), never freed per step.
  if (const cudaError_t err = cudaFree(data); err != cudaSuccess) {
    LS_LOG(ERROR) << "CudaBackend: cudaFree of " << bytes << " bytes: " << cudaGetErrorName(err)
                  << " (" << cudaGetErrorString(err) << ")";
  }
}

absl::StatusOr<Backend::MemoryInfo> CudaBackend::GetMemoryInfo() {
  RETURN_IF_ERROR(UseDevice());
  size_t free_bytes = 0;
  size_t total_bytes = 0;
  RETURN_IF_CUDA_ERROR(cudaMemGetInfo(&free_bytes, &total_bytes));
  return MemoryInfo{free_bytes, total_bytes};
}

absl::StatusOr<HostBuffer> CudaBackend::AllocateHost(size_t bytes) {
  if (bytes == 0) return HostBuffer();
  RETURN_IF_ERROR(UseDevice());
  void* p = nullptr;
  const cudaError_t err = cudaHostAlloc(&p, bytes, cudaHostAllocPortable);
  if (err != cudaSuccess) (void)cudaGetLastError();  // not sticky (see Allocate)
  if (err == cudaErrorMemoryAllocation) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "CudaBackend::AllocateHost: cannot pin ", bytes,
        " bytes of host memory (cudaHostAlloc: out of memory; check ulimit -l and free RAM)"));
  }
  RETURN_IF_CUDA_ERROR(err);
  return MakeHostBuffer(p, bytes);
}

void CudaBackend::FreeHostBuffer(void* data, size_t bytes) noexcept {
  if (const cudaError_t err = cudaFreeHost(data); err != cudaSuccess) {
    LS_LOG(ERROR) << "CudaBackend: cudaFreeHost of " << bytes << " bytes: " << cudaGetErrorName(err)
                  << " (" << cudaGetErrorString(err) << ")";
  }
}

absl::Status CudaBackend::CopyToDevice(void* dst, const void* src, size_t bytes, StreamRef stream) {
  if (bytes == 0) return absl::OkStatus();
  RETURN_IF_ERROR(op_checks::Pointer("CopyToDevice", "dst", dst));
  RETURN_IF_ERROR(op_checks::Pointer("CopyToDevice", "src", src));
  RETURN_IF_ERROR(UseDevice());
  RETURN_IF_CUDA_ERROR(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, Resolve(stream)));
  return absl::OkStatus();
}

absl::Status CudaBackend::CopyToHost(void* dst, const void* src, size_t bytes, StreamRef stream) {
  if (bytes == 0) return absl::OkStatus();
  RETURN_IF_ERROR(op_checks::Pointer("CopyToHost", "dst", dst));
  RETURN_IF_ERROR(op_checks::Pointer("CopyToHost", "src", src));
  RETURN_IF_ERROR(UseDevice());
  RETURN_IF_CUDA_ERROR(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, Resolve(stream)));
  return absl::OkStatus();
}

absl::Status CudaBackend::CopyDeviceToDevice(void* dst, const void* src, size_t bytes,
                                             StreamRef stream) {
  if (bytes == 0) return absl::OkStatus();
  RETURN_IF_ERROR(op_checks::Pointer("CopyDeviceToDevice", "dst", dst));
  RETURN_IF_ERROR(op_checks::Pointer("CopyDeviceToDevice", "src", src));
  RETURN_IF_ERROR(UseDevice());
  RETURN_IF_CUDA_ERROR(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, Resolve(stream)));
  return absl::OkStatus();
}

absl::Status CudaBackend::Memset(void* dst, uint8_t value, size_t bytes, StreamRef stream) {
  if (bytes == 0) return absl::OkStatus();
  RETURN_IF_ERROR(op_checks::Pointer("Memset", "dst", dst));
  RETURN_IF_ERROR(UseDevice());
  RETURN_IF_CUDA_ERROR(cudaMemsetAsync(dst, value, bytes, Resolve(stream)));
  return absl::OkStatus();
}

absl::Status CudaBackend::UploadConverted(const void* src, DType src_dtype, int64_t n, void* dst) {
  RETURN_IF_ERROR(op_checks::NonNegative("UploadConverted", "n", n));
  if (n == 0) return absl::OkStatus();
  RETURN_IF_ERROR(op_checks::Pointer("UploadConverted", "src", src));
  RETURN_IF_ERROR(op_checks::Pointer("UploadConverted", "dst", dst));
  RETURN_IF_ERROR(UseDevice());
  auto* out = static_cast<uint16_t*>(dst);
  if (src_dtype == DType::kBF16) {
    // Already the storage dtype: one copy, ordered after the compute stream's work.
    RETURN_IF_CUDA_ERROR(cudaMemcpyAsync(out, src, static_cast<size_t>(n) * sizeof(uint16_t),
                                         cudaMemcpyHostToDevice, compute_stream_));
    RETURN_IF_CUDA_ERROR(cudaStreamSynchronize(compute_stream_));
    return absl::OkStatus();
  }
  // F32 / F16: to fp32 exactly, then FloatToBf16 (nearest even, NaN kept),
  // chunk by chunk through a host staging buffer.
  const size_t src_elt = DTypeSize(src_dtype);
  const int64_t chunk = std::min(n, kStagingElements);
  // Aligned fp32 sources are rounded straight from the caller's memory.
  const bool direct_f32 =
      src_dtype == DType::kF32 && reinterpret_cast<uintptr_t>(src) % alignof(float) == 0;
  std::vector<float> widened(direct_f32 ? 0 : static_cast<size_t>(chunk));
  std::vector<uint16_t> staging(static_cast<size_t>(chunk));
  for (int64_t begin = 0; begin < n; begin += chunk) {
    const int64_t count = std::min(chunk, n - begin);
    const void* chunk_src = static_cast<const uint8_t*>(src) + static_cast<size_t>(begin) * src_elt;
    const float* f32 = static_cast<const float*>(chunk_src);
    if (!direct_f32) {  // widen exactly (F16), or realign (unaligned F32)
      ConvertToF32(chunk_src, src_dtype, widened.data(), static_cast<size_t>(count));
      f32 = widened.data();
    }
    ConvertFromF32(f32, staging.data(), DType::kBF16, static_cast<size_t>(count));
    RETURN_IF_CUDA_ERROR(cudaMemcpyAsync(out + begin, staging.data(),
                                         static_cast<size_t>(count) * sizeof(uint16_t),
                                         cudaMemcpyHostToDevice, compute_stream_));
    // The staging buffer is rewritten by the next chunk.
    RETURN_IF_CUDA_ERROR(cudaStreamSynchronize(compute_stream_));
  }
  return absl::OkStatus();
}

absl::Status CudaBackend::DownloadToF32(const void* src, int64_t n, float* dst) {
  RETURN_IF_ERROR(op_checks::NonNegative("DownloadToF32", "n", n));
  if (n == 0) return absl::OkStatus();
  RETURN_IF_ERROR(op_checks::Pointer("DownloadToF32", "src", src));
  RETURN_IF_ERROR(op_checks::Pointer("DownloadToF32", "dst", dst));
  RETURN_IF_ERROR(UseDevice());
  const auto* in = static_cast<const uint16_t*>(src);
  const int64_t chunk = std::min(n, kStagingElements);
  std::vector<uint16_t> staging(static_cast<size_t>(chunk));
  for (int64_t begin = 0; begin < n; begin += chunk) {
    const int64_t count = std::min(chunk, n - begin);
    RETURN_IF_CUDA_ERROR(cudaMemcpyAsync(staging.data(), in + begin,
                                         static_cast<size_t>(count) * sizeof(uint16_t),
                                         cudaMemcpyDeviceToHost, compute_stream_));
    RETURN_IF_CUDA_ERROR(cudaStreamSynchronize(compute_stream_));
    ConvertToF32(staging.data(), DType::kBF16, dst + begin, static_cast<size_t>(count));
  }
  return absl::OkStatus();
}

// ------------------------------------------------------ streams/events

absl::StatusOr<Stream> CudaBackend::CreateStream() {
  RETURN_IF_ERROR(UseDevice());
  cudaStream_t s = nullptr;
  RETURN_IF_CUDA_ERROR(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return MakeStream(s);
}

absl::StatusOr<Event> CudaBackend::CreateEvent() {
  RETURN_IF_ERROR(UseDevice());
  cudaEvent_t e = nullptr;
  RETURN_IF_CUDA_ERROR(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  return MakeEvent(e);
}

void CudaBackend::DestroyStream(void* native) noexcept {
  if (native == nullptr) return;
  (void)cudaSetDevice(device_);
  // Work still queued on the stream completes; the handle goes at once.
  if (const cudaError_t err = cudaStreamDestroy(static_cast<cudaStream_t>(native));
      err != cudaSuccess) {
    LS_LOG(ERROR) << "CudaBackend: cudaStreamDestroy: " << cudaGetErrorName(err);
  }
}

void CudaBackend::DestroyEvent(void* native) noexcept {
  if (native == nullptr) return;
  (void)cudaSetDevice(device_);
  if (const cudaError_t err = cudaEventDestroy(static_cast<cudaEvent_t>(native));
      err != cudaSuccess) {
    LS_LOG(ERROR) << "CudaBackend: cudaEventDestroy: " << cudaGetErrorName(err);
  }
}

absl::Status CudaBackend::RecordEvent(const Event& event, StreamRef stream) {
  if (event.empty()) return absl::InvalidArgumentError("RecordEvent: empty event");
  RETURN_IF_ERROR(UseDevice());
  RETURN_IF_CUDA_ERROR(cudaEventRecord(static_cast<cudaEvent_t>(event.native()), Resolve(stream)));
  return absl::OkStatus();
}

absl::Status CudaBackend::StreamWaitEvent(StreamRef stream, const Event& event) {
  if (event.empty()) return absl::InvalidArgumentError("StreamWaitEvent: empty event");
  RETURN_IF_ERROR(UseDevice());
  RETURN_IF_CUDA_ERROR(
      cudaStreamWaitEvent(Resolve(stream), static_cast<cudaEvent_t>(event.native()), 0));
  return absl::OkStatus();
}

absl::StatusOr<bool> CudaBackend::EventDone(const Event& event) {
  if (event.empty()) return absl::InvalidArgumentError("EventDone: empty event");
  RETURN_IF_ERROR(UseDevice());
  const cudaError_t err = cudaEventQuery(static_cast<cudaEvent_t>(event.native()));
  if (err == cudaSuccess) return true;
  if (err == cudaErrorNotReady) {
    (void)cudaGetLastError();  // "not ready" is an answer, not an error
    return false;
  }
  RETURN_IF_CUDA_ERROR(err);
  return false;  // unreachable
}

absl::Status CudaBackend::SynchronizeEvent(const Event& event) {
  if (event.empty()) return absl::InvalidArgumentError("SynchronizeEvent: empty event");
  RETURN_IF_ERROR(UseDevice());
  RETURN_IF_CUDA_ERROR(cudaEventSynchronize(static_cast<cudaEvent_t>(event.native())));
  return absl::OkStatus();
}

absl::Status CudaBackend::Synchronize(StreamRef stream) {
  RETURN_IF_ERROR(UseDevice());
  RETURN_IF_CUDA_ERROR(cudaStreamSynchronize(Resolve(stream)));
  return absl::OkStatus();
}

}  // namespace loraserve
