// The engine's host tier (DESIGN.md, "Residency tiers": device pool <- host
// cache <- disk) with a budget: max_cpu_loras adapters in host memory at most.
// Every golden case still matches when adapters keep being dropped from host
// and reloaded from their PEFT directories; a reload that fails (directory
// deleted meanwhile) ends that adapter's requests with an error naming it and
// leaves the others alone; max_cpu_loras < max_loras is refused.
#include <algorithm>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "engine/engine.h"
#include "gtest/gtest.h"
#include "tests/engine/engine_test_util.h"

namespace loraserve {
namespace {

using ::loraserve::testing::AdapterDir;
using ::loraserve::testing::FixtureAdapters;
using ::loraserve::testing::Golden;
using ::loraserve::testing::Greedy;
using ::loraserve::testing::LoadGoldens;
using ::loraserve::testing::MakeEngine;
using ::loraserve::testing::RecordingSink;
using ::loraserve::testing::RunAlone;
using ::loraserve::testing::TestOptions;

EngineOptions HostTierOptions() {
  EngineOptions o = TestOptions();
  o.max_loras = 2;
  o.max_cpu_loras = 2;
  return o;
}

// Adapters listed on each tier.
struct TierCounts {
  int device = 0;
  int host = 0;
  int disk = 0;
};
TierCounts CountTiers(const Engine& e) {
  TierCounts c;
  for (const AdapterDescription& d : e.ListAdapters()) {
    switch (d.tier) {
      case AdapterTier::kDevice: ++c.device; break;
      case AdapterTier::kHost: ++c.host; break;
      case AdapterTier::kDisk: ++c.disk; break;
    }
  }
  return c;
}

AdapterTier TierOf(const Engine& e, const std::string& name) {
  for (const AdapterDescription& d : e.ListAdapters()) {
    if (d.name == name) return d.tier;
  }
  ADD_FAILURE() << name << " not listed";
  return AdapterTier::kDisk;
}

TEST(EngineHostTierTest, BudgetedHostTierMatchesGoldensAndReloadsFromDisk) {
  auto engine = MakeEngine(HostTierOptions());
  ASSERT_NE(engine, nullptr);
  ASSERT_TRUE(engine->WaitIdle(absl::Seconds(10)).ok());
  {
    const TierCounts c = CountTiers(*engine);
    EXPECT_EQ(c.host, 2);  // the two most recently loaded
    EXPECT_EQ(c.disk, static_cast<int>(FixtureAdapters().size()) - 2);
    EXPECT_EQ(engine->Stats().adapters_host, 2);
  }
  std::vector<Golden> cases;
  for (const Golden& g : LoadGoldens()) {
    cases.push_back(g);
    cases.push_back(g);
  }
  std::mt19937 rng(11);
  std::shuffle(cases.begin(), cases.end(), rng);

  // Two requests at a time (at most max_cpu_loras adapters referenced), so
  // the host tier never needs to go above its budget.
  int n = 0;
  for (size_t i = 0; i < cases.size(); i += 2) {
    std::vector<std::shared_ptr<RecordingSink>> sinks;
    for (size_t j = i; j < std::min(cases.size(), i + 2); ++j) {
      const Golden& g = cases[j];
      auto sink = std::make_shared<RecordingSink>();
      ASSERT_TRUE(engine
                      ->Submit(Greedy("p" + std::to_string(n++), g.adapter, g.prompt,
                                      static_cast<int32_t>(g.greedy.size())),
                               sink)
                      .ok());
      sinks.push_back(sink);
    }
    for (size_t j = 0; j < sinks.size(); ++j) {
      ASSERT_TRUE(sinks[j]->WaitDone());
      EXPECT_EQ(sinks[j]->terminal().kind, GenerationEvent::Kind::kFinished)
          << sinks[j]->terminal().error;
      EXPECT_EQ(sinks[j]->tokens(), cases[i + j].greedy) << cases[i + j].name;
    }
    ASSERT_TRUE(engine->WaitIdle(absl::Seconds(10)).ok());
    const EngineStats st = engine->Stats();
    EXPECT_LE(st.adapters_host, 2);
    EXPECT_LE(CountTiers(*engine).host, 2);
  }

  // Everything at once: more adapters referenced than the host budget; they
  // are kept while referenced, and every case still matches.
  std::vector<std::shared_ptr<RecordingSink>> sinks;
  for (const Golden& g : cases) {
    auto sink = std::make_shared<RecordingSink>();
    ASSERT_TRUE(engine
                    ->Submit(Greedy("c" + std::to_string(n++), g.adapter, g.prompt,
                                    static_cast<int32_t>(g.greedy.size())),
                             sink)
                    .ok());
    sinks.push_back(sink);
  }
  for (size_t i = 0; i < sinks.size(); ++i) {
    ASSERT_TRUE(sinks[i]->WaitDone(absl::Seconds(60)));
    EXPECT_EQ(sinks[i]->tokens(), cases[i].greedy) << cases[i].name;
  }
  ASSERT_TRUE(engine->WaitIdle(absl::Seconds(10)).ok());
  const EngineStats st = engine->Stats();
  EXPECT_LE(st.adapters_host, 2);  // back within budget once idle
  EXPECT_GT(st.adapter_loads_host_ok, 0);  // adapters came back from disk
  EXPECT_EQ(st.adapter_loads_host_failed, 0);
  EXPECT_EQ(st.adapter_pins, 0);
  int host_records = 0;
  for (const AdapterLoadRecord& r : engine->TakeAdapterLoads()) {
    if (r.tier == AdapterTier::kHost) ++host_records;
  }
  EXPECT_EQ(host_records, st.adapter_loads_host_ok);
}

TEST(EngineHostTierTest, DeletedDirectoryFailsOnlyThatAdaptersRequests) {
  const std::vector<Golden> goldens = LoadGoldens();
  const auto g = std::find_if(goldens.begin(), goldens.end(),
                              [](const Golden& c) { return !c.adapter.empty(); });
  ASSERT_NE(g, goldens.end());
  std::vector<std::string> others;
  for (const std::string& a : FixtureAdapters()) {
    if (a != g->adapter && others.size() < 2) others.push_back(a);
  }
  ASSERT_EQ(others.size(), 2u);

  namespace fs = std::filesystem;
  const fs::path tmp = fs::temp_directory_path() /
                       ("loraserve_host_tier_" + std::to_string(::getpid()) + "_" + g->adapter);
  fs::remove_all(tmp);
  fs::copy(AdapterDir(g->adapter), tmp, fs::copy_options::recursive);

  auto engine = MakeEngine(HostTierOptions(), /*load_adapters=*/false);
  ASSERT_NE(engine, nullptr);
  ASSERT_TRUE(engine->LoadAdapter("doomed", tmp.string()).ok());
  ASSERT_TRUE(engine->LoadAdapter(g->adapter, AdapterDir(g->adapter)).ok());
  for (const std::string& a : others) ASSERT_TRUE(engine->LoadAdapter(a, AdapterDir(a)).ok());
  // Use the others: "doomed" (least recently used, never requested) leaves host.
  for (const std::string& a : others) {
    auto sink = RunAlone(*engine, Greedy("warm_" + a, a, g->prompt, 2));
    EXPECT_EQ(sink->terminal().kind, GenerationEvent::Kind::kFinished);
  }
  ASSERT_TRUE(engine->WaitIdle(absl::Seconds(10)).ok());
  EXPECT_EQ(TierOf(*engine, "doomed"), AdapterTier::kDisk);
  fs::remove_all(tmp);

  const int32_t len = static_cast<int32_t>(g->greedy.size());
  auto doomed = std::make_shared<RecordingSink>();
  auto fine = std::make_shared<RecordingSink>();
  ASSERT_TRUE(engine->Submit(Greedy("doomed", "doomed", g->prompt, len), doomed).ok());
  ASSERT_TRUE(engine->Submit(Greedy("fine", g->adapter, g->prompt, len), fine).ok());
  ASSERT_TRUE(doomed->WaitDone());
  ASSERT_TRUE(fine->WaitDone());
  const GenerationEvent end = doomed->terminal();
  EXPECT_EQ(end.kind, GenerationEvent::Kind::kError);
  EXPECT_FALSE(end.error.ok());
  EXPECT_NE(std::string(end.error.message()).find("doomed"), std::string::npos) << end.error;
  EXPECT_TRUE(doomed->tokens().empty());  // never a silent fallback to the base model
  EXPECT_EQ(fine->terminal().kind, GenerationEvent::Kind::kFinished);
  EXPECT_EQ(fine->tokens(), g->greedy);
  ASSERT_TRUE(engine->WaitIdle(absl::Seconds(10)).ok());
  const EngineStats st = engine->Stats();
  EXPECT_GE(st.adapter_loads_host_failed, 1);
  EXPECT_EQ(st.adapter_pins, 0);
  EXPECT_EQ(st.running + st.waiting, 0);

  // The engine keeps serving.
  auto after = RunAlone(*engine, Greedy("after", g->adapter, g->prompt, len));
  EXPECT_EQ(after->tokens(), g->greedy);
}

TEST(EngineHostTierTest, MaxCpuLorasBelowMaxLorasIsRefused) {
  EngineOptions o = TestOptions();
  o.max_loras = 4;
  o.max_cpu_loras = 2;
  auto e = Engine::Create(o);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(e.status().message()).find("max_cpu_loras"), std::string::npos)
      << e.status();
  o.max_cpu_loras = -1;
  EXPECT_EQ(Engine::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.max_cpu_loras = 4;
  EXPECT_TRUE(Engine::Create(o).ok());
}

}  // namespace
}  // namespace loraserve
