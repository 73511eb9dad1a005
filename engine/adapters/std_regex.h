// A compiled ECMAScript regular expression (std::regex underneath) behind a
// Status-returning interface, for the user-supplied patterns of PEFT adapter
// configs (target_modules, rank_pattern, ...). std::regex reports errors only
// by throwing; this wrapper is the one place loraserve catches exceptions, so
// a malformed pattern becomes an InvalidArgument instead of a crash. It also
// keeps <regex> out of other translation units (GCC 12 emits a false
// -Wmaybe-uninitialized inside libstdc++'s <regex> under -fsanitize).
//
// Immutable after Compile; copies share the compiled pattern; any number of
// threads may match concurrently.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"

namespace loraserve {

class StdRegex {
 public:
  // Compiles `pattern` (ECMAScript syntax, which agrees with Python's `re` on
  // the constructs PEFT configs use). InvalidArgument with the reason if the
  // pattern is malformed.
  [[nodiscard]] static absl::StatusOr<StdRegex> Compile(std::string_view pattern);

  // Whether the whole of `s` matches (Python's re.fullmatch). When `group1`
  // is given and the pattern has a first capture group, it receives that
  // group's text. Errors only if the matcher itself fails (e.g. complexity).
  [[nodiscard]] absl::StatusOr<bool> FullMatch(std::string_view s,
                                               std::string* group1 = nullptr) const;

  const std::string& pattern() const { return pattern_; }

 private:
  struct Impl;
  StdRegex(std::string pattern, std::shared_ptr<const Impl> impl)
      : pattern_(std::move(pattern)), impl_(std::move(impl)) {}

  std::string pattern_;
  std::shared_ptr<const Impl> impl_;
};

}  // namespace loraserve
