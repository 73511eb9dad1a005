#include "bench/tools/synthetic_tokenizer.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace loraserve::bench {
namespace {

using Json = nlohmann::ordered_json;

std::string Utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    s.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    s.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
  return s;
}

Json AddedToken(int32_t id, const std::string& content) {
  return Json{{"id", id},        {"content", content},  {"single_word", false}, {"lstrip", false},
              {"rstrip", false}, {"normalized", false}, {"special", true}};
}

}  // namespace

std::string ByteLevelChar(uint8_t b) {
  // Printable Latin-1 bytes stand for themselves; the others map, in order,
  // to U+0100 onwards.
  auto printable = [](int c) {
    return (c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174;
  };
  if (printable(b)) return Utf8(b);
  uint32_t n = 0;
  for (int c = 0; c < b; ++c) {
    if (!printable(c)) ++n;
  }
  return Utf8(256 + n);
}

absl::StatusOr<SyntheticTokenizerFiles> MakeSyntheticTokenizer(int64_t vocab_size, int32_t bos_id,
                                                               int32_t eos_id,
                                                               int64_t model_max_length) {
  const int64_t specials = bos_id == eos_id ? 1 : 2;
  if (vocab_size < 256 + specials || vocab_size > (int64_t{1} << 24)) {
    return absl::InvalidArgumentError(absl::StrCat("synthetic tokenizer: vocab_size ", vocab_size,
                                                   " must be in [", 256 + specials,
                                                   ", 16777216] (256 byte tokens + BOS/EOS)"));
  }
  for (int32_t id : {bos_id, eos_id}) {
    if (id < 0 || id >= vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("synthetic tokenizer: special token id ", id,
                                                     " is outside [0, ", vocab_size, ")"));
    }
  }
  const std::string bos = bos_id == eos_id ? "</s>" : "<s>";
  const std::string eos = "</s>";

  Json vocab = Json::object();
  int next_byte = 0;
  for (int64_t id = 0; id < vocab_size; ++id) {
    // The specials are in the model vocab too (as HF's Llama tokenizer.json
    // has them): HF tokenizers gives an added token that is not in the model
    // vocab a new id past it, whatever id the file says.
    if (id == eos_id) {
      vocab[eos] = id;
    } else if (id == bos_id) {
      vocab[bos] = id;
    } else if (next_byte < 256) {
      vocab[ByteLevelChar(static_cast<uint8_t>(next_byte++))] = id;
    } else {
      vocab[absl::StrCat("<tok_", id, ">")] = id;
    }
  }
  Json added = Json::array();
  if (bos_id == eos_id) {
    added.push_back(AddedToken(eos_id, eos));
  } else {
    const bool bos_first = bos_id < eos_id;
    added.push_back(bos_first ? AddedToken(bos_id, bos) : AddedToken(eos_id, eos));
    added.push_back(bos_first ? AddedToken(eos_id, eos) : AddedToken(bos_id, bos));
  }
  auto special = [](const std::string& tok) {
    return Json{{"SpecialToken", {{"id", tok}, {"type_id", 0}}}};
  };
  auto sequence = [](const char* id) { return Json{{"Sequence", {{"id", id}, {"type_id", 0}}}}; };

  Json t;
  t["version"] = "1.0";
  t["truncation"] = nullptr;
  t["padding"] = nullptr;
  t["added_tokens"] = added;
  t["normalizer"] = nullptr;
  t["pre_tokenizer"] = {{"type", "ByteLevel"},
                        {"add_prefix_space", false},
                        {"trim_offsets", true},
                        {"use_regex", true}};
  t["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", {special(bos), sequence("A")}},
      {"pair", {special(bos), sequence("A"), special(bos), sequence("B")}},
      {"special_tokens", {{bos, {{"id", bos}, {"ids", {bos_id}}, {"tokens", {bos}}}}}}};
  t["decoder"] = {{"type", "ByteLevel"},
                  {"add_prefix_space", true},
                  {"trim_offsets", true},
                  {"use_regex", true}};
  t["model"] = {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", nullptr},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", false},
                {"byte_fallback", false},
                {"ignore_merges", false},
                {"vocab", vocab},
                {"merges", Json::array()}};

  Json config = {{"bos_token", bos},
                 {"eos_token", eos},
                 {"add_bos_token", true},
                 {"clean_up_tokenization_spaces", false},
                 {"tokenizer_class", "PreTrainedTokenizerFast"},
                 {"model_max_length", model_max_length}};
  return SyntheticTokenizerFiles{t.dump(2), config.dump(2)};
}

}  // namespace loraserve::bench
