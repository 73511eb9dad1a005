// Small filesystem helpers for the benchmark generators: create a directory
// tree, write a text file, hard-link a file. Every error is a Status naming
// the path. Stateless, any thread.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace loraserve::bench {

// Creates `dir` and its parents if missing; Internal naming it on failure or
// when it exists and is not a directory.
[[nodiscard]] absl::Status EnsureDirectory(const std::string& dir);
// Writes `text` to `path`, replacing it.
[[nodiscard]] absl::Status WriteTextFile(const std::string& path, std::string_view text);
// Makes `link` a hard link to `target` (replacing any file at `link`).
[[nodiscard]] absl::Status HardLink(const std::string& target, const std::string& link);

}  // namespace loraserve::bench
