#include "engine/model/tokenizer_normalizer.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "engine/model/tokenizer_unicode.h"

namespace loraserve::tokenizer_internal {
namespace {

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts)
      : parts_(std::move(parts)) {}
  void Normalize(std::string* text) const override {
    for (const auto& p : parts_) p->Normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prepend) : prepend_(std::move(prepend)) {}
  void Normalize(std::string* text) const override {
    if (!text->empty()) text->insert(0, prepend_);
  }

 private:
  std::string prepend_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(std::string pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void Normalize(std::string* text) const override {
    if (text->find(pattern_) == std::string::npos) return;
    *text = ReplaceAll(*text, pattern_, content_);
  }

 private:
  std::string pattern_;
  std::string content_;
};

class NfcNormalizer final : public Normalizer {
 public:
  void Normalize(std::string* text) const override { *text = NfcNormalize(*text); }
};

}  // namespace

std::string ReplaceAll(std::string_view text, std::string_view pattern, std::string_view content) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (true) {
    const size_t hit = text.find(pattern, pos);
    if (hit == std::string_view::npos) break;
    out.append(text.substr(pos, hit - pos));
    out.append(content);
    pos = hit + pattern.size();
  }
  out.append(text.substr(pos));
  return out;
}

absl::StatusOr<std::string> ParseStringPattern(const Json& j, std::string_view path,
                                               std::string_view what) {
  RETURN_IF_ERROR(ExpectObject(j, path));
  if (OptionalField(j, "Regex") != nullptr) {
    return JsonError(path, absl::StrCat("unsupported ", Sv(what),
                                        " with a Regex pattern (only String patterns)"));
  }
  ASSIGN_OR_RETURN(std::string s, RequiredString(j, "String", path));
  if (s.empty()) return JsonError(JsonChild(path, "String"), "empty pattern");
  return s;
}

absl::StatusOr<std::unique_ptr<Normalizer>> ParseNormalizer(const Json& j, std::string_view path) {
  ASSIGN_OR_RETURN(std::string type, ComponentType(j, path));
  if (type == "Sequence") {
    const std::string list_path = JsonChild(path, "normalizers");
    ASSIGN_OR_RETURN(const Json* list, RequiredField(j, "normalizers", path));
    RETURN_IF_ERROR(ExpectArray(*list, list_path));
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (size_t i = 0; i < list->size(); ++i) {
      ASSIGN_OR_RETURN(auto part, ParseNormalizer((*list)[i], JsonIndex(list_path, i)));
      parts.push_back(std::move(part));
    }
    return std::make_unique<SequenceNormalizer>(std::move(parts));
  }
  if (type == "Prepend") {
    ASSIGN_OR_RETURN(std::string prepend, RequiredString(j, "prepend", path));
    return std::make_unique<PrependNormalizer>(std::move(prepend));
  }
  if (type == "Replace") {
    ASSIGN_OR_RETURN(const Json* pattern, RequiredField(j, "pattern", path));
    ASSIGN_OR_RETURN(std::string p,
                     ParseStringPattern(*pattern, JsonChild(path, "pattern"), "Replace normalizer"));
    ASSIGN_OR_RETURN(std::string content, RequiredString(j, "content", path));
    return std::make_unique<ReplaceNormalizer>(std::move(p), std::move(content));
  }
  if (type == "NFC") return std::make_unique<NfcNormalizer>();
  return JsonError(path, absl::StrCat("unsupported normalizer type \"", type,
                                      "\" (supported: Sequence, Prepend, Replace, NFC)"));
}

}  // namespace loraserve::tokenizer_internal
