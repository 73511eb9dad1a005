// The post-processor of a Hugging Face tokenizer.json ("post_processor"), for
// single sequences: TemplateProcessing (e.g. "<s> $A", "<|begin_of_text|> $A"),
// ByteLevel (offsets only: no change to ids) and Sequence of those. Applied by
// Tokenizer::Encode only when add_special_tokens is true. Others (Roberta,
// Bert, ...) are refused at load time with the JSON path and type.
//
// Immutable after parsing; any thread.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model/tokenizer_json.h"

namespace loraserve::tokenizer_internal {

class PostProcessor {
 public:
  // `j` may be null (no post-processor: Apply is a no-op).
  static absl::StatusOr<PostProcessor> Parse(const Json* j, std::string_view path);

  // Wraps *ids (the encoded sequence) in the templates' special tokens.
  void Apply(std::vector<int32_t>* ids) const;

 private:
  struct Wrap {
    std::vector<int32_t> prefix;
    std::vector<int32_t> suffix;
  };
  absl::Status ParseInto(const Json& j, std::string_view path);

  std::vector<Wrap> wraps_;  // applied in order
};

}  // namespace loraserve::tokenizer_internal
