// PoolBytesForUtilization: the size of the unified pool when it is sized from
// device memory (vLLM's --gpu-memory-utilization): the pool takes what is left
// of `utilization` x total memory after everything already allocated (weights,
// the reserved activation workspace, other processes), in whole pages.
// Called by Engine::Create after the model and its workspace are on the
// device. Pure function; any thread.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "kernels/backend.h"

namespace loraserve {

// InvalidArgument when utilization is outside (0, 1]; ResourceExhausted naming
// the numbers when less than `min_pages` pages would be left.
absl::StatusOr<int64_t> PoolBytesForUtilization(const Backend::MemoryInfo& memory,
                                                double utilization, int64_t page_bytes,
                                                int64_t min_pages = 1);

}  // namespace loraserve
