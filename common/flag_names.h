// Command-line flag spelling shared by every binary (server, CLI tools,
// benchmarks): users write vLLM-style dashed names (--max-loras), absl flags
// are named with underscores (max_loras). UnderscoreFlagName rewrites the name
// part of one "-flag[=value]" / "--flag[=value]" argument; values are never
// touched. UnderscoreFlagNames does it for a whole argv, leaving argv[0],
// positional arguments and everything after "--" as they are.
// Pure functions; any thread.
#pragma once

#include <string>
#include <vector>

namespace loraserve {

// "--max-loras=4" -> "--max_loras=4"; "--a-b" -> "--a_b"; "x-y" and "-" unchanged.
std::string UnderscoreFlagName(std::string arg);

std::vector<std::string> UnderscoreFlagNames(int argc, char** argv);

}  // namespace loraserve
