// Which compute backend to run on, and what this build and machine offer.
// This is the one place (with backend_factory.cc) that knows whether the CUDA
// backend was compiled in; engine and memory never test for CUDA themselves.
// Pure functions, any thread.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace loraserve {

enum class BackendKind { kCpu, kCuda };

// "cpu" or "cuda".
std::string_view BackendKindName(BackendKind kind);

// True when the CUDA backend was compiled into this binary.
bool CudaBackendCompiled();

// Visible CUDA devices; 0 when CUDA is not compiled in or no driver/device.
int CudaDeviceCount();

// Resolves a --device flag value: "cpu", "cuda" or "auto" (cuda when a device
// is present, else cpu). "cuda" without a usable device is FailedPrecondition
// with the reason; anything else is InvalidArgument naming the value.
absl::StatusOr<BackendKind> ResolveBackendKind(std::string_view device_flag);

// One line for the startup log, e.g. "CUDA compiled in (sm_90), 1 device(s)".
std::string DescribeBackendSupport();

}  // namespace loraserve
