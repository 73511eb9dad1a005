#include "engine/stopping/stop_checker.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace loraserve {
namespace {

// True when `s` is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF).
bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    int n;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + static_cast<size_t>(n) >= s.size()) return false;  // truncated
    for (int k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr uint32_t kMin[4] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

bool Contains(const std::vector<int32_t>& ids, int32_t id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

}  // namespace

const char* FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kContextLength:
      return "context_length";
  }
  return "unknown";
}

absl::StatusOr<StopChecker> StopChecker::Create(StopConfig config) {
  if (config.max_tokens.has_value() && *config.max_tokens < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("stopping.max_tokens is ", *config.max_tokens, ", must be >= 1"));
  }
  if (config.stop_strings.size() > static_cast<size_t>(kMaxStopStrings)) {
    return absl::InvalidArgumentError(absl::StrCat("stopping.stop has ", config.stop_strings.size(),
                                                   " strings, at most ", kMaxStopStrings));
  }
  for (size_t i = 0; i < config.stop_strings.size(); ++i) {
    const std::string& s = config.stop_strings[i];
    if (s.empty() || s.size() > static_cast<size_t>(kMaxStopStringBytes)) {
      return absl::InvalidArgumentError(absl::StrCat("stopping.stop[", i, "] is ", s.size(),
                                                     " bytes, must be 1 to ", kMaxStopStringBytes));
    }
    if (!IsValidUtf8(s)) {
      return absl::InvalidArgumentError(absl::StrCat("stopping.stop[", i, "] is not valid UTF-8"));
    }
  }
  for (size_t i = 0; i < config.stop_token_ids.size(); ++i) {
    if (config.stop_token_ids[i] < 0) {
      return absl::InvalidArgumentError(absl::StrCat("stopping.stop_token_ids[", i, "] is ",
                                                     config.stop_token_ids[i], ", must be >= 0"));
    }
  }
  if (config.num_prompt_tokens < 0 || config.num_prompt_tokens >= config.context_length) {
    return absl::InvalidArgumentError(absl::StrCat("prompt of ", config.num_prompt_tokens,
                                                   " tokens leaves no room in a context of ",
                                                   config.context_length, " tokens"));
  }
  return StopChecker(std::move(config));
}

StopChecker::StopChecker(StopConfig config) : config_(std::move(config)) {
  for (const std::string& s : config_.stop_strings) {
    max_stop_bytes_ = std::max(max_stop_bytes_, s.size());
  }
}

StopUpdate StopChecker::Finish(FinishInfo info, std::string text) {
  finished_ = true;
  pending_.clear();
  StopUpdate update;
  update.text = std::move(text);
  update.finish = std::move(info);
  return update;
}

size_t StopChecker::HeldSuffixLength() const {
  if (max_stop_bytes_ == 0 || pending_.empty()) return 0;
  const size_t n = pending_.size();
  // Longest first: the smallest start whose suffix a stop string extends.
  const size_t first = n >= max_stop_bytes_ ? n - max_stop_bytes_ + 1 : 0;
  for (size_t start = first; start < n; ++start) {
    const std::string_view suffix = std::string_view(pending_).substr(start);
    for (const std::string& s : config_.stop_strings) {
      if (s.size() > suffix.size() && std::string_view(s).starts_with(suffix)) {
        return n - start;
      }
    }
  }
  return 0;
}

bool StopChecker::IsEndToken(int32_t token) const {
  return (!config_.ignore_eos && Contains(config_.eos_token_ids, token)) ||
         Contains(config_.stop_token_ids, token);
}

bool StopChecker::NextTokenReachesLimit() const {
  const int32_t next = num_output_tokens_ + 1;
  return (config_.max_tokens.has_value() && next >= *config_.max_tokens) ||
         static_cast<int64_t>(config_.num_prompt_tokens) + next >= config_.context_length;
}

StopUpdate StopChecker::Append(int32_t token, std::string_view text) {
  LS_CHECK(!finished_) << "StopChecker::Append after the request finished";
  ++num_output_tokens_;

  // For an end token `text` is earlier tokens' held-back text (never the end
  // token's own), so a stop string inside it still wins: it came first.
  pending_.append(text);
  size_t best_pos = std::string::npos;
  const std::string* best = nullptr;
  for (const std::string& s : config_.stop_strings) {
    const size_t pos = pending_.find(s);
    if (pos < best_pos) {
      best_pos = pos;
      best = &s;
    }
  }
  if (best != nullptr) {
    FinishInfo info;
    info.reason = FinishReason::kStop;
    info.matched_stop_string = *best;
    return Finish(std::move(info), pending_.substr(0, best_pos));
  }
  if (IsEndToken(token)) {
    FinishInfo info;
    info.reason = FinishReason::kStop;
    info.matched_token = token;
    return Finish(std::move(info), std::move(pending_));
  }

  if (config_.max_tokens.has_value() && num_output_tokens_ >= *config_.max_tokens) {
    FinishInfo info;
    info.reason = FinishReason::kLength;
    return Finish(std::move(info), std::move(pending_));
  }
  if (static_cast<int64_t>(config_.num_prompt_tokens) + num_output_tokens_ >=
      config_.context_length) {
    FinishInfo info;
    info.reason = FinishReason::kContextLength;
    return Finish(std::move(info), std::move(pending_));
  }

  StopUpdate update;
  const size_t emit = pending_.size() - HeldSuffixLength();
  update.text = pending_.substr(0, emit);
  pending_.erase(0, emit);
  return update;
}

}  // namespace loraserve
