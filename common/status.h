// Status plumbing used everywhere: RETURN_IF_ERROR / ASSIGN_OR_RETURN over
// absl::Status and absl::StatusOr<T>. Header-only; any thread; depends on abseil only.
//
//   RETURN_IF_ERROR(file.Validate());
//   ASSIGN_OR_RETURN(auto header, ParseHeader(bytes));
//   ASSIGN_OR_RETURN(header_, ParseHeader(bytes));       // existing lvalue
//
// The error is returned unchanged (code and message), so the innermost layer
// names the problem and outer layers may add context with AnnotateStatus().
#pragma once

#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"

namespace loraserve {

// Returns `s` with "context: " prepended to its message; OK stays OK.
inline absl::Status AnnotateStatus(const absl::Status& s, std::string_view context) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(Sv(context), ": ", s.message()));
}

namespace status_internal {
inline const absl::Status& AsStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& AsStatus(const absl::StatusOr<T>& s) {
  return s.status();
}
}  // namespace status_internal

}  // namespace loraserve

#define LORASERVE_STATUS_CONCAT_INNER(a, b) a##b
#define LORASERVE_STATUS_CONCAT(a, b) LORASERVE_STATUS_CONCAT_INNER(a, b)

// Evaluates `expr` (absl::Status or absl::StatusOr<T>) once; returns its status
// from the enclosing function if it is not OK.
#define RETURN_IF_ERROR(expr)                                                        \
  do {                                                                               \
    auto&& _loraserve_status_or = (expr);                                            \
    if (!_loraserve_status_or.ok()) [[unlikely]] {                                   \
      return ::loraserve::status_internal::AsStatus(_loraserve_status_or);           \
    }                                                                                \
  } while (false)

// Evaluates `rexpr` (absl::StatusOr<T>) once; on error returns its status,
// otherwise moves the value into `lhs` (a declaration or an existing lvalue).
#define ASSIGN_OR_RETURN(lhs, rexpr) \
  LORASERVE_ASSIGN_OR_RETURN_IMPL(LORASERVE_STATUS_CONCAT(_loraserve_sor_, __COUNTER__), lhs, rexpr)

#define LORASERVE_ASSIGN_OR_RETURN_IMPL(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                    \
  if (!tmp.ok()) [[unlikely]] {                          \
    return std::move(tmp).status();                      \
  }                                                      \
  lhs = std::move(tmp).value()
