// LlamaModel on the CPU backend against the Hugging Face goldens of the tiny
// fixture models (tests/data/tiny-llama: GQA 6/2, llama3 rope scaling, five
// PEFT adapters of ranks 2..64 with rslora / rank_pattern / alpha_pattern /
// layers_to_transform; tests/data/tiny-qwen2: qkv bias, tied embeddings,
// sharded safetensors): every prompt position's logits within 1e-4 and the
// greedy continuation exactly, each case alone, all cases in one mixed batch,
// and under a scheduler-like mix of prefill chunks and decodes. Also: a mixed
// batch equals each sequence alone, chunked prefill equals one-shot, the
// adapter cache survives eviction, and bad steps are refused.
#include "engine/model/llama_model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "engine/adapters/peft_adapter.h"
#include "engine/engine_adapter_residency.h"
#include "engine/model/kv_cache.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/backend_factory.h"
#include "nlohmann/json.hpp"

namespace loraserve {
namespace {

using ::testing::HasSubstr;

constexpr double kGoldenTol = 1e-4;
// The same sequence computed alone or in a batch, in one chunk or several,
// differs only by fp32 summation order: OpenBLAS sgemm's result for a row
// depends on the number of rows M (on the dev machine rows differ bitwise from
// M = 7 on), so this is not bitwise. Rounding noise scales with the magnitude
// of the terms summed, so the bound is 1e-5 relative to the row's largest
// |logit| (at least 1).
constexpr double kSameComputationTol = 1e-5;
constexpr int32_t kBlockTokens = 4;

struct GoldenCase {
  std::string name;
  std::string adapter;  // "" = base
  std::vector<int32_t> prompt;
  std::vector<std::vector<float>> logits;  // [prompt positions][vocab]
  std::vector<int32_t> greedy;
};

std::vector<GoldenCase> LoadGoldens(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  nlohmann::json j;
  in >> j;
  std::vector<GoldenCase> cases;
  for (const auto& c : j.at("cases")) {
    GoldenCase g;
    g.name = c.at("name").get<std::string>();
    g.adapter = c.at("adapter").get<std::string>();
    g.prompt = c.at("prompt_ids").get<std::vector<int32_t>>();
    g.logits = c.at("logits").get<std::vector<std::vector<float>>>();
    g.greedy = c.at("greedy_ids").get<std::vector<int32_t>>();
    cases.push_back(std::move(g));
  }
  return cases;
}

// Accumulates max |a - b| and max |a - b| / max(1, max_v |a[p][v]|) over two
// logit sets.
void Compare(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b,
             double* worst, double* worst_scaled) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t p = 0; p < a.size(); ++p) {
    ASSERT_EQ(a[p].size(), b[p].size());
    double scale = 1.0;
    for (float x : a[p]) scale = std::max(scale, std::fabs(double{x}));
    for (size_t v = 0; v < a[p].size(); ++v) {
      const double d = std::fabs(double{a[p][v]} - b[p][v]);
      *worst = std::max(*worst, d);
      *worst_scaled = std::max(*worst_scaled, d / scale);
    }
  }
}

int32_t Argmax(std::span<const float> row) {
  return static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
}

// A sequence as an engine would track it.
struct Seq {
  const GoldenCase* golden = nullptr;
  std::shared_ptr<const PeftAdapter> adapter;
  std::vector<int32_t> tokens;  // prompt, then generated
  int32_t cached = 0;           // tokens whose K/V are in the cache
  std::vector<int32_t> table;
  std::vector<std::vector<float>> prompt_logits;  // per prompt position
  std::vector<int32_t> generated;
  std::vector<std::vector<float>> decode_logits;  // logits that chose each generated token
  bool Done() const { return generated.size() >= 8; }
};

class LlamaModelTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    BackendOptions bo;
    bo.num_threads = 2;
    auto backend = CreateBackend(BackendKind::kCpu, bo);
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = std::move(backend).value().release();
  }
  static void TearDownTestSuite() {
    delete backend_;
    backend_ = nullptr;
  }

  void SetUp() override {
    dir_ = std::string(LORASERVE_TEST_DATA_DIR) + "/" + GetParam();
    LlamaModel::Options mo;
    mo.backend = backend_;
    mo.model_dir = dir_;
    mo.adapter_cache_bytes = adapter_cache_bytes_;
    auto model = LlamaModel::Create(mo);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(model).value();
    auto kv = KvCache::Create(KvCache::ForModel(backend_, model_->config(), kBlockTokens, 1024));
    ASSERT_TRUE(kv.ok()) << kv.status();
    kv_ = std::move(kv).value();
    goldens_ = LoadGoldens(dir_ + "/golden.json");
    ASSERT_FALSE(goldens_.empty());
  }

  std::shared_ptr<const PeftAdapter> Adapter(const std::string& name) {
    if (name.empty()) return nullptr;
    auto it = adapters_.find(name);
    if (it != adapters_.end()) return it->second;
    auto a = PeftAdapter::Load(dir_ + "/adapters/" + name, model_->config(), AdapterLoadOptions{});
    EXPECT_TRUE(a.ok()) << a.status();
    if (!a.ok()) return nullptr;
    std::shared_ptr<const PeftAdapter> shared = std::move(a).value();
    adapters_[name] = shared;
    return shared;
  }

  Seq NewSeq(const GoldenCase& g) {
    Seq s;
    s.golden = &g;
    s.adapter = Adapter(g.adapter);
    s.tokens = g.prompt;
    return s;
  }

  // One step: each (seq, n) feeds the next n tokens of its pending input
  // (prompt chunk, or the last generated token). Prompt chunks get all their
  // logits; when a step reaches the end of the input, the argmax is appended.
  void Step(const std::vector<std::pair<Seq*, int32_t>>& work) {
    ForwardBatch batch;
    for (auto [s, n] : work) {
      ASSERT_LE(s->cached + n, static_cast<int32_t>(s->tokens.size()));
      ASSERT_TRUE(kv_->Reserve(&s->table, s->cached + n).ok());
      SequenceStep st;
      st.tokens = std::span<const int32_t>(s->tokens).subspan(s->cached, n);
      st.num_cached = s->cached;
      st.block_table = s->table;
      st.adapter = s->adapter;
      if (lora_ != nullptr) st.adapter_id = PoolKey(s->adapter);
      st.all_logits = s->cached < static_cast<int32_t>(s->golden->prompt.size());
      batch.sequences.push_back(st);
    }
    batch.lora = lora_.get();
    ForwardOutput out;
    const absl::Status status = model_->Forward(batch, kv_->view(), &out);
    ASSERT_TRUE(status.ok()) << status;
    for (size_t i = 0; i < work.size(); ++i) {
      auto [s, n] = work[i];
      const bool all = batch.sequences[i].all_logits;
      ASSERT_GE(out.first_row[i], 0);
      for (int32_t k = 0; k < (all ? n : 1); ++k) {
        auto row = out.row(out.first_row[i] + k);
        if (all) s->prompt_logits.emplace_back(row.begin(), row.end());
      }
      s->cached += n;
      if (s->cached == static_cast<int32_t>(s->tokens.size())) {
        auto last = out.row(out.first_row[i] + (all ? n - 1 : 0));
        s->decode_logits.emplace_back(last.begin(), last.end());
        s->generated.push_back(Argmax(last));
        s->tokens.push_back(s->generated.back());
      }
    }
  }

  // Runs every sequence to 8 generated tokens: prompts in chunks of
  // `chunk` tokens (0 = whole prompt), all sequences in each step.
  void RunTogether(std::vector<Seq*> seqs, int32_t chunk) {
    for (int iter = 0; iter < 200; ++iter) {
      std::vector<std::pair<Seq*, int32_t>> work;
      for (Seq* s : seqs) {
        if (s->Done()) continue;
        const int32_t pending = static_cast<int32_t>(s->tokens.size()) - s->cached;
        work.emplace_back(s, chunk == 0 ? pending : std::min(chunk, pending));
      }
      if (work.empty()) return;
      Step(work);
      if (HasFatalFailure()) return;
    }
    FAIL() << "did not finish";
  }

  // Prompt logits within kGoldenTol of HF and the greedy ids exact.
  double ExpectMatchesGolden(const Seq& s) {
    const GoldenCase& g = *s.golden;
    double max_err = 0;
    EXPECT_EQ(s.prompt_logits.size(), g.logits.size()) << g.name;
    for (size_t p = 0; p < std::min(s.prompt_logits.size(), g.logits.size()); ++p) {
      EXPECT_EQ(s.prompt_logits[p].size(), g.logits[p].size());
      for (size_t v = 0; v < g.logits[p].size(); ++v) {
        const double err = std::fabs(double{s.prompt_logits[p][v]} - g.logits[p][v]);
        max_err = std::max(max_err, std::isfinite(err) ? err : 1e30);
      }
    }
    EXPECT_LT(max_err, kGoldenTol) << g.name << ": max |logit - HF| over the prompt";
    EXPECT_EQ(s.generated, g.greedy) << g.name << ": greedy continuation";
    return max_err;
  }

  void Release(std::vector<Seq>& seqs) {
    for (Seq& s : seqs) kv_->Release(&s.table);
  }

  // LoRA slices from a unified pool (the engine's path) instead of the
  // model's own row cache.
  void UsePool() {
    const ModelConfig& c = model_->config();
    PoolGeometry g;
    g.num_layers = c.num_hidden_layers;
    g.num_kv_heads = c.num_key_value_heads;
    g.head_dim = static_cast<int32_t>(c.head_dim);
    g.block_tokens = kBlockTokens;
    g.max_row_elems = std::max<int64_t>(
        {c.hidden_size, c.intermediate_size, int64_t{c.num_attention_heads} * c.head_dim});
    auto page = ComputePageBytes(g, backend_->elt_size());
    ASSERT_TRUE(page.ok()) << page.status();
    auto pool = UnifiedPool::Create({backend_, *page, *page * 1024});
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = std::move(pool).value();
    auto lora = EngineAdapterResidency::Create({pool_.get(), nullptr, 0});
    ASSERT_TRUE(lora.ok()) << lora.status();
    lora_ = std::move(lora).value();
  }
  // The pool key of `a` (0 = base), registered and made ready on first use.
  uint64_t PoolKey(const std::shared_ptr<const PeftAdapter>& a) {
    if (a == nullptr) return 0;
    auto [it, inserted] = pool_keys_.try_emplace(a.get(), pool_keys_.size() + 1);
    const uint64_t key = it->second;
    if (!inserted) return key;
    lora_->QueueHostCopy(key, a->path(), a);
    lora_->ApplyHostCopies();
    EXPECT_TRUE(lora_->Attach(key, key, a->path(), a->path(), true).ok());
    lora_->PinRequest(key);
    lora_->Prefetch({key});
    for (int i = 0; i < 5000 && !lora_->IsReady(key); ++i) {
      lora_->Poll();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    EXPECT_TRUE(lora_->IsReady(key)) << a->path();
    lora_->EndSchedule();  // IsReady's scheduling pins; the request pin stays
    return key;
  }

  static Backend* backend_;
  size_t adapter_cache_bytes_ = 0;
  std::unique_ptr<UnifiedPool> pool_;
  std::unique_ptr<EngineAdapterResidency> lora_;  // after pool_: destroyed first
  std::map<const PeftAdapter*, uint64_t> pool_keys_;
  std::string dir_;
  std::unique_ptr<LlamaModel> model_;
  std::unique_ptr<KvCache> kv_;
  std::vector<GoldenCase> goldens_;
  std::map<std::string, std::shared_ptr<const PeftAdapter>> adapters_;
};

Backend* LlamaModelTest::backend_ = nullptr;

TEST_P(LlamaModelTest, EachGoldenCaseAlone) {
  double worst = 0;
  for (const GoldenCase& g : goldens_) {
    std::vector<Seq> seqs = {NewSeq(g)};
    RunTogether({&seqs[0]}, 0);
    worst = std::max(worst, ExpectMatchesGolden(seqs[0]));
    Release(seqs);
  }
  std::cout << "[ golden ] " << GetParam() << ": " << goldens_.size()
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
  std::cout << "[ golden ] " << GetParam() << ": " << seqs.size()
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
  for (int iter = 0; iter < 300; ++iter) {
    std::vector<std::pair<Seq*, int32_t>> work;
    for (size_t i = 0; i < seqs.size(); ++i) {
      Seq& s = seqs[i];
      if (s.Done() || static_cast<int>(i) > iter) continue;  // sequence i joins at step i
      const int32_t pending = static_cast<int32_t>(s.tokens.size()) - s.cached;
      work.emplace_back(&s, std::min<int32_t>(static_cast<int32_t>(3 + i % 3), pending));
    }
    if (work.empty()) break;
    Step(work);
    ASSERT_FALSE(HasFatalFailure());
  }
  double worst = 0;
  for (const Seq& s : seqs) worst = std::max(worst, ExpectMatchesGolden(s));
  std::cout << "[ golden ] " << GetParam() << ": staggered chunks of 3-5, max |logit - HF| = "
            << worst << "\n";
  Release(seqs);
}

TEST_P(LlamaModelTest, MixedBatchEqualsEachSequenceAlone) {
  // Same computation alone and mixed: only summation order inside GEMMs may
  // differ, so the logits agree to 1e-5.
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
    ASSERT_EQ(alone[i].prompt_logits.size(), mixed[i].prompt_logits.size());
    ASSERT_EQ(alone[i].decode_logits.size(), mixed[i].decode_logits.size());
    Compare(alone[i].prompt_logits, mixed[i].prompt_logits, &worst, &worst_scaled);
    Compare(alone[i].decode_logits, mixed[i].decode_logits, &worst, &worst_scaled);
    EXPECT_EQ(alone[i].generated, mixed[i].generated) << goldens_[i].name;
  }
  EXPECT_LT(worst_scaled, kSameComputationTol);
  std::cout << "[ mixed  ] " << GetParam() << ": max |mixed - alone| = " << worst
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
    ASSERT_EQ(seqs[0].prompt_logits.size(), seqs[1].prompt_logits.size());
    double worst = 0, worst_scaled = 0;
    Compare(seqs[0].prompt_logits, seqs[1].prompt_logits, &worst, &worst_scaled);
    Compare(seqs[0].decode_logits, seqs[1].decode_logits, &worst, &worst_scaled);
    EXPECT_LT(worst_scaled, kSameComputationTol) << g.name << " (max abs " << worst << ")";
    EXPECT_EQ(seqs[0].generated, seqs[1].generated) << g.name;
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
  double err = 0;
  for (size_t v = 0; v < g.logits.back().size(); ++v) {
    err = std::max(err, std::fabs(double{out.row(0)[v]} - g.logits.back()[v]));
  }
  EXPECT_LT(err, kGoldenTol);
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
                         ::testing::Values("tiny-llama", "tiny-qwen2"));

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
  std::cout << "[ cache  ] " << GetParam() << ": " << model_->adapter_cache().rebuilds()
            << " rebuilds\n";
}

INSTANTIATE_TEST_SUITE_P(TinyLlama, LlamaModelSmallCacheTest, ::testing::Values("tiny-llama"));

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
