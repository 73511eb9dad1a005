#include "kernels/backend.h"

#include "absl/strings/str_cat.h"
#include "common/strings.h"

namespace loraserve {

void DeviceBuffer::Reset() {
  if (owner_ != nullptr && data_ != nullptr) owner_->FreeBuffer(data_, bytes_);
  owner_ = nullptr;
  data_ = nullptr;
  bytes_ = 0;
}

void HostBuffer::Reset() {
  if (owner_ != nullptr && data_ != nullptr) owner_->FreeHostBuffer(data_, bytes_);
  owner_ = nullptr;
  data_ = nullptr;
  bytes_ = 0;
}

absl::StatusOr<HostBuffer> Backend::AllocateHost(size_t /*bytes*/) {
  return absl::UnimplementedError(
      absl::StrCat("AllocateHost: not supported by backend \"", Sv(name()), "\""));
}

absl::StatusOr<Backend::MemoryInfo> Backend::GetMemoryInfo() {
  return absl::UnimplementedError(
      absl::StrCat("GetMemoryInfo: not supported by backend \"", Sv(name()), "\""));
}

void Backend::FreeHostBuffer(void* /*data*/, size_t /*bytes*/) noexcept {}

absl::Status Backend::BeginCapture() {
  return absl::UnimplementedError(
      absl::StrCat("BeginCapture: graphs are not supported by backend \"", Sv(name()), "\""));
}

absl::StatusOr<Graph> Backend::EndCapture() {
  return absl::UnimplementedError(
      absl::StrCat("EndCapture: graphs are not supported by backend \"", Sv(name()), "\""));
}

absl::Status Backend::LaunchGraph(const Graph& /*graph*/) {
  return absl::UnimplementedError(
      absl::StrCat("LaunchGraph: graphs are not supported by backend \"", Sv(name()), "\""));
}

void Backend::DestroyGraph(void* /*native*/) noexcept {}

void Stream::Reset() {
  if (owner_ != nullptr) owner_->DestroyStream(native_);
  owner_ = nullptr;
  native_ = nullptr;
}

void Graph::Reset() {
  if (owner_ != nullptr) owner_->DestroyGraph(native_);
  owner_ = nullptr;
  native_ = nullptr;
}

void Event::Reset() {
  if (owner_ != nullptr) owner_->DestroyEvent(native_);
  owner_ = nullptr;
  native_ = nullptr;
}

}  // namespace loraserve
