// CudaBackend: creation and teardown, and the dispatch of the batched ops
// (WriteKv, PagedAttention, LoraShrink, LoraExpand) to the launchers of
// cuda_attention.h / cuda_lora.h after the host-known checks they share with
// their CPU twins (kernels/op_checks.h).
#include "kernels/cuda/cuda_backend.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/cuda/cuda_status.h"
#include "common/logging.h"
#include "common/status.h"
#include "kernels/cuda/cuda_attention.h"
#include "kernels/cuda/cuda_elementwise.h"
#include "kernels/cuda/cuda_gemm.h"
#include "kernels/cuda/cuda_lora.h"
#include "kernels/op_checks.h"

namespace loraserve {

namespace {

// The default attention scratch: the most PagedAttentionScratchBytes wants
// over batches of 1..8192 query rows, 8..128 q heads, head_dim 128 (the
// largest the kernel takes) at 128k context, capped. Split-K pays when few
// CTAs cover a long context, so small batches want the most; a launch that
// wants more than this just uses fewer splits (same result).
size_t DefaultAttentionScratchBytes() {
  constexpr int32_t kHeadDim = 128;
  constexpr int32_t kSeqLen = 128 * 1024;
  size_t most = 0;
  for (int64_t tokens = 1; tokens <= 8192; tokens *= 2) {
    for (int32_t heads : {8, 16, 32, 40, 48, 64, 96, 128}) {
      most = std::max(most, cuda::PagedAttentionScratchBytes(tokens, heads, kHeadDim, kSeqLen));
    }
  }
  return std::min(most, CudaBackend::kMaxDefaultAttentionScratchBytes);
}

}  // namespace

CudaBackend::CudaBackend(int device, std::string name) : device_(device), name_(std::move(name)) {}

absl::StatusOr<std::unique_ptr<CudaBackend>> CudaBackend::Create(const Options& options) {
  int count = 0;
  const cudaError_t count_err = cudaGetDeviceCount(&count);
  if (count_err != cudaSuccess || count <= 0) {
    (void)cudaGetLastError();  // "no driver / no device" is not sticky: clear it
    const std::string reason =
        count_err != cudaSuccess
            ? absl::StrCat(cudaGetErrorName(count_err), ": ", cudaGetErrorString(count_err))
            : std::string("cudaGetDeviceCount found 0 devices");
    return absl::FailedPreconditionError(
        absl::StrCat("CudaBackend: no CUDA device visible (", reason,
                     "; check the driver and CUDA_VISIBLE_DEVICES)"));
  }
  if (options.device_index < 0 || options.device_index >= count) {
    return absl::InvalidArgumentError(
        absl::StrCat("CudaBackend: device_index=", options.device_index, " outside [0, ", count,
                     ") (the visible devices)"));
  }
  const int device = options.device_index;
  RETURN_IF_CUDA_ERROR(cudaSetDevice(device));
  cudaDeviceProp prop;
  RETURN_IF_CUDA_ERROR(cudaGetDeviceProperties(&prop, device));
  if (prop.major < 8) {
    return absl::FailedPreconditionError(
        absl::StrCat("CudaBackend: device ", device, " (", prop.name, ") has compute capability ",
                     prop.major, ".", prop.minor, "; bf16 tensor cores need 8.0 or newer"));
  }
  RETURN_IF_ERROR(
      AnnotateStatus(cuda::ProbeKernelImage(prop.major, prop.minor),
                     absl::StrCat("CudaBackend: device ", device, " (", prop.name, ")")));

  std::unique_ptr<CudaBackend> backend(new CudaBackend(
      device, absl::StrCat("cuda (", prop.name, ", bf16, sm_", prop.major, prop.minor, ")")));
  RETURN_IF_CUDA_ERROR(cudaStreamCreateWithFlags(&backend->compute_stream_, cudaStreamNonBlocking));
  if (options.cublas_workspace_bytes > 0) {
    ASSIGN_OR_RETURN(backend->cublas_workspace_, backend->Allocate(options.cublas_workspace_bytes));
  }
  ASSIGN_OR_RETURN(backend->gemm_, cuda::CublasGemm::Create(backend->compute_stream_,
                                                            backend->cublas_workspace_.data(),
                                                            backend->cublas_workspace_.size()));
  size_t scratch_bytes = 0;
  if (options.attention_scratch_bytes < 0) {
    scratch_bytes = DefaultAttentionScratchBytes();  // asks the current (our) device's SMs
  } else {
    scratch_bytes = static_cast<size_t>(options.attention_scratch_bytes);
  }
  if (scratch_bytes > 0) {
    ASSIGN_OR_RETURN(backend->attention_scratch_, backend->Allocate(scratch_bytes));
  }
  LS_LOG(INFO) << "CudaBackend: " << backend->name_ << ", " << prop.multiProcessorCount << " SMs, "
               << (prop.totalGlobalMem >> 20) << " MiB; cuBLAS workspace "
               << (backend->cublas_workspace_.size() >> 20) << " MiB, attention scratch "
               << (backend->attention_scratch_.size() >> 20) << " MiB";
  return backend;
}

CudaBackend::~CudaBackend() {
  if (const cudaError_t err = cudaSetDevice(device_); err != cudaSuccess) {
    LS_LOG(ERROR) << "~CudaBackend: cudaSetDevice(" << device_ << "): " << cudaGetErrorName(err);
  }
  if (compute_stream_ != nullptr) {
    if (const cudaError_t err = cudaStreamSynchronize(compute_stream_); err != cudaSuccess) {
      LS_LOG(ERROR) << "~CudaBackend: cudaStreamSynchronize: " << cudaGetErrorName(err);
    }
  }
  gemm_.reset();
  attention_scratch_.Reset();
  cublas_workspace_.Reset();
  if (compute_stream_ != nullptr) {
    if (const cudaError_t err = cudaStreamDestroy(compute_stream_); err != cudaSuccess) {
      LS_LOG(ERROR) << "~CudaBackend: cudaStreamDestroy: " << cudaGetErrorName(err);
    }
    compute_stream_ = nullptr;
  }
}

absl::Status CudaBackend::UseDevice() const {
  RETURN_IF_CUDA_ERROR(cudaSetDevice(device_));
  return absl::OkStatus();
}

// ------------------------------------------------------------ paged KV

absl::Status CudaBackend::WriteKv(const void* k, int64_t k_row_stride, const void* v,
                                  int64_t v_row_stride, int64_t num_tokens,
                                  const int64_t* slot_mapping, void* kv_base,
                                  const KvLayout& layout, int32_t layer, StreamRef stream) {
  ASSIGN_OR_RETURN(const bool has_work,
                   op_checks::CheckWriteKvArgs(k, k_row_stride, v, v_row_stride, num_tokens,
                                               slot_mapping, kv_base, layout, layer, elt_size()));
  if (!has_work) return absl::OkStatus();
  RETURN_IF_ERROR(UseDevice());
  return cuda::LaunchWriteKv(k, k_row_stride, v, v_row_stride, num_tokens, slot_mapping, kv_base,
                             layout, layer, Resolve(stream));
}

absl::Status CudaBackend::PagedAttention(const void* q, int64_t q_row_stride, int64_t num_tokens,
                                         int32_t num_q_heads, const AttentionBatch& batch,
                                         const void* kv_base, const KvLayout& layout, int32_t layer,
                                         float scale, void* out, StreamRef stream) {
  ASSIGN_OR_RETURN(const bool has_work,
                   op_checks::CheckPagedAttentionArgs(q, q_row_stride, num_tokens, num_q_heads,
                                                      batch, kv_base, layout, layer, out,
                                                      elt_size()));
  if (!has_work) return absl::OkStatus();
  // The kernel sizes its split-K plan by it; the CPU twin checks seq_lens against it.
  RETURN_IF_ERROR(
      op_checks::Positive("PagedAttention", "batch.max_seq_len", batch.max_seq_len));
  RETURN_IF_ERROR(UseDevice());
  const cudaStream_t s = Resolve(stream);
  // The scratch serves the compute stream only (see the class comment).
  const bool own_scratch = s == compute_stream_;
  return cuda::LaunchPagedAttention(q, q_row_stride, num_tokens, num_q_heads, batch, kv_base,
                                    layout, layer, scale, out,
                                    own_scratch ? attention_scratch_.data() : nullptr,
                                    own_scratch ? attention_scratch_.size() : 0, s);
}

// ----------------------------------------------------------------- LoRA

// Everything behind lora.seg_starts / lora.slices lives on the device: only
// the host-known checks run here.
absl::Status CudaBackend::LoraShrink(const void* x, int64_t num_tokens, int64_t in,
                                     const LoraSegments& lora, float* v, StreamRef stream) {
  ASSIGN_OR_RETURN(const bool has_work, op_checks::CheckLoraShrinkArgs(x, num_tokens, in, lora, v));
  if (!has_work) return absl::OkStatus();
  RETURN_IF_ERROR(UseDevice());
  return cuda::LaunchLoraShrink(x, num_tokens, in, lora, v, Resolve(stream));
}

absl::Status CudaBackend::LoraExpand(const float* v, int64_t num_tokens, const LoraSegments& lora,
                                     const LoraSliceColumns& cols, void* y, int64_t y_cols,
                                     StreamRef stream) {
  ASSIGN_OR_RETURN(const bool has_work,
                   op_checks::CheckLoraExpandArgs(v, num_tokens, lora, cols, y, y_cols));
  if (!has_work) return absl::OkStatus();
  RETURN_IF_ERROR(UseDevice());
  return cuda::LaunchLoraExpand(v, num_tokens, lora, cols, y, y_cols, Resolve(stream));
}

}  // namespace loraserve
