// LlamaModel against the Hugging Face goldens of the tiny fixture models
// (tests/data/tiny-llama: GQA 6/2, llama3 rope scaling, five PEFT adapters
// of ranks 2..64 with rslora / rank_pattern / alpha_pattern /
// layers_to_transform; tests/data/tiny-qwen2: qkv bias, tied embeddings,
// sharded safetensors), on every backend (CUDA instances skip where there is
// no device): every prompt position's logits within the backend's tolerance
// (CPU 1e-4; CUDA bf16, backend_param.h) and the greedy continuation, each
// case alone, all cases in one mixed batch, and under a scheduler-like mix of
// prefill chunks and decodes. Also: a mixed batch equals each sequence alone,
// chunked prefill equals one-shot, the adapter cache survives eviction, and
// bad steps are refused.
#include "engine/model/llama_model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>

#include "engine/adapters/peft_adapter.h"
#include "engine/model/kv_cache.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/backend_factory.h"
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
using ::testing::HasSubstr;

TEST_P(LlamaModelTest, EachGoldenCaseAlone) {
  double worst = 0;
  for (const GoldenCase& g : goldens_) {
    std::vector<Seq> seqs = {NewSeq(g)};
    RunTogether({&seqs[0]}, 0);
    worst = std::max(worst, ExpectMatchesGolden(seqs[0]));
    Release(seqs);
  }
  std::cout << "[ golden ] " << label() << ": " << goldens_.size()
            << " cases alone, max |logit - HF| = " << worst << "\n";
}

TEST_P(LlamaModelTest, AllGoldenCasesInOneMixedBatch) {
  std::vector<Seq> seqs;
  for (const GoldenCase& g : goldens_) seqs.push_back(NewSeq(g));
  std::vector<Seq*> ptrs;
  for (Seq& s : seqs) ptrs.push_back(&s);
  RunTogether(ptrs, 0);
  double worst = 0;
  for (const Seq& s : seqs) worst = std::max(worst, ExpectMatchesGolden(s));
  std::cout << "[ golden ] " << label() << ": " << seqs.size()
            << " cases in one batch, max |logit - HF| = " << worst << "\n";
  Release(seqs);
}

// The engine's path: adapters packed into unified-pool pages, slices from a
// LoraSliceSource; the same goldens within the same tolerance.
TEST_P(LlamaModelTest, AllGoldenCasesInOneMixedBatchFromThePool) {
  UsePool();
  if (HasFatalFailure()) return;
  std::vector<Seq> seqs;
  for (const GoldenCase& g : goldens_) seqs.push_back(NewSeq(g));
  std::vector<Seq*> ptrs;
  for (Seq& s : seqs) ptrs.push_back(&s);
  RunTogether(ptrs, 3);
  for (const Seq& s : seqs) ExpectMatchesGolden(s);
  EXPECT_EQ(model_->adapter_cache().num_resident(), 0);
  Release(seqs);
}

TEST_P(LlamaModelTest, ChunkedPrefillMixedWithDecodesMatchesGoldens) {
  // Sequences start at different steps and prefill in chunks of 4 while
  // others decode: every step mixes prefill chunks, decodes and adapters.
  std::vector<Seq> seqs;
  for (const GoldenCase& g : goldens_) seqs.push_back(NewSeq(g));
  RunStaggered(seqs);
  ASSERT_FALSE(HasFatalFailure());
  double worst = 0;
  for (const Seq& s : seqs) worst = std::max(worst, ExpectMatchesGolden(s));
  std::cout << "[ golden ] " << label() << ": staggered chunks of 3-5, max |logit - HF| = " << worst
            << "\n";
  Release(seqs);
}

TEST_P(LlamaModelTest, MixedBatchEqualsEachSequenceAlone) {
  // Same computation alone and mixed: only summation order inside GEMMs may
  // differ, so the logits agree to 1e-5 on the CPU (ExpectSameComputation).
  std::vector<Seq> alone, mixed;
  for (const GoldenCase& g : goldens_) {
    alone.push_back(NewSeq(g));
    mixed.push_back(NewSeq(g));
  }
  for (Seq& s : alone) RunTogether({&s}, 5);
  std::vector<Seq*> ptrs;
  for (Seq& s : mixed) ptrs.push_back(&s);
  RunTogether(ptrs, 5);
  double worst = 0, worst_scaled = 0;
  for (size_t i = 0; i < alone.size(); ++i) {
    ExpectSameComputation(alone[i], mixed[i], &worst, &worst_scaled);
  }
  if (kind() == BackendKind::kCpu) {
    EXPECT_LT(worst_scaled, kSameComputationTol);
  }
  std::cout << "[ mixed  ] " << label() << ": max |mixed - alone| = " << worst
            << " (relative to the row's max |logit|: " << worst_scaled << ")\n";
  Release(alone);
  Release(mixed);
}

TEST_P(LlamaModelTest, ChunkedPrefillEqualsOneShot) {
  for (const GoldenCase& g : goldens_) {
    std::vector<Seq> seqs = {NewSeq(g), NewSeq(g)};
    RunTogether({&seqs[0]}, 0);
    // 2-3 chunks: ceil(len / 3) tokens per step.
    RunTogether({&seqs[1]}, static_cast<int32_t>((g.prompt.size() + 2) / 3));
    double worst = 0, worst_scaled = 0;
    ExpectSameComputation(seqs[0], seqs[1], &worst, &worst_scaled);
    if (kind() == BackendKind::kCpu) {
      EXPECT_LT(worst_scaled, kSameComputationTol) << g.name << " (max abs " << worst << ")";
    }
    Release(seqs);
  }
}

TEST_P(LlamaModelTest, LastTokenLogitsOnlyAndNone) {
  const GoldenCase& g = goldens_[0];
  std::vector<int32_t> table;
  ASSERT_TRUE(kv_->Reserve(&table, static_cast<int64_t>(g.prompt.size())).ok());
  std::vector<int32_t> table2;
  ASSERT_TRUE(kv_->Reserve(&table2, static_cast<int64_t>(g.prompt.size())).ok());
  ForwardBatch batch;
  SequenceStep a;
  a.tokens = g.prompt;
  a.block_table = table;
  a.adapter = Adapter(g.adapter);
  SequenceStep b = a;
  b.block_table = table2;
  b.compute_logits = false;
  batch.sequences = {b, a};
  ForwardOutput out;
  ASSERT_TRUE(model_->Forward(batch, kv_->view(), &out).ok());
  EXPECT_EQ(out.num_rows(), 1);
  EXPECT_EQ(out.first_row, (std::vector<int64_t>{-1, 0}));
  const auto row = out.row(0);
  testing::ExpectLogitsWithin({g.logits.back()}, {std::vector<float>(row.begin(), row.end())},
                              tolerance(), g.name + " last position");
  kv_->Release(&table);
  kv_->Release(&table2);
}

TEST_P(LlamaModelTest, BadStepsAreInvalidArgument) {
  std::vector<int32_t> table;
  ASSERT_TRUE(kv_->Reserve(&table, 8).ok());
  const std::vector<int32_t> tokens = {1, 2, 3};
  const std::vector<int32_t> bad_tokens = {1, static_cast<int32_t>(model_->config().vocab_size)};
  auto run = [&](SequenceStep s) {
    ForwardBatch batch;
    batch.sequences.push_back(s);
    ForwardOutput out;
    return model_->Forward(batch, kv_->view(), &out);
  };
  SequenceStep s;
  s.tokens = tokens;
  s.block_table = table;
  EXPECT_TRUE(run(s).ok());
  SequenceStep t = s;
  t.tokens = bad_tokens;
  absl::Status st = run(t);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("outside the vocabulary"));
  t = s;
  t.num_cached = 6;  // 9 tokens need 3 blocks, the table has 2
  st = run(t);
  EXPECT_THAT(std::string(st.message()), HasSubstr("block table has 2 blocks"));
  t = s;
  t.tokens = {};
  EXPECT_THAT(std::string(run(t).message()), HasSubstr("no new tokens"));
  t = s;
  t.num_cached = static_cast<int32_t>(model_->config().max_context());
  EXPECT_THAT(std::string(run(t).message()), HasSubstr("max context"));
  ForwardBatch empty;
  ForwardOutput out;
  EXPECT_EQ(model_->Forward(empty, kv_->view(), &out).code(), absl::StatusCode::kInvalidArgument);
  KvCacheView wrong = kv_->view();
  wrong.layout.num_kv_heads += 1;
  ForwardBatch one;
  one.sequences.push_back(s);
  EXPECT_THAT(std::string(model_->Forward(one, wrong, &out).message()),
              HasSubstr("does not match the model"));
  kv_->Release(&table);
}

INSTANTIATE_TEST_SUITE_P(TinyModels, LlamaModelTest,
                         ::testing::Combine(::testing::Values("tiny-llama", "tiny-qwen2"),
                                            ::testing::ValuesIn(AllBackendKinds())),
                         ModelParamName);

// A tiny adapter cache forces eviction and repacking between steps; results
// must still match the goldens (no stale rows, no rows of another adapter).
class LlamaModelSmallCacheTest : public LlamaModelTest {
 protected:
  void SetUp() override {
    adapter_cache_bytes_ = 300 * 1024;
    LlamaModelTest::SetUp();
  }
};

TEST_P(LlamaModelSmallCacheTest, AdaptersEvictedAndRepackedStayCorrect) {
  for (int round = 0; round < 2; ++round) {
    for (const GoldenCase& g : goldens_) {
      std::vector<Seq> seqs = {NewSeq(g)};
      RunTogether({&seqs[0]}, 0);
      ExpectMatchesGolden(seqs[0]);
      Release(seqs);
    }
  }
  std::cout << "[ cache  ] " << label() << ": " << model_->adapter_cache().rebuilds()
            << " rebuilds\n";
}

INSTANTIATE_TEST_SUITE_P(TinyLlama, LlamaModelSmallCacheTest,
                         ::testing::Combine(::testing::Values("tiny-llama"),
                                            ::testing::ValuesIn(AllBackendKinds())),
                         ModelParamName);

TEST(LlamaModelSpeed, DecodeStepOnTinyModel) {
  BackendOptions bo;
  bo.num_threads = 2;
  auto backend = CreateBackend(BackendKind::kCpu, bo);
  ASSERT_TRUE(backend.ok());
  LlamaModel::Options mo;
  mo.backend = backend->get();
  mo.model_dir = std::string(LORASERVE_TEST_DATA_DIR) + "/tiny-llama";
  auto model = LlamaModel::Create(mo);
  ASSERT_TRUE(model.ok()) << model.status();
  auto kv = KvCache::Create(KvCache::ForModel(backend->get(), (*model)->config(), 16, 256));
  ASSERT_TRUE(kv.ok());
  auto adapter = PeftAdapter::Load(mo.model_dir + "/adapters/r8_all", (*model)->config(), {});
  ASSERT_TRUE(adapter.ok());
  std::shared_ptr<const PeftAdapter> shared = std::move(adapter).value();
  // 16 sequences of 64 cached tokens, half on an adapter: prefill, then decode steps.
  constexpr int kSeqs = 16;
  std::vector<std::vector<int32_t>> tables(kSeqs);
  std::vector<int32_t> prompt(64);
  for (int i = 0; i < 64; ++i) prompt[i] = (i * 37) % 500;
  ForwardBatch prefill;
  for (int i = 0; i < kSeqs; ++i) {
    ASSERT_TRUE((*kv)->Reserve(&tables[i], 64 + 20).ok());
    SequenceStep s;
    s.tokens = prompt;
    s.block_table = tables[i];
    s.adapter = i % 2 ? shared : nullptr;
    prefill.sequences.push_back(s);
  }
  ForwardOutput out;
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE((*model)->Forward(prefill, (*kv)->view(), &out).ok());
  auto t1 = std::chrono::steady_clock::now();
  std::vector<int32_t> next(1, 7);
  ForwardBatch decode = prefill;
  constexpr int kSteps = 20;
  for (int step = 0; step < kSteps; ++step) {
    for (auto& s : decode.sequences) {
      s.tokens = next;
      s.num_cached = 64 + step;
    }
    ASSERT_TRUE((*model)->Forward(decode, (*kv)->view(), &out).ok());
  }
  auto t2 = std::chrono::steady_clock::now();
  const double prefill_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
  const double decode_ms = std::chrono::duration<double, std::milli>(t2 - t1).count() / kSteps;
  std::cout << "[ speed  ] tiny-llama CPU: prefill 16x64 tokens " << prefill_ms
            << " ms; decode step of 16 sequences " << decode_ms << " ms\n";
}

}  // namespace
}  // namespace loraserve
