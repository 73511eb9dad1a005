#include "common/flag_names.h"

#include <utility>

#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"

namespace loraserve {

void SetFlagsHelp(absl::string_view message, std::string path_fragment) {
  absl::SetProgramUsageMessage(message);
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [fragment = std::move(path_fragment)](absl::string_view path) {
    return absl::StrContains(path, fragment);
  };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  absl::SetFlagsUsageConfig(usage);
}

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
