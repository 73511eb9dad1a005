#include "engine/engine_pool_sizing.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace loraserve {

absl::StatusOr<int64_t> PoolBytesForUtilization(const Backend::MemoryInfo& memory,
                                                double utilization, int64_t page_bytes,
                                                int64_t min_pages) {
  if (!(utilization > 0.0 && utilization <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("gpu_memory_utilization is ", utilization, ", must be in (0, 1]"));
  }
  if (page_bytes <= 0 || memory.free_bytes > memory.total_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "pool sizing: page_bytes=", page_bytes, ", free=", memory.free_bytes,
        " of total=", memory.total_bytes, " bytes"));
  }
  const auto total = static_cast<double>(memory.total_bytes);
  const auto used = static_cast<double>(memory.total_bytes - memory.free_bytes);
  const double budget = std::floor(utilization * total);
  const double left = budget - used;
  const int64_t pages = left > 0 ? static_cast<int64_t>(left) / page_bytes : 0;
  if (pages < min_pages) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "gpu_memory_utilization=", utilization, " allows ", static_cast<int64_t>(budget),
        " of ", memory.total_bytes, " bytes, but ", static_cast<int64_t>(used),
        " are in use already (weights, activations, other processes): ", pages,
        " pool pages of ", page_bytes, " bytes fit, at least ", min_pages,
        " needed; raise --gpu-memory-utilization or set --pool-bytes"));
  }
  return pages * page_bytes;
}

}  // namespace loraserve
