// The added tokens of a Hugging Face tokenizer.json ("added_tokens"): special
// and non-special tokens that are cut out of the input text before the
// normalizer/pre-tokenizer/model see it. Matching follows HF's
// AddedVocabulary: leftmost-longest over all tokens of a kind, first on the
// raw text for tokens with normalized=false, then (after normalizing the rest)
// on the normalized text for tokens with normalized=true; single_word, lstrip
// and rstrip adjust or veto a match exactly as HF's find_matches does.
// Special tokens are split out whether or not add_special_tokens is set.
//
// Built by Tokenizer::Load, then immutable; any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "engine/model/tokenizer_normalizer.h"

namespace loraserve::tokenizer_internal {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool special = false;
};

// A stretch of the input after added-token extraction: either an added token
// (id >= 0) or normalized text for the pre-tokenizer (id == -1).
struct TextSegment {
  std::string text;
  int32_t id = -1;
  bool at_start = false;  // begins at offset 0 of the original input
};

class AddedVocabulary {
 public:
  // `normalizer` (may be null) normalizes the content of normalized=true
  // tokens, as HF does when it builds its matcher; it is not retained.
  AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer);
  ~AddedVocabulary();

  // Splits `text` (valid UTF-8) into segments; non-token text is normalized by
  // `normalizer` (may be null). Empty text segments are dropped.
  void ExtractAndNormalize(std::string_view text, const Normalizer* normalizer,
                           std::vector<TextSegment>* out) const;

  const AddedToken* FindById(int32_t id) const;
  const AddedToken* FindByContent(std::string_view content) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  class Matcher;
  struct Match {
    std::optional<int32_t> token;  // index into tokens_; nullopt for text
    size_t begin, end;
  };
  // HF's AddedVocabulary::find_matches over `sentence` with `matcher`.
  std::vector<Match> FindMatches(std::string_view sentence, const Matcher& matcher) const;

  std::vector<AddedToken> tokens_;
  absl::flat_hash_map<int32_t, size_t> by_id_;
  absl::flat_hash_map<std::string, size_t> by_content_;
  std::unique_ptr<Matcher> raw_matcher_;         // normalized == false
  std::unique_ptr<Matcher> normalized_matcher_;  // normalized == true
};

}  // namespace loraserve::tokenizer_internal
