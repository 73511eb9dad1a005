// The BPE model of a Hugging Face tokenizer.json ("model": {"type": "BPE"}):
// vocab, merges (either "a b" strings or ["a", "b"] pairs), byte_fallback
// (<0xNN> tokens), ignore_merges (a pre-token that is a whole vocab entry is
// used as is, as Llama 3 sets), unk_token with fuse_unk,
// continuing_subword_prefix and end_of_word_suffix. Merging follows HF's
// Word::merge_all: a min-heap of (merge rank, position) over a linked list of
// symbols, O(n log n) in the pre-token length.
//
// Owns the vocab, the merge table and a small word cache. Built by
// Tokenizer::Load, then logically immutable: Tokenize() is const and safe
// from any number of threads (the cache is sharded and mutex-guarded).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "engine/model/tokenizer_json.h"

namespace loraserve::tokenizer_internal {

class BpeModel {
 public:
  // Parses the "model" object `j` found at JSON `path`. Refuses a non-null
  // dropout, a merge whose parts or result are not in the vocab, and an
  // unk_token missing from the vocab.
  static absl::StatusOr<std::unique_ptr<BpeModel>> Parse(const Json& j, std::string_view path);

  // Appends the ids of one pre-token (`word`, valid UTF-8) to *ids.
  // Characters with no token, no byte fallback and no unk_token are dropped,
  // as in HF.
  void Tokenize(std::string_view word, std::vector<int32_t>* ids) const;

  std::optional<int32_t> TokenToId(std::string_view token) const;
  // nullptr when no token has this id.
  const std::string* IdToToken(int32_t id) const;
  // Largest id in the vocab (-1 when empty).
  int32_t max_id() const { return static_cast<int32_t>(id_to_token_.size()) - 1; }
  bool byte_fallback() const { return byte_fallback_; }

  BpeModel(const BpeModel&) = delete;
  BpeModel& operator=(const BpeModel&) = delete;

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    int32_t len;  // bytes; 0 once merged into its left neighbour
  };
  struct CacheShard {
    absl::Mutex mu;
    absl::flat_hash_map<std::string, std::vector<int32_t>> map ABSL_GUARDED_BY(mu);
  };
  static constexpr size_t kCacheShards = 16;
  static constexpr size_t kCacheShardCapacity = 1024;
  static constexpr size_t kCacheMaxWordBytes = 64;

  BpeModel() = default;
  static uint64_t PairKey(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  // The initial symbols of `word` (one per character, or per byte / unk).
  void InitialSymbols(std::string_view word, std::vector<Symbol>* symbols) const;
  void MergeAll(std::vector<Symbol>* symbols) const;
  void TokenizeUncached(std::string_view word, std::vector<int32_t>* ids) const;

  absl::flat_hash_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> has_id_;
  absl::flat_hash_map<uint64_t, Merge> merges_;
  // Single-character tokens by code point (used when there is no prefix/suffix).
  absl::flat_hash_map<char32_t, int32_t> char_ids_;
  std::array<int32_t, 256> byte_ids_{};  // <0xNN> tokens; -1 when absent
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;
  mutable std::array<CacheShard, kCacheShards> cache_;
};

}  // namespace loraserve::tokenizer_internal
