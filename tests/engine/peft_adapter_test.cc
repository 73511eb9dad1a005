#include "engine/adapters/peft_adapter.h"

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "engine/model/safetensors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/engine/peft_test_util.h"
#include "tests/engine/safetensors_writer.h"

namespace loraserve {
namespace {

using ::loraserve::testutil::AdapterBuilder;
using ::loraserve::testutil::ExpectWeights;
using ::loraserve::testutil::kDown;
using ::loraserve::testutil::kGate;
using ::loraserve::testutil::kK;
using ::loraserve::testutil::kO;
using ::loraserve::testutil::kQ;
using ::loraserve::testutil::kUp;
using ::loraserve::testutil::kV;
using ::loraserve::testutil::Msg;
using ::loraserve::testutil::SmallBase;
using ::loraserve::testutil::TempDir;
using ::loraserve::testutil::TensorName;
using ::loraserve::testutil::WriteStringToFile;
using ::loraserve::testutil::Written;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Json = nlohmann::ordered_json;

TEST(PeftAdapter, LoadsValuesAndTransposesB) {
  TempDir tmp;
  const ModelConfig base = SmallBase();
  AdapterBuilder b(tmp, "a", base);
  const Written q0 = b.Add(0, kQ, 8);
  const Written v0 = b.Add(0, kV, 8, "F16");
  const Written q1 = b.Add(1, kQ, 8);
  const Written v1 = b.Add(1, kV, 8, "BF16");
  absl::StatusOr<std::unique_ptr<PeftAdapter>> ad = b.Load();
  ASSERT_TRUE(ad.ok()) << ad.status();
  const PeftAdapter& a = **ad;
  EXPECT_EQ(a.num_layers(), 2);
  EXPECT_EQ(a.path(), b.dir());
  ExpectWeights(a.module(0, kQ), q0, 8, 64, 64);
  ExpectWeights(a.module(0, kV), v0, 8, 64, 32);
  ExpectWeights(a.module(1, kQ), q1, 8, 64, 64);
  ExpectWeights(a.module(1, kV), v1, 8, 64, 32);
  EXPECT_FLOAT_EQ(a.module(0, kQ).scale, 2.0f);  // 16 / 8
  EXPECT_FLOAT_EQ(a.module(1, kV).scale, 2.0f);
  for (LoraModule m : {kK, kO, kGate, kUp, kDown}) {
    EXPECT_TRUE(a.module(0, m).empty());
    EXPECT_TRUE(a.module(1, m).a.empty());
  }
  EXPECT_THAT(a.ranks(), ElementsAre(8));
  EXPECT_EQ(a.max_rank(), 8);
  EXPECT_THAT(a.target_modules(), ElementsAre(kQ, kV));
  EXPECT_EQ(a.num_lora_modules(), 4);
  EXPECT_EQ(a.bytes(), 4u * (2 * (8 * 64 + 8 * 64) + 2 * (8 * 64 + 8 * 32)));
  EXPECT_FLOAT_EQ(a.max_scale(), 2.0f);
}

TEST(PeftAdapter, DefaultAdapterNameInTensorNames) {
  TempDir tmp;
  const ModelConfig base = SmallBase();
  AdapterBuilder b(tmp, "a", base);
  const Written q0 = b.Add(0, kQ, 8, "F32", ".default");
  b.Add(0, kV, 8, "F32", ".default");
  b.Add(1, kQ, 8);
  b.Add(1, kV, 8);
  absl::StatusOr<std::unique_ptr<PeftAdapter>> ad = b.Load();
  ASSERT_TRUE(ad.ok()) << ad.status();
  ExpectWeights((*ad)->module(0, kQ), q0, 8, 64, 64);
}

TEST(PeftAdapter, ScaleIsAlphaOverRankOrOverSqrtRankWithRsLora) {
  TempDir tmp;
  const ModelConfig base = SmallBase();
  for (bool rslora : {false, true}) {
    AdapterBuilder b(tmp, rslora ? "rs" : "plain", base);
    b.config()["r"] = 4;
    b.config()["lora_alpha"] = 8;
    b.config()["use_rslora"] = rslora;
    b.AddAllLayers(kQ, 4);
    b.AddAllLayers(kV, 4);
    absl::StatusOr<std::unique_ptr<PeftAdapter>> ad = b.Load();
    ASSERT_TRUE(ad.ok()) << ad.status();
    EXPECT_FLOAT_EQ((*ad)->module(1, kV).scale, rslora ? 4.0f : 2.0f);  // 8/sqrt(4) vs 8/4
  }
}

TEST(PeftAdapter, RankAndAlphaPatterns) {
  TempDir tmp;
  const ModelConfig base = SmallBase();
  AdapterBuilder b(tmp, "a", base);
  b.config()["rank_pattern"] = Json::parse(R"({"q_proj": 4, "layers.1.self_attn.v_proj": 2})");
  b.config()["alpha_pattern"] = Json::parse(R"({"v_proj": 32})");
  b.Add(0, kQ, 4);
  b.Add(1, kQ, 4);
  b.Add(0, kV, 8);
  b.Add(1, kV, 2);
  absl::StatusOr<std::unique_ptr<PeftAdapter>> ad = b.Load();
  ASSERT_TRUE(ad.ok()) << ad.status();
  const PeftAdapter& a = **ad;
  EXPECT_EQ(a.module(0, kQ).rank, 4);
  EXPECT_EQ(a.module(1, kQ).rank, 4);
  EXPECT_EQ(a.module(0, kV).rank, 8);
  EXPECT_EQ(a.module(1, kV).rank, 2);
  EXPECT_FLOAT_EQ(a.module(0, kQ).scale, 4.0f);   // 16 / 4
  EXPECT_FLOAT_EQ(a.module(0, kV).scale, 4.0f);   // 32 / 8
  EXPECT_FLOAT_EQ(a.module(1, kV).scale, 16.0f);  // 32 / 2
  EXPECT_THAT(a.ranks(), ElementsAre(2, 4, 8));
  EXPECT_FLOAT_EQ(a.max_scale(), 16.0f);
}

TEST(PeftAdapter, FirstMatchingPatternKeyInFileOrderWins) {
  TempDir tmp;
  const ModelConfig base = SmallBase();
  // Specific key first: layer 0 gets 2, layer 1 the generic 4.
  {
    AdapterBuilder b(tmp, "specific_first", base);
    b.config()["target_modules"] = Json::array({"q_proj"});
    b.config()["rank_pattern"] = Json::parse(R"({"layers.0.self_attn.q_proj": 2, "q_proj": 4})");
    b.Add(0, kQ, 2);
    b.Add(1, kQ, 4);
    absl::StatusOr<std::unique_ptr<PeftAdapter>> ad = b.Load();
    ASSERT_TRUE(ad.ok()) << ad.status();
    EXPECT_EQ((*ad)->module(0, kQ).rank, 2);
    EXPECT_EQ((*ad)->module(1, kQ).rank, 4);
  }
  // Generic key first (and alphabetically last): it wins everywhere. A reader
  // that sorted the keys would give layer 0 rank 2.
  {
    AdapterBuilder b(tmp, "generic_first", base);
    b.config()["target_modules"] = Json::array({"q_proj"});
    b.config()["rank_pattern"] = Json::parse(R"({"q_proj": 4, "layers.0.self_attn.q_proj": 2})");
    b.Add(0, kQ, 4);
    b.Add(1, kQ, 4);
    absl::StatusOr<std::unique_ptr<PeftAdapter>> ad = b.Load();
    ASSERT_TRUE(ad.ok()) << ad.status();
    EXPECT_EQ((*ad)->module(0, kQ).rank, 4);
    EXPECT_EQ((*ad)->module(1, kQ).rank, 4);
  }
}

TEST(PeftAdapter, PatternKeysMatchWholeDottedSuffixesOnly) {
  // 12 layers so that "layers.10" exists. Under PEFT's rule "(.*\.)?(key)$":
  //   "attn.q_proj"        matches nothing ("self_attn" is not "attn");
  //   "0.self_attn.q_proj" matches layer 0 only, not layer 10;
  //   "layers.1.self_attn.q_proj" matches layer 1 only, not 10 or 11.
  // A substring/search match would give rank 3 everywhere (first key).
  TempDir tmp;
  const ModelConfig base = SmallBase(12);
  AdapterBuilder b(tmp, "a", base);
  b.config()["r"] = 4;
  b.config()["target_modules"] = Json::array({"q_proj"});
  b.config()["rank_pattern"] =
      Json::parse(R"({"attn.q_proj": 3, "0.self_attn.q_proj": 2, "layers.1.self_attn.q_proj": 5})");
  b.config()["alpha_pattern"] = Json::parse(R"({"q_proj": 8})");
  std::map<int, int> want;
  for (int l = 0; l < 12; ++l) want[l] = 4;
  want[0] = 2;
  want[1] = 5;
  for (int l = 0; l < 12; ++l) b.Add(l, kQ, want[l]);
  absl::StatusOr<std::unique_ptr<PeftAdapter>> ad = b.Load();
  ASSERT_TRUE(ad.ok()) << ad.status();
  for (int l = 0; l < 12; ++l) {
    SCOPED_TRACE(l);
    EXPECT_EQ((*ad)->module(l, kQ).rank, want[l]);
    EXPECT_FLOAT_EQ((*ad)->module(l, kQ).scale, 8.0f / static_cast<float>(want[l]));
  }
}

TEST(PeftAdapter, LayersToTransform) {
  TempDir tmp;
  const ModelConfig base = SmallBase();
  {
    AdapterBuilder b(tmp, "list", base);
    b.config()["layers_to_transform"] = Json::array({1});
    b.Add(1, kQ, 8);
    b.Add(1, kV, 8);
    absl::StatusOr<std::unique_ptr<PeftAdapter>> ad = b.Load();
    ASSERT_TRUE(ad.ok()) << ad.status();
    EXPECT_TRUE((*ad)->module(0, kQ).empty());
    EXPECT_EQ((*ad)->module(1, kQ).rank, 8);
    EXPECT_EQ((*ad)->num_lora_modules(), 2);
  }
  {
    AdapterBuilder b(tmp, "int_with_pattern", base);
    b.config()["layers_to_transform"] = 0;
    b.config()["layers_pattern"] = "layers";
    b.Add(0, kQ, 8);
    b.Add(0, kV, 8);
    absl::StatusOr<std::unique_ptr<PeftAdapter>> ad = b.Load();
    ASSERT_TRUE(ad.ok()) << ad.status();
    EXPECT_EQ((*ad)->module(0, kV).rank, 8);
    EXPECT_TRUE((*ad)->module(1, kV).empty());
  }
  {
    // A layer outside layers_to_transform present in the file is refused.
    AdapterBuilder b(tmp, "extra_layer", base);
    b.config()["layers_to_transform"] = Json::array({1});
    b.AddAllLayers(kQ, 8);
    b.AddAllLayers(kV, 8);
    absl::StatusOr<std::unique_ptr<PeftAdapter>> ad = b.Load();
    EXPECT_EQ(ad.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Msg(ad.status()), HasSubstr("model.layers.0.self_attn.q_proj is not targeted"));
  }
}

TEST(PeftAdapter, TargetModulesRegexString) {
  TempDir tmp;
  const ModelConfig base = SmallBase();
  AdapterBuilder b(tmp, "a", base);
  b.config()["target_modules"] = R"(model\.layers\.1\.self_attn\.(k|v)_proj)";
  b.Add(1, kK, 8);
  const Written v1 = b.Add(1, kV, 8);
  absl::StatusOr<std::unique_ptr<PeftAdapter>> ad = b.Load();
  ASSERT_TRUE(ad.ok()) << ad.status();
  EXPECT_THAT((*ad)->target_modules(), ElementsAre(kK, kV));
  EXPECT_TRUE((*ad)->module(0, kK).empty());
  ExpectWeights((*ad)->module(1, kV), v1, 8, 64, 32);
  EXPECT_EQ((*ad)->num_lora_modules(), 2);
}

TEST(PeftAdapter, AllLinearAndExcludeModules) {
  TempDir tmp;
  const ModelConfig base = SmallBase();
  {
    AdapterBuilder b(tmp, "all", base);
    b.config()["target_modules"] = "all-linear";
    for (LoraModule m : kAllLoraModules) b.AddAllLayers(m, 8);
    absl::StatusOr<std::unique_ptr<PeftAdapter>> ad = b.Load();
    ASSERT_TRUE(ad.ok()) << ad.status();
    EXPECT_EQ((*ad)->num_lora_modules(), 14);
    EXPECT_THAT((*ad)->target_modules(), ElementsAre(kQ, kK, kV, kO, kGate, kUp, kDown));
    EXPECT_EQ((*ad)->module(1, kDown).in, 160);
    EXPECT_EQ((*ad)->module(1, kDown).out, 64);
  }
  {
    AdapterBuilder b(tmp, "excl", base);
    b.config()["target_modules"] = "all-linear";
    b.config()["exclude_modules"] = Json::array({"down_proj", "o_proj"});
    for (LoraModule m : {kQ, kK, kV, kGate, kUp}) b.AddAllLayers(m, 8);
    absl::StatusOr<std::unique_ptr<PeftAdapter>> ad = b.Load();
    ASSERT_TRUE(ad.ok()) << ad.status();
    EXPECT_THAT((*ad)->target_modules(), ElementsAre(kQ, kK, kV, kGate, kUp));
  }
}

// ---------------------------------------------------------------------------
// Adapters made by the peft library itself (scripts/fixtures/make_tiny_models.py).

struct FixtureExpectation {
  std::string model;
  std::string adapter;
  // (layer, module) -> (rank, scale); every other pair must be empty.
  std::map<std::pair<int, LoraModule>, std::pair<int, float>> modules;
};

std::map<std::pair<int, LoraModule>, std::pair<int, float>> Both(
    std::initializer_list<LoraModule> ms, int rank, float scale) {
  std::map<std::pair<int, LoraModule>, std::pair<int, float>> out;
  for (int l = 0; l < 2; ++l) {
    for (LoraModule m : ms) out[{l, m}] = {rank, scale};
  }
  return out;
}

std::vector<FixtureExpectation> FixtureExpectations() {
  std::vector<FixtureExpectation> v;
  v.push_back({"tiny-llama", "r8_all", Both({kQ, kK, kV, kO, kGate, kUp, kDown}, 8, 2.0f)});
  v.push_back({"tiny-llama", "r16_rslora_attn", Both({kQ, kK, kV, kO}, 16, 2.0f)});  // 8/sqrt(16)
  v.push_back({"tiny-llama", "r2_regex", Both({kK, kUp}, 2, 2.0f)});                 // 4/2
  {
    // r 4, alpha 8; rank_pattern {down_proj: 2, layers.1.self_attn.q_proj: 12};
    // alpha_pattern {v_proj: 32}.
    FixtureExpectation e{"tiny-llama", "r4_patterns", Both({kV}, 4, 8.0f)};
    e.modules[{0, kQ}] = {4, 2.0f};
    e.modules[{1, kQ}] = {12, 8.0f / 12.0f};
    e.modules[{0, kDown}] = {2, 4.0f};
    e.modules[{1, kDown}] = {2, 4.0f};
    v.push_back(e);
  }
  {
    FixtureExpectation e{"tiny-llama", "r64_mlp_layer1_bf16", {}};
    for (LoraModule m : {kGate, kUp, kDown}) e.modules[{1, m}] = {64, 0.5f};  // 32/64, layer 1 only
    v.push_back(e);
  }
  v.push_back({"tiny-qwen2", "r8_qvo", Both({kQ, kV, kO, kDown}, 8, 2.0f)});
  return v;
}

TEST(PeftAdapter, LoadsEveryPeftMadeFixture) {
  const std::string data = LORASERVE_TEST_DATA_DIR;
  int checked = 0;
  for (const FixtureExpectation& e : FixtureExpectations()) {
    SCOPED_TRACE(e.model + "/" + e.adapter);
    absl::StatusOr<ModelConfig> base = ModelConfig::Load(data + "/" + e.model);
    ASSERT_TRUE(base.ok()) << base.status();
    const std::string dir = data + "/" + e.model + "/adapters/" + e.adapter;
    absl::StatusOr<std::unique_ptr<PeftAdapter>> ad = PeftAdapter::Load(dir, *base, {});
    ASSERT_TRUE(ad.ok()) << ad.status();
    for (int l = 0; l < base->num_hidden_layers; ++l) {
      for (LoraModule m : kAllLoraModules) {
        const LoraModuleWeights& w = (*ad)->module(l, m);
        auto it = e.modules.find({l, m});
        if (it == e.modules.end()) {
          EXPECT_TRUE(w.empty()) << l << " " << LoraModuleName(m);
          continue;
        }
        EXPECT_EQ(w.rank, it->second.first) << l << " " << LoraModuleName(m);
        EXPECT_FLOAT_EQ(w.scale, it->second.second) << l << " " << LoraModuleName(m);
      }
    }
    // One module's values against the file, read independently.
    const auto& [key, rs] = *e.modules.rbegin();
    absl::StatusOr<std::unique_ptr<SafetensorsFile>> f =
        SafetensorsFile::Open(dir + "/adapter_model.safetensors");
    ASSERT_TRUE(f.ok()) << f.status();
    const TensorView* ta = (*f)->Find(TensorName(key.first, key.second, 'A'));
    const TensorView* tb = (*f)->Find(TensorName(key.first, key.second, 'B'));
    ASSERT_NE(ta, nullptr);
    ASSERT_NE(tb, nullptr);
    const ProjShape shape = ModuleShape(*base, key.second);
    Written src{*ToF32(*ta), *ToF32(*tb)};
    ExpectWeights((*ad)->module(key.first, key.second), src, rs.first, shape.in, shape.out);
    // PEFT initialises B to zero; the fixtures must have trained / randomised B
    // for the comparison above to mean anything.
    bool nonzero = false;
    for (float x : src.b) nonzero = nonzero || x != 0.0f;
    EXPECT_TRUE(nonzero);
    ++checked;
  }
  // Every adapter directory present is covered by an expectation above.
  for (const char* model : {"tiny-llama", "tiny-qwen2"}) {
    for (const auto& entry :
         std::filesystem::directory_iterator(data + "/" + model + "/adapters")) {
      bool known = false;
      for (const FixtureExpectation& e : FixtureExpectations()) {
        known = known || (e.model == model && e.adapter == entry.path().filename().string());
      }
      EXPECT_TRUE(known) << "fixture without expectations: " << entry.path();
    }
  }
  EXPECT_EQ(checked, 6);
}

}  // namespace
}  // namespace loraserve
