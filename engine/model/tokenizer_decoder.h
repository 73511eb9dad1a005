// The decoder chain of a Hugging Face tokenizer.json ("decoder"): ByteLevel,
// Replace (string pattern), ByteFallback, Fuse, Strip, Metaspace and Sequence
// of those; a null decoder joins tokens with " " as HF does. Others
// (WordPiece, CTC, BPEDecoder, ...) are refused at load time with the JSON
// path and type.
//
// Every stage is written as a stream transform with the same result as HF's
// batch decode_chain, so Tokenizer::Decode (push all, flush) and the
// IncrementalDecoder (push one token at a time) share one implementation and
// agree by construction. Stages emit only complete UTF-8 characters; they hold
// back exactly what later tokens could still change: a run of <0xNN> byte
// tokens (HF turns a whole invalid run into one U+FFFD per byte), an
// unfinished byte-level UTF-8 sequence, trailing characters a Strip(stop>0)
// might remove, and a suffix that may start a multi-character Replace match.
//
// The Decoder is immutable after parsing and shared by all threads; each
// decode owns its Stream (per-stage state).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model/tokenizer_json.h"
#include "engine/model/tokenizer_unicode.h"

namespace loraserve::tokenizer_internal {

// Mutable per-stage state of one decode stream.
struct DecoderStageState {
  std::string buffer;     // held text or bytes
  int64_t count = 0;      // tokens seen / characters stripped
  bool started = false;   // a non-stripped character has been emitted
  Utf8Assembler utf8;     // ByteLevel's pending bytes
};

class DecoderStage {
 public:
  virtual ~DecoderStage() = default;
  // Consumes one token (or, after a fusing stage, one chunk of the single
  // fused token) and appends what it produces to *out.
  virtual void Push(std::string token, DecoderStageState* state,
                    std::vector<std::string>* out) const = 0;
  // End of stream: appends whatever was held back.
  virtual void Flush(DecoderStageState* /*state*/, std::vector<std::string>* /*out*/) const {}
  // True when the output is one token growing chunk by chunk (Fuse, ByteLevel).
  virtual bool fuses() const { return false; }
};

class Decoder {
 public:
  struct Stream {
    std::vector<DecoderStageState> states;
  };

  // `j` may be null: then tokens are joined with single spaces.
  static absl::StatusOr<std::unique_ptr<Decoder>> Parse(const Json* j, std::string_view path);

  Stream NewStream() const { return Stream{std::vector<DecoderStageState>(stages_.size())}; }
  // Feeds one token string; appends the text that became final to *out.
  void Push(Stream* stream, std::string token, std::string* out) const;
  // Ends the stream; appends the held-back remainder to *out.
  void Flush(Stream* stream, std::string* out) const;

 private:
  void PushFrom(size_t stage, Stream* stream, std::string token, std::string* out) const;

  std::vector<std::unique_ptr<DecoderStage>> stages_;
};

}  // namespace loraserve::tokenizer_internal
