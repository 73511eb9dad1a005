// Normalizers of a Hugging Face tokenizer.json ("normalizer" field): the ones
// the Llama family uses, Sequence, Prepend, Replace (string pattern) and NFC.
// Anything else (NFKC, Lowercase, BertNormalizer, Replace with a regex, ...) is
// refused at load time with the JSON path and type.
//
// Built by Tokenizer::Load, then immutable: Normalize() is const and safe from
// any number of threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "engine/model/tokenizer_json.h"

namespace loraserve::tokenizer_internal {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // Rewrites *text (valid UTF-8) in place.
  virtual void Normalize(std::string* text) const = 0;
};

// Parses the normalizer object `j` found at JSON `path`.
absl::StatusOr<std::unique_ptr<Normalizer>> ParseNormalizer(const Json& j, std::string_view path);

// Reads a {"String": "..."} pattern object (the only form we support) at `path`;
// `what` names the component for the refusal of {"Regex": ...}.
absl::StatusOr<std::string> ParseStringPattern(const Json& j, std::string_view path,
                                               std::string_view what);

// Replaces every non-overlapping occurrence of `pattern` (non-empty) in `text`,
// scanning left to right.
std::string ReplaceAll(std::string_view text, std::string_view pattern, std::string_view content);

}  // namespace loraserve::tokenizer_internal
