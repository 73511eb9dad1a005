// Host cost of sampling one row of a 128,256-token vocabulary (Llama 3), the
// two ways the engine can do it: Sampler::Sample over the full fp32 row
// (copied to the host), or Sampler::SampleFromCandidates over the row's 64
// candidates and weight total (Backend::SampleCandidates, computed on the
// device; here by the CPU twin, once, outside the timing). Printed next to
// BM_ReadRow: one pass reading the row, the least a full-row sampler costs on
// this core. Rows/s are in items_per_second; "undecided" is the share of
// SampleFromCandidates calls that needed the full row.
#include <cmath>
#include <random>
#include <vector>

#include "benchmark/benchmark.h"
#include "engine/sampler/sampler.h"
#include "kernels/backend_factory.h"

namespace loraserve {
namespace {

constexpr int32_t kVocab = 128256;
constexpr int kRows = 64;

// kRows rows of peaked logits: normal(0, 2), a few tokens lifted by 8..12.
const std::vector<float>& Logits() {
  static const std::vector<float> logits = [] {
    std::mt19937 rng(11);
    std::normal_distribution<float> normal(0.0f, 2.0f);
    std::vector<float> x(static_cast<size_t>(kRows) * kVocab);
    for (float& v : x) v = normal(rng);
    for (int r = 0; r < kRows; ++r) {
      for (int j = 0; j < 8; ++j) x[size_t(r) * kVocab + rng() % kVocab] += 8.0f + float(j) * 0.5f;
    }
    return x;
  }();
  return logits;
}

SamplingParams Params(int which) {
  SamplingParams p;
  p.seed = 1;
  switch (which) {
    case 0:
      p.temperature = 0.8f;
      p.top_p = 0.9f;
      break;
    case 1:
      p.temperature = 0.7f;
      p.top_k = 40;
      break;
    case 2:
      p.temperature = 1.0f;
      p.top_k = 50;
      p.top_p = 0.95f;
      break;
    default:
      p.temperature = 1.0f;
      p.min_p = 0.05f;
      break;
  }
  return p;
}

void SetLabel(benchmark::State& state) {
  static const char* kNames[] = {"T=0.8 top_p=0.9", "T=0.7 top_k=40", "T=1 top_k=50 top_p=0.95",
                                 "T=1 min_p=0.05"};
  state.SetLabel(kNames[state.range(0)]);
}

void BM_ReadRow(benchmark::State& state) {
  const std::vector<float>& x = Logits();
  int r = 0;
  for (auto _ : state) {
    const float* row = x.data() + size_t(r) * kVocab;
    float m = -INFINITY;
    for (int32_t i = 0; i < kVocab; ++i) m = std::max(m, row[i]);
    benchmark::DoNotOptimize(m);
    r = (r + 1) % kRows;
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * int64_t{kVocab} * 4);
}
BENCHMARK(BM_ReadRow);

void BM_SampleFullRow(benchmark::State& state) {
  const std::vector<float>& x = Logits();
  Sampler sampler(kVocab);
  auto st = SamplerState::Create(Params(static_cast<int>(state.range(0))), kVocab, {});
  if (!st.ok()) return state.SkipWithError(st.status().ToString().c_str());
  int r = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(sampler.Sample(x.data() + size_t(r) * kVocab, &*st).token);
    r = (r + 1) % kRows;
  }
  state.SetItemsProcessed(state.iterations());
  SetLabel(state);
}
BENCHMARK(BM_SampleFullRow)->DenseRange(0, 3);

void BM_SampleFromCandidates(benchmark::State& state) {
  const std::vector<float>& x = Logits();
  const SamplingParams params = Params(static_cast<int>(state.range(0)));
  BackendOptions bo;
  bo.num_threads = 1;
  auto backend = CreateBackend(BackendKind::kCpu, bo);
  if (!backend.ok()) return state.SkipWithError(backend.status().ToString().c_str());
  const int32_t k = kMaxSampleCandidates;
  std::vector<float> temps(kRows, params.temperature), values(size_t(kRows) * k);
  std::vector<int32_t> ids(size_t(kRows) * k);
  std::vector<double> totals(kRows);
  const absl::Status s = (*backend)->SampleCandidates(x.data(), kRows, kVocab, temps.data(), k,
                                                      ids.data(), values.data(), totals.data(), {});
  if (!s.ok()) return state.SkipWithError(s.ToString().c_str());
  Sampler sampler(kVocab);
  auto st = SamplerState::Create(params, kVocab, {});
  if (!st.ok()) return state.SkipWithError(st.status().ToString().c_str());
  int r = 0;
  int64_t undecided = 0;
  for (auto _ : state) {
    const auto t = sampler.SampleFromCandidates(
        std::span<const int32_t>(ids).subspan(size_t(r) * k, k),
        std::span<const float>(values).subspan(size_t(r) * k, k), totals[size_t(r)], &*st);
    if (!t.has_value()) ++undecided;
    benchmark::DoNotOptimize(t);
    r = (r + 1) % kRows;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["undecided"] = benchmark::Counter(
      double(undecided) / double(std::max<int64_t>(1, state.iterations())));
  SetLabel(state);
}
BENCHMARK(BM_SampleFromCandidates)->DenseRange(0, 3);

}  // namespace
}  // namespace loraserve

BENCHMARK_MAIN();
