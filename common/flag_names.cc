#include "common/flag_names.h"

#include <utility>

namespace loraserve {

std::string UnderscoreFlagName(std::string arg) {
  if (arg.size() < 2 || arg[0] != '-') return arg;
  const size_t start = arg.find_first_not_of('-');
  if (start == std::string::npos) return arg;  // "--" or "---"
  const size_t eq = arg.find('=');
  const size_t end = eq == std::string::npos ? arg.size() : eq;
  for (size_t k = start; k < end; ++k) {
    if (arg[k] == '-') arg[k] = '_';
  }
  return arg;
}

std::vector<std::string> UnderscoreFlagNames(int argc, char** argv) {
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(argc));
  bool positional = false;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (i > 0 && !positional && arg == "--") positional = true;
    out.push_back(i > 0 && !positional ? UnderscoreFlagName(std::move(arg)) : std::move(arg));
  }
  return out;
}

}  // namespace loraserve
