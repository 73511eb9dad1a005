// A tokenizer for synthetic models: a byte-level BPE with the 256 byte tokens
// (GPT-2's byte-to-unicode alphabet), no merges, BOS / EOS as special added
// tokens (also in the BPE vocab at their ids, as Hugging Face requires), and
// filler tokens "<tok_N>" (N = the id) up to the model's vocab
// size, so every id a random model can generate decodes to text. Encoding
// text gives one token per byte (plus BOS); both our Tokenizer
// (engine/model/tokenizer.h) and Hugging Face `tokenizers` load it.
//
// Called by the synthetic-model generator. Pure functions, any thread.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace loraserve::bench {

struct SyntheticTokenizerFiles {
  std::string tokenizer_json;         // tokenizer.json
  std::string tokenizer_config_json;  // tokenizer_config.json
};

// Ids: `bos_id` is "<s>", `eos_id` is "</s>" (one token "</s>" when equal),
// the remaining ids in ascending order are the 256 bytes, then fillers.
// InvalidArgument when vocab_size cannot hold the bytes and the specials, or
// an id is outside [0, vocab_size).
[[nodiscard]] absl::StatusOr<SyntheticTokenizerFiles> MakeSyntheticTokenizer(
    int64_t vocab_size, int32_t bos_id, int32_t eos_id, int64_t model_max_length);

// GPT-2's byte-level alphabet: the UTF-8 string standing for byte `b`.
std::string ByteLevelChar(uint8_t b);

}  // namespace loraserve::bench
