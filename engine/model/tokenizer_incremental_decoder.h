// IncrementalDecoder: streaming detokenization for one generated sequence.
// Fed one token id at a time, Step() returns the text that has become final:
// it never returns part of a UTF-8 character, holds back bytes that a later
// token may still complete (byte-level), whole runs of <0xNN> byte-fallback
// tokens until the run ends (HF decodes an invalid run as one U+FFFD per
// byte, so no prefix of a run is final before it ends), and characters a
// trailing Strip could remove. Finish() releases the rest. The concatenation
// of every Step() and Finish() equals Tokenizer::Decode(all ids) exactly,
// including the leading-space Strip of sentencepiece decoders (applied only at
// the very start) and U+FFFD for provably invalid bytes.
//
// Borrows the Tokenizer (which must outlive it). One instance per sequence;
// not thread-safe (the Tokenizer it reads is).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "engine/model/tokenizer.h"
#include "engine/model/tokenizer_decoder.h"

namespace loraserve {

class IncrementalDecoder {
 public:
  IncrementalDecoder(const Tokenizer* tokenizer, bool skip_special_tokens);

  // Feeds `id`; returns the newly final text (possibly empty). InvalidArgument
  // for an id with no token (the state is unchanged); FailedPrecondition after
  // Finish().
  absl::StatusOr<std::string> Step(int32_t id);

  // Ends the sequence and returns the held-back remainder. Further calls
  // return "".
  std::string Finish();

  // Everything returned so far by Step() and Finish() (for stop strings).
  const std::string& text() const { return text_; }
  int64_t num_tokens() const { return num_tokens_; }
  bool finished() const { return finished_; }

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_tokens_;
  tokenizer_internal::Decoder::Stream stream_;
  std::string text_;
  int64_t num_tokens_ = 0;
  bool finished_ = false;
};

}  // namespace loraserve
