// Fakes for scheduler tests: a KV block pool of N blocks with exact per-request
// accounting, and adapter availability switched by the test.
#pragma once

#include <algorithm>
#include <cstdint>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/scheduler/scheduler_resources.h"
#include "gtest/gtest.h"

namespace loraserve::testing {

class FakeKvBlockManager : public KvBlockManager {
 public:
  FakeKvBlockManager(int32_t num_blocks, int32_t block_tokens)
      : total_(num_blocks), free_(num_blocks), block_tokens_(block_tokens) {}

  bool CanGrow(RequestId seq, int32_t new_total_tokens) const override {
    return Extra(seq, new_total_tokens) <= free_;
  }
  absl::Status Grow(RequestId seq, int32_t new_total_tokens) override {
    const int32_t extra = Extra(seq, new_total_tokens);
    if (extra > free_) return absl::ResourceExhaustedError(absl::StrCat("need ", extra));
    free_ -= extra;
    Holding& h = held_[seq];
    h.blocks += extra;
    h.tokens = std::max(h.tokens, new_total_tokens);
    return absl::OkStatus();
  }
  void Free(RequestId seq) override {
    auto it = held_.find(seq);
    if (it == held_.end()) return;
    free_ += it->second.blocks;
    held_.erase(it);
  }
  int32_t NumFreeBlocks() const override { return free_; }
  int32_t NumTotalBlocks() const override { return total_; }

  int32_t HeldBlocks(RequestId seq) const {
    auto it = held_.find(seq);
    return it == held_.end() ? 0 : it->second.blocks;
  }
  int32_t HeldTokens(RequestId seq) const {
    auto it = held_.find(seq);
    return it == held_.end() ? 0 : it->second.tokens;
  }
  int32_t SumHeldBlocks() const {
    int32_t sum = 0;
    for (const auto& [id, h] : held_) sum += h.blocks;
    return sum;
  }
  const auto& holders() const { return held_; }

 private:
  struct Holding {
    int32_t blocks = 0;
    int32_t tokens = 0;
  };
  int32_t Extra(RequestId seq, int32_t tokens) const {
    const int32_t needed = (tokens + block_tokens_ - 1) / block_tokens_;
    return std::max(0, needed - HeldBlocks(seq));
  }

  int32_t total_;
  int32_t free_;
  int32_t block_tokens_;
  absl::flat_hash_map<RequestId, Holding> held_;
};

class FakeAdapters : public AdapterAvailability {
 public:
  bool IsReady(AdapterKey adapter) const override {
    EXPECT_NE(adapter, kBaseModelAdapter) << "the base model must not be asked for";
    return ready_.contains(adapter);
  }
  void SetReady(AdapterKey adapter, bool ready) {
    if (ready) {
      ready_.insert(adapter);
    } else {
      ready_.erase(adapter);
    }
  }

 private:
  absl::flat_hash_set<AdapterKey> ready_;
};

}  // namespace loraserve::testing
