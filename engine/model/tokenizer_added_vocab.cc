#include "engine/model/tokenizer_added_vocab.h"

#include <algorithm>
#include <array>
#include <utility>

#include "common/strings.h"
#include "engine/model/tokenizer_unicode.h"

namespace loraserve::tokenizer_internal {

// A byte trie answering "longest pattern starting here" (leftmost-longest
// search is then a left-to-right scan), with a first-byte filter.
class AddedVocabulary::Matcher {
 public:
  void Add(std::string_view pattern, size_t token) {
    if (pattern.empty()) return;
    int32_t node = 0;
    for (char c : pattern) {
      const uint8_t b = static_cast<uint8_t>(c);
      auto& kids = nodes_[node].children;
      auto it = std::lower_bound(kids.begin(), kids.end(), std::make_pair(b, int32_t{0}),
                                 [](const auto& x, const auto& y) { return x.first < y.first; });
      if (it != kids.end() && it->first == b) {
        node = it->second;
      } else {
        const int32_t fresh = static_cast<int32_t>(nodes_.size());
        kids.insert(it, {b, fresh});
        nodes_.emplace_back();
        node = fresh;
      }
    }
    // The first token with this pattern wins, as in HF (later duplicates are unreachable).
    if (!nodes_[node].token.has_value()) nodes_[node].token = token;
    first_byte_[static_cast<uint8_t>(pattern[0])] = true;
    empty_ = false;
  }
  bool empty() const { return empty_; }

  // The (length, token) of the longest pattern at text[pos], or length 0.
  std::pair<size_t, size_t> LongestAt(std::string_view text, size_t pos) const {
    std::pair<size_t, size_t> best{0, 0};
    if (!first_byte_[static_cast<uint8_t>(text[pos])]) return best;
    int32_t node = 0;
    for (size_t i = pos; i < text.size(); ++i) {
      const uint8_t b = static_cast<uint8_t>(text[i]);
      const auto& kids = nodes_[node].children;
      auto it = std::lower_bound(kids.begin(), kids.end(), std::make_pair(b, int32_t{0}),
                                 [](const auto& x, const auto& y) { return x.first < y.first; });
      if (it == kids.end() || it->first != b) break;
      node = it->second;
      if (nodes_[node].token.has_value()) best = {i + 1 - pos, *nodes_[node].token};
    }
    return best;
  }

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> children;  // sorted by byte
    std::optional<size_t> token;
  };
  std::vector<Node> nodes_ = std::vector<Node>(1);
  std::array<bool, 256> first_byte_{};
  bool empty_ = true;
};

namespace {

// The last / first character of a string, or nullopt when empty.
std::optional<char32_t> LastChar(std::string_view s) {
  if (s.empty()) return std::nullopt;
  size_t pos = s.size() - 1;
  while (pos > 0 && (static_cast<uint8_t>(s[pos]) & 0xC0) == 0x80 && s.size() - pos < 4) --pos;
  char32_t cp = kReplacementChar;
  DecodeUtf8(s, pos, &cp);
  return cp;
}

std::optional<char32_t> FirstChar(std::string_view s) {
  if (s.empty()) return std::nullopt;
  char32_t cp = kReplacementChar;
  DecodeUtf8(s, 0, &cp);
  return cp;
}

// Rust's char::is_alphanumeric, approximated by General_Category L or N.
bool IsWordChar(std::optional<char32_t> c) { return c.has_value() && (IsLetter(*c) || IsNumber(*c)); }

}  // namespace

AddedVocabulary::AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer)
    : tokens_(std::move(tokens)),
      raw_matcher_(std::make_unique<Matcher>()),
      normalized_matcher_(std::make_unique<Matcher>()) {
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& t = tokens_[i];
    by_id_.emplace(t.id, i);
    by_content_.emplace(t.content, i);
    if (t.normalized) {
      std::string pattern = t.content;
      if (normalizer != nullptr) normalizer->Normalize(&pattern);
      normalized_matcher_->Add(pattern, i);
    } else {
      raw_matcher_->Add(t.content, i);
    }
  }
}

AddedVocabulary::~AddedVocabulary() = default;

const AddedToken* AddedVocabulary::FindById(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedVocabulary::FindByContent(std::string_view content) const {
  auto it = by_content_.find(Sv(content));
  return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

std::vector<AddedVocabulary::Match> AddedVocabulary::FindMatches(std::string_view sentence,
                                                                 const Matcher& matcher) const {
  std::vector<Match> splits;
  size_t start_offset = 0;
  for (size_t pos = 0; pos < sentence.size();) {
    const auto [len, index] = matcher.LongestAt(sentence, pos);
    if (len == 0) {
      ++pos;
      continue;
    }
    size_t start = pos;
    size_t stop = pos + len;
    pos = stop;  // the search resumes after this match whatever happens to it
    const AddedToken& token = tokens_[index];
    if (token.single_word) {
      const bool start_space = start == 0 || !IsWordChar(LastChar(sentence.substr(0, start)));
      const bool stop_space = stop == sentence.size() || !IsWordChar(FirstChar(sentence.substr(stop)));
      if (!start_space || !stop_space) continue;
    }
    if (token.lstrip) {
      size_t new_start = start;
      while (new_start > 0) {
        size_t p = new_start - 1;
        while (p > 0 && (static_cast<uint8_t>(sentence[p]) & 0xC0) == 0x80) --p;
        char32_t cp = kReplacementChar;
        DecodeUtf8(sentence, p, &cp);
        if (!IsWhitespace(cp)) break;
        new_start = p;
      }
      start = std::max(new_start, start_offset);
    }
    if (token.rstrip) {
      while (stop < sentence.size()) {
        char32_t cp = kReplacementChar;
        int l = DecodeUtf8(sentence, stop, &cp);
        if (l == 0 || !IsWhitespace(cp)) break;
        stop += l;
      }
    }
    if (start_offset < start) splits.push_back({std::nullopt, start_offset, start});
    splits.push_back({index, start, stop});
    start_offset = stop;
  }
  if (start_offset < sentence.size()) splits.push_back({std::nullopt, start_offset, sentence.size()});
  return splits;
}

void AddedVocabulary::ExtractAndNormalize(std::string_view text, const Normalizer* normalizer,
                                          std::vector<TextSegment>* out) const {
  std::vector<Match> first;
  if (raw_matcher_->empty()) {
    if (!text.empty()) first.push_back({std::nullopt, 0, text.size()});
  } else {
    first = FindMatches(text, *raw_matcher_);
  }
  for (const Match& m : first) {
    if (m.token.has_value()) {
      out->push_back({std::string(), tokens_[*m.token].id, m.begin == 0});
      continue;
    }
    if (m.end <= m.begin) continue;
    std::string piece(text.substr(m.begin, m.end - m.begin));
    if (normalizer != nullptr) normalizer->Normalize(&piece);
    const bool at_start = m.begin == 0;
    if (normalized_matcher_->empty()) {
      if (!piece.empty()) out->push_back({std::move(piece), -1, at_start});
      continue;
    }
    for (const Match& n : FindMatches(piece, *normalized_matcher_)) {
      if (n.token.has_value()) {
        out->push_back({std::string(), tokens_[*n.token].id, at_start && n.begin == 0});
      } else if (n.end > n.begin) {
        out->push_back({piece.substr(n.begin, n.end - n.begin), -1, at_start && n.begin == 0});
      }
    }
  }
}

}  // namespace loraserve::tokenizer_internal
