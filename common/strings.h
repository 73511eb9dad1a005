// Bridges between std::string_view and abseil. Debian 12's abseil is built
// with ABSL_OPTION_USE_STD_STRING_VIEW=0, so absl::string_view is its own
// type and absl::StrCat does not accept a std::string_view. Our APIs use
// std::string_view; pass one to abseil through Sv():
//   absl::StrCat("tensor \"", Sv(name), "\" ...")
// Header-only, any thread.
#pragma once

#include <string_view>

#include "absl/strings/string_view.h"

namespace loraserve {

inline absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }
inline std::string_view StdSv(absl::string_view s) { return std::string_view(s.data(), s.size()); }

}  // namespace loraserve
