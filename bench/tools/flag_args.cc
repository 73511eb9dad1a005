#include "bench/tools/flag_args.h"

#include <utility>

namespace loraserve::bench {

std::vector<std::string> DashedToAbslArgs(int argc, char** argv) {
  std::vector<std::string> out;
  bool positional = false;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (i > 0 && !positional && arg == "--") positional = true;
    if (i > 0 && !positional && arg.size() > 1 && arg[0] == '-') {
      const size_t start = arg.find_first_not_of('-');
      const size_t eq = arg.find('=');
      const size_t end = eq == std::string::npos ? arg.size() : eq;
      for (size_t k = start == std::string::npos ? end : start; k < end; ++k) {
        if (arg[k] == '-') arg[k] = '_';
      }
    }
    out.push_back(std::move(arg));
  }
  return out;
}

}  // namespace loraserve::bench
