#include "engine/model/tokenizer_decoder.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "engine/model/tokenizer_normalizer.h"

namespace loraserve::tokenizer_internal {
namespace {

constexpr std::string_view kReplacementUtf8 = "\xEF\xBF\xBD";

// Calls fn(code point, bytes) for each character of `s` (valid UTF-8).
template <typename Fn>
void ForEachChar(std::string_view s, Fn fn) {
  for (size_t pos = 0; pos < s.size();) {
    char32_t cp = kReplacementChar;
    int len = DecodeUtf8(s, pos, &cp);
    if (len == 0) len = InvalidUtf8Length(s, pos);
    fn(cp, s.substr(pos, len));
    pos += len;
  }
}

class ReplaceStage final : public DecoderStage {
 public:
  ReplaceStage(std::string pattern, std::string content, bool fused)
      : pattern_(std::move(pattern)), content_(std::move(content)), fused_(fused) {}
  void Push(std::string token, DecoderStageState* st, std::vector<std::string>* out) const override {
    if (!fused_) {
      out->push_back(ReplaceAll(token, pattern_, content_));
      return;
    }
    // One growing token: replace what is settled, hold a suffix that may still
    // begin a match.
    st->buffer += token;
    const std::string& b = st->buffer;
    size_t last_end = 0;
    for (size_t hit = b.find(pattern_); hit != std::string::npos; hit = b.find(pattern_, last_end)) {
      last_end = hit + pattern_.size();
    }
    size_t hold = 0;
    for (size_t k = std::min(pattern_.size() - 1, b.size() - last_end); k > 0; --k) {
      if (b.compare(b.size() - k, k, pattern_, 0, k) == 0) {
        hold = k;
        break;
      }
    }
    const size_t emit = b.size() - hold;
    if (emit == 0) return;
    out->push_back(ReplaceAll(std::string_view(b).substr(0, emit), pattern_, content_));
    st->buffer.erase(0, emit);
  }
  void Flush(DecoderStageState* st, std::vector<std::string>* out) const override {
    if (fused_ && !st->buffer.empty()) out->push_back(ReplaceAll(st->buffer, pattern_, content_));
    st->buffer.clear();
  }

 private:
  std::string pattern_;
  std::string content_;
  bool fused_;
};

class ByteFallbackStage final : public DecoderStage {
 public:
  void Push(std::string token, DecoderStageState* st, std::vector<std::string>* out) const override {
    unsigned byte = 0;
    if (token.size() == 6 && token.compare(0, 3, "<0x") == 0 && token[5] == '>' &&
        absl::SimpleHexAtoi(absl::string_view(token.data() + 3, 2), &byte) && byte < 256) {
      st->buffer.push_back(static_cast<char>(byte));
      return;
    }
    Flush(st, out);
    out->push_back(std::move(token));
  }
  void Flush(DecoderStageState* st, std::vector<std::string>* out) const override {
    if (st->buffer.empty()) return;
    if (IsValidUtf8(st->buffer)) {
      out->push_back(std::move(st->buffer));
    } else {
      // HF: an invalid run becomes one U+FFFD per byte.
      for (size_t i = 0; i < st->buffer.size(); ++i) out->emplace_back(kReplacementUtf8);
    }
    st->buffer.clear();
  }
};

class FuseStage final : public DecoderStage {
 public:
  void Push(std::string token, DecoderStageState*, std::vector<std::string>* out) const override {
    out->push_back(std::move(token));
  }
  bool fuses() const override { return true; }
};

// Joins tokens with " " (HF's behavior when there is no decoder).
class JoinStage final : public DecoderStage {
 public:
  void Push(std::string token, DecoderStageState* st, std::vector<std::string>* out) const override {
    if (st->count++ > 0) out->push_back(" ");
    out->push_back(std::move(token));
  }
  bool fuses() const override { return true; }
};

class StripStage final : public DecoderStage {
 public:
  StripStage(char32_t content, int64_t start, int64_t stop, bool fused)
      : content_(content), start_(start), stop_(stop), fused_(fused) {}

  void Push(std::string token, DecoderStageState* st, std::vector<std::string>* out) const override {
    if (!fused_) {
      out->push_back(StripToken(token));
      return;
    }
    std::string emitted;
    ForEachChar(token, [&](char32_t cp, std::string_view ch) {
      if (!st->started && st->count < start_ && cp == content_) {
        ++st->count;
        return;
      }
      st->started = true;
      if (stop_ == 0) {
        emitted.append(ch);
        return;
      }
      // Hold a trailing run of `content` characters; only its last `stop_`
      // characters can ever be stripped.
      if (cp == content_) {
        st->buffer.append(ch);
        const size_t char_len = ch.size();
        if (static_cast<int64_t>(st->buffer.size() / char_len) > stop_) {
          emitted.append(st->buffer, 0, char_len);
          st->buffer.erase(0, char_len);
        }
      } else {
        emitted += st->buffer;
        st->buffer.clear();
        emitted.append(ch);
      }
    });
    if (!emitted.empty()) out->push_back(std::move(emitted));
  }
  void Flush(DecoderStageState* st, std::vector<std::string>*) const override {
    st->buffer.clear();  // the trailing run (at most stop_ characters) is stripped
  }

 private:
  // HF's Strip::decode_chain on one token.
  std::string StripToken(std::string_view token) const {
    std::vector<std::string_view> chars;
    std::vector<char32_t> cps;
    ForEachChar(token, [&](char32_t cp, std::string_view ch) {
      cps.push_back(cp);
      chars.push_back(ch);
    });
    size_t start_cut = 0;
    for (size_t i = 0; i < cps.size() && static_cast<int64_t>(i) < start_; ++i) {
      if (cps[i] != content_) break;
      start_cut = i + 1;
    }
    size_t stop_cut = cps.size();
    for (size_t i = 0; i < cps.size() && static_cast<int64_t>(i) < stop_; ++i) {
      if (cps[cps.size() - 1 - i] != content_) break;
      stop_cut = cps.size() - i - 1;
    }
    std::string out;
    for (size_t i = start_cut; i < stop_cut; ++i) out.append(chars[i]);
    return out;
  }

  char32_t content_;
  int64_t start_;
  int64_t stop_;
  bool fused_;
};

class MetaspaceStage final : public DecoderStage {
 public:
  MetaspaceStage(char32_t replacement, bool prepends) : replacement_(replacement), prepends_(prepends) {}
  void Push(std::string token, DecoderStageState* st, std::vector<std::string>* out) const override {
    const bool first = st->count++ == 0;
    std::string result;
    result.reserve(token.size());
    ForEachChar(token, [&](char32_t cp, std::string_view ch) {
      if (cp != replacement_) {
        result.append(ch);
      } else if (!(first && prepends_)) {
        result.push_back(' ');
      }
    });
    out->push_back(std::move(result));
  }

 private:
  char32_t replacement_;
  bool prepends_;
};

class ByteLevelStage final : public DecoderStage {
 public:
  void Push(std::string token, DecoderStageState* st, std::vector<std::string>* out) const override {
    std::string bytes;
    bytes.reserve(token.size());
    bool all_mapped = true;
    ForEachChar(token, [&](char32_t cp, std::string_view) {
      const int b = CharToByte(cp);
      if (b < 0) all_mapped = false;
      bytes.push_back(static_cast<char>(b));
    });
    // HF: a token with any unmapped character contributes its raw bytes.
    const std::string& source = all_mapped ? bytes : token;
    std::string text;
    for (char c : source) st->utf8.Push(static_cast<uint8_t>(c), &text);
    if (!text.empty()) out->push_back(std::move(text));
  }
  void Flush(DecoderStageState* st, std::vector<std::string>* out) const override {
    std::string text;
    st->utf8.Flush(&text);
    if (!text.empty()) out->push_back(std::move(text));
  }
  bool fuses() const override { return true; }
};

absl::StatusOr<char32_t> SingleChar(const Json& j, std::string_view key, std::string_view path) {
  ASSIGN_OR_RETURN(std::string s, RequiredString(j, key, path));
  char32_t cp = 0;
  if (s.empty() || DecodeUtf8(s, 0, &cp) != static_cast<int>(s.size())) {
    return JsonError(JsonChild(path, key), "must be exactly one character");
  }
  return cp;
}

// Parses `j` at `path` into *stages; `fused` says whether an earlier stage fuses.
absl::Status ParseStages(const Json& j, std::string_view path,
                         std::vector<std::unique_ptr<DecoderStage>>* stages) {
  ASSIGN_OR_RETURN(std::string type, ComponentType(j, path));
  const bool fused = !stages->empty() && [&] {
    for (const auto& s : *stages) {
      if (s->fuses()) return true;
    }
    return false;
  }();
  auto refuse_after_fuse = [&]() {
    return JsonError(path, absl::StrCat("decoder \"", type,
                                        "\" after a Fuse/ByteLevel decoder is not supported"));
  };
  if (type == "Sequence") {
    const std::string list_path = JsonChild(path, "decoders");
    ASSIGN_OR_RETURN(const Json* list, RequiredField(j, "decoders", path));
    RETURN_IF_ERROR(ExpectArray(*list, list_path));
    for (size_t i = 0; i < list->size(); ++i) {
      RETURN_IF_ERROR(ParseStages((*list)[i], JsonIndex(list_path, i), stages));
    }
    return absl::OkStatus();
  }
  if (type == "Replace") {
    ASSIGN_OR_RETURN(const Json* pattern, RequiredField(j, "pattern", path));
    ASSIGN_OR_RETURN(std::string p,
                     ParseStringPattern(*pattern, JsonChild(path, "pattern"), "Replace decoder"));
    ASSIGN_OR_RETURN(std::string content, RequiredString(j, "content", path));
    stages->push_back(std::make_unique<ReplaceStage>(std::move(p), std::move(content), fused));
    return absl::OkStatus();
  }
  if (type == "ByteFallback") {
    if (fused) return refuse_after_fuse();
    stages->push_back(std::make_unique<ByteFallbackStage>());
    return absl::OkStatus();
  }
  if (type == "Fuse") {
    stages->push_back(std::make_unique<FuseStage>());
    return absl::OkStatus();
  }
  if (type == "Strip") {
    ASSIGN_OR_RETURN(char32_t content, SingleChar(j, "content", path));
    ASSIGN_OR_RETURN(int64_t start, IntOr(j, "start", path, 0));
    ASSIGN_OR_RETURN(int64_t stop, IntOr(j, "stop", path, 0));
    if (start < 0 || stop < 0) return JsonError(path, "Strip start/stop must be >= 0");
    stages->push_back(std::make_unique<StripStage>(content, start, stop, fused));
    return absl::OkStatus();
  }
  if (type == "Metaspace") {
    if (fused) return refuse_after_fuse();
    ASSIGN_OR_RETURN(char32_t replacement, SingleChar(j, "replacement", path));
    bool prepends = true;
    ASSIGN_OR_RETURN(auto scheme, OptionalString(j, "prepend_scheme", path));
    if (scheme.has_value()) {
      if (*scheme != "first" && *scheme != "always" && *scheme != "never") {
        return JsonError(JsonChild(path, "prepend_scheme"),
                         absl::StrCat("unknown prepend_scheme \"", *scheme, "\""));
      }
      prepends = *scheme != "never";
    } else {
      ASSIGN_OR_RETURN(prepends, BoolOr(j, "add_prefix_space", path, true));
    }
    stages->push_back(std::make_unique<MetaspaceStage>(replacement, prepends));
    return absl::OkStatus();
  }
  if (type == "ByteLevel") {
    if (fused) return refuse_after_fuse();
    stages->push_back(std::make_unique<ByteLevelStage>());
    return absl::OkStatus();
  }
  return JsonError(path, absl::StrCat("unsupported decoder type \"", type,
                                      "\" (supported: ByteLevel, Replace, ByteFallback, Fuse, "
                                      "Strip, Metaspace, Sequence)"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Decoder>> Decoder::Parse(const Json* j, std::string_view path) {
  auto decoder = std::make_unique<Decoder>();
  if (j == nullptr) {
    decoder->stages_.push_back(std::make_unique<JoinStage>());
  } else {
    RETURN_IF_ERROR(ParseStages(*j, path, &decoder->stages_));
  }
  return decoder;
}

void Decoder::PushFrom(size_t stage, Stream* stream, std::string token, std::string* out) const {
  if (stage == stages_.size()) {
    out->append(token);
    return;
  }
  std::vector<std::string> produced;
  stages_[stage]->Push(std::move(token), &stream->states[stage], &produced);
  for (std::string& t : produced) PushFrom(stage + 1, stream, std::move(t), out);
}

void Decoder::Push(Stream* stream, std::string token, std::string* out) const {
  PushFrom(0, stream, std::move(token), out);
}

void Decoder::Flush(Stream* stream, std::string* out) const {
  for (size_t i = 0; i < stages_.size(); ++i) {
    std::vector<std::string> produced;
    stages_[i]->Flush(&stream->states[i], &produced);
    for (std::string& t : produced) PushFrom(i + 1, stream, std::move(t), out);
  }
}

}  // namespace loraserve::tokenizer_internal
