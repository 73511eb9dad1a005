// LS_CPU_RECORD: the first statement of every CpuBackend op and copy that
// takes a stream. While a graph capture is open on the calling thread and the
// op targets the compute stream, the call is stored (its arguments copied by
// value, as a CUDA graph node keeps its launch parameters) for
// CpuBackend::LaunchGraph and the op returns OK without running; otherwise
// the op runs now. Also defines CpuBackend::Recording (needed wherever a
// CpuBackend is constructed or destroyed). Private to kernels/cpu/.
#pragma once

#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "kernels/cpu/cpu_backend.h"

namespace loraserve {

// What a CPU Graph's native handle points to: the recorded calls, in order.
struct CpuBackend::Recording {
  std::vector<std::function<absl::Status()>> ops;
};

}  // namespace loraserve

// `call` re-invokes the op with StreamRef{}; it runs at LaunchGraph time.
// Outside a capture the check is one atomic load: no closure is built.
#define LS_CPU_RECORD(stream, call)       \
  do {                                    \
    if (ShouldRecord(stream)) {           \
      Record([=, this] { return call; }); \
      return absl::OkStatus();            \
    }                                     \
  } while (false)
