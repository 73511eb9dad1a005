// ModelWeights::CreateRandom on the fixture models' configs (tiny-llama:
// untied lm_head; tiny-qwen2: q/k/v biases, tied embeddings), on every
// backend kind: the same seed gives the same weights and another seed other
// ones; norms are exactly 1, biases exactly 0, matrices inside [-a, a] with
// a = sqrt(3) * 0.02; each tensor is FillRandom of its documented seed
// CounterHash(seed, tensor index), so no two tensors are equal; the buffers
// have exactly the sizes Create gives from the fixture's safetensors.
#include <cmath>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "engine/model/model_config.h"
#include "engine/model/model_weights.h"
#include "engine/model/safetensors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/counter_random.h"
#include "tests/engine/backend_param.h"

namespace loraserve {
namespace {

using ::loraserve::testing::BackendUnavailable;
using ::testing::HasSubstr;

enum class Kind { kMatrix, kNorm, kBias };

struct Tensor {
  std::string name;
  const void* data;
  int64_t numel;
  Kind kind;
};

// Every buffer of `w` (fused ones as one entry), in CreateRandom's order.
std::vector<Tensor> Tensors(const ModelWeights& w, const ModelConfig& c) {
  const int64_t h = c.hidden_size, inter = c.intermediate_size;
  const int64_t q_out = int64_t{c.num_attention_heads} * c.head_dim;
  const int64_t qkv = q_out + 2 * int64_t{c.num_key_value_heads} * c.head_dim;
  std::vector<Tensor> t;
  t.push_back({"embed", w.embed(), c.vocab_size * h, Kind::kMatrix});
  for (int l = 0; l < w.num_layers(); ++l) {
    const LayerWeights& lw = w.layer(l);
    const std::string p = "layer" + std::to_string(l) + ".";
    auto add = [&](const char* name, const DeviceBuffer& b, int64_t numel, Kind kind) {
      if (!b.empty()) t.push_back({p + name, b.data(), numel, kind});
    };
    add("qkv", lw.qkv, qkv * h, Kind::kMatrix);
    add("qkv_bias", lw.qkv_bias, qkv, Kind::kBias);
    add("o", lw.o, h * q_out, Kind::kMatrix);
    add("o_bias", lw.o_bias, h, Kind::kBias);
    add("gate_up", lw.gate_up, 2 * inter * h, Kind::kMatrix);
    add("gate_up_bias", lw.gate_up_bias, 2 * inter, Kind::kBias);
    add("down", lw.down, h * inter, Kind::kMatrix);
    add("down_bias", lw.down_bias, h, Kind::kBias);
    add("input_norm", lw.input_norm, h, Kind::kNorm);
    add("post_attn_norm", lw.post_attn_norm, h, Kind::kNorm);
  }
  t.push_back({"final_norm", w.final_norm(), h, Kind::kNorm});
  if (!c.tie_word_embeddings) t.push_back({"lm_head", w.lm_head(), c.vocab_size * h, Kind::kMatrix});
  return t;
}

class ModelWeightsRandomTest
    : public ::testing::TestWithParam<std::tuple<std::string, BackendKind>> {
 protected:
  void SetUp() override {
    if (auto why = BackendUnavailable(kind())) GTEST_SKIP() << *why;
    BackendOptions o;
    o.num_threads = 2;
    auto backend = CreateBackend(kind(), o);
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = std::move(backend).value();
    auto config = ModelConfig::Load(dir());
    ASSERT_TRUE(config.ok()) << config.status();
    config_ = *config;
  }

  BackendKind kind() const { return std::get<1>(GetParam()); }
  std::string dir() const {
    return std::string(LORASERVE_TEST_DATA_DIR) + "/" + std::get<0>(GetParam());
  }

  std::unique_ptr<ModelWeights> Make(uint64_t seed) {
    ModelWeights::RandomOptions o;
    o.backend = backend_.get();
    o.config = &config_;
    o.seed = seed;
    auto w = ModelWeights::CreateRandom(o);
    EXPECT_TRUE(w.ok()) << w.status();
    return w.ok() ? std::move(w).value() : nullptr;
  }

  std::vector<Tensor> All(const ModelWeights& w) { return Tensors(w, config_); }

  std::vector<float> Get(const void* data, int64_t n) {
    std::vector<float> out(static_cast<size_t>(n));
    EXPECT_TRUE(backend_->DownloadToF32(data, n, out.data()).ok());
    return out;
  }

  std::unique_ptr<Backend> backend_;
  ModelConfig config_;
};

TEST_P(ModelWeightsRandomTest, SameSeedSameWeightsOtherSeedOtherWeights) {
  auto a = Make(7);
  auto b = Make(7);
  auto c = Make(8);
  ASSERT_TRUE(a && b && c);
  const std::vector<Tensor> ta = All(*a), tb = All(*b), tc = All(*c);
  ASSERT_EQ(ta.size(), tb.size());
  for (size_t i = 0; i < ta.size(); ++i) {
    const std::vector<float> va = Get(ta[i].data, ta[i].numel);
    EXPECT_EQ(va, Get(tb[i].data, tb[i].numel)) << ta[i].name;
    if (ta[i].kind == Kind::kMatrix) {
      EXPECT_NE(va, Get(tc[i].data, tc[i].numel)) << ta[i].name;
    }
  }
}

TEST_P(ModelWeightsRandomTest, NormsAreOneBiasesZeroMatricesInsideTheBound) {
  auto w = Make(3);
  ASSERT_TRUE(w);
  const float a = std::sqrt(3.0f) * 0.02f;
  bool saw_bias = false;
  for (const Tensor& t : All(*w)) {
    const std::vector<float> v = Get(t.data, t.numel);
    double sum_sq = 0;
    for (float x : v) {
      if (t.kind == Kind::kNorm) {
        ASSERT_EQ(x, 1.0f) << t.name;
      }
      if (t.kind == Kind::kBias) {
        ASSERT_EQ(x, 0.0f) << t.name;
      }
      if (t.kind == Kind::kMatrix) {
        ASSERT_GE(x, -a) << t.name;
        ASSERT_LE(x, a) << t.name;  // bf16 rounding may reach a
      }
      sum_sq += double(x) * x;
    }
    saw_bias = saw_bias || t.kind == Kind::kBias;
    if (t.kind == Kind::kMatrix) {
      EXPECT_NEAR(std::sqrt(sum_sq / double(v.size())), 0.02, 0.002) << t.name;
    }
  }
  EXPECT_EQ(saw_bias, config_.qkv_bias || config_.o_bias || config_.mlp_bias);
}

TEST_P(ModelWeightsRandomTest, EachTensorIsFillRandomOfItsDocumentedSeed) {
  const uint64_t seed = 11;
  auto w = Make(seed);
  ASSERT_TRUE(w);
  const float a = std::sqrt(3.0f) * 0.02f;
  const int64_t h = config_.hidden_size;
  auto expect_fill = [&](const void* got, int64_t n, uint64_t index, const std::string& what) {
    auto buf = backend_->Allocate(static_cast<size_t>(n) * backend_->elt_size());
    ASSERT_TRUE(buf.ok());
    ASSERT_TRUE(backend_->FillRandom(buf->data(), n, CounterHash(seed, index), -a, a, {}).ok());
    EXPECT_EQ(Get(got, n), Get(buf->data(), n)) << what;
  };
  // Index 0: embed_tokens; 1, 2, 3: layer 0's q, k, v (rows of the fused qkv).
  expect_fill(w->embed(), config_.vocab_size * h, 0, "embed_tokens");
  const int64_t q_rows = int64_t{config_.num_attention_heads} * config_.head_dim;
  const int64_t kv_rows = int64_t{config_.num_key_value_heads} * config_.head_dim;
  const auto* qkv = static_cast<const char*>(w->layer(0).qkv.data());
  const size_t elt = backend_->elt_size();
  expect_fill(qkv, q_rows * h, 1, "q_proj");
  expect_fill(qkv + q_rows * h * elt, kv_rows * h, 2, "k_proj");
  expect_fill(qkv + (q_rows + kv_rows) * h * elt, kv_rows * h, 3, "v_proj");

  // No two matrices start alike.
  const std::vector<Tensor> all = All(*w);
  std::vector<std::vector<float>> heads;
  for (const Tensor& t : all) {
    if (t.kind == Kind::kMatrix) heads.push_back(Get(t.data, 64));
  }
  for (size_t i = 0; i < heads.size(); ++i) {
    for (size_t j = i + 1; j < heads.size(); ++j) EXPECT_NE(heads[i], heads[j]) << i << " " << j;
  }
}

TEST_P(ModelWeightsRandomTest, LayoutMatchesCreateFromTheSafetensors) {
  auto random = Make(1);
  ASSERT_TRUE(random);
  auto tensors = SafetensorsBundle::OpenDir(dir());
  ASSERT_TRUE(tensors.ok()) << tensors.status();
  ModelWeights::Options o;
  o.backend = backend_.get();
  o.config = &config_;
  o.tensors = tensors->get();
  auto loaded = ModelWeights::Create(o);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(random->bytes(), (*loaded)->bytes());
  ASSERT_EQ(random->num_layers(), (*loaded)->num_layers());
  for (int l = 0; l < random->num_layers(); ++l) {
    const LayerWeights& r = random->layer(l);
    const LayerWeights& s = (*loaded)->layer(l);
    EXPECT_EQ(r.qkv.size(), s.qkv.size());
    EXPECT_EQ(r.qkv_bias.size(), s.qkv_bias.size());
    EXPECT_EQ(r.o.size(), s.o.size());
    EXPECT_EQ(r.o_bias.size(), s.o_bias.size());
    EXPECT_EQ(r.gate_up.size(), s.gate_up.size());
    EXPECT_EQ(r.gate_up_bias.size(), s.gate_up_bias.size());
    EXPECT_EQ(r.down.size(), s.down.size());
    EXPECT_EQ(r.down_bias.size(), s.down_bias.size());
    EXPECT_EQ(r.input_norm.size(), s.input_norm.size());
    EXPECT_EQ(r.post_attn_norm.size(), s.post_attn_norm.size());
  }
  EXPECT_EQ(random->lm_head() == random->embed(), config_.tie_word_embeddings);
}

TEST_P(ModelWeightsRandomTest, BadOptionsAreRefused) {
  ModelWeights::RandomOptions o;
  o.config = &config_;
  EXPECT_EQ(ModelWeights::CreateRandom(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.backend = backend_.get();
  for (float bad : {0.0f, -0.02f, NAN, INFINITY}) {
    o.init_std = bad;
    const absl::Status s = ModelWeights::CreateRandom(o).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(s.message()), HasSubstr("init_std")) << s;
  }
}

INSTANTIATE_TEST_SUITE_P(
    TinyModels, ModelWeightsRandomTest,
    ::testing::Combine(::testing::Values("tiny-llama", "tiny-qwen2"),
                       ::testing::ValuesIn(::loraserve::testing::AllBackendKinds())),
    [](const auto& info) {
      std::string name = std::get<0>(info.param) + "_" +
                         std::string(BackendKindName(std::get<1>(info.param)));
      for (char& ch : name) {
        if (ch == '-') ch = '_';
      }
      return name;
    });

}  // namespace
}  // namespace loraserve
