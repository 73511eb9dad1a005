// Adapter names and paths as the admin API accepts them: a name is 1..128
// characters of [A-Za-z0-9._-]; a path must resolve (symlinks followed) to a
// location inside the adapter root, compared at a path-component boundary, so
// neither "../x" nor a symlink pointing outside the root escapes it.
//
// Free functions; any thread (they read the filesystem, never write it).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace loraserve {

inline constexpr size_t kMaxAdapterNameLength = 128;

// InvalidArgument naming the problem ("adapter name \"a b\" has ' ' at 4 ...").
absl::Status ValidateAdapterName(std::string_view name);

// Resolves `path` (absolute, or relative to `root`) to its canonical form.
// FailedPrecondition when `root` is empty or does not exist; InvalidArgument
// for an empty path; PermissionDenied naming `path` when the resolved path is
// not `root` itself or below it.
absl::StatusOr<std::string> ResolveAdapterPath(const std::string& root, const std::string& path);

}  // namespace loraserve
