// CpuBackend graph capture: a recording is the list of deferred op calls
// made on the compute stream by the capturing thread between BeginCapture and
// EndCapture; LaunchGraph runs them in order. This is the CPU twin of CUDA
// stream capture, with the same rules (see Backend::BeginCapture), including
// the calls CUDA forbids while capturing (Allocate, Synchronize of the
// compute stream, a LaunchGraph inside a capture), which fail here too so
// the model's graph path is checked on CPU.
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/cpu_graph.h"

namespace loraserve {

CpuBackend::~CpuBackend() = default;

bool CpuBackend::CapturingHere() const {
  return capturing_.load(std::memory_order_acquire) &&
         capture_thread_.load(std::memory_order_acquire) == std::this_thread::get_id();
}

absl::Status CpuBackend::CaptureForbids(const char* op) {
  return absl::FailedPreconditionError(
      absl::StrCat(op, ": not allowed while a graph capture is open on this thread (as on CUDA)"));
}

void CpuBackend::Record(std::function<absl::Status()> op) {
  recording_->ops.push_back(std::move(op));
}

absl::Status CpuBackend::BeginCapture() {
  if (capturing_.load(std::memory_order_acquire)) {
    return absl::FailedPreconditionError("BeginCapture: a capture is already open");
  }
  recording_ = std::make_unique<Recording>();
  capture_thread_.store(std::this_thread::get_id(), std::memory_order_release);
  capturing_.store(true, std::memory_order_release);
  return absl::OkStatus();
}

absl::StatusOr<Graph> CpuBackend::EndCapture() {
  if (!CapturingHere()) {
    return absl::FailedPreconditionError("EndCapture: no capture is open on this thread");
  }
  capturing_.store(false, std::memory_order_release);
  capture_thread_.store(std::thread::id(), std::memory_order_release);
  return MakeGraph(recording_.release());
}

absl::Status CpuBackend::LaunchGraph(const Graph& graph) {
  if (graph.empty() || graph.native() == nullptr) {
    return absl::InvalidArgumentError("LaunchGraph: empty graph");
  }
  if (CapturingHere()) {
    return absl::FailedPreconditionError("LaunchGraph: called while a capture is open");
  }
  const auto* rec = static_cast<const Recording*>(graph.native());
  for (size_t i = 0; i < rec->ops.size(); ++i) {
    if (absl::Status s = rec->ops[i](); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("LaunchGraph: op ", i, " of ", rec->ops.size(),
                                                 ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

void CpuBackend::DestroyGraph(void* native) noexcept { delete static_cast<Recording*>(native); }

}  // namespace loraserve
