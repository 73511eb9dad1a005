#include "memory/adapter_residency.h"

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "memory/kv_block_table.h"
#include "tests/memory/fake_adapter.h"
#include "tests/memory/gated_backend.h"

namespace loraserve {
namespace {

using testing_memory::FakeAdapter;
using testing_memory::FakeValue;
using testing_memory::GatedBackend;

constexpr int64_t kPage = 2048;

// Only q has a LoRA, in = out = 64 fp32: 256-byte rows, 8 per page, so
// rank 3 -> 1 page, rank 7 -> 2 pages, rank 8 -> 3 pages (adapter_layout_test).
std::shared_ptr<FakeAdapter> QOnly(uint32_t seed, int32_t rank) {
  std::array<testing_memory::ModuleShape, kNumAdapterModules> shapes =
      testing_memory::TinyShapes();
  shapes[0] = {64, 64};
  return std::make_shared<FakeAdapter>(seed, 1, std::array<int32_t, 7>{rank, 0, 0, 0, 0, 0, 0},
                                       shapes);
}

class ResidencyTest : public ::testing::Test {
 protected:
  void Init(int32_t pages) {
    pool_ = *UnifiedPool::Create({&backend_, kPage, kPage * pages});
    ASSERT_TRUE(backend_.Memset(pool_->base(), 0, kPage * pages, {}).ok());
    host_ = *HostAdapterCache::Create({});
    residency_ = *AdapterResidency::Create({pool_.get(), host_.get()});
  }
  void TearDown() override {
    pins_.clear();
    kv_.clear();
    residency_.reset();
  }

  void Add(AdapterId id, std::shared_ptr<const AdapterWeights> w) {
    host_->Add(id, "memory", std::move(w));
    residency_->Register(id);
  }
  // Polls until no copy is in flight.
  void Settle() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    residency_->Poll();
    while (residency_->stats().device_copying > 0) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "prefetch never completed";
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      residency_->Poll();
    }
  }
  void Load(AdapterId id) {
    const AdapterId ids[] = {id};
    residency_->Prefetch(ids);
    Settle();
  }
  // Checks every row the kernels would read for (0, q) of `id` against `seed`.
  void ExpectRows(AdapterId id, uint32_t seed) {
    ASSERT_TRUE(residency_->IsReady(id));
    const LoraSlice s = residency_->Slice(id, 0, 0);
    const auto* base = static_cast<const uint8_t*>(residency_->rows_base());
    for (int32_t r = 0; r < s.rank; ++r) {
      const auto* a = reinterpret_cast<const float*>(base + s.a_row_offsets[r]);
      const auto* b = reinterpret_cast<const float*>(base + s.bt_row_offsets[r]);
      for (int c = 0; c < 64; ++c) {
        ASSERT_EQ(a[c], FakeValue(seed, 0, 0, 0, r, c)) << "adapter " << id << " A row " << r;
        ASSERT_EQ(b[c], FakeValue(seed, 0, 0, 1, r, c)) << "adapter " << id << " B row " << r;
      }
    }
    // Other modules have no LoRA.
    EXPECT_EQ(residency_->Slice(id, 0, 6).rank, 0);
  }
  std::string Resident(std::initializer_list<AdapterId> ids) {
    std::string s;
    for (AdapterId id : ids) {
      if (residency_->IsReady(id)) s += static_cast<char>('A' + id - 1);
    }
    return s;
  }

  GatedBackend backend_;
  std::unique_ptr<UnifiedPool> pool_;
  std::unique_ptr<HostAdapterCache> host_;
  std::unique_ptr<AdapterResidency> residency_;
  std::map<AdapterId, AdapterPin> pins_;
  std::map<int, KvBlockTable> kv_;
};

// Table-driven: allocate / free / evict, expected page counts by kind and the
// resident set after each step. Adapters A (1 page), B (2), C (3); 8 pages;
// KV blocks of 4 tokens.
TEST_F(ResidencyTest, PoolScenario) {
  Init(8);
  Add(1, QOnly(1, 3));
  Add(2, QOnly(2, 7));
  Add(3, QOnly(3, 8));
  struct Step {
    std::string op;  // load/pin/unpin/retire id | kv seq tokens | kvfree seq
    int a;
    int b;
    bool ok;
    int free, kv, adapter;
    std::string resident;
  };
  const Step steps[] = {
      {"load", 1, 0, true, 7, 0, 1, "A"},
      {"load", 2, 0, true, 5, 0, 3, "AB"},
      {"load", 3, 0, true, 2, 0, 6, "ABC"},
      {"kv", 1, 8, true, 0, 2, 6, "ABC"},    // free pages suffice
      {"pin", 2, 0, true, 0, 2, 6, "ABC"},
      {"kv", 2, 4, true, 0, 3, 5, "BC"},     // evicts A (LRU)
      {"kv", 2, 12, true, 1, 5, 2, "B"},     // evicts C, never pinned B
      {"kv", 3, 16, false, 1, 5, 2, "B"},    // refused, nothing evicted
      {"kvfree", 1, 0, true, 3, 3, 2, "B"},
      {"load", 1, 0, true, 2, 3, 3, "AB"},
      {"unpin", 2, 0, true, 2, 3, 3, "AB"},  // B idle, most recently used
      {"load", 3, 0, true, 0, 3, 5, "BC"},   // evicts A (older than B)
      {"retire", 2, 0, true, 2, 3, 3, "C"},  // no holders: pages back at once
      {"kvfree", 2, 0, true, 5, 0, 3, "C"},
      {"kv", 4, 32, true, 0, 8, 0, ""},      // KV takes the whole pool
  };
  int i = 0;
  for (const Step& s : steps) {
    SCOPED_TRACE(testing::Message() << "step " << i++ << " " << s.op << " " << s.a);
    bool ok = true;
    if (s.op == "load") {
      Load(static_cast<AdapterId>(s.a));
      ok = residency_->IsReady(static_cast<AdapterId>(s.a));
    } else if (s.op == "pin") {
      pins_[s.a] = *residency_->Pin(static_cast<AdapterId>(s.a));
    } else if (s.op == "unpin") {
      pins_.erase(s.a);
    } else if (s.op == "retire") {
      residency_->Retire(static_cast<AdapterId>(s.a));
    } else if (s.op == "kv") {
      auto it = kv_.try_emplace(s.a, &pool_->allocator(), 4).first;
      EXPECT_EQ(it->second.CanReserve(s.b), s.ok);
      ok = it->second.Reserve(s.b).ok();
    } else if (s.op == "kvfree") {
      kv_.at(s.a).Free();
    }
    EXPECT_EQ(ok, s.ok);
    const PoolStats ps = pool_->stats();
    EXPECT_EQ(ps.free_pages, s.free);
    EXPECT_EQ(ps.kv_pages, s.kv);
    EXPECT_EQ(ps.adapter_pages, s.adapter);
    EXPECT_EQ(Resident({1, 2, 3}), s.resident);
    EXPECT_EQ(residency_->stats().adapter_pages, s.adapter);
  }
  EXPECT_FALSE(residency_->Known(2));
  EXPECT_EQ(residency_->stats().evictions, 4);
}

TEST_F(ResidencyTest, LruEvictionOrder) {
  Init(4);
  for (AdapterId id = 1; id <= 4; ++id) {
    Add(id, QOnly(static_cast<uint32_t>(id), 3));
    Load(id);
  }
  // Use 2 (pin and release): it becomes the most recently used.
  { AdapterPin p = *residency_->Pin(2); }
  KvBlockTable kv(&pool_->allocator(), 1);
  std::string order;
  for (int tokens = 1; tokens <= 4; ++tokens) {
    ASSERT_TRUE(kv.Reserve(tokens).ok());
    for (AdapterId id = 1; id <= 4; ++id) {
      if (!residency_->IsReady(id) && order.find(static_cast<char>('0' + id)) == std::string::npos) {
        order += static_cast<char>('0' + id);
      }
    }
  }
  EXPECT_EQ(order, "1342");
}

TEST_F(ResidencyTest, PrefetchNeverEvictsWhatItIsAskedFor) {
  Init(3);
  Add(1, QOnly(1, 3));
  Add(2, QOnly(2, 3));
  Add(3, QOnly(3, 7));
  Load(1);
  Load(2);
  // 3 needs 2 pages, only 1 is free, 1 and 2 are idle but wanted: 3 waits.
  const AdapterId want[] = {1, 2, 3};
  residency_->Prefetch(want);
  Settle();
  EXPECT_EQ(Resident({1, 2, 3}), "AB");
  // When only 3 is wanted, the LRU idle one goes: the last Prefetch touched
  // its list most-urgent-last, so 1 is more recent than 2 and 2 goes.
  const AdapterId only3[] = {3};
  residency_->Prefetch(only3);
  Settle();
  EXPECT_EQ(Resident({1, 2, 3}), "AC");
  ExpectRows(1, 1);
  ExpectRows(3, 3);
}

// The batch never sees an adapter before its copy completed: while the copy
// is held at the gate, IsReady is false however often we poll, and the pages
// do not hold the rows yet.
TEST_F(ResidencyTest, PublishedOnlyAfterCopyCompletes) {
  Init(8);
  Add(1, QOnly(11, 8));
  backend_.CloseGate();
  const AdapterId ids[] = {1};
  residency_->Prefetch(ids);
  backend_.WaitForCopiesStarted(1);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(residency_->Poll(), 0);
    EXPECT_FALSE(residency_->IsReady(1));
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  EXPECT_EQ(residency_->stats().device_copying, 1);
  EXPECT_EQ(residency_->stats().device_ready, 0);
  EXPECT_EQ(pool_->stats().adapter_pages, 3);  // pages are taken, not yet visible
  const float* first = reinterpret_cast<const float*>(pool_->page(0));
  EXPECT_EQ(first[0], 0.0f);  // not written yet
  // Copies in flight are not reclaimable either: KV cannot take these pages.
  KvBlockTable kv(&pool_->allocator(), 1);
  EXPECT_FALSE(kv.CanReserve(6));
  EXPECT_TRUE(kv.CanReserve(5));
  backend_.OpenGate();
  Settle();
  EXPECT_TRUE(residency_->IsReady(1));
  ExpectRows(1, 11);
  EXPECT_EQ(residency_->stats().device_loads_ok, 1);
  std::vector<AdapterLoadEvent> events = residency_->TakeLoadEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].tier, AdapterLoadEvent::Tier::kDevice);
  EXPECT_TRUE(events[0].ok);
}

// Unload while a request holds the adapter: it keeps serving that request;
// pages and host memory return with the last holder.
TEST_F(ResidencyTest, RetiredAdapterLivesUntilLastHolder) {
  Init(8);
  Add(1, QOnly(5, 7));
  AdapterRef ref = *residency_->Acquire(1);
  Load(1);
  {
    AdapterPin pin = *residency_->Pin(1);
    residency_->Retire(1);
    EXPECT_TRUE(residency_->IsReady(1));
    ExpectRows(1, 5);
    EXPECT_EQ(pool_->stats().adapter_pages, 2);
  }
  EXPECT_TRUE(residency_->Known(1));  // the ref still holds it
  EXPECT_TRUE(host_->Contains(1));
  ref.Reset();
  EXPECT_FALSE(residency_->Known(1));
  EXPECT_FALSE(host_->Contains(1));
  EXPECT_EQ(pool_->stats().adapter_pages, 0);
  EXPECT_EQ(residency_->Pin(1).status().code(), absl::StatusCode::kNotFound);
}

// Retire during the copy: the pages come back only after the copy is done.
TEST_F(ResidencyTest, RetireWhileCopying) {
  Init(8);
  Add(1, QOnly(5, 8));
  backend_.CloseGate();
  const AdapterId ids[] = {1};
  residency_->Prefetch(ids);
  backend_.WaitForCopiesStarted(1);
  residency_->Retire(1);
  EXPECT_EQ(pool_->stats().adapter_pages, 3);
  backend_.OpenGate();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (residency_->Known(1)) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline);
    residency_->Poll();
  }
  EXPECT_EQ(pool_->stats().adapter_pages, 0);
  EXPECT_EQ(pool_->stats().free_pages, 8);
}

TEST_F(ResidencyTest, PrefetchReusesItsPinnedStaging) {
  // Pinning host memory is slow: one staging buffer serves a run of loads.
  Init(8);
  for (AdapterId id = 1; id <= 6; ++id) {
    Add(id, QOnly(static_cast<uint32_t>(id) * 11, 3));
    Load(id);
    ExpectRows(id, static_cast<uint32_t>(id) * 11);
  }
  EXPECT_EQ(backend_.host_allocations(), 1);
  for (AdapterId id = 1; id <= 6; ++id) ExpectRows(id, static_cast<uint32_t>(id) * 11);
}

TEST_F(ResidencyTest, CheckFitsRefusesAdaptersLargerThanThePool) {
  Init(2);
  EXPECT_TRUE(residency_->CheckFits(*QOnly(1, 7)).ok());
  absl::Status s = residency_->CheckFits(*QOnly(1, 8));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("needs 3 pool pages; the pool has 2"), absl::string_view::npos) << s;
}

}  // namespace
}  // namespace loraserve
