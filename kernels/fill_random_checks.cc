#include "kernels/fill_random_checks.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "kernels/op_checks.h"

namespace loraserve::op_checks {

absl::StatusOr<bool> CheckFillRandomArgs(const void* dst, int64_t n, float lo, float hi) {
  constexpr const char* kOp = "FillRandom";
  RETURN_IF_ERROR(NonNegative(kOp, "n", n));
  if (!std::isfinite(lo)) {
    return absl::InvalidArgumentError(absl::StrCat(kOp, ": lo must be finite; got ", lo));
  }
  if (!std::isfinite(hi)) {
    return absl::InvalidArgumentError(absl::StrCat(kOp, ": hi must be finite; got ", hi));
  }
  if (lo > hi) {
    return absl::InvalidArgumentError(
        absl::StrCat(kOp, ": lo=", lo, " is above hi=", hi, " (want lo <= hi)"));
  }
  if (!std::isfinite(hi - lo)) {
    return absl::InvalidArgumentError(
        absl::StrCat(kOp, ": hi - lo overflows fp32 (lo=", lo, ", hi=", hi, ")"));
  }
  if (n == 0) return false;
  RETURN_IF_ERROR(Pointer(kOp, "dst", dst));
  return true;
}

}  // namespace loraserve::op_checks
