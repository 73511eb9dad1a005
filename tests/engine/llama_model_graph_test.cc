// LlamaModel's decode-graph path (engine/model/llama_model_graph.h) on every
// backend: graphs forced on (the CPU backend records and replays its ops the
// way CUDA captures them, so a host value frozen into a graph that should
// change per step shows up here too). Decode steps of the golden cases run
// from graphs and still match HF and the same steps run op by op; graphs are
// reused across steps and recaptured when a buffer they hold moves; the
// bucket functions and the LoRA table padding behave as documented.
#include <algorithm>
#include <iostream>
#include <memory>

#include "engine/model/kv_cache.h"
#include "engine/model/llama_model.h"
#include "engine/model/llama_model_graph.h"
#include "gtest/gtest.h"
#include "tests/engine/backend_param.h"
#include "tests/engine/llama_model_test_fixture.h"

namespace loraserve {
namespace {

using ::loraserve::testing::AllBackendKinds;
using ::loraserve::testing::GoldenCase;
using ::loraserve::testing::kSameComputationTol;
using ::loraserve::testing::LlamaModelTest;
using ::loraserve::testing::ModelParamName;
using ::loraserve::testing::Seq;

TEST(GraphBuckets, BatchBuckets) {
  EXPECT_EQ(GraphBatchBucket(1), 1);
  EXPECT_EQ(GraphBatchBucket(2), 2);
  EXPECT_EQ(GraphBatchBucket(3), 4);
  EXPECT_EQ(GraphBatchBucket(4), 4);
  EXPECT_EQ(GraphBatchBucket(5), 8);
  EXPECT_EQ(GraphBatchBucket(8), 8);
  EXPECT_EQ(GraphBatchBucket(9), 16);
  EXPECT_EQ(GraphBatchBucket(17), 24);
  EXPECT_EQ(GraphBatchBucket(256), 256);
  for (int32_t s = 1; s <= 300; ++s) {
    const int32_t b = GraphBatchBucket(s);
    EXPECT_GE(b, s);
    EXPECT_LT(b - s, std::max(8, s)) << s;  // never more than 8 pad rows past 4
  }
}

TEST(GraphBuckets, ContextBuckets) {
  EXPECT_EQ(GraphContextBucket(1, 0), 256);
  EXPECT_EQ(GraphContextBucket(256, 0), 256);
  EXPECT_EQ(GraphContextBucket(257, 0), 512);
  EXPECT_EQ(GraphContextBucket(3000, 0), 4096);
  EXPECT_EQ(GraphContextBucket(3000, 4096), 4096);
  EXPECT_EQ(GraphContextBucket(3000, 3500), 3500);  // capped at the model's context
  EXPECT_EQ(GraphContextBucket(100, 128), 128);
  EXPECT_EQ(GraphContextBucket((1 << 30) + 5, 0), (1 << 30) + 5);  // no int32 overflow
}

TEST(GraphBuckets, RankBuckets) {
  EXPECT_EQ(GraphRankBucket(0), 0);
  EXPECT_EQ(GraphRankBucket(1), 16);
  EXPECT_EQ(GraphRankBucket(16), 16);
  EXPECT_EQ(GraphRankBucket(17), 32);
  EXPECT_EQ(GraphRankBucket(64), 64);
  EXPECT_EQ(GraphRankBucket(200), 256);
  EXPECT_EQ(GraphRankBucket(kMaxLoraRank), kMaxLoraRank);
}

TEST(GraphBuckets, DecodeOnly) {
  const std::vector<int32_t> one = {5}, two = {5, 6};
  SequenceStep d;
  d.tokens = one;
  SequenceStep p;
  p.tokens = two;
  SequenceStep all = d;
  all.all_logits = true;
  SequenceStep none = d;
  none.compute_logits = false;
  EXPECT_TRUE(IsDecodeOnly(std::vector<SequenceStep>{d, d}));
  EXPECT_FALSE(IsDecodeOnly(std::vector<SequenceStep>{d, p}));
  EXPECT_FALSE(IsDecodeOnly(std::vector<SequenceStep>{all}));
  EXPECT_FALSE(IsDecodeOnly(std::vector<SequenceStep>{none}));
  EXPECT_FALSE(IsDecodeOnly(std::vector<SequenceStep>{}));
}

class LlamaModelGraphTest : public LlamaModelTest {
 protected:
  void SetUp() override {
    graph_mode_ = LlamaModel::GraphMode::kOn;
    LlamaModelTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_TRUE(model_->graphs_enabled()) << label() << ": backend supports graphs";
  }

  // Runs every golden case in one batch (prompts in one step, then decode
  // steps) and returns the sequences.
  std::vector<Seq> RunAll(int32_t chunk) {
    std::vector<Seq> seqs;
    for (const GoldenCase& g : goldens_) seqs.push_back(NewSeq(g));
    std::vector<Seq*> ptrs;
    for (Seq& s : seqs) ptrs.push_back(&s);
    RunTogether(ptrs, chunk);
    return seqs;
  }
};

TEST_P(LlamaModelGraphTest, DecodeStepsFromGraphsMatchGoldens) {
  std::vector<Seq> seqs = RunAll(0);
  ASSERT_FALSE(HasFatalFailure());
  const GraphStats st = model_->graph_stats();
  // One prefill step op by op, then 7 decode steps (the 8th token comes from
  // the last decode) from one graph: all sequences decode together.
  EXPECT_EQ(st.eager_steps, 1);
  EXPECT_EQ(st.launches, 7);
  EXPECT_EQ(st.captures, 1);
  double worst = 0;
  for (const Seq& s : seqs) worst = std::max(worst, ExpectMatchesGolden(s));
  std::cout << "[ graphs ] " << label() << ": " << st.launches << " graph steps, " << st.captures
            << " capture(s), max |logit - HF| = " << worst << "\n";
  Release(seqs);
}

TEST_P(LlamaModelGraphTest, PoolSlicesFromGraphsMatchGoldens) {
  UsePool();
  if (HasFatalFailure()) return;
  std::vector<Seq> seqs = RunAll(3);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_GT(model_->graph_stats().launches, 0);
  for (const Seq& s : seqs) ExpectMatchesGolden(s);
  Release(seqs);
}

TEST_P(LlamaModelGraphTest, GraphStepsEqualEagerSteps) {
  std::vector<Seq> graphed = RunAll(0);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_GT(model_->graph_stats().launches, 0);
  Release(graphed);
  graph_mode_ = LlamaModel::GraphMode::kOff;
  Build(kind());
  ASSERT_FALSE(HasFatalFailure());
  std::vector<Seq> eager = RunAll(0);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(model_->graph_stats().launches, 0);
  double worst = 0, worst_scaled = 0;
  for (size_t i = 0; i < eager.size(); ++i) {
    ExpectSameComputation(eager[i], graphed[i], &worst, &worst_scaled);
  }
  // Padding rows change only the GEMMs' row count (summation blocking).
  if (kind() == BackendKind::kCpu) {
    EXPECT_LT(worst_scaled, kSameComputationTol);
  }
  std::cout << "[ graphs ] " << label() << ": max |graph - eager| = " << worst << "\n";
  Release(eager);
}

TEST_P(LlamaModelGraphTest, OneGraphPerKeyReusedAcrossSteps) {
  // Each case alone (batch bucket 1, context bucket 256): one capture per
  // rank bucket, reused by every later step with that key. The pool keeps
  // the adapter rows in place and the reservation the activations, as in
  // the engine, so no buffer a graph holds moves.
  UsePool();
  if (HasFatalFailure()) return;
  ASSERT_TRUE(model_->ReserveActivations(256, 256, kMaxLoraRank).ok());
  std::vector<Seq> seqs;
  for (const GoldenCase& g : goldens_) seqs.push_back(NewSeq(g));
  for (Seq& s : seqs) RunTogether({&s}, 0);
  ASSERT_FALSE(HasFatalFailure());
  const GraphStats alone = model_->graph_stats();
  EXPECT_EQ(alone.launches, static_cast<int64_t>(7 * seqs.size()));
  // Base-model and adapter cases of different rank buckets: at most one
  // graph per rank bucket (0, 16, 32, 64) at batch 1.
  EXPECT_GE(alone.captures, 2);
  EXPECT_LE(alone.captures, 4);
  EXPECT_EQ(alone.cached, alone.captures);
  for (const Seq& s : seqs) ExpectMatchesGolden(s);
  Release(seqs);

  std::vector<Seq> again;
  for (const GoldenCase& g : goldens_) again.push_back(NewSeq(g));
  for (Seq& s : again) RunTogether({&s}, 0);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(model_->graph_stats().captures, alone.captures) << "same shapes: no new capture";
  Release(again);
}

TEST_P(LlamaModelGraphTest, NewKvCacheRecapturesInsteadOfWritingTheOldOne) {
  std::vector<Seq> first = RunAll(0);
  ASSERT_FALSE(HasFatalFailure());
  const int64_t captures = model_->graph_stats().captures;
  Release(first);
  // A second cache at another address: a graph holding the first cache's
  // address would write K/V there and read stale keys; the recapture keeps
  // results exact.
  auto other =
      KvCache::Create(KvCache::ForModel(backend_, model_->config(), testing::kBlockTokens, 1024));
  ASSERT_TRUE(other.ok()) << other.status();
  kv_.swap(*other);
  std::vector<Seq> second = RunAll(0);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_GT(model_->graph_stats().captures, captures);
  for (const Seq& s : second) ExpectMatchesGolden(s);
  Release(second);
}

TEST_P(LlamaModelGraphTest, LargerBatchesThanTheLimitRunEagerly) {
  graph_mode_ = LlamaModel::GraphMode::kOn;
  max_graph_batch_ = 2;
  Build(kind());
  ASSERT_FALSE(HasFatalFailure());
  std::vector<Seq> seqs = RunAll(0);  // more than 2 sequences decode together
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_GT(seqs.size(), 2u);
  EXPECT_EQ(model_->graph_stats().launches, 0);
  for (const Seq& s : seqs) ExpectMatchesGolden(s);
  Release(seqs);
}

INSTANTIATE_TEST_SUITE_P(TinyModels, LlamaModelGraphTest,
                         ::testing::Combine(::testing::Values("tiny-llama", "tiny-qwen2"),
                                            ::testing::ValuesIn(AllBackendKinds())),
                         ModelParamName);

}  // namespace
}  // namespace loraserve
