#include "engine/model/tokenizer_post_processor.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"

namespace loraserve::tokenizer_internal {

absl::StatusOr<PostProcessor> PostProcessor::Parse(const Json* j, std::string_view path) {
  PostProcessor p;
  if (j != nullptr) RETURN_IF_ERROR(p.ParseInto(*j, path));
  return p;
}

absl::Status PostProcessor::ParseInto(const Json& j, std::string_view path) {
  ASSIGN_OR_RETURN(std::string type, ComponentType(j, path));
  if (type == "ByteLevel") return absl::OkStatus();
  if (type == "Sequence") {
    const std::string list_path = JsonChild(path, "processors");
    ASSIGN_OR_RETURN(const Json* list, RequiredField(j, "processors", path));
    RETURN_IF_ERROR(ExpectArray(*list, list_path));
    for (size_t i = 0; i < list->size(); ++i) {
      RETURN_IF_ERROR(ParseInto((*list)[i], JsonIndex(list_path, i)));
    }
    return absl::OkStatus();
  }
  if (type != "TemplateProcessing") {
    return JsonError(path, absl::StrCat("unsupported post-processor type \"", type,
                                        "\" (supported: TemplateProcessing, ByteLevel, Sequence)"));
  }
  const std::string specials_path = JsonChild(path, "special_tokens");
  const Json* specials = OptionalField(j, "special_tokens");
  if (specials != nullptr) RETURN_IF_ERROR(ExpectObject(*specials, specials_path));
  const std::string single_path = JsonChild(path, "single");
  ASSIGN_OR_RETURN(const Json* single, RequiredField(j, "single", path));
  RETURN_IF_ERROR(ExpectArray(*single, single_path));
  Wrap wrap;
  bool seen_sequence = false;
  for (size_t i = 0; i < single->size(); ++i) {
    const std::string item_path = JsonIndex(single_path, i);
    const Json& item = (*single)[i];
    RETURN_IF_ERROR(ExpectObject(item, item_path));
    if (const Json* seq = OptionalField(item, "Sequence"); seq != nullptr) {
      const std::string seq_path = JsonChild(item_path, "Sequence");
      ASSIGN_OR_RETURN(std::string id, RequiredString(*seq, "id", seq_path));
      if (id != "A" || seen_sequence) {
        return JsonError(seq_path, absl::StrCat("single template must contain $A exactly once, got $", id));
      }
      seen_sequence = true;
      continue;
    }
    const std::string tok_path = JsonChild(item_path, "SpecialToken");
    ASSIGN_OR_RETURN(const Json* tok, RequiredField(item, "SpecialToken", item_path));
    ASSIGN_OR_RETURN(std::string name, RequiredString(*tok, "id", tok_path));
    const Json* entry = specials == nullptr ? nullptr : OptionalField(*specials, name);
    if (entry == nullptr) {
      return JsonError(tok_path, absl::StrCat("special token \"", name,
                                              "\" is not listed in special_tokens"));
    }
    const std::string entry_path = JsonChild(specials_path, name);
    ASSIGN_OR_RETURN(const Json* ids, RequiredField(*entry, "ids", entry_path));
    RETURN_IF_ERROR(ExpectArray(*ids, JsonChild(entry_path, "ids")));
    std::vector<int32_t>& target = seen_sequence ? wrap.suffix : wrap.prefix;
    for (size_t k = 0; k < ids->size(); ++k) {
      ASSIGN_OR_RETURN(int64_t id, AsInt((*ids)[k], JsonIndex(JsonChild(entry_path, "ids"), k)));
      if (id < 0 || id > INT32_MAX) return JsonError(JsonChild(entry_path, "ids"), "id out of range");
      target.push_back(static_cast<int32_t>(id));
    }
  }
  if (!seen_sequence) return JsonError(single_path, "single template has no $A");
  wraps_.push_back(std::move(wrap));
  return absl::OkStatus();
}

void PostProcessor::Apply(std::vector<int32_t>* ids) const {
  for (const Wrap& w : wraps_) {
    if (w.prefix.empty() && w.suffix.empty()) continue;
    ids->insert(ids->begin(), w.prefix.begin(), w.prefix.end());
    ids->insert(ids->end(), w.suffix.begin(), w.suffix.end());
  }
}

}  // namespace loraserve::tokenizer_internal
