#include "engine/model/tokenizer_bpe.h"

#include <queue>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status.h"
#include "common/strings.h"
#include "engine/model/tokenizer_unicode.h"

namespace loraserve::tokenizer_internal {
namespace {

// Ids above this are refused (a corrupt file must not make us allocate GBs).
constexpr int64_t kMaxTokenId = (int64_t{1} << 24) - 1;

struct QueueEntry {
  int32_t rank;
  int32_t pos;
  int32_t new_id;
  // std::priority_queue pops the largest: order so that the smallest rank,
  // then the smallest position, comes first (HF's Merge ordering).
  bool operator<(const QueueEntry& o) const {
    return rank != o.rank ? rank > o.rank : pos > o.pos;
  }
};

absl::StatusOr<std::pair<std::string, std::string>> ParseMerge(const Json& m,
                                                               std::string_view path) {
  if (m.is_string()) {
    const std::string s = m.get<std::string>();
    const size_t space = s.find(' ');
    if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
      return JsonError(path, absl::StrCat("merge \"", s, "\" is not two tokens separated by one space"));
    }
    return std::make_pair(s.substr(0, space), s.substr(space + 1));
  }
  if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
    return std::make_pair(m[0].get<std::string>(), m[1].get<std::string>());
  }
  return JsonError(path, "merge must be a string \"a b\" or an array of two strings");
}

}  // namespace

absl::StatusOr<std::unique_ptr<BpeModel>> BpeModel::Parse(const Json& j, std::string_view path) {
  std::unique_ptr<BpeModel> m(new BpeModel());
  if (const Json* dropout = OptionalField(j, "dropout"); dropout != nullptr) {
    if (!dropout->is_number() || dropout->get<double>() != 0.0) {
      return JsonError(JsonChild(path, "dropout"), "BPE dropout is not supported (must be null)");
    }
  }
  ASSIGN_OR_RETURN(m->fuse_unk_, BoolOr(j, "fuse_unk", path, false));
  ASSIGN_OR_RETURN(m->byte_fallback_, BoolOr(j, "byte_fallback", path, false));
  ASSIGN_OR_RETURN(m->ignore_merges_, BoolOr(j, "ignore_merges", path, false));
  ASSIGN_OR_RETURN(auto prefix, OptionalString(j, "continuing_subword_prefix", path));
  ASSIGN_OR_RETURN(auto suffix, OptionalString(j, "end_of_word_suffix", path));
  m->continuing_subword_prefix_ = prefix.value_or("");
  m->end_of_word_suffix_ = suffix.value_or("");

  // Vocab.
  const std::string vocab_path = JsonChild(path, "vocab");
  ASSIGN_OR_RETURN(const Json* vocab, RequiredField(j, "vocab", path));
  RETURN_IF_ERROR(ExpectObject(*vocab, vocab_path));
  m->vocab_.reserve(vocab->size());
  int64_t max_id = -1;
  for (auto it = vocab->begin(); it != vocab->end(); ++it) {
    const std::string entry_path = JsonChild(vocab_path, it.key());
    ASSIGN_OR_RETURN(int64_t id, AsInt(it.value(), entry_path));
    if (id < 0 || id > kMaxTokenId) {
      return JsonError(entry_path, absl::StrCat("token id ", id, " out of range [0, ", kMaxTokenId, "]"));
    }
    m->vocab_[it.key()] = static_cast<int32_t>(id);
    max_id = std::max(max_id, id);
  }
  m->id_to_token_.resize(static_cast<size_t>(max_id + 1));
  m->has_id_.assign(static_cast<size_t>(max_id + 1), false);
  m->byte_ids_.fill(-1);
  for (const auto& [token, id] : m->vocab_) {
    m->id_to_token_[id] = token;
    m->has_id_[id] = true;
    char32_t cp = 0;
    if (!token.empty() && DecodeUtf8(token, 0, &cp) == static_cast<int>(token.size())) {
      m->char_ids_[cp] = id;
    }
    unsigned byte = 0;
    if (token.size() == 6 && token.compare(0, 3, "<0x") == 0 && token[5] == '>' &&
        absl::SimpleHexAtoi(absl::string_view(token.data() + 3, 2), &byte)) {
      m->byte_ids_[byte] = id;
    }
  }

  ASSIGN_OR_RETURN(auto unk, OptionalString(j, "unk_token", path));
  if (unk.has_value()) {
    auto it = m->vocab_.find(*unk);
    if (it == m->vocab_.end()) {
      return JsonError(JsonChild(path, "unk_token"),
                       absl::StrCat("unk_token \"", *unk, "\" is not in the vocab"));
    }
    m->unk_id_ = it->second;
  }

  // Merges.
  const std::string merges_path = JsonChild(path, "merges");
  const Json* merges = OptionalField(j, "merges");
  if (merges != nullptr) {
    RETURN_IF_ERROR(ExpectArray(*merges, merges_path));
    m->merges_.reserve(merges->size());
    const size_t prefix_len = m->continuing_subword_prefix_.size();
    for (size_t i = 0; i < merges->size(); ++i) {
      const std::string merge_path = JsonIndex(merges_path, i);
      ASSIGN_OR_RETURN(auto pair, ParseMerge((*merges)[i], merge_path));
      auto a = m->vocab_.find(pair.first);
      auto b = m->vocab_.find(pair.second);
      if (a == m->vocab_.end() || b == m->vocab_.end()) {
        return JsonError(merge_path, absl::StrCat("merge token \"",
                                                  a == m->vocab_.end() ? pair.first : pair.second,
                                                  "\" is not in the vocab"));
      }
      if (pair.second.size() < prefix_len) {
        return JsonError(merge_path, "merge token shorter than continuing_subword_prefix");
      }
      const std::string merged = pair.first + pair.second.substr(prefix_len);
      auto c = m->vocab_.find(merged);
      if (c == m->vocab_.end()) {
        return JsonError(merge_path, absl::StrCat("merged token \"", merged, "\" is not in the vocab"));
      }
      // A repeated pair keeps its last rank, as HF's HashMap collect does.
      m->merges_[PairKey(a->second, b->second)] = Merge{static_cast<int32_t>(i), c->second};
    }
  }
  return m;
}

std::optional<int32_t> BpeModel::TokenToId(std::string_view token) const {
  auto it = vocab_.find(Sv(token));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::IdToToken(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size() || !has_id_[id]) return nullptr;
  return &id_to_token_[id];
}

void BpeModel::InitialSymbols(std::string_view word, std::vector<Symbol>* symbols) const {
  const bool plain = continuing_subword_prefix_.empty() && end_of_word_suffix_.empty();
  // A pending unk symbol (HF fuses consecutive unknowns when fuse_unk).
  bool unk_pending = false;
  int32_t unk_id = 0, unk_len = 0;
  auto add = [&](int32_t id, int32_t len) {
    const int32_t index = static_cast<int32_t>(symbols->size());
    symbols->push_back(Symbol{id, index - 1, index + 1, len});
  };
  std::string piece;
  for (size_t pos = 0; pos < word.size();) {
    char32_t cp = kReplacementChar;
    int len = DecodeUtf8(word, pos, &cp);
    const bool valid = len > 0;  // always, for the valid UTF-8 Encode passes in
    if (!valid) len = InvalidUtf8Length(word, pos);
    const std::string_view ch = word.substr(pos, len);
    const bool is_first = pos == 0;
    pos += len;
    const bool is_last = pos >= word.size();

    std::optional<int32_t> id;
    if (plain) {
      if (auto it = char_ids_.find(cp); valid && it != char_ids_.end()) id = it->second;
    } else {
      piece.clear();
      if (!is_first) piece += continuing_subword_prefix_;
      piece.append(ch);
      if (is_last) piece += end_of_word_suffix_;
      if (auto it = vocab_.find(piece); it != vocab_.end()) id = it->second;
    }
    if (id.has_value()) {
      if (unk_pending) {
        add(unk_id, unk_len);
        unk_pending = false;
      }
      add(*id, len);
      continue;
    }
    if (byte_fallback_) {
      // HF looks up "<0xNN>" for every byte of the (prefixed) piece.
      std::string_view bytes = ch;
      if (!plain) bytes = piece;
      bool all = true;
      for (char b : bytes) all = all && byte_ids_[static_cast<uint8_t>(b)] >= 0;
      if (all) {
        for (char b : bytes) add(byte_ids_[static_cast<uint8_t>(b)], 1);
        continue;
      }
    }
    if (unk_id_.has_value()) {
      if (unk_pending && fuse_unk_) {
        unk_len += len;
      } else {
        if (unk_pending) add(unk_id, unk_len);
        unk_pending = true;
        unk_id = *unk_id_;
        unk_len = len;
      }
    }
  }
  if (unk_pending) add(unk_id, unk_len);
  if (!symbols->empty()) symbols->back().next = -1;
}

void BpeModel::MergeAll(std::vector<Symbol>* symbols) const {
  std::vector<Symbol>& s = *symbols;
  std::vector<QueueEntry> initial;
  initial.reserve(s.size());
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    if (auto it = merges_.find(PairKey(s[i].id, s[i + 1].id)); it != merges_.end()) {
      initial.push_back({it->second.rank, static_cast<int32_t>(i), it->second.new_id});
    }
  }
  std::priority_queue<QueueEntry> queue(std::less<QueueEntry>(), std::move(initial));
  while (!queue.empty()) {
    const QueueEntry top = queue.top();
    queue.pop();
    Symbol& cur = s[top.pos];
    if (cur.len == 0 || cur.next == -1) continue;
    const int32_t next_pos = cur.next;
    const Symbol right = s[next_pos];
    auto it = merges_.find(PairKey(cur.id, right.id));
    if (it == merges_.end() || it->second.new_id != top.new_id) continue;  // stale entry
    cur.id = top.new_id;
    cur.len += right.len;
    cur.next = right.next;
    s[next_pos].len = 0;
    if (right.next >= 0 && static_cast<size_t>(right.next) < s.size()) s[right.next].prev = top.pos;
    if (cur.prev >= 0) {
      if (auto p = merges_.find(PairKey(s[cur.prev].id, cur.id)); p != merges_.end()) {
        queue.push({p->second.rank, cur.prev, p->second.new_id});
      }
    }
    if (cur.next >= 0) {
      if (auto n = merges_.find(PairKey(cur.id, s[cur.next].id)); n != merges_.end()) {
        queue.push({n->second.rank, top.pos, n->second.new_id});
      }
    }
  }
}

void BpeModel::TokenizeUncached(std::string_view word, std::vector<int32_t>* ids) const {
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  InitialSymbols(word, &symbols);
  MergeAll(&symbols);
  for (const Symbol& sym : symbols) {
    if (sym.len != 0) ids->push_back(sym.id);
  }
}

void BpeModel::Tokenize(std::string_view word, std::vector<int32_t>* ids) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (auto it = vocab_.find(Sv(word)); it != vocab_.end()) {
      ids->push_back(it->second);
      return;
    }
  }
  if (word.size() > kCacheMaxWordBytes) {
    TokenizeUncached(word, ids);
    return;
  }
  CacheShard& shard = cache_[absl::HashOf(Sv(word)) % kCacheShards];
  {
    absl::ReaderMutexLock lock(&shard.mu);
    if (auto it = shard.map.find(Sv(word)); it != shard.map.end()) {
      ids->insert(ids->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t first = ids->size();
  TokenizeUncached(word, ids);
  absl::MutexLock lock(&shard.mu);
  if (shard.map.size() >= kCacheShardCapacity) shard.map.clear();
  shard.map.emplace(std::string(word), std::vector<int32_t>(ids->begin() + first, ids->end()));
}

}  // namespace loraserve::tokenizer_internal
