// Pre-tokenizers of a Hugging Face tokenizer.json ("pre_tokenizer" field):
// Sequence, Split (the Llama 3 / Qwen2 / GPT-2 regexes, or a plain string),
// ByteLevel (GPT-2 byte->unicode map, optional GPT-2 regex and prefix space),
// Metaspace (replacement, prepend_scheme first/always/never or the older
// add_prefix_space, split) and Digits. Others are refused at load time with
// the JSON path and type.
//
// Built by Tokenizer::Load, then immutable: PreTokenize() is const and safe
// from any number of threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model/tokenizer_json.h"

namespace loraserve::tokenizer_internal {

// One piece of the input on its way to the model.
struct PreToken {
  std::string text;
  // True when the piece begins at offset 0 of the text given to Encode (what
  // Metaspace's prepend_scheme "first" checks).
  bool at_start = false;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces every piece of *pieces by its sub-pieces, in order; empty
  // sub-pieces are dropped.
  virtual void PreTokenize(std::vector<PreToken>* pieces) const = 0;
};

// Parses the pre-tokenizer object `j` found at JSON `path`.
absl::StatusOr<std::unique_ptr<PreTokenizer>> ParsePreTokenizer(const Json& j,
                                                                std::string_view path);

}  // namespace loraserve::tokenizer_internal
