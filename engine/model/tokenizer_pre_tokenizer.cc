#include "engine/model/tokenizer_pre_tokenizer.h"

#include <functional>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "engine/model/tokenizer_normalizer.h"
#include "engine/model/tokenizer_regex.h"
#include "engine/model/tokenizer_unicode.h"

namespace loraserve::tokenizer_internal {
namespace {

using Ranges = std::vector<std::pair<size_t, size_t>>;

// HF's SplitDelimiterBehavior.
enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

absl::StatusOr<Behavior> ParseBehavior(const Json& j, std::string_view path) {
  ASSIGN_OR_RETURN(std::string b, RequiredString(j, "behavior", path));
  if (b == "Removed") return Behavior::kRemoved;
  if (b == "Isolated") return Behavior::kIsolated;
  if (b == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return Behavior::kMergedWithNext;
  if (b == "Contiguous") return Behavior::kContiguous;
  return JsonError(JsonChild(path, "behavior"), absl::StrCat("unknown split behavior \"", b, "\""));
}

struct Segment {
  size_t begin, end;
  bool is_match;
};

// Splits `piece` at `matches` (sorted, disjoint byte ranges) the way HF's
// NormalizedString::split does, appending the non-empty results to *out.
void SplitAtMatches(const PreToken& piece, const Ranges& matches, Behavior behavior, bool invert,
                    std::vector<PreToken>* out) {
  const std::string& text = piece.text;
  std::vector<Segment> segs;
  size_t prev = 0;
  for (const auto& [b, e] : matches) {
    if (prev != b) segs.push_back({prev, b, invert});
    segs.push_back({b, e, !invert});
    prev = e;
  }
  if (prev != text.size()) segs.push_back({prev, text.size(), invert});

  std::vector<Segment> result;
  switch (behavior) {
    case Behavior::kIsolated: result = segs; break;
    case Behavior::kRemoved:
      for (const Segment& s : segs) {
        if (!s.is_match) result.push_back(s);
      }
      break;
    case Behavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const Segment& s : segs) {
        if (s.is_match && !previous_match && !result.empty()) {
          result.back().end = s.end;
        } else {
          result.push_back(s);
        }
        previous_match = s.is_match;
      }
      break;
    }
    case Behavior::kMergedWithNext: {
      bool previous_match = false;
      for (auto it = segs.rbegin(); it != segs.rend(); ++it) {
        if (it->is_match && !previous_match && !result.empty()) {
          result.back().begin = it->begin;
        } else {
          result.push_back(*it);
        }
        previous_match = it->is_match;
      }
      std::reverse(result.begin(), result.end());
      break;
    }
    case Behavior::kContiguous: {
      bool previous_match = false;
      for (const Segment& s : segs) {
        if (s.is_match == previous_match && !result.empty()) {
          result.back().end = s.end;
        } else {
          result.push_back(s);
        }
        previous_match = s.is_match;
      }
      break;
    }
  }
  for (const Segment& s : result) {
    if (s.end <= s.begin) continue;
    out->push_back({text.substr(s.begin, s.end - s.begin), piece.at_start && s.begin == 0});
  }
}

void ForEachPiece(std::vector<PreToken>* pieces,
                  const std::function<void(PreToken&, std::vector<PreToken>*)>& fn) {
  std::vector<PreToken> out;
  out.reserve(pieces->size());
  for (PreToken& p : *pieces) fn(p, &out);
  pieces->swap(out);
}

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts)
      : parts_(std::move(parts)) {}
  void PreTokenize(std::vector<PreToken>* pieces) const override {
    for (const auto& p : parts_) p->PreTokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

// Split with a known regex or a literal string.
class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(std::optional<SplitRegex> regex, std::string literal, Behavior behavior,
                    bool invert)
      : regex_(regex), literal_(std::move(literal)), behavior_(behavior), invert_(invert) {}
  void PreTokenize(std::vector<PreToken>* pieces) const override {
    Ranges matches;
    ForEachPiece(pieces, [&](PreToken& p, std::vector<PreToken>* out) {
      matches.clear();
      if (regex_.has_value()) {
        FindRegexMatches(*regex_, p.text, &matches);
      } else {
        for (size_t pos = p.text.find(literal_); pos != std::string::npos;
             pos = p.text.find(literal_, pos + literal_.size())) {
          matches.emplace_back(pos, pos + literal_.size());
        }
      }
      SplitAtMatches(p, matches, behavior_, invert_, out);
    });
  }

 private:
  std::optional<SplitRegex> regex_;
  std::string literal_;
  Behavior behavior_;
  bool invert_;
};

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space), use_regex_(use_regex) {}
  void PreTokenize(std::vector<PreToken>* pieces) const override {
    Ranges matches;
    ForEachPiece(pieces, [&](PreToken& p, std::vector<PreToken>* out) {
      if (add_prefix_space_ && (p.text.empty() || p.text[0] != ' ')) p.text.insert(0, " ");
      const size_t first = out->size();
      if (use_regex_) {
        matches.clear();
        FindRegexMatches(SplitRegex::kGpt2, p.text, &matches);
        SplitAtMatches(p, matches, Behavior::kIsolated, false, out);
      } else if (!p.text.empty()) {
        out->push_back(std::move(p));
      }
      const auto& map = ByteToChar();
      for (size_t i = first; i < out->size(); ++i) {
        std::string mapped;
        mapped.reserve((*out)[i].text.size() * 2);
        for (char c : (*out)[i].text) AppendUtf8(map[static_cast<uint8_t>(c)], &mapped);
        (*out)[i].text = std::move(mapped);
      }
    });
  }

 private:
  bool add_prefix_space_;
  bool use_regex_;
};

enum class PrependScheme { kFirst, kAlways, kNever };

class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {}
  void PreTokenize(std::vector<PreToken>* pieces) const override {
    Ranges matches;
    ForEachPiece(pieces, [&](PreToken& p, std::vector<PreToken>* out) {
      p.text = ReplaceAll(p.text, " ", replacement_);
      const bool starts = p.text.compare(0, replacement_.size(), replacement_) == 0;
      if (!starts && (scheme_ == PrependScheme::kAlways ||
                      (scheme_ == PrependScheme::kFirst && p.at_start))) {
        p.text.insert(0, replacement_);
      }
      if (!split_) {
        if (!p.text.empty()) out->push_back(std::move(p));
        return;
      }
      matches.clear();
      for (size_t pos = p.text.find(replacement_); pos != std::string::npos;
           pos = p.text.find(replacement_, pos + replacement_.size())) {
        matches.emplace_back(pos, pos + replacement_.size());
      }
      SplitAtMatches(p, matches, Behavior::kMergedWithNext, false, out);
    });
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
};

// Digits: every numeric character is a match; individual_digits isolates each,
// otherwise runs of digits (and of non-digits) stay together.
class DigitsPreTokenizer final : public PreTokenizer {
 public:
  explicit DigitsPreTokenizer(bool individual) : individual_(individual) {}
  void PreTokenize(std::vector<PreToken>* pieces) const override {
    Ranges matches;
    ForEachPiece(pieces, [&](PreToken& p, std::vector<PreToken>* out) {
      matches.clear();
      for (size_t pos = 0; pos < p.text.size();) {
        char32_t cp = 0;
        int len = DecodeUtf8(p.text, pos, &cp);
        if (len == 0) len = InvalidUtf8Length(p.text, pos);
        if (IsNumber(cp)) matches.emplace_back(pos, pos + len);
        pos += len;
      }
      SplitAtMatches(p, matches, individual_ ? Behavior::kIsolated : Behavior::kContiguous, false,
                     out);
    });
  }

 private:
  bool individual_;
};

absl::StatusOr<std::unique_ptr<PreTokenizer>> ParseSplit(const Json& j, std::string_view path) {
  const std::string pattern_path = JsonChild(path, "pattern");
  ASSIGN_OR_RETURN(const Json* pattern, RequiredField(j, "pattern", path));
  RETURN_IF_ERROR(ExpectObject(*pattern, pattern_path));
  ASSIGN_OR_RETURN(Behavior behavior, ParseBehavior(j, path));
  ASSIGN_OR_RETURN(bool invert, BoolOr(j, "invert", path, false));
  if (const Json* re = OptionalField(*pattern, "Regex"); re != nullptr) {
    ASSIGN_OR_RETURN(std::string text, AsString(*re, JsonChild(pattern_path, "Regex")));
    std::optional<SplitRegex> known = RecognizeSplitRegex(text);
    if (!known.has_value()) {
      return JsonError(JsonChild(pattern_path, "Regex"),
                       absl::StrCat("unsupported Split regex \"", text,
                                    "\" (supported: the Llama 3, Qwen2 and GPT-2 patterns)"));
    }
    return std::make_unique<SplitPreTokenizer>(known, "", behavior, invert);
  }
  ASSIGN_OR_RETURN(std::string literal, ParseStringPattern(*pattern, pattern_path, "Split"));
  return std::make_unique<SplitPreTokenizer>(std::nullopt, std::move(literal), behavior, invert);
}

absl::StatusOr<std::unique_ptr<PreTokenizer>> ParseMetaspace(const Json& j, std::string_view path) {
  ASSIGN_OR_RETURN(std::string replacement, RequiredString(j, "replacement", path));
  char32_t cp = 0;
  if (replacement.empty() || DecodeUtf8(replacement, 0, &cp) != static_cast<int>(replacement.size())) {
    return JsonError(JsonChild(path, "replacement"), "must be exactly one character");
  }
  PrependScheme scheme = PrependScheme::kAlways;
  ASSIGN_OR_RETURN(std::optional<std::string> s, OptionalString(j, "prepend_scheme", path));
  if (s.has_value()) {
    if (*s == "first") {
      scheme = PrependScheme::kFirst;
    } else if (*s == "always") {
      scheme = PrependScheme::kAlways;
    } else if (*s == "never") {
      scheme = PrependScheme::kNever;
    } else {
      return JsonError(JsonChild(path, "prepend_scheme"),
                       absl::StrCat("unknown prepend_scheme \"", *s, "\""));
    }
  } else {
    ASSIGN_OR_RETURN(bool add_prefix_space, BoolOr(j, "add_prefix_space", path, true));
    scheme = add_prefix_space ? PrependScheme::kAlways : PrependScheme::kNever;
  }
  ASSIGN_OR_RETURN(bool split, BoolOr(j, "split", path, true));
  return std::make_unique<MetaspacePreTokenizer>(std::move(replacement), scheme, split);
}

}  // namespace

absl::StatusOr<std::unique_ptr<PreTokenizer>> ParsePreTokenizer(const Json& j,
                                                                std::string_view path) {
  ASSIGN_OR_RETURN(std::string type, ComponentType(j, path));
  if (type == "Sequence") {
    const std::string list_path = JsonChild(path, "pretokenizers");
    ASSIGN_OR_RETURN(const Json* list, RequiredField(j, "pretokenizers", path));
    RETURN_IF_ERROR(ExpectArray(*list, list_path));
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (size_t i = 0; i < list->size(); ++i) {
      ASSIGN_OR_RETURN(auto part, ParsePreTokenizer((*list)[i], JsonIndex(list_path, i)));
      parts.push_back(std::move(part));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(parts));
  }
  if (type == "Split") return ParseSplit(j, path);
  if (type == "ByteLevel") {
    ASSIGN_OR_RETURN(bool add_prefix_space, BoolOr(j, "add_prefix_space", path, true));
    ASSIGN_OR_RETURN(bool use_regex, BoolOr(j, "use_regex", path, true));
    return std::make_unique<ByteLevelPreTokenizer>(add_prefix_space, use_regex);
  }
  if (type == "Metaspace") return ParseMetaspace(j, path);
  if (type == "Digits") {
    ASSIGN_OR_RETURN(bool individual, BoolOr(j, "individual_digits", path, false));
    return std::make_unique<DigitsPreTokenizer>(individual);
  }
  return JsonError(path, absl::StrCat("unsupported pre-tokenizer type \"", type,
                                      "\" (supported: Sequence, Split, ByteLevel, Metaspace, "
                                      "Digits)"));
}

}  // namespace loraserve::tokenizer_internal
