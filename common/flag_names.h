// Command-line flag spelling shared by every binary (server, CLI tools,
// benchmarks): users write vLLM-style dashed names (--max-loras), absl flags
// are named with underscores (max_loras). UnderscoreFlagName rewrites the name
// part of one "-flag[=value]" / "--flag[=value]" argument; values are never
// touched. UnderscoreFlagNames does it for a whole argv, leaving argv[0],
// positional arguments and everything after "--" as they are.
// SetFlagsHelp sets what --help prints. The rewrites are pure functions (any
// thread); SetFlagsHelp is called once at the start of main.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace loraserve {

// "--max-loras=4" -> "--max_loras=4"; "--a-b" -> "--a_b"; "x-y" and "-" unchanged.
std::string UnderscoreFlagName(std::string arg);

std::vector<std::string> UnderscoreFlagNames(int argc, char** argv);

// --help and --helpshort print `message`, then the flags defined in source
// files whose path contains `path_fragment` (absl lists only main's file by
// default, so flags defined in a library would be missing).
void SetFlagsHelp(absl::string_view message, std::string path_fragment);

}  // namespace loraserve
