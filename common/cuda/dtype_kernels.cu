#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "absl/strings/str_cat.h"
#include "common/cuda/cuda_status.h"
#include "common/cuda/dtype_kernels.h"

namespace loraserve::cuda {
namespace {

constexpr int kThreads = 256;

// cuda_bf16/cuda_fp16 conversions round to nearest even and keep NaN a NaN,
// matching the CPU helpers bit for bit on non-NaN inputs.
__global__ void Bf16ToF32Kernel(const __nv_bfloat16* __restrict__ src, float* __restrict__ dst,
                                int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    dst[i] = __bfloat162float(src[i]);
  }
}

__global__ void F16ToF32Kernel(const __half* __restrict__ src, float* __restrict__ dst,
                               int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    dst[i] = __half2float(src[i]);
  }
}

__global__ void F32ToBf16Kernel(const float* __restrict__ src, __nv_bfloat16* __restrict__ dst,
                                int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    dst[i] = __float2bfloat16_rn(src[i]);
  }
}

__global__ void F32ToF16Kernel(const float* __restrict__ src, __half* __restrict__ dst,
                               int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    dst[i] = __float2half_rn(src[i]);
  }
}

unsigned Blocks(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 65535 * 16 ? (b > 0 ? b : 1) : 65535 * 16);
}

absl::Status CheckCount(int64_t n) {
  if (n < 0) return absl::InvalidArgumentError(absl::StrCat("negative element count ", n));
  return absl::OkStatus();
}

}  // namespace

absl::Status ConvertToF32(const void* src, DType src_type, float* dst, int64_t n,
                          cudaStream_t stream) {
  if (absl::Status s = CheckCount(n); !s.ok() || n == 0) return s;
  switch (src_type) {
    case DType::kF32:
      RETURN_IF_CUDA_ERROR(
          cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, stream));
      return absl::OkStatus();
    case DType::kBF16:
      Bf16ToF32Kernel<<<Blocks(n), kThreads, 0, stream>>>(
          static_cast<const __nv_bfloat16*>(src), dst, n);
      break;
    case DType::kF16:
      F16ToF32Kernel<<<Blocks(n), kThreads, 0, stream>>>(static_cast<const __half*>(src), dst,
                                                         n);
      break;
  }
  RETURN_IF_CUDA_ERROR(cudaGetLastError());
  return absl::OkStatus();
}

absl::Status ConvertFromF32(const float* src, void* dst, DType dst_type, int64_t n,
                            cudaStream_t stream) {
  if (absl::Status s = CheckCount(n); !s.ok() || n == 0) return s;
  switch (dst_type) {
    case DType::kF32:
      RETURN_IF_CUDA_ERROR(
          cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, stream));
      return absl::OkStatus();
    case DType::kBF16:
      F32ToBf16Kernel<<<Blocks(n), kThreads, 0, stream>>>(src, static_cast<__nv_bfloat16*>(dst),
                                                          n);
      break;
    case DType::kF16:
      F32ToF16Kernel<<<Blocks(n), kThreads, 0, stream>>>(src, static_cast<__half*>(dst), n);
      break;
  }
  RETURN_IF_CUDA_ERROR(cudaGetLastError());
  return absl::OkStatus();
}

int VisibleDeviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return count;
}

}  // namespace loraserve::cuda
