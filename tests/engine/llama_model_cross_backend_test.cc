// LlamaModel on CUDA against the CPU backend (the fp32 reference, itself
// within 1e-4 of HF): all golden cases in one batch (base and adapters of
// ranks 2..64 together), prefill in chunks of 3-5 mixed with decodes, LoRA
// slices from the unified pool (the engine's path), the same schedule on
// both; every logit within the bf16 tolerance of backend_param.h and the
// greedy ids equal up to a flipped near tie. Skips where CUDA cannot run.
#include <algorithm>
#include <iostream>
#include <vector>

#include "gtest/gtest.h"
#include "tests/engine/backend_param.h"
#include "tests/engine/llama_model_test_fixture.h"

namespace loraserve {
namespace {

using ::loraserve::testing::GapFromLogits;
using ::loraserve::testing::GoldenCase;
using ::loraserve::testing::LlamaModelTest;
using ::loraserve::testing::ModelParamName;
using ::loraserve::testing::Seq;

class LlamaModelCrossBackendTest : public LlamaModelTest {
 protected:
  // All golden cases, staggered, on `kind`'s backend with the pool.
  std::vector<Seq> RunMixedOn(BackendKind kind) {
    Build(kind);
    if (HasFatalFailure()) return {};
    UsePool();
    if (HasFatalFailure()) return {};
    std::vector<Seq> seqs;
    for (const GoldenCase& g : goldens_) seqs.push_back(NewSeq(g));
    RunStaggered(seqs);
    Release(seqs);
    for (Seq& s : seqs) s.table.clear();
    return seqs;
  }
};

TEST_P(LlamaModelCrossBackendTest, MixedAdapterBatchWithChunkedPrefillMatchesCpu) {
  const std::vector<Seq> device = RunMixedOn(kind());
  ASSERT_FALSE(HasFatalFailure());
  const std::vector<Seq> cpu = RunMixedOn(BackendKind::kCpu);
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_EQ(device.size(), cpu.size());
  const testing::ModelTolerance tol = tolerance();
  double worst = 0;
  int flipped = 0;
  for (size_t i = 0; i < cpu.size(); ++i) {
    const std::string& name = cpu[i].golden->name;
    SCOPED_TRACE(name);
    worst = std::max(worst, testing::ExpectLogitsWithin(cpu[i].prompt_logits,
                                                        device[i].prompt_logits, tol, "prompt"));
    size_t same = 0;
    EXPECT_TRUE(testing::GreedyAgrees(device[i].generated, cpu[i].generated, tol.tie_margin,
                                      GapFromLogits(device[i].decode_logits), &same));
    if (same < cpu[i].generated.size()) ++flipped;
    // Decode logits up to and including the first difference (same context).
    const size_t n =
        std::min({same + 1, cpu[i].decode_logits.size(), device[i].decode_logits.size()});
    worst =
        std::max(worst, testing::ExpectLogitsWithin(
                            {cpu[i].decode_logits.begin(), cpu[i].decode_logits.begin() + n},
                            {device[i].decode_logits.begin(), device[i].decode_logits.begin() + n},
                            tol, "decode"));
  }
  std::cout << "[ cross  ] " << label() << " vs cpu: " << cpu.size()
            << " cases in one staggered batch, max |logit - cpu| = " << worst << ", " << flipped
            << " greedy near ties flipped\n";
}

// Only accelerator kinds: the CPU is the reference.
INSTANTIATE_TEST_SUITE_P(TinyModels, LlamaModelCrossBackendTest,
                         ::testing::Combine(::testing::Values("tiny-llama", "tiny-qwen2"),
                                            ::testing::Values(BackendKind::kCuda)),
                         ModelParamName);

}  // namespace
}  // namespace loraserve
