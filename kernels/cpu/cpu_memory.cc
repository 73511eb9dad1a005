// CpuBackend: creation, memory, streams and events.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/cpu_graph.h"
#include "kernels/op_checks.h"

namespace loraserve {

namespace {
constexpr size_t kAlignment = 64;
}  // namespace

CpuBackend::CpuBackend(int num_threads)
    : pool_(num_threads), name_(absl::StrCat("cpu (fp32, ", num_threads, " threads)")) {}

absl::StatusOr<std::unique_ptr<CpuBackend>> CpuBackend::Create(const Options& options) {
  if (options.num_threads < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("CpuBackend: num_threads must be >= 0; got ", options.num_threads));
  }
  int threads = options.num_threads;
  if (threads == 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::unique_ptr<CpuBackend>(new CpuBackend(threads));
}

absl::StatusOr<DeviceBuffer> CpuBackend::Allocate(size_t bytes) {
  if (CapturingHere()) return CaptureForbids("Allocate");
  if (bytes == 0) return DeviceBuffer();
  const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  void* p = std::aligned_alloc(kAlignment, rounded);
  if (p == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("CpuBackend::Allocate: out of host memory for ", bytes, " bytes"));
  }
  return MakeBuffer(p, bytes);
}

void CpuBackend::FreeBuffer(void* data, size_t /*bytes*/) noexcept { std::free(data); }

absl::StatusOr<HostBuffer> CpuBackend::AllocateHost(size_t bytes) {
  if (bytes == 0) return HostBuffer();
  const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded < bytes) {  // wrapped around
    return absl::ResourceExhaustedError(
        absl::StrCat("CpuBackend::AllocateHost: cannot allocate ", bytes, " bytes"));
  }
  void* p = std::aligned_alloc(kAlignment, rounded);
  if (p == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("CpuBackend::AllocateHost: out of host memory for ", bytes, " bytes"));
  }
  return MakeHostBuffer(p, bytes);
}

absl::StatusOr<Backend::MemoryInfo> CpuBackend::GetMemoryInfo() {
  const long page = sysconf(_SC_PAGESIZE);
  const long total = sysconf(_SC_PHYS_PAGES);
  const long avail = sysconf(_SC_AVPHYS_PAGES);
  if (page <= 0 || total <= 0 || avail < 0) {
    return absl::InternalError("CpuBackend::GetMemoryInfo: sysconf cannot tell the RAM size");
  }
  MemoryInfo info;
  info.total_bytes = static_cast<size_t>(total) * static_cast<size_t>(page);
  info.free_bytes = static_cast<size_t>(avail) * static_cast<size_t>(page);
  return info;
}

void CpuBackend::FreeHostBuffer(void* data, size_t /*bytes*/) noexcept { std::free(data); }

absl::Status CpuBackend::CopyToDevice(void* dst, const void* src, size_t bytes, StreamRef stream) {
  LS_CPU_RECORD(stream, CopyToDevice(dst, src, bytes, StreamRef{}));
  if (bytes == 0) return absl::OkStatus();
  RETURN_IF_ERROR(op_checks::Pointer("CopyToDevice", "dst", dst));
  RETURN_IF_ERROR(op_checks::Pointer("CopyToDevice", "src", src));
  std::memcpy(dst, src, bytes);
  return absl::OkStatus();
}

absl::Status CpuBackend::CopyToHost(void* dst, const void* src, size_t bytes, StreamRef stream) {
  LS_CPU_RECORD(stream, CopyToHost(dst, src, bytes, StreamRef{}));
  if (bytes == 0) return absl::OkStatus();
  RETURN_IF_ERROR(op_checks::Pointer("CopyToHost", "dst", dst));
  RETURN_IF_ERROR(op_checks::Pointer("CopyToHost", "src", src));
  std::memcpy(dst, src, bytes);
  return absl::OkStatus();
}

absl::Status CpuBackend::CopyDeviceToDevice(void* dst, const void* src, size_t bytes,
                                            StreamRef stream) {
  LS_CPU_RECORD(stream, CopyDeviceToDevice(dst, src, bytes, StreamRef{}));
  if (bytes == 0) return absl::OkStatus();
  RETURN_IF_ERROR(op_checks::Pointer("CopyDeviceToDevice", "dst", dst));
  RETURN_IF_ERROR(op_checks::Pointer("CopyDeviceToDevice", "src", src));
  std::memmove(dst, src, bytes);
  return absl::OkStatus();
}

absl::Status CpuBackend::Memset(void* dst, uint8_t value, size_t bytes, StreamRef stream) {
  LS_CPU_RECORD(stream, Memset(dst, value, bytes, StreamRef{}));
  if (bytes == 0) return absl::OkStatus();
  RETURN_IF_ERROR(op_checks::Pointer("Memset", "dst", dst));
  std::memset(dst, value, bytes);
  return absl::OkStatus();
}

absl::Status CpuBackend::UploadConverted(const void* src, DType src_dtype, int64_t n, void* dst) {
  if (CapturingHere()) return CaptureForbids("UploadConverted");
  RETURN_IF_ERROR(op_checks::NonNegative("UploadConverted", "n", n));
  if (n == 0) return absl::OkStatus();
  RETURN_IF_ERROR(op_checks::Pointer("UploadConverted", "src", src));
  RETURN_IF_ERROR(op_checks::Pointer("UploadConverted", "dst", dst));
  ConvertToF32(src, src_dtype, static_cast<float*>(dst), static_cast<size_t>(n));
  return absl::OkStatus();
}

absl::Status CpuBackend::DownloadToF32(const void* src, int64_t n, float* dst) {
  if (CapturingHere()) return CaptureForbids("DownloadToF32");
  RETURN_IF_ERROR(op_checks::NonNegative("DownloadToF32", "n", n));
  if (n == 0) return absl::OkStatus();
  RETURN_IF_ERROR(op_checks::Pointer("DownloadToF32", "src", src));
  RETURN_IF_ERROR(op_checks::Pointer("DownloadToF32", "dst", dst));
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
  return absl::OkStatus();
}

absl::StatusOr<Stream> CpuBackend::CreateStream() {
  // The id only gives each stream an identity; CPU work is synchronous.
  return MakeStream(reinterpret_cast<void*>(next_stream_id_.fetch_add(1)));
}

absl::StatusOr<Event> CpuBackend::CreateEvent() { return MakeEvent(nullptr); }

void CpuBackend::DestroyStream(void*) noexcept {}
void CpuBackend::DestroyEvent(void*) noexcept {}

absl::Status CpuBackend::RecordEvent(const Event& event, StreamRef) {
  if (event.empty()) return absl::InvalidArgumentError("RecordEvent: empty event");
  return absl::OkStatus();
}

absl::Status CpuBackend::StreamWaitEvent(StreamRef, const Event& event) {
  if (event.empty()) return absl::InvalidArgumentError("StreamWaitEvent: empty event");
  return absl::OkStatus();
}

absl::StatusOr<bool> CpuBackend::EventDone(const Event& event) {
  if (event.empty()) return absl::InvalidArgumentError("EventDone: empty event");
  return true;
}

absl::Status CpuBackend::SynchronizeEvent(const Event& event) {
  if (event.empty()) return absl::InvalidArgumentError("SynchronizeEvent: empty event");
  return absl::OkStatus();
}

absl::Status CpuBackend::Synchronize(StreamRef stream) {
  if (stream.native == nullptr && CapturingHere()) return CaptureForbids("Synchronize");
  return absl::OkStatus();
}

}  // namespace loraserve
