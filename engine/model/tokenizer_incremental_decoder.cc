#include "engine/model/tokenizer_incremental_decoder.h"

#include "absl/strings/str_cat.h"

namespace loraserve {

IncrementalDecoder::IncrementalDecoder(const Tokenizer* tokenizer, bool skip_special_tokens)
    : tokenizer_(tokenizer),
      skip_special_tokens_(skip_special_tokens),
      stream_(tokenizer->decoder().NewStream()) {}

absl::StatusOr<std::string> IncrementalDecoder::Step(int32_t id) {
  if (finished_) return absl::FailedPreconditionError("IncrementalDecoder::Step after Finish");
  bool special = false;
  const std::string* token = tokenizer_->TokenForDecode(id, &special);
  if (token == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("token id ", id, " is not in the vocabulary (size ",
                                                   tokenizer_->vocab_size(), ")"));
  }
  ++num_tokens_;
  std::string out;
  if (!(special && skip_special_tokens_)) tokenizer_->decoder().Push(&stream_, *token, &out);
  text_ += out;
  return out;
}

std::string IncrementalDecoder::Finish() {
  if (finished_) return std::string();
  finished_ = true;
  std::string out;
  tokenizer_->decoder().Flush(&stream_, &out);
  text_ += out;
  return out;
}

}  // namespace loraserve
