// Engine on the unified pool: KV blocks and adapter rank-rows share one page
// pool. A pool too small for every adapter at once still serves each
// adapter's golden tokens (idle adapters are evicted LRU and prefetched
// again), and every page comes back when the requests are done. Under a
// stress of load / unload / replace under the same name while requests run,
// with such a small pool (prefetch copies and evictions all the time), every
// request ends once and gets exactly the tokens of the adapter its name
// pointed to at submission. On every backend (CUDA instances skip where there
// is no device; greedy ids compared up to a flipped near tie there).
#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "gtest/gtest.h"
#include "tests/engine/engine_test_util.h"

namespace loraserve {
namespace {

using ::loraserve::testing::AdapterDir;
using ::loraserve::testing::AllBackendKinds;
using ::loraserve::testing::BackendParamName;
using ::loraserve::testing::FixtureAdapters;
using ::loraserve::testing::Greedy;
using ::loraserve::testing::GreedyOn;
using ::loraserve::testing::LoadGoldens;
using ::loraserve::testing::MakeEngine;
using ::loraserve::testing::MeasureAdapterPages;
using ::loraserve::testing::RecordingSink;
using ::loraserve::testing::RunAlone;
using ::loraserve::testing::SinkGreedyAgrees;
using ::loraserve::testing::TestOptions;

class EnginePoolTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    if (auto why = testing::BackendUnavailable(GetParam())) GTEST_SKIP() << *why;
  }
  BackendKind kind() const { return GetParam(); }
};

TEST_P(EnginePoolTest, StatsAccountKvAndAdapterPagesInOnePool) {
  auto engine = MakeEngine(TestOptions(kind()));
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
  auto sink = RunAlone(
      *engine, GreedyOn(kind(), "a", g.adapter, g.prompt, static_cast<int32_t>(g.greedy.size())));
  EXPECT_TRUE(SinkGreedyAgrees(kind(), *sink, g.greedy));
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

TEST_P(EnginePoolTest, MoreAdaptersThanFitStillMatchGoldens) {
  const std::vector<int64_t> pages = MeasureAdapterPages(kind());
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
  EngineOptions o = TestOptions(kind());
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
      ASSERT_TRUE(
          engine
              ->Submit(GreedyOn(kind(), "r" + std::to_string(round) + "_" + std::to_string(i),
                                g.adapter, g.prompt, static_cast<int32_t>(g.greedy.size())),
                       sinks.back())
              .ok());
    }
    for (size_t i = 0; i < goldens.size(); ++i) {
      ASSERT_TRUE(sinks[i]->WaitDone()) << i;
      EXPECT_EQ(sinks[i]->terminal().kind, GenerationEvent::Kind::kFinished)
          << goldens[i].name << ": " << sinks[i]->terminal().error;
      EXPECT_TRUE(SinkGreedyAgrees(kind(), *sinks[i], goldens[i].greedy)) << goldens[i].name;
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

TEST_P(EnginePoolTest, AdapterLargerThanThePoolIsRefusedAtLoad) {
  EngineOptions o = TestOptions(kind());
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

// Names "x" and "y" are re-pointed (unload, load another fixture adapter
// under the same name) and "tmp" comes and goes while requests on every name
// run, in a pool with room for the largest adapter plus a little KV. Submit
// binds a request to the adapter its name points to then, and this thread
// does every load and unload, so each request's adapter is known exactly:
// its tokens must equal that adapter's alone (no request ever reads another
// adapter's rows, stale or evicted), and every request ends exactly once.
TEST_P(EnginePoolTest, LoadUnloadReplaceUnderLoadNeverMixesAdapters) {
  const std::vector<int64_t> pages = MeasureAdapterPages(kind());
  ASSERT_EQ(pages.size(), FixtureAdapters().size());
  EngineOptions o = TestOptions(kind());
  o.kv_cache_blocks = *std::max_element(pages.begin(), pages.end()) + 80;
  o.max_loras = 3;
  auto engine = MakeEngine(o, /*load_adapters=*/false);
  ASSERT_NE(engine, nullptr);
  const EngineStats start = engine->Stats();

  // Three prompts of different lengths; what each adapter ("" = base) gives
  // alone on each, from fixture adapters loaded under their own names.
  const auto goldens = LoadGoldens();
  std::vector<std::vector<int32_t>> prompts;
  for (const auto& g : goldens) {
    if (std::find(prompts.begin(), prompts.end(), g.prompt) == prompts.end() &&
        prompts.size() < 3) {
      prompts.push_back(g.prompt);
    }
  }
  std::vector<std::string> adapters = {""};
  for (const std::string& a : FixtureAdapters()) {
    adapters.push_back(a);
    ASSERT_TRUE(engine->LoadAdapter(a, AdapterDir(a)).ok()) << a;
  }
  std::map<std::pair<std::string, size_t>, std::vector<int32_t>> alone;
  for (const std::string& a : adapters) {
    for (size_t p = 0; p < prompts.size(); ++p) {
      auto sink =
          RunAlone(*engine, GreedyOn(kind(), "alone_" + a + std::to_string(p), a, prompts[p], 8));
      ASSERT_EQ(sink->terminal().kind, GenerationEvent::Kind::kFinished) << sink->terminal().error;
      alone[{a, p}] = sink->tokens();
    }
  }

  // name -> the fixture adapter it points to now ("" = not loaded).
  std::map<std::string, std::string> points_to = {{"x", ""}, {"y", ""}, {"tmp", ""}};
  auto repoint = [&](const std::string& name, const std::string& adapter) {
    if (!points_to[name].empty()) {
      const absl::Status s = engine->UnloadAdapter(name);
      EXPECT_TRUE(s.ok()) << "unload " << name << ": " << s;
    }
    points_to[name] = adapter;
    if (adapter.empty()) return;
    auto r = engine->LoadAdapter(name, AdapterDir(adapter));
    EXPECT_TRUE(r.ok()) << "load " << name << "=" << adapter << ": " << r.status();
  };
  struct Submitted {
    std::string name;
    std::string adapter;  // what `name` pointed to at Submit
    size_t prompt = 0;
    std::shared_ptr<RecordingSink> sink;
  };
  std::vector<Submitted> submitted;
  std::mt19937 rng(5);
  const std::vector<std::string>& fixture = FixtureAdapters();
  auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  constexpr int kRounds = 16;
  constexpr int kPerRound = 6;
  for (int round = 0; round < kRounds; ++round) {
    repoint("x", fixture[pick(fixture.size())]);
    repoint("y", fixture[pick(fixture.size())]);
    repoint("tmp", round % 2 == 0 ? fixture[pick(fixture.size())] : "");
    for (int i = 0; i < kPerRound; ++i) {
      std::vector<std::string> names = {"", "x", "y", fixture[pick(fixture.size())]};
      if (!points_to["tmp"].empty()) names.push_back("tmp");
      Submitted s;
      s.name = names[pick(names.size())];
      s.adapter = points_to.contains(s.name) ? points_to[s.name] : s.name;
      s.prompt = pick(prompts.size());
      s.sink = std::make_shared<RecordingSink>();
      const std::string id = "s" + std::to_string(submitted.size());
      const absl::Status st =
          engine->Submit(GreedyOn(kind(), id, s.name, prompts[s.prompt], 8), s.sink);
      ASSERT_TRUE(st.ok()) << id << " on \"" << s.name << "\": " << st;
      submitted.push_back(std::move(s));
    }
    // Let some of this round run before its names are re-pointed.
    absl::SleepFor(absl::Milliseconds(round % 3 == 0 ? 0 : 3));
  }
  for (size_t i = 0; i < submitted.size(); ++i) {
    const Submitted& s = submitted[i];
    SCOPED_TRACE("request s" + std::to_string(i) + " on \"" + s.name + "\" = \"" + s.adapter +
                 "\", prompt " + std::to_string(s.prompt));
    ASSERT_TRUE(s.sink->WaitDone(absl::Seconds(60)));
    EXPECT_EQ(s.sink->terminals(), 1);
    EXPECT_EQ(s.sink->terminal().kind, GenerationEvent::Kind::kFinished)
        << s.sink->terminal().error;
    EXPECT_TRUE(SinkGreedyAgrees(kind(), *s.sink, alone[{s.adapter, s.prompt}]));
  }
  ASSERT_TRUE(engine->WaitIdle(absl::Seconds(20)).ok());
  for (const Submitted& s : submitted) EXPECT_EQ(s.sink->terminals(), 1);
  const EngineStats st = engine->Stats();
  std::printf("[ stress ] %s: %zu requests, %lld device loads, %lld evictions\n",
              std::string(BackendKindName(kind())).c_str(), submitted.size(),
              static_cast<long long>(st.adapter_loads_device_ok),
              static_cast<long long>(st.adapter_evictions_total));
  EXPECT_GT(st.adapter_evictions_total, 0);
  EXPECT_EQ(st.adapter_loads_device_failed, 0);
  EXPECT_EQ(st.pool_pages_kv, 0);
  EXPECT_EQ(st.adapter_pins, 0);
  EXPECT_EQ(st.adapters_copying, 0);
  EXPECT_EQ(st.pool_pages_free + st.pool_pages_adapter, start.pool_pages_free);
}

INSTANTIATE_TEST_SUITE_P(Backends, EnginePoolTest, ::testing::ValuesIn(AllBackendKinds()),
                         BackendParamName);

}  // namespace
}  // namespace loraserve
