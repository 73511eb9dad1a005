#include "server/adapter_paths.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/strings.h"

namespace loraserve {

namespace fs = std::filesystem;

absl::Status ValidateAdapterName(std::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("adapter name is empty");
  if (name.size() > kMaxAdapterNameLength) {
    return absl::InvalidArgumentError(absl::StrCat("adapter name is ", name.size(),
                                                   " characters, at most ", kMaxAdapterNameLength));
  }
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("adapter name \"", Sv(name), "\" has a character outside [A-Za-z0-9._-] at ",
                       i));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ResolveAdapterPath(const std::string& root, const std::string& path) {
  if (root.empty()) {
    return absl::FailedPreconditionError(
        "LoadAdapter is disabled: the server was started without --adapter-root");
  }
  if (path.empty()) return absl::InvalidArgumentError("path is empty");
  std::error_code ec;
  const fs::path canonical_root = fs::canonical(root, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("--adapter-root \"", root, "\" cannot be resolved: ", ec.message()));
  }
  fs::path candidate(path);
  if (candidate.is_relative()) candidate = canonical_root / candidate;
  // weakly_canonical follows every symlink of the existing prefix and removes
  // "." and ".." lexically for the rest.
  const fs::path resolved = fs::weakly_canonical(candidate, ec);
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat("path \"", path, "\" cannot be resolved: ", ec.message()));
  }
  const std::string root_str = canonical_root.string();
  const std::string res_str = resolved.string();
  const bool inside =
      res_str == root_str ||
      (res_str.size() > root_str.size() && res_str.compare(0, root_str.size(), root_str) == 0 &&
       (root_str.back() == '/' || res_str[root_str.size()] == '/'));
  if (!inside) {
    return absl::PermissionDeniedError(absl::StrCat("path \"", path, "\" resolves to \"", res_str,
                                                    "\", outside --adapter-root \"", root_str,
                                                    "\""));
  }
  return res_str;
}

}  // namespace loraserve
