// GCC 12's libstdc++ <regex> (std::function inside _Compiler's NFA states)
// trips a false -Wmaybe-uninitialized when built with -fsanitize=address.
// This file contains nothing but the std::regex wrapper, so silencing that
// one warning here hides nothing of ours.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "engine/adapters/std_regex.h"

#include <regex>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace loraserve {

struct StdRegex::Impl {
  std::regex re;
};

absl::StatusOr<StdRegex> StdRegex::Compile(std::string_view pattern) {
  std::string p(pattern);
  try {
    auto impl = std::make_shared<Impl>(Impl{std::regex(p, std::regex::ECMAScript)});
    return StdRegex(std::move(p), std::move(impl));
  } catch (const std::regex_error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid regular expression \"", p, "\": ", e.what()));
  }
}

absl::StatusOr<bool> StdRegex::FullMatch(std::string_view s, std::string* group1) const {
  try {
    std::match_results<std::string_view::const_iterator> m;
    const bool hit = std::regex_match(s.begin(), s.end(), m, impl_->re);
    if (hit && group1 != nullptr) *group1 = m.size() > 1 ? m[1].str() : std::string();
    return hit;
  } catch (const std::regex_error& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        "regular expression \"", pattern_, "\" failed on \"", std::string(s), "\": ", e.what()));
  }
}

}  // namespace loraserve
