#include "engine/model/tokenizer.h"

#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status.h"
#include "common/strings.h"
#include "engine/model/tokenizer_added_vocab.h"
#include "engine/model/tokenizer_bpe.h"
#include "engine/model/tokenizer_decoder.h"
#include "engine/model/tokenizer_json.h"
#include "engine/model/tokenizer_normalizer.h"
#include "engine/model/tokenizer_post_processor.h"
#include "engine/model/tokenizer_pre_tokenizer.h"
#include "engine/model/tokenizer_unicode.h"

namespace loraserve {

using tokenizer_internal::AddedToken;
using tokenizer_internal::AddedVocabulary;
using tokenizer_internal::BoolOr;
using tokenizer_internal::BpeModel;
using tokenizer_internal::Decoder;
using tokenizer_internal::ExpectArray;
using tokenizer_internal::ExpectObject;
using tokenizer_internal::IsValidUtf8;
using tokenizer_internal::Json;
using tokenizer_internal::JsonChild;
using tokenizer_internal::JsonError;
using tokenizer_internal::JsonIndex;
using tokenizer_internal::JsonTypeName;
using tokenizer_internal::OptionalField;
using tokenizer_internal::OptionalString;
using tokenizer_internal::ParseJson;
using tokenizer_internal::ParseNormalizer;
using tokenizer_internal::ParsePreTokenizer;
using tokenizer_internal::PostProcessor;
using tokenizer_internal::PreToken;
using tokenizer_internal::ReadWholeFile;
using tokenizer_internal::RequiredField;
using tokenizer_internal::RequiredInt;
using tokenizer_internal::RequiredString;
using tokenizer_internal::TextSegment;
using tokenizer_internal::Utf8Lossy;

namespace {

constexpr size_t kMaxTokenizerJsonBytes = size_t{512} << 20;
constexpr size_t kMaxConfigBytes = size_t{16} << 20;
constexpr size_t kMaxEncodeBytes = size_t{1} << 30;

absl::StatusOr<std::vector<AddedToken>> ParseAddedTokens(const Json& root, const BpeModel& model) {
  std::vector<AddedToken> tokens;
  const Json* list = OptionalField(root, "added_tokens");
  if (list == nullptr) return tokens;
  RETURN_IF_ERROR(ExpectArray(*list, "added_tokens"));
  for (size_t i = 0; i < list->size(); ++i) {
    const std::string path = JsonIndex("added_tokens", i);
    const Json& t = (*list)[i];
    RETURN_IF_ERROR(ExpectObject(t, path));
    AddedToken token;
    ASSIGN_OR_RETURN(int64_t id, RequiredInt(t, "id", path));
    if (id < 0 || id >= (int64_t{1} << 24)) return JsonError(JsonChild(path, "id"), "id out of range");
    ASSIGN_OR_RETURN(token.content, RequiredString(t, "content", path));
    if (token.content.empty()) return JsonError(JsonChild(path, "content"), "empty added token");
    ASSIGN_OR_RETURN(token.single_word, BoolOr(t, "single_word", path, false));
    ASSIGN_OR_RETURN(token.lstrip, BoolOr(t, "lstrip", path, false));
    ASSIGN_OR_RETURN(token.rstrip, BoolOr(t, "rstrip", path, false));
    ASSIGN_OR_RETURN(token.special, BoolOr(t, "special", path, false));
    ASSIGN_OR_RETURN(token.normalized, BoolOr(t, "normalized", path, !token.special));
    token.id = static_cast<int32_t>(id);
    // HF gives an added token that is also in the model vocab the model's id.
    if (std::optional<int32_t> model_id = model.TokenToId(token.content);
        model_id.has_value() && *model_id != token.id) {
      LS_LOG(WARNING) << path << ": added token \"" << token.content << "\" has id " << token.id
                      << " but the model vocab says " << *model_id << "; using " << *model_id;
      token.id = *model_id;
    }
    tokens.push_back(std::move(token));
  }
  return tokens;
}

// bos_token / eos_token in tokenizer_config.json: a string, or an AddedToken
// object with "content"; null or absent -> nullopt.
absl::StatusOr<std::optional<std::string>> ConfigToken(const Json& config, std::string_view key) {
  const Json* v = OptionalField(config, key);
  if (v == nullptr) return std::optional<std::string>();
  if (v->is_string()) return std::optional<std::string>(v->get<std::string>());
  if (v->is_object()) {
    ASSIGN_OR_RETURN(std::string content, RequiredString(*v, "content", key));
    return std::optional<std::string>(std::move(content));
  }
  return JsonError(key, absl::StrCat("expected a string or an object, got ", Sv(JsonTypeName(*v))));
}

}  // namespace

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Load(const std::string& tokenizer_json_path) {
  ASSIGN_OR_RETURN(std::string json, ReadWholeFile(tokenizer_json_path, kMaxTokenizerJsonBytes));
  const std::filesystem::path config_path =
      std::filesystem::path(tokenizer_json_path).parent_path() / "tokenizer_config.json";
  std::string config;
  std::error_code ec;
  if (std::filesystem::is_regular_file(config_path, ec)) {
    ASSIGN_OR_RETURN(config, ReadWholeFile(config_path.string(), kMaxConfigBytes));
  }
  return FromJson(json, config, tokenizer_json_path);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(std::string_view tokenizer_json,
                                                               std::string_view tokenizer_config_json,
                                                               std::string_view what) {
  auto result = Build(tokenizer_json, tokenizer_config_json);
  if (!result.ok()) return AnnotateStatus(result.status(), what);
  return result;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Build(std::string_view tokenizer_json,
                                                            std::string_view tokenizer_config_json) {
  ASSIGN_OR_RETURN(Json root, ParseJson(tokenizer_json, ""));
  RETURN_IF_ERROR(ExpectObject(root, ""));
  std::unique_ptr<Tokenizer> tok(new Tokenizer());

  // Model.
  ASSIGN_OR_RETURN(const Json* model, RequiredField(root, "model", ""));
  RETURN_IF_ERROR(ExpectObject(*model, "model"));
  ASSIGN_OR_RETURN(std::optional<std::string> model_type, OptionalString(*model, "type", "model"));
  if (!model_type.has_value() && OptionalField(*model, "merges") == nullptr) {
    return JsonError("model.type", "missing required field");
  }
  if (model_type.has_value() && *model_type != "BPE") {
    return JsonError("model.type", absl::StrCat("unsupported model type \"", *model_type,
                                                "\" (supported: BPE)"));
  }
  ASSIGN_OR_RETURN(tok->model_, BpeModel::Parse(*model, "model"));

  // Normalizer, pre-tokenizer, post-processor, decoder.
  if (const Json* n = OptionalField(root, "normalizer"); n != nullptr) {
    ASSIGN_OR_RETURN(tok->normalizer_, ParseNormalizer(*n, "normalizer"));
  }
  if (const Json* p = OptionalField(root, "pre_tokenizer"); p != nullptr) {
    ASSIGN_OR_RETURN(tok->pre_tokenizer_, ParsePreTokenizer(*p, "pre_tokenizer"));
  }
  ASSIGN_OR_RETURN(PostProcessor post,
                   PostProcessor::Parse(OptionalField(root, "post_processor"), "post_processor"));
  tok->post_processor_ = std::make_unique<PostProcessor>(std::move(post));
  ASSIGN_OR_RETURN(tok->decoder_, Decoder::Parse(OptionalField(root, "decoder"), "decoder"));

  // Added tokens.
  ASSIGN_OR_RETURN(std::vector<AddedToken> added, ParseAddedTokens(root, *tok->model_));
  int32_t max_id = tok->model_->max_id();
  for (const AddedToken& t : added) max_id = std::max(max_id, t.id);
  tok->vocab_size_ = max_id + 1;
  tok->added_ = std::make_unique<AddedVocabulary>(std::move(added), tok->normalizer_.get());

  // tokenizer_config.json: bos / eos.
  if (!tokenizer_config_json.empty()) {
    ASSIGN_OR_RETURN(Json config, ParseJson(tokenizer_config_json, "tokenizer_config.json"));
    RETURN_IF_ERROR(AnnotateStatus(ExpectObject(config, ""), "tokenizer_config.json"));
    for (const char* key : {"bos_token", "eos_token"}) {
      auto token = ConfigToken(config, key);
      RETURN_IF_ERROR(AnnotateStatus(token.status(), "tokenizer_config.json"));
      if (!token->has_value()) continue;
      std::optional<int32_t> id = tok->TokenToId(**token);
      if (!id.has_value()) {
        return absl::InvalidArgumentError(absl::StrCat("tokenizer_config.json: ", key, " \"", **token,
                                                       "\" is not a token of tokenizer.json"));
      }
      if (std::string_view(key) == "bos_token") {
        tok->bos_id_ = *id;
      } else {
        tok->eos_ids_ = {*id};
      }
    }
  }
  return tok;
}

absl::StatusOr<std::vector<int32_t>> Tokenizer::Encode(std::string_view text,
                                                       bool add_special_tokens) const {
  if (text.size() > kMaxEncodeBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("text of ", text.size(), " bytes is longer than the limit of ", kMaxEncodeBytes));
  }
  std::string repaired;
  if (!IsValidUtf8(text)) {
    repaired = Utf8Lossy(text);
    text = repaired;
  }
  std::vector<TextSegment> segments;
  added_->ExtractAndNormalize(text, normalizer_.get(), &segments);
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  std::vector<PreToken> pieces;
  for (TextSegment& seg : segments) {
    if (seg.id >= 0) {
      ids.push_back(seg.id);
      continue;
    }
    pieces.clear();
    pieces.push_back({std::move(seg.text), seg.at_start});
    if (pre_tokenizer_ != nullptr) pre_tokenizer_->PreTokenize(&pieces);
    for (const PreToken& p : pieces) model_->Tokenize(p.text, &ids);
  }
  if (add_special_tokens) post_processor_->Apply(&ids);
  return ids;
}

const std::string* Tokenizer::TokenForDecode(int32_t id, bool* special) const {
  if (const AddedToken* t = added_->FindById(id); t != nullptr) {
    *special = t->special;
    return &t->content;
  }
  *special = false;
  return model_->IdToToken(id);
}

absl::StatusOr<std::string> Tokenizer::Decode(std::span<const int32_t> ids,
                                              bool skip_special_tokens) const {
  Decoder::Stream stream = decoder_->NewStream();
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    bool special = false;
    const std::string* token = TokenForDecode(ids[i], &special);
    if (token == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("token id ", ids[i], " at position ", i,
                                                     " is not in the vocabulary (size ",
                                                     vocab_size_, ")"));
    }
    if (special && skip_special_tokens) continue;
    decoder_->Push(&stream, *token, &out);
  }
  decoder_->Flush(&stream, &out);
  return out;
}

std::optional<int32_t> Tokenizer::TokenToId(std::string_view token) const {
  if (const AddedToken* t = added_->FindByContent(token); t != nullptr) return t->id;
  return model_->TokenToId(token);
}

std::string Tokenizer::IdToToken(int32_t id) const {
  bool special = false;
  const std::string* token = TokenForDecode(id, &special);
  return token == nullptr ? std::string() : *token;
}

bool Tokenizer::IsSpecial(int32_t id) const {
  const AddedToken* t = added_->FindById(id);
  return t != nullptr && t->special;
}

}  // namespace loraserve
