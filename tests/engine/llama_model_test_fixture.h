// The LlamaModel test fixture, parametrized over (fixture model, backend
// kind): the HF goldens of tests/data/<model>/golden.json, sequences stepped
// the way an engine steps them (prompt chunks, decodes, mixed adapters, the
// unified pool's LoRA slices), and comparisons at the backend's tolerance
// (backend_param.h ModelTolerance). Instances of a backend this machine
// cannot create skip. Used by llama_model_test.cc and
// llama_model_cross_backend_test.cc. Test-only.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "engine/adapters/peft_adapter.h"
#include "engine/engine_adapter_residency.h"
#include "engine/model/kv_cache.h"
#include "engine/model/llama_model.h"
#include "gtest/gtest.h"
#include "kernels/backend_factory.h"
#include "nlohmann/json.hpp"
#include "tests/engine/backend_param.h"

namespace loraserve::testing {

// The same sequence computed alone or in a batch, in one chunk or several,
// differs only by fp32 summation order on the CPU: OpenBLAS sgemm's result
// for a row depends on the number of rows M (on the dev machine rows differ
// bitwise from M = 7 on), so this is not bitwise. Rounding noise scales with
// the magnitude of the terms summed, so the bound is 1e-5 relative to the
// row's largest |logit| (at least 1). On CUDA a different M may pick another
// GEMM algorithm and flip bf16 roundings of the activations, which then
// propagate like any bf16 rounding: the bf16 tolerance applies there.
constexpr double kSameComputationTol = 1e-5;
constexpr int32_t kBlockTokens = 4;

struct GoldenCase {
  std::string name;
  std::string adapter;  // "" = base
  std::vector<int32_t> prompt;
  std::vector<std::vector<float>> logits;  // [prompt positions][vocab]
  std::vector<int32_t> greedy;
};

inline std::vector<GoldenCase> LoadGoldenCases(const std::string& path) {
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
inline void Compare(const std::vector<std::vector<float>>& a,
                    const std::vector<std::vector<float>>& b, double* worst, double* worst_scaled) {
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

// Every logit of `got` within `tol` of `ref` (rows paired); returns max
// |got - ref| (1e30 for a non-finite one).
inline double ExpectLogitsWithin(const std::vector<std::vector<float>>& ref,
                                 const std::vector<std::vector<float>>& got,
                                 const ModelTolerance& tol, const std::string& what) {
  EXPECT_EQ(ref.size(), got.size()) << what;
  double max_err = 0;
  int64_t bad = 0;
  std::string first_bad;
  for (size_t p = 0; p < std::min(ref.size(), got.size()); ++p) {
    EXPECT_EQ(ref[p].size(), got[p].size()) << what;
    for (size_t v = 0; v < std::min(ref[p].size(), got[p].size()); ++v) {
      const double err = std::fabs(double{got[p][v]} - ref[p][v]);
      max_err = std::max(max_err, std::isfinite(err) ? err : 1e30);
      if (!tol.Within(got[p][v], ref[p][v])) {
        if (bad++ == 0) {
          std::ostringstream os;
          os << "row " << p << " logit " << v << ": " << got[p][v] << " vs reference " << ref[p][v];
          first_bad = os.str();
        }
      }
    }
  }
  EXPECT_EQ(bad, 0) << what << ": logits outside |d| <= " << tol.atol << " + " << tol.rtol
                    << " * |ref| (max |d| " << max_err << "); first: " << first_bad;
  return max_err;
}

inline int32_t Argmax(std::span<const float> row) {
  return static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
}

// In `logits` (one row per generated step), the chosen (max) logit minus
// `token`'s at step k: the gap GreedyAgrees judges.
inline std::function<std::optional<double>(size_t, int32_t)> GapFromLogits(
    const std::vector<std::vector<float>>& logits) {
  return [&logits](size_t k, int32_t token) -> std::optional<double> {
    if (k >= logits.size() || token < 0 || static_cast<size_t>(token) >= logits[k].size()) {
      return std::nullopt;
    }
    const auto& row = logits[k];
    return double{*std::max_element(row.begin(), row.end())} - row[static_cast<size_t>(token)];
  };
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

using ModelParam = std::tuple<std::string, BackendKind>;

// "tiny_llama_cuda".
inline std::string ModelParamName(const ::testing::TestParamInfo<ModelParam>& info) {
  std::string name =
      std::get<0>(info.param) + "_" + std::string(BackendKindName(std::get<1>(info.param)));
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

class LlamaModelTest : public ::testing::TestWithParam<ModelParam> {
 protected:
  static void TearDownTestSuite() {
    for (auto& b : backends_) b.reset();
  }

  void SetUp() override {
    if (auto why = BackendUnavailable(kind())) GTEST_SKIP() << *why;
    dir_ = std::string(LORASERVE_TEST_DATA_DIR) + "/" + model_name();
    goldens_ = LoadGoldenCases(dir_ + "/golden.json");
    ASSERT_FALSE(goldens_.empty());
    Build(kind());
  }

  const std::string& model_name() const { return std::get<0>(GetParam()); }
  BackendKind kind() const { return std::get<1>(GetParam()); }
  ModelTolerance tolerance() const { return ToleranceFor(kind()); }
  // "tiny-llama/cuda", for logs.
  std::string label() const { return model_name() + "/" + std::string(BackendKindName(kind())); }

  // The backend of `kind`, shared by the suite's tests.
  static Backend* SharedBackend(BackendKind kind) {
    std::unique_ptr<Backend>& b = backends_[static_cast<int>(kind)];
    if (b == nullptr) {
      BackendOptions bo;
      bo.num_threads = 2;
      auto backend = CreateBackend(kind, bo);
      EXPECT_TRUE(backend.ok()) << backend.status();
      if (backend.ok()) b = std::move(backend).value();
    }
    return b.get();
  }

  // (Re)creates the model and KV cache on `kind`'s backend; drops the pool
  // (UsePool again for it). Sequences of the previous build must be released.
  void Build(BackendKind kind) {
    pool_keys_.clear();
    lora_.reset();
    pool_.reset();
    kv_.reset();
    model_.reset();
    backend_ = SharedBackend(kind);
    ASSERT_NE(backend_, nullptr);
    LlamaModel::Options mo;
    mo.backend = backend_;
    mo.model_dir = dir_;
    mo.adapter_cache_bytes = adapter_cache_bytes_;
    mo.graphs = graph_mode_;
    mo.max_graph_batch = max_graph_batch_;
    auto model = LlamaModel::Create(mo);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(model).value();
    auto kv = KvCache::Create(KvCache::ForModel(backend_, model_->config(), kBlockTokens, 1024));
    ASSERT_TRUE(kv.ok()) << kv.status();
    kv_ = std::move(kv).value();
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

  // A scheduler-like mix: sequence i joins at step i and prefills in chunks
  // of 3-5 while the others decode, so every step mixes prefill chunks,
  // decodes and adapters.
  void RunStaggered(std::vector<Seq>& seqs) {
    for (int iter = 0; iter < 300; ++iter) {
      std::vector<std::pair<Seq*, int32_t>> work;
      for (size_t i = 0; i < seqs.size(); ++i) {
        Seq& s = seqs[i];
        if (s.Done() || static_cast<int>(i) > iter) continue;
        const int32_t pending = static_cast<int32_t>(s.tokens.size()) - s.cached;
        work.emplace_back(&s, std::min<int32_t>(static_cast<int32_t>(3 + i % 3), pending));
      }
      if (work.empty()) return;
      Step(work);
      if (HasFatalFailure()) return;
    }
    FAIL() << "did not finish";
  }

  // Prompt logits within the backend's tolerance of HF; where the tolerance
  // allows near ties to flip, the argmax equals HF's wherever HF's top-2
  // margin exceeds tie_margin; the greedy ids equal HF's (up to a flipped
  // near tie). Returns max |logit - HF|.
  double ExpectMatchesGolden(const Seq& s) {
    const GoldenCase& g = *s.golden;
    const ModelTolerance tol = tolerance();
    const double max_err = ExpectLogitsWithin(g.logits, s.prompt_logits, tol,
                                              g.name + ": logits vs HF over the prompt");
    if (tol.tie_margin > 0) {
      for (size_t p = 0; p < std::min(s.prompt_logits.size(), g.logits.size()); ++p) {
        float top = -INFINITY, second = -INFINITY;
        for (float x : g.logits[p]) {
          if (x > top) {
            second = top;
            top = x;
          } else if (x > second) {
            second = x;
          }
        }
        if (top - second <= tol.tie_margin) continue;
        EXPECT_EQ(Argmax(s.prompt_logits[p]), Argmax(g.logits[p]))
            << g.name << " position " << p << ": HF top-2 margin " << top - second;
      }
    }
    EXPECT_TRUE(GreedyAgrees(s.generated, g.greedy, tol.tie_margin, GapFromLogits(s.decode_logits)))
        << g.name << ": greedy continuation";
    return max_err;
  }

  // `got` computed the same as `ref` (alone vs batched, chunked vs one-shot):
  // on the CPU within kSameComputationTol relative to the row (checked by the
  // caller on *worst_scaled) and the same greedy ids; on CUDA within the bf16
  // tolerance and the same greedy ids up to a flipped near tie, after which
  // the decode logits are not compared.
  void ExpectSameComputation(const Seq& ref, const Seq& got, double* worst, double* worst_scaled) {
    const std::string& name = ref.golden->name;
    const ModelTolerance tol = tolerance();
    ASSERT_EQ(ref.prompt_logits.size(), got.prompt_logits.size()) << name;
    ASSERT_EQ(ref.decode_logits.size(), got.decode_logits.size()) << name;
    size_t same = 0;
    EXPECT_TRUE(GreedyAgrees(got.generated, ref.generated, tol.tie_margin,
                             GapFromLogits(got.decode_logits), &same))
        << name;
    const size_t compared = std::min(got.decode_logits.size(), same + 1);
    const std::vector<std::vector<float>> ref_decode(ref.decode_logits.begin(),
                                                     ref.decode_logits.begin() + compared);
    const std::vector<std::vector<float>> got_decode(got.decode_logits.begin(),
                                                     got.decode_logits.begin() + compared);
    Compare(ref.prompt_logits, got.prompt_logits, worst, worst_scaled);
    Compare(ref_decode, got_decode, worst, worst_scaled);
    if (kind() != BackendKind::kCpu) {
      ExpectLogitsWithin(ref.prompt_logits, got.prompt_logits, tol, name + " prompt");
      ExpectLogitsWithin(ref_decode, got_decode, tol, name + " decode");
    }
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

  // One per BackendKind, created on first use, destroyed after the suite.
  static inline std::unique_ptr<Backend> backends_[2];
  Backend* backend_ = nullptr;
  size_t adapter_cache_bytes_ = 0;
  // kAuto: decode graphs on CUDA only, as in production.
  LlamaModel::GraphMode graph_mode_ = LlamaModel::GraphMode::kAuto;
  int32_t max_graph_batch_ = 256;
  std::unique_ptr<UnifiedPool> pool_;
  std::unique_ptr<EngineAdapterResidency> lora_;  // after pool_: destroyed first
  std::map<const PeftAdapter*, uint64_t> pool_keys_;
  std::string dir_;
  std::unique_ptr<LlamaModel> model_;
  std::unique_ptr<KvCache> kv_;
  std::vector<GoldenCase> goldens_;
  std::map<std::string, std::shared_ptr<const PeftAdapter>> adapters_;
};

}  // namespace loraserve::testing
