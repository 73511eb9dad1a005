#include "memory/adapter_registry.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/logging.h"
#include "gtest/gtest.h"
#include "kernels/cpu/cpu_backend.h"
#include "memory/kv_block_table.h"
#include "tests/memory/fake_adapter.h"

namespace loraserve {
namespace {

using testing_memory::FakeAdapter;
using testing_memory::FakeValue;
using testing_memory::TinyShapes;

constexpr int64_t kPage = 2048;

// Per-seed ranks: 1..4, and some modules without LoRA.
std::array<int32_t, kNumAdapterModules> RanksFor(uint32_t seed) {
  std::array<int32_t, kNumAdapterModules> r;
  for (int m = 0; m < kNumAdapterModules; ++m) {
    r[m] = (seed + m) % 5 == 0 ? 0 : static_cast<int32_t>(1 + (seed + m) % 4);
  }
  return r;
}

// The fake "disk": source "seed:N" loads FakeAdapter(N); anything else fails.
struct FakeDisk {
  std::atomic<int> loads{0};
  HostAdapterCache::Loader Loader() {
    return [this](const std::string& source)
               -> absl::StatusOr<std::shared_ptr<const AdapterWeights>> {
      loads.fetch_add(1);
      std::vector<std::string> parts = absl::StrSplit(source, ':');
      uint32_t seed = 0;
      if (parts.size() != 2 || parts[0] != "seed" || !absl::SimpleAtoi(parts[1], &seed)) {
        return absl::InvalidArgumentError(absl::StrCat("bad adapter source ", source));
      }
      if (seed % 3 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
      return std::make_shared<FakeAdapter>(seed, 2, RanksFor(seed), TinyShapes());
    };
  }
};

class RegistryTest : public ::testing::Test {
 protected:
  void Init(int32_t pages, size_t host_budget) {
    backend_ = *CpuBackend::Create({1});
    pool_ = *UnifiedPool::Create({backend_.get(), kPage, kPage * pages});
    host_ = *HostAdapterCache::Create({host_budget, disk_.Loader()});
    residency_ = *AdapterResidency::Create({pool_.get(), host_.get()});
    registry_ = *AdapterRegistry::Create({residency_.get(), host_.get()});
  }
  void TearDown() override {
    registry_.reset();
    residency_.reset();
  }
  void PollAll() {
    registry_->Poll();
    residency_->Poll();
  }
  // Polls until `done()` or fails after a deadline.
  template <typename F>
  void PollUntil(F done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    for (PollAll(); !done(); PollAll()) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "timed out";
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }
  void MakeReady(AdapterId id) {
    const AdapterId ids[] = {id};
    PollUntil([&] {
      residency_->Prefetch(ids);
      return residency_->IsReady(id);
    });
  }
  // (layer 1, down) of `id` read through the kernels' tables equals `seed`'s.
  void ExpectAdapter(AdapterId id, uint32_t seed) {
    ASSERT_TRUE(residency_->IsReady(id));
    for (int m = 0; m < kNumAdapterModules; ++m) {
      const LoraSlice s = residency_->Slice(id, 1, m);
      ASSERT_EQ(s.rank, RanksFor(seed)[m]);
      const auto* base = static_cast<const uint8_t*>(residency_->rows_base());
      for (int32_t r = 0; r < s.rank; ++r) {
        const auto* a = reinterpret_cast<const float*>(base + s.a_row_offsets[r]);
        for (int64_t c = 0; c < TinyShapes()[m].in; ++c) {
          ASSERT_EQ(a[c], FakeValue(seed, 1, m, 0, r, c)) << "id " << id << " module " << m;
        }
        const auto* b = reinterpret_cast<const float*>(base + s.bt_row_offsets[r]);
        for (int64_t c = 0; c < TinyShapes()[m].out; ++c) {
          ASSERT_EQ(b[c], FakeValue(seed, 1, m, 1, r, c)) << "id " << id << " module " << m;
        }
      }
    }
  }

  FakeDisk disk_;
  std::unique_ptr<CpuBackend> backend_;
  std::unique_ptr<UnifiedPool> pool_;
  std::unique_ptr<HostAdapterCache> host_;
  std::unique_ptr<AdapterResidency> residency_;
  std::unique_ptr<AdapterRegistry> registry_;
};

TEST_F(RegistryTest, LoadIsAsyncAndPublishesOnPoll) {
  Init(32, 0);
  absl::StatusOr<AdapterId> result = absl::UnknownError("not called");
  absl::StatusOr<AdapterId> id = registry_->Load("a", "seed:4", [&](absl::StatusOr<AdapterId> r) {
    result = r;
  });
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(registry_->Lookup("a").status().code(), absl::StatusCode::kNotFound);
  PollUntil([&] { return result.ok(); });
  EXPECT_EQ(*result, *id);
  EXPECT_EQ(*registry_->Lookup("a"), *id);
  MakeReady(*id);
  ExpectAdapter(*id, 4);
  std::vector<AdapterLoadEvent> events = registry_->TakeLoadEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].tier, AdapterLoadEvent::Tier::kHost);
  EXPECT_TRUE(events[0].ok);

  // A failed load names the adapter, publishes nothing, and keeps the old one.
  absl::Status failure;
  bool called = false;
  ASSERT_TRUE(registry_->Load("a", "broken", [&](absl::StatusOr<AdapterId> r) {
                        failure = r.status();
                        called = true;
                      }).ok());
  PollUntil([&] { return called; });
  EXPECT_EQ(failure.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(failure.message().find("adapter \"a\": bad adapter source broken"),
            absl::string_view::npos)
      << failure;
  EXPECT_EQ(*registry_->Lookup("a"), *id);
  EXPECT_EQ(registry_->List().size(), 1u);
}

// Replace and unload: the name moves at once; requests holding the old object
// keep reading the old weights; the old object's pages and host copy return
// with its last holder; ids are never reused.
TEST_F(RegistryTest, ReplaceAndUnloadKeepRunningRequestsOnTheirAdapter) {
  Init(32, 0);
  AdapterId v1 = *registry_->Add("x", "seed:1", std::make_shared<FakeAdapter>(1, 2, RanksFor(1),
                                                                               TinyShapes()));
  MakeReady(v1);
  AdapterRef request_ref = *residency_->Acquire(v1);
  AdapterPin request_pin = *residency_->Pin(v1);
  const int32_t v1_pages = residency_->pages_of(v1);
  EXPECT_GT(v1_pages, 0);

  AdapterId v2 = *registry_->Add("x", "seed:2", std::make_shared<FakeAdapter>(2, 2, RanksFor(2),
                                                                               TinyShapes()));
  EXPECT_NE(v1, v2);
  EXPECT_EQ(*registry_->Lookup("x"), v2);
  MakeReady(v2);
  ExpectAdapter(v1, 1);  // the running request still sees its own weights
  ExpectAdapter(v2, 2);

  ASSERT_TRUE(registry_->Unload("x").ok());
  EXPECT_EQ(registry_->Lookup("x").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(registry_->Unload("x").code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(residency_->Known(v2));  // nobody held v2: freed at once
  EXPECT_TRUE(residency_->Known(v1));
  ExpectAdapter(v1, 1);

  // Load under the same name again: a new object, not v1.
  AdapterId v3 = *registry_->Add("x", "seed:3", std::make_shared<FakeAdapter>(3, 2, RanksFor(3),
                                                                               TinyShapes()));
  EXPECT_GT(v3, v2);
  MakeReady(v3);
  ExpectAdapter(v1, 1);
  ExpectAdapter(v3, 3);

  const int32_t before = pool_->stats().adapter_pages;
  request_pin.Reset();
  request_ref.Reset();
  EXPECT_FALSE(residency_->Known(v1));
  EXPECT_FALSE(host_->Contains(v1));
  EXPECT_EQ(pool_->stats().adapter_pages, before - v1_pages);
}

// The host tier keeps the budget (LRU); an adapter dropped from host memory
// comes back from its source (disk) on the next prefetch.
TEST_F(RegistryTest, HostTierBudgetReloadsFromDisk) {
  const size_t one = FakeAdapter(5, 2, RanksFor(5), TinyShapes()).bytes();
  Init(64, 2 * one + one / 2);
  std::vector<AdapterId> ids;
  for (uint32_t seed : {5u, 10u, 15u}) {  // RanksFor gives these the same size
    bool done = false;
    ids.push_back(*registry_->Load(absl::StrCat("n", seed), absl::StrCat("seed:", seed),
                                   [&](absl::StatusOr<AdapterId>) { done = true; }));
    PollUntil([&] { return done; });
  }
  EXPECT_EQ(disk_.loads.load(), 3);
  EXPECT_EQ(host_->num_on_host(), 2);  // the first one was dropped
  EXPECT_EQ(host_->Get(ids[0]), nullptr);  // starts its reload
  MakeReady(ids[0]);
  EXPECT_EQ(disk_.loads.load(), 4);
  ExpectAdapter(ids[0], 5);
  EXPECT_EQ(host_->num_on_host(), 2);
}

// Random load / unload / replace with requests running in batches through the
// real CPU LoRA kernels; every request's output is checked against the
// adapter it resolved at acceptance. Fixed seed.
TEST_F(RegistryTest, StressConcurrentLoadUnloadReplace) {
  const size_t one = FakeAdapter(1, 2, RanksFor(1), TinyShapes()).bytes();
  Init(14, 4 * one);
  std::mt19937 rng(20240601);
  const int kNames = 6;
  std::map<AdapterId, uint32_t> seed_of;
  uint32_t next_seed = 1;

  struct Req {
    AdapterId id = 0;
    uint32_t seed = 0;
    AdapterRef ref;
    AdapterPin pin;  // non-empty while running
    std::unique_ptr<KvBlockTable> kv;
    int tokens = 0;
    int steps_left = 0;
  };
  std::vector<std::unique_ptr<Req>> reqs;
  int64_t checked_tokens = 0;
  int finished = 0;
  int preemptions = 0;

  // At least 1500 iterations, and more until enough work was checked: the
  // actions come from the fixed seed, their interleaving with the loader and
  // copy threads from the machine.
  auto enough = [&] {
    return checked_tokens >= 600 && finished >= 100 && residency_->stats().evictions >= 10;
  };
  for (int iter = 0; iter < 1500 || (!enough() && iter < 30000); ++iter) {
    // An engine iteration takes time (the forward); let the workers run.
    std::this_thread::sleep_for(std::chrono::microseconds(100));
    PollAll();
    const std::string name = absl::StrCat("n", rng() % kNames);
    const uint32_t action = rng() % 100;
    if (action < 6) {
      const uint32_t seed = next_seed++;
      absl::StatusOr<AdapterId> id = registry_->Load(name, absl::StrCat("seed:", seed), {});
      ASSERT_TRUE(id.ok());
      seed_of[*id] = seed;
    } else if (action < 8) {
      const uint32_t seed = next_seed++;
      absl::StatusOr<AdapterId> id = registry_->Add(
          name, "memory", std::make_shared<FakeAdapter>(seed, 2, RanksFor(seed), TinyShapes()));
      ASSERT_TRUE(id.ok());
      seed_of[*id] = seed;
    } else if (action < 12) {
      (void)registry_->Unload(name);
    } else if (action < 40 && reqs.size() < 16) {
      absl::StatusOr<AdapterId> id = registry_->Lookup(name);
      if (id.ok()) {
        auto r = std::make_unique<Req>();
        r->id = *id;
        r->seed = seed_of.at(*id);
        r->ref = *residency_->Acquire(*id);
        r->kv = std::make_unique<KvBlockTable>(&pool_->allocator(), 4);
        r->tokens = 1 + static_cast<int>(rng() % 6);
        r->steps_left = 1 + static_cast<int>(rng() % 8);
        reqs.push_back(std::move(r));
      }
    }

    // Scheduler: running first, then waiting, in order.
    std::vector<AdapterId> priority;
    for (int pass = 0; pass < 2; ++pass) {
      for (auto& r : reqs) {
        if ((pass == 0) == !r->pin.empty() &&
            std::find(priority.begin(), priority.end(), r->id) == priority.end()) {
          priority.push_back(r->id);
        }
      }
    }
    residency_->Prefetch(priority);
    for (auto& r : reqs) {
      if (!r->pin.empty() || !residency_->IsReady(r->id)) continue;
      // Pin first: the KV reservation may evict idle adapters, never this one.
      r->pin = *residency_->Pin(r->id);
      if (!r->kv->Reserve(r->tokens).ok()) r->pin.Reset();
    }

    // One batch: a decode token per running request, through the kernels.
    std::vector<Req*> batch;
    for (auto& r : reqs) {
      if (!r->pin.empty()) batch.push_back(r.get());
    }
    if (!batch.empty()) {
      const int layer = static_cast<int>(rng() % 2);
      const int module = static_cast<int>(rng() % kNumAdapterModules);
      const int64_t in = TinyShapes()[module].in;
      const int64_t out = TinyShapes()[module].out;
      const int n = static_cast<int>(batch.size());
      std::vector<float> x(static_cast<size_t>(n * in));
      for (float& v : x) v = static_cast<float>(static_cast<int>(rng() % 5) - 2);
      std::vector<int32_t> seg_starts(static_cast<size_t>(n + 1));
      std::vector<LoraSlice> slices(static_cast<size_t>(n));
      for (int t = 0; t < n; ++t) {
        seg_starts[t] = t;
        slices[t] = residency_->Slice(batch[t]->id, layer, module);
      }
      seg_starts[n] = n;
      LoraSegments seg;
      seg.rows_base = residency_->rows_base();
      seg.num_segments = n;
      seg.num_slices = 1;
      seg.seg_starts = seg_starts.data();
      seg.slices = slices.data();
      seg.max_rank = 4;
      std::vector<float> v(static_cast<size_t>(n * 4), 0.0f);
      std::vector<float> y(static_cast<size_t>(n * out), 0.0f);
      LoraSliceColumns cols;
      cols.offsets[1] = out;
      ASSERT_TRUE(backend_->LoraShrink(x.data(), n, in, seg, v.data(), {}).ok());
      ASSERT_TRUE(backend_->LoraExpand(v.data(), n, seg, cols, y.data(), out, {}).ok());
      for (int t = 0; t < n; ++t) {
        const uint32_t seed = batch[t]->seed;
        const FakeAdapter expect(seed, 2, RanksFor(seed), TinyShapes());
        const ModuleWeightsView w = expect.ModuleView(layer, module);
        for (int64_t j = 0; j < out; ++j) {
          double want = 0, mag = 0;
          for (int32_t r = 0; r < w.rank; ++r) {
            double vr = 0;
            for (int64_t c = 0; c < in; ++c) vr += double{x[t * in + c]} * w.a[r * in + c];
            want += vr * w.b_t[r * out + j];
            mag += std::abs(vr * w.b_t[r * out + j]);
          }
          want *= w.scale;
          ASSERT_NEAR(y[t * out + j], want, 1e-5 * (mag * w.scale + 1))
              << "request on adapter " << batch[t]->id << " (seed " << seed << ") read another "
              << "adapter's weights at iteration " << iter;
        }
        ++checked_tokens;
      }
    }

    // Advance: each running request grows by a token or is preempted.
    for (auto it = reqs.begin(); it != reqs.end();) {
      Req& r = **it;
      if (r.pin.empty()) {
        if (!residency_->AdapterError(r.id).ok()) it = reqs.erase(it);
        else ++it;
        continue;
      }
      if (--r.steps_left == 0) {
        ++finished;
        it = reqs.erase(it);
        continue;
      }
      ++r.tokens;
      if (!r.kv->Reserve(r.tokens).ok()) {
        r.kv->Free();
        r.pin.Reset();
        ++preemptions;
      }
      ++it;
    }
  }
  EXPECT_TRUE(enough()) << checked_tokens << " tokens, " << finished << " finished";
  EXPECT_GT(residency_->stats().device_loads_ok, 10);
  LS_LOG(INFO) << "stress: " << checked_tokens << " tokens checked, " << finished
               << " finished, " << preemptions << " preemptions, "
               << residency_->stats().evictions << " evictions, "
               << residency_->stats().device_loads_ok << " device loads, " << disk_.loads.load()
               << " disk loads";

  // Drain: drop requests, unload everything; every page and host copy returns.
  reqs.clear();
  PollUntil([&] { return host_->num_loading() == 0 && residency_->stats().device_copying == 0; });
  for (const auto& [name, id] : registry_->List()) ASSERT_TRUE(registry_->Unload(name).ok());
  PollUntil([&] { return residency_->stats().device_copying == 0; });
  EXPECT_EQ(residency_->stats().known, 0);
  EXPECT_EQ(pool_->stats().adapter_pages, 0);
  EXPECT_EQ(pool_->stats().kv_pages, 0);
  EXPECT_EQ(host_->num_on_host(), 0);
  EXPECT_EQ(host_->bytes_on_host(), 0u);
}

}  // namespace
}  // namespace loraserve
