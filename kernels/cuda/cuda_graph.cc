// CudaBackend graphs: stream capture of the compute stream in thread-local
// mode (other threads keep allocating and copying on their own streams while
// the engine thread captures), instantiated once and replayed with
// cudaGraphLaunch on the compute stream. A Graph's native handle is the
// cudaGraphExec_t; the cudaGraph_t is dropped after instantiation.
#include "absl/strings/str_cat.h"
#include "common/cuda/cuda_status.h"
#include "common/logging.h"
#include "common/status.h"
#include "kernels/cuda/cuda_backend.h"

namespace loraserve {

absl::Status CudaBackend::BeginCapture() {
  RETURN_IF_ERROR(UseDevice());
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  RETURN_IF_CUDA_ERROR(cudaStreamIsCapturing(compute_stream_, &status));
  if (status != cudaStreamCaptureStatusNone) {
    return absl::FailedPreconditionError("BeginCapture: a capture is already open");
  }
  RETURN_IF_CUDA_ERROR(cudaStreamBeginCapture(compute_stream_, cudaStreamCaptureModeThreadLocal));
  return absl::OkStatus();
}

absl::StatusOr<Graph> CudaBackend::EndCapture() {
  RETURN_IF_ERROR(UseDevice());
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  RETURN_IF_CUDA_ERROR(cudaStreamIsCapturing(compute_stream_, &status));
  if (status == cudaStreamCaptureStatusNone) {
    return absl::FailedPreconditionError("EndCapture: no capture is open");
  }
  cudaGraph_t graph = nullptr;
  // Ends the capture even when it was invalidated (then graph is null and
  // the error says why); the stream is usable again either way.
  const cudaError_t end = cudaStreamEndCapture(compute_stream_, &graph);
  if (end != cudaSuccess || graph == nullptr) {
    if (graph != nullptr) (void)cudaGraphDestroy(graph);
    (void)cudaGetLastError();
    return absl::InternalError(absl::StrCat(
        "EndCapture: cudaStreamEndCapture: ", cudaGetErrorName(end), ": ", cudaGetErrorString(end),
        " (an op enqueued during the capture was not "
        "capturable)"));
  }
  cudaGraphExec_t exec = nullptr;
  const cudaError_t inst = cudaGraphInstantiate(&exec, graph, 0);
  (void)cudaGraphDestroy(graph);
  if (inst != cudaSuccess) {
    (void)cudaGetLastError();
    return absl::InternalError(
        absl::StrCat("EndCapture: cudaGraphInstantiate: ", cudaGetErrorName(inst), ": ",
                     cudaGetErrorString(inst)));
  }
  return MakeGraph(exec);
}

absl::Status CudaBackend::LaunchGraph(const Graph& graph) {
  if (graph.empty() || graph.native() == nullptr) {
    return absl::InvalidArgumentError("LaunchGraph: empty graph");
  }
  RETURN_IF_ERROR(UseDevice());
  RETURN_IF_CUDA_ERROR(
      cudaGraphLaunch(static_cast<cudaGraphExec_t>(graph.native()), compute_stream_));
  return absl::OkStatus();
}

void CudaBackend::DestroyGraph(void* native) noexcept {
  if (native == nullptr) return;
  (void)cudaSetDevice(device_);
  if (const cudaError_t err = cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(native));
      err != cudaSuccess) {
    LS_LOG(ERROR) << "CudaBackend: cudaGraphExecDestroy: " << cudaGetErrorName(err);
  }
}

}  // namespace loraserve
