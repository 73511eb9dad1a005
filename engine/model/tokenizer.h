// Tokenizer: a Hugging Face tokenizer.json (the "tokenizers" library format)
// loaded into C++: added/special tokens, normalizer, pre-tokenizer, BPE model,
// post-processor and decoder, for the Llama family (Llama 2/3, Mistral, Qwen2,
// SmolLM/GPT-2 byte-level). Encode and Decode reproduce HF tokenizers 0.19 ids
// and text (checked against goldens in tests/data/tokenizers/). Components or
// options we do not implement exactly (Unigram/WordPiece models, NFKC,
// unknown regexes, ...) are refused by Load with a message naming the type and
// its JSON path: never a silent approximation.
//
// Owns all tokenizer state. Built by Load, then immutable: Encode, Decode and
// the lookups are const and safe to call from any number of threads at once.
// Called by the server (prompt tokenization), the engine (eos ids) and
// IncrementalDecoder (streaming detokenization).
//
// Input text that is not valid UTF-8 is first made valid the way
// String::from_utf8_lossy does (each maximal invalid subpart -> U+FFFD), then
// tokenized: a defined result, never a crash.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace loraserve {

namespace tokenizer_internal {
class AddedVocabulary;
class BpeModel;
class Decoder;
class Normalizer;
class PostProcessor;
class PreTokenizer;
}  // namespace tokenizer_internal

class Tokenizer {
 public:
  // Loads `tokenizer_json_path` and, if present beside it, tokenizer_config.json
  // (bos_token / eos_token). Errors: NotFound for a missing file,
  // InvalidArgument naming the JSON path for malformed or unsupported content.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Load(const std::string& tokenizer_json_path);

  // As Load, from the file contents; `tokenizer_config_json` may be empty.
  // Error messages start with "<what>: ".
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromJson(std::string_view tokenizer_json,
                                                             std::string_view tokenizer_config_json,
                                                             std::string_view what = "tokenizer.json");

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Token ids of `text`. Special tokens written in the text are always
  // recognised (as HF does); add_special_tokens applies the post-processor
  // template (e.g. a leading BOS).
  absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text, bool add_special_tokens) const;

  // Text of `ids` through the decoder chain. InvalidArgument when an id is
  // negative, >= vocab_size() or has no token.
  absl::StatusOr<std::string> Decode(std::span<const int32_t> ids, bool skip_special_tokens) const;

  // One past the largest token id (model vocab and added tokens).
  int32_t vocab_size() const { return vocab_size_; }
  // Added tokens first, then the model vocab.
  std::optional<int32_t> TokenToId(std::string_view token) const;
  // The token string, or "" when no token has this id.
  std::string IdToToken(int32_t id) const;
  // From tokenizer_config.json's bos_token, when present.
  std::optional<int32_t> bos_id() const { return bos_id_; }
  // From tokenizer_config.json's eos_token (empty when absent). Callers merge
  // generation_config.json's eos ids themselves.
  std::vector<int32_t> eos_ids() const { return eos_ids_; }
  // True for added tokens marked "special".
  bool IsSpecial(int32_t id) const;

 private:
  friend class IncrementalDecoder;
  Tokenizer();
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Build(std::string_view tokenizer_json,
                                                          std::string_view tokenizer_config_json);

  // The string the decoder sees for `id`, or nullptr when it has none; sets
  // *special for special added tokens.
  const std::string* TokenForDecode(int32_t id, bool* special) const;
  const tokenizer_internal::Decoder& decoder() const { return *decoder_; }

  std::unique_ptr<tokenizer_internal::AddedVocabulary> added_;
  std::unique_ptr<tokenizer_internal::Normalizer> normalizer_;  // may be null
  std::unique_ptr<tokenizer_internal::PreTokenizer> pre_tokenizer_;  // may be null
  std::unique_ptr<tokenizer_internal::BpeModel> model_;
  std::unique_ptr<tokenizer_internal::PostProcessor> post_processor_;
  std::unique_ptr<tokenizer_internal::Decoder> decoder_;
  int32_t vocab_size_ = 0;
  std::optional<int32_t> bos_id_;
  std::vector<int32_t> eos_ids_;
};

}  // namespace loraserve
