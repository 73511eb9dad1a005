// The engine's sampling on the device, end to end on the CPU backend: seeded
// requests with temperature / top-k / top-p / min-p produce exactly the
// tokens of the host path (EngineOptions::device_sampling = false, every row's
// logits copied and Sampler::Sample), both when the candidates decide and
// when a row falls back to CopyLogitsRow; a batch mixing them with greedy,
// penalised and logprob requests (which keep their own paths) too.
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/engine.h"
#include "gtest/gtest.h"
#include "tests/engine/engine_test_util.h"
#include "tests/memory/gated_backend.h"

namespace loraserve {
namespace {

using ::loraserve::testing::FixtureAdapters;
using ::loraserve::testing::Golden;
using ::loraserve::testing::Greedy;
using ::loraserve::testing::LoadGoldens;
using ::loraserve::testing::MakeEngine;
using ::loraserve::testing::RecordingSink;
using ::loraserve::testing::TestOptions;

struct Sampled {
  float temperature;
  int32_t top_k;
  float top_p;
  float min_p;
};

GenerationRequest Request(const std::string& id, const Golden& g, const Sampled& s, uint64_t seed) {
  GenerationRequest r = Greedy(id, g.adapter, g.prompt, 16);
  r.sampling.temperature = s.temperature;
  r.sampling.top_k = s.top_k;
  r.sampling.top_p = s.top_p;
  r.sampling.min_p = s.min_p;
  r.sampling.seed = seed;
  return r;
}

// Submits every request at once and returns each one's tokens by id.
std::map<std::string, std::vector<int32_t>> RunAll(Engine& engine,
                                                   std::vector<GenerationRequest> requests) {
  std::map<std::string, std::shared_ptr<RecordingSink>> sinks;
  for (GenerationRequest& r : requests) {
    auto sink = std::make_shared<RecordingSink>();
    const std::string id = r.request_id;
    EXPECT_TRUE(engine.Submit(std::move(r), sink).ok()) << id;
    sinks[id] = sink;
  }
  std::map<std::string, std::vector<int32_t>> tokens;
  for (auto& [id, sink] : sinks) {
    EXPECT_TRUE(sink->WaitDone()) << id;
    EXPECT_EQ(sink->terminal().kind, GenerationEvent::Kind::kFinished) << id;
    tokens[id] = sink->tokens();
  }
  return tokens;
}

// An engine on a counting CPU backend, with the fixture adapters loaded.
std::unique_ptr<Engine> CountingEngine(testing_memory::GatedBackend** gated) {
  EngineOptions o = TestOptions();
  o.backend_factory = [gated]() -> absl::StatusOr<std::unique_ptr<Backend>> {
    auto b = std::make_unique<testing_memory::GatedBackend>();
    *gated = b.get();
    return std::unique_ptr<Backend>(std::move(b));
  };
  auto created = Engine::Create(o);
  EXPECT_TRUE(created.ok()) << created.status();
  if (!created.ok()) return nullptr;
  for (const std::string& a : FixtureAdapters()) {
    auto loaded = (*created)->LoadAdapter(a, testing::AdapterDir(a));
    EXPECT_TRUE(loaded.ok()) << loaded.status();
  }
  return std::move(created).value();
}

std::unique_ptr<Engine> HostEngine() {
  EngineOptions o = TestOptions();
  o.device_sampling = false;
  return MakeEngine(o);
}

TEST(EngineDeviceSamplingTest, SeededTokensEqualTheHostPathDecidedOrFetched) {
  const std::vector<Golden> goldens = LoadGoldens();
  ASSERT_FALSE(goldens.empty());
  // From always decided (top_k) to mostly fetched (a wide nucleus at a high
  // temperature: past the 64 candidates of the tiny vocabulary).
  const std::vector<Sampled> grid = {
      {0.9f, 50, 0.95f, 0.0f}, {0.7f, 20, 1.0f, 0.0f}, {1.0f, 0, 0.9f, 0.0f},
      {1.2f, 0, 1.0f, 0.1f},   {1.5f, 0, 0.99f, 0.0f}, {0.8f, 0, 0.5f, 0.05f},
      {0.3f, 64, 0.8f, 0.2f},  {2.0f, 0, 0.7f, 0.0f},
  };
  std::vector<GenerationRequest> requests;
  for (size_t i = 0; i < grid.size(); ++i) {
    for (int rep = 0; rep < 2; ++rep) {
      const Golden& g = goldens[(i + static_cast<size_t>(rep)) % goldens.size()];
      requests.push_back(Request("s" + std::to_string(i) + "_" + std::to_string(rep), g, grid[i],
                                 1000 + 10 * i + static_cast<uint64_t>(rep)));
    }
  }
  testing_memory::GatedBackend* gated = nullptr;
  std::unique_ptr<Engine> device = CountingEngine(&gated);
  ASSERT_NE(device, nullptr);
  ASSERT_NE(gated, nullptr);
  gated->CountFetchesOf(static_cast<size_t>(device->vocab_size()) * sizeof(float));
  const auto on_device = RunAll(*device, requests);

  std::unique_ptr<Engine> host = HostEngine();
  ASSERT_NE(host, nullptr);
  const auto on_host = RunAll(*host, requests);
  for (const auto& [id, tokens] : on_host) {
    EXPECT_EQ(tokens.size(), 16u) << id;
    EXPECT_EQ(on_device.at(id), tokens) << id;
  }
  // Every sampled step ran the candidates pass; some rows, not all, still
  // fetched their logits.
  EXPECT_GT(gated->sample_candidates_calls(), 0);
  EXPECT_GT(gated->fetches(), 0);
  EXPECT_LT(gated->fetches(), static_cast<int>(requests.size()) * 16);
  RecordProperty("row_fetches", std::to_string(gated->fetches()));
}

TEST(EngineDeviceSamplingTest, MixedBatchKeepsEveryPathExact) {
  const std::vector<Golden> goldens = LoadGoldens();
  ASSERT_FALSE(goldens.empty());
  std::vector<GenerationRequest> requests;
  for (size_t i = 0; i < 8; ++i) {
    const Golden& g = goldens[i % goldens.size()];
    GenerationRequest r = Request("m" + std::to_string(i), g, {0.9f, 40, 0.9f, 0.02f}, 77 + i);
    if (i == 1) r.sampling.temperature = 0.0f;         // greedy: ArgMaxRows
    if (i == 2) r.sampling.repetition_penalty = 1.3f;  // penalties: host row
    if (i == 3) r.sampling.top_logprobs = 3;           // logprobs: host row
    if (i == 4) r.sampling.top_k = 0;                  // nucleus only
    if (i == 5) r.sampling.top_p = 1.0f;               // top-k only, mostly
    requests.push_back(std::move(r));
  }
  std::unique_ptr<Engine> device = MakeEngine(TestOptions());
  ASSERT_NE(device, nullptr);
  const auto on_device = RunAll(*device, requests);
  std::unique_ptr<Engine> host = HostEngine();
  ASSERT_NE(host, nullptr);
  const auto on_host = RunAll(*host, requests);
  for (const auto& [id, tokens] : on_host) {
    EXPECT_EQ(tokens.size(), 16u) << id;
    EXPECT_EQ(on_device.at(id), tokens) << id;
  }
}

}  // namespace
}  // namespace loraserve
