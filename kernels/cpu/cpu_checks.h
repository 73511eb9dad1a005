// Argument checks shared by the CPU op implementations: each returns
// InvalidArgument naming the op and the bad value. Header-only, any thread.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace loraserve::cpu_checks {

inline absl::Status NonNegative(const char* op, const char* what, int64_t v) {
  if (v >= 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(op, ": ", what, " must be >= 0; got ", v));
}

inline absl::Status Positive(const char* op, const char* what, int64_t v) {
  if (v > 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(op, ": ", what, " must be > 0; got ", v));
}

// A pointer that is dereferenced when `needed` (some elements to touch).
inline absl::Status Pointer(const char* op, const char* what, const void* p, bool needed = true) {
  if (p != nullptr || !needed) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(op, ": ", what, " is null"));
}

inline absl::Status AtLeast(const char* op, const char* what, int64_t v, const char* bound_name,
                            int64_t bound) {
  if (v >= bound) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(op, ": ", what, "=", v, " is below ", bound_name, "=", bound));
}

}  // namespace loraserve::cpu_checks
