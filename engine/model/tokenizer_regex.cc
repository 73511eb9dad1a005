#include "engine/model/tokenizer_regex.h"

#include <cstdint>

#include "engine/model/tokenizer_unicode.h"

namespace loraserve::tokenizer_internal {
namespace {

constexpr std::string_view kLlama3Text =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Text =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kGpt2Text =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// The knobs in which the three patterns differ.
struct Spec {
  bool case_insensitive_contractions;
  bool letter_prefix_any;        // [^\r\n\p{L}\p{N}]?\p{L}+  (else " ?\p{L}+")
  int max_digits;                // \p{N}{1,max}; 0 = unbounded
  bool number_space_prefix;      // " ?\p{N}+"
  bool punct_trailing_newlines;  // " ?[^\s\p{L}\p{N}]+[\r\n]*"
  bool newline_rule;             // "\s*[\r\n]+"
};

constexpr Spec kLlama3Spec{true, true, 3, false, true, true};
constexpr Spec kQwen2Spec{true, true, 1, false, true, true};
constexpr Spec kGpt2Spec{false, false, 0, true, false, false};

struct Ch {
  char32_t cp;
  uint8_t cls;
};

bool IsCrLf(char32_t c) { return c == '\r' || c == '\n'; }

// Simple case folding of the letters the contraction alternatives mention.
char32_t Fold(char32_t c, bool case_insensitive) {
  if (!case_insensitive) return c;
  if (c >= 'A' && c <= 'Z') return c - 'A' + 'a';
  if (c == 0x17F) return 's';  // LATIN SMALL LETTER LONG S folds to 's'
  return c;
}

// Returns the end (char index) of the match starting at i, or i when none.
size_t MatchAt(const Spec& spec, const std::vector<Ch>& c, size_t i) {
  const size_t n = c.size();
  auto letter = [&](size_t k) { return k < n && (c[k].cls & kClassLetter); };
  auto number = [&](size_t k) { return k < n && (c[k].cls & kClassNumber); };
  auto space = [&](size_t k) { return k < n && (c[k].cls & kClassSpace); };
  auto punct = [&](size_t k) {
    return k < n && (c[k].cls & (kClassLetter | kClassNumber | kClassSpace)) == 0;
  };

  // 's|'t|'re|'ve|'m|'ll|'d
  if (c[i].cp == '\'' && i + 1 < n) {
    const bool ci = spec.case_insensitive_contractions;
    const char32_t a = Fold(c[i + 1].cp, ci);
    const char32_t b = i + 2 < n ? Fold(c[i + 2].cp, ci) : 0;
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
  }
  // Letters.
  {
    size_t j = i;
    if (spec.letter_prefix_any) {
      if (!(c[i].cls & (kClassLetter | kClassNumber)) && !IsCrLf(c[i].cp) && letter(i + 1)) j = i + 1;
    } else if (c[i].cp == ' ' && letter(i + 1)) {
      j = i + 1;
    }
    if (letter(j)) {
      while (letter(j)) ++j;
      return j;
    }
  }
  // Numbers.
  {
    size_t j = i;
    if (spec.number_space_prefix && c[i].cp == ' ' && number(i + 1)) j = i + 1;
    if (number(j)) {
      const size_t start = j;
      while (number(j) && (spec.max_digits == 0 || j - start < static_cast<size_t>(spec.max_digits))) {
        ++j;
      }
      return j;
    }
  }
  // Punctuation and everything else that is not a letter, number or space.
  {
    size_t j = (c[i].cp == ' ' && punct(i + 1)) ? i + 1 : i;
    if (punct(j)) {
      while (punct(j)) ++j;
      if (spec.punct_trailing_newlines) {
        while (j < n && IsCrLf(c[j].cp)) ++j;
      }
      return j;
    }
  }
  // Whitespace: \s*[\r\n]+ | \s+(?!\S) | \s+
  if (space(i)) {
    size_t q = i;
    while (space(q)) ++q;
    if (spec.newline_rule) {
      for (size_t r = q; r > i; --r) {
        if (IsCrLf(c[r - 1].cp)) return r;
      }
    }
    if (q == n) return q;
    if (q - 1 > i) return q - 1;
    return q;
  }
  return i;
}

}  // namespace

std::string_view SplitRegexText(SplitRegex regex) {
  switch (regex) {
    case SplitRegex::kLlama3: return kLlama3Text;
    case SplitRegex::kQwen2: return kQwen2Text;
    case SplitRegex::kGpt2: return kGpt2Text;
  }
  return {};
}

std::optional<SplitRegex> RecognizeSplitRegex(std::string_view pattern) {
  for (SplitRegex r : {SplitRegex::kLlama3, SplitRegex::kQwen2, SplitRegex::kGpt2}) {
    if (pattern == SplitRegexText(r)) return r;
  }
  return std::nullopt;
}

void FindRegexMatches(SplitRegex regex, std::string_view text,
                      std::vector<std::pair<size_t, size_t>>* matches) {
  const Spec& spec = regex == SplitRegex::kLlama3  ? kLlama3Spec
                     : regex == SplitRegex::kQwen2 ? kQwen2Spec
                                                   : kGpt2Spec;
  std::vector<Ch> chars;
  std::vector<size_t> offsets;
  chars.reserve(text.size());
  offsets.reserve(text.size() + 1);
  for (size_t pos = 0; pos < text.size();) {
    char32_t cp = kReplacementChar;
    int len = DecodeUtf8(text, pos, &cp);
    if (len == 0) len = InvalidUtf8Length(text, pos);  // not reached for valid input
    chars.push_back({cp, CharClass(cp)});
    offsets.push_back(pos);
    pos += len;
  }
  offsets.push_back(text.size());
  for (size_t i = 0; i < chars.size();) {
    const size_t end = MatchAt(spec, chars, i);
    if (end == i) {
      ++i;
      continue;
    }
    matches->emplace_back(offsets[i], offsets[end]);
    i = end;
  }
}

}  // namespace loraserve::tokenizer_internal
