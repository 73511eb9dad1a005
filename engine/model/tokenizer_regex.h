// Hand-written scanners for the pre-tokenizer split regexes that the Llama
// family uses (Llama 3, Qwen2, GPT-2). std::regex cannot express \p{L}/\p{N}
// or the (?!\S) lookahead, and these patterns are fixed strings in every
// tokenizer.json, so each is recognised by its exact text and executed by a
// scanner with the same leftmost-first backtracking result as Oniguruma (which
// Hugging Face tokenizers uses). Any other pattern is refused at load time.
//
// Used by the Split and ByteLevel pre-tokenizers. Pure functions, any thread.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace loraserve::tokenizer_internal {

enum class SplitRegex {
  kLlama3,  // contractions (?i), letters with one optional leading non-letter, \p{N}{1,3}
  kQwen2,   // as Llama 3 but single digits
  kGpt2,    // the GPT-2 / ByteLevel(use_regex) pattern
};

// The regex text (as stored in tokenizer.json, JSON-unescaped) of each pattern.
std::string_view SplitRegexText(SplitRegex regex);

// Which known pattern `pattern` is, or nullopt.
std::optional<SplitRegex> RecognizeSplitRegex(std::string_view pattern);

// Appends the non-overlapping matches of `regex` in `text` (valid UTF-8) as byte
// ranges [begin, end), leftmost first, like Oniguruma's search loop.
void FindRegexMatches(SplitRegex regex, std::string_view text,
                      std::vector<std::pair<size_t, size_t>>* matches);

}  // namespace loraserve::tokenizer_internal
