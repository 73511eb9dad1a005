// Command-line spelling for the bench tools: users write --target-modules,
// absl flags are named target_modules. DashedToAbslArgs rewrites the name
// part of every "--flag[=value]" argument (dashes inside the name become
// underscores; values and positional arguments are untouched), stopping at
// "--". Pure function, any thread.
#pragma once

#include <string>
#include <vector>

namespace loraserve::bench {

std::vector<std::string> DashedToAbslArgs(int argc, char** argv);

}  // namespace loraserve::bench
