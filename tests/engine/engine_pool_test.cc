// Engine on the unified pool: KV blocks and adapter rank-rows share one page
// pool. A pool too small for every adapter at once still serves each
// adapter's golden tokens (idle adapters are evicted LRU and prefetched
// again), and every page comes back when the requests are done.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "gtest/gtest.h"
#include "tests/engine/engine_test_util.h"

namespace loraserve {
namespace {

using ::loraserve::testing::AdapterDir;
using ::loraserve::testing::FixtureAdapters;
using ::loraserve::testing::Greedy;
using ::loraserve::testing::LoadGoldens;
using ::loraserve::testing::MakeEngine;
using ::loraserve::testing::MeasureAdapterPages;
using ::loraserve::testing::RecordingSink;
using ::loraserve::testing::RunAlone;
using ::loraserve::testing::TestOptions;

TEST(EnginePoolTest, StatsAccountKvAndAdapterPagesInOnePool) {
  auto engine = MakeEngine(TestOptions());
  ASSERT_NE(engine, nullptr);
  const EngineStats start = engine->Stats();
  EXPECT_EQ(start.pool_pages_total, 2048);
  EXPECT_EQ(start.pool_pages_free, 2048);
  EXPECT_GT(start.pool_page_bytes, 0);
  const auto goldens = LoadGoldens();
  auto it = std::find_if(goldens.begin(), goldens.end(),
                         [](const auto& c) { return !c.adapter.empty(); });
  ASSERT_NE(it, goldens.end());
  const auto& g = *it;
  auto sink = RunAlone(*engine, Greedy("a", g.adapter, g.prompt, static_cast<int32_t>(g.greedy.size())));
  EXPECT_EQ(sink->tokens(), g.greedy);
  ASSERT_TRUE(engine->WaitIdle(absl::Seconds(10)).ok());
  const EngineStats st = engine->Stats();
  EXPECT_EQ(st.pool_pages_kv, 0);
  EXPECT_GT(st.pool_pages_adapter, 0);  // idle, still resident
  EXPECT_EQ(st.pool_pages_free + st.pool_pages_adapter, st.pool_pages_total);
  EXPECT_EQ(st.adapters_device, 1);
  EXPECT_EQ(st.adapter_loads_device_ok, 1);
  EXPECT_EQ(st.adapter_pins, 0);
  const std::vector<AdapterLoadRecord> loads = engine->TakeAdapterLoads();
  ASSERT_EQ(loads.size(), 1u);
  EXPECT_EQ(loads[0].tier, AdapterTier::kDevice);
  EXPECT_TRUE(loads[0].ok);
  EXPECT_TRUE(engine->TakeAdapterLoads().empty());
  bool listed_on_device = false;
  for (const auto& d : engine->ListAdapters()) {
    if (d.name == g.adapter) listed_on_device = d.tier == AdapterTier::kDevice;
  }
  EXPECT_TRUE(listed_on_device);
}

TEST(EnginePoolTest, MoreAdaptersThanFitStillMatchGoldens) {
  const std::vector<int64_t> pages = MeasureAdapterPages();
  ASSERT_EQ(pages.size(), FixtureAdapters().size());
  int64_t largest = 0;
  int64_t sum = 0;
  for (int64_t p : pages) {
    EXPECT_GT(p, 0);
    largest = std::max(largest, p);
    sum += p;
  }
  // Room for the largest adapter plus KV for a few requests, never for all
  // adapters at once.
  EngineOptions o = TestOptions();
  o.kv_cache_blocks = largest + 80;
  ASSERT_LT(o.kv_cache_blocks, sum);
  for (size_t i = 0; i < pages.size(); ++i) {
    std::printf("adapter %s: %lld pages\n", FixtureAdapters()[i].c_str(),
                static_cast<long long>(pages[i]));
  }
  auto engine = MakeEngine(o);
  ASSERT_NE(engine, nullptr);
  const EngineStats start = engine->Stats();
  ASSERT_EQ(start.pool_pages_free, o.kv_cache_blocks);
  const auto goldens = LoadGoldens();
  std::set<std::string> adapters;
  for (int round = 0; round < 2; ++round) {
    std::vector<std::shared_ptr<RecordingSink>> sinks;
    for (size_t i = 0; i < goldens.size(); ++i) {
      const auto& g = goldens[i];
      if (!g.adapter.empty()) adapters.insert(g.adapter);
      sinks.push_back(std::make_shared<RecordingSink>());
      ASSERT_TRUE(engine
                      ->Submit(Greedy("r" + std::to_string(round) + "_" + std::to_string(i),
                                      g.adapter, g.prompt,
                                      static_cast<int32_t>(g.greedy.size())),
                               sinks.back())
                      .ok());
    }
    for (size_t i = 0; i < goldens.size(); ++i) {
      ASSERT_TRUE(sinks[i]->WaitDone()) << i;
      EXPECT_EQ(sinks[i]->terminal().kind, GenerationEvent::Kind::kFinished)
          << goldens[i].name << ": " << sinks[i]->terminal().error;
      EXPECT_EQ(sinks[i]->tokens(), goldens[i].greedy) << goldens[i].name;
    }
  }
  ASSERT_TRUE(engine->WaitIdle(absl::Seconds(10)).ok());
  const EngineStats st = engine->Stats();
  EXPECT_GT(st.adapter_evictions_total, 0);
  EXPECT_GT(st.adapter_loads_device_ok, static_cast<int64_t>(adapters.size()));
  EXPECT_EQ(st.adapter_loads_device_failed, 0);
  EXPECT_EQ(st.pool_pages_kv, 0);
  EXPECT_EQ(st.adapter_pins, 0);
  EXPECT_EQ(st.adapters_copying, 0);
  EXPECT_EQ(st.pool_pages_free + st.pool_pages_adapter, start.pool_pages_free);
  EXPECT_LE(st.pool_pages_adapter, o.kv_cache_blocks);
  for (const auto& d : engine->ListAdapters()) EXPECT_EQ(d.in_use, 0) << d.name;
}

TEST(EnginePoolTest, AdapterLargerThanThePoolIsRefusedAtLoad) {
  EngineOptions o = TestOptions();
  o.kv_cache_blocks = 8;
  auto engine = MakeEngine(o, /*load_adapters=*/false);
  ASSERT_NE(engine, nullptr);
  auto r = engine->LoadAdapter("r8_all", AdapterDir("r8_all"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_TRUE(engine->ListAdapters().empty());
  const auto g = LoadGoldens()[0];
  ASSERT_TRUE(g.adapter.empty());
  auto good = RunAlone(*engine, Greedy("good", "", g.prompt, 8));
  EXPECT_EQ(good->terminal().finish, GenerationFinish::kLength);
}

}  // namespace
}  // namespace loraserve
