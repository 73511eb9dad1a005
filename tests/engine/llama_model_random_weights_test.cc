// LlamaModel built with Options::random_weights_seed (no safetensors read):
// a forward pass on every backend gives finite logits that depend on the
// seed only, and the CUDA model agrees with the CPU model built from the same
// seed (FillRandom is bit-exact across backends up to bf16 rounding of the
// weights), within the bf16 whole-model tolerance.
#include <cmath>
#include <memory>
#include <vector>

#include "engine/model/kv_cache.h"
#include "engine/model/llama_model.h"
#include "gtest/gtest.h"
#include "kernels/backend_factory.h"
#include "tests/engine/backend_param.h"

namespace loraserve {
namespace {

using ::loraserve::testing::AllBackendKinds;
using ::loraserve::testing::BackendParamName;
using ::loraserve::testing::BackendUnavailable;
using ::loraserve::testing::ToleranceFor;

// Logits of every position of a fixed 11-token prompt, on `backend`.
std::vector<float> PromptLogits(Backend* backend, uint64_t seed) {
  LlamaModel::Options mo;
  mo.backend = backend;
  mo.model_dir = std::string(LORASERVE_TEST_DATA_DIR) + "/tiny-llama";
  mo.random_weights_seed = seed;
  auto model = LlamaModel::Create(mo);
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) return {};
  auto kv = KvCache::Create(KvCache::ForModel(backend, (*model)->config(), 4, 64));
  EXPECT_TRUE(kv.ok()) << kv.status();
  if (!kv.ok()) return {};
  const std::vector<int32_t> prompt = {1, 17, 300, 42, 7, 511, 0, 99, 250, 3, 128};
  std::vector<int32_t> table;
  EXPECT_TRUE((*kv)->Reserve(&table, static_cast<int32_t>(prompt.size())).ok());
  ForwardBatch batch;
  SequenceStep s;
  s.tokens = prompt;
  s.block_table = table;
  s.all_logits = true;
  batch.sequences.push_back(s);
  ForwardOutput out;
  const absl::Status st = (*model)->Forward(batch, (*kv)->view(), &out);
  EXPECT_TRUE(st.ok()) << st;
  (*kv)->Release(&table);
  return out.logits;
}

class LlamaModelRandomWeightsTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    if (auto why = BackendUnavailable(GetParam())) GTEST_SKIP() << *why;
    BackendOptions o;
    o.num_threads = 2;
    auto b = CreateBackend(GetParam(), o);
    ASSERT_TRUE(b.ok()) << b.status();
    backend_ = std::move(b).value();
  }
  std::unique_ptr<Backend> backend_;
};

TEST_P(LlamaModelRandomWeightsTest, FiniteLogitsThatDependOnTheSeedOnly) {
  const std::vector<float> a = PromptLogits(backend_.get(), 7);
  const std::vector<float> again = PromptLogits(backend_.get(), 7);
  const std::vector<float> other = PromptLogits(backend_.get(), 8);
  ASSERT_EQ(a.size(), 11u * 512u);
  ASSERT_EQ(again.size(), a.size());
  ASSERT_EQ(other.size(), a.size());
  double spread = 0, diff_other = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_TRUE(std::isfinite(a[i])) << i;
    EXPECT_EQ(a[i], again[i]) << i;
    spread = std::max(spread, std::fabs(double{a[i]} - a[0]));
    diff_other = std::max(diff_other, std::fabs(double{a[i]} - other[i]));
  }
  EXPECT_GT(spread, 1e-3) << "logits vary across tokens and positions";
  EXPECT_GT(diff_other, 1e-3) << "another seed, another model";
}

TEST_P(LlamaModelRandomWeightsTest, AgreesWithTheCpuModelOfTheSameSeed) {
  if (GetParam() == BackendKind::kCpu) GTEST_SKIP() << "the CPU model is the reference";
  BackendOptions o;
  o.num_threads = 2;
  auto cpu = CreateBackend(BackendKind::kCpu, o);
  ASSERT_TRUE(cpu.ok());
  const std::vector<float> ref = PromptLogits(cpu->get(), 7);
  const std::vector<float> got = PromptLogits(backend_.get(), 7);
  ASSERT_EQ(ref.size(), got.size());
  const auto tol = ToleranceFor(GetParam());
  for (size_t i = 0; i < ref.size(); ++i) {
    ASSERT_TRUE(tol.Within(got[i], ref[i])) << i << ": " << got[i] << " vs cpu " << ref[i];
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, LlamaModelRandomWeightsTest,
                         ::testing::ValuesIn(AllBackendKinds()), BackendParamName);

}  // namespace
}  // namespace loraserve
