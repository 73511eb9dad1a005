// The host-side argument checks of Backend::FillRandom, shared by the CPU and
// CUDA backends so both report the same InvalidArgument messages (the other
// ops' checks live in op_checks.h). Stateless; any thread.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"

namespace loraserve::op_checks {

// InvalidArgument naming FillRandom and the bad value for n < 0, a non-finite
// lo or hi, lo > hi, or hi - lo overflowing fp32. Returns "has work": false
// for n == 0 (dst is not checked then).
[[nodiscard]] absl::StatusOr<bool> CheckFillRandomArgs(const void* dst /* [n] */, int64_t n,
                                                       float lo, float hi);

}  // namespace loraserve::op_checks
