// Tests bench/tools/adapter_set.cc: the generated PEFT directories load with
// our loader at the drawn ranks, shapes, modules and scale; output is a
// function of the seed; ranks are drawn uniformly; --distinct-weights makes
// hard links; bad options are refused naming the flag.
#include "bench/tools/adapter_set.h"

#include <sys/stat.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "engine/adapters/peft_adapter.h"
#include "engine/model/model_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/bench_tools/bench_tools_test_util.h"

namespace loraserve::bench {
namespace {

using testing::FixtureModelDir;
using ::testing::HasSubstr;
using testing::ReadAll;
using testing::ScopedTempDir;

AdapterSetOptions Options(const std::string& out, int num) {
  AdapterSetOptions o;
  o.base_dir = FixtureModelDir();
  o.out_dir = out;
  o.num = num;
  return o;
}

TEST(AdapterSetTest, AdaptersLoadWithPeftLoaderAtDrawnRanks) {
  ScopedTempDir tmp;
  AdapterSetOptions o = Options(tmp.path(), 12);
  o.ranks = {4, 8, 16};
  o.alpha_ratio = 2.0;
  o.seed = 11;
  absl::StatusOr<AdapterSetSummary> s = MakeAdapterSet(o);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->count, 12);
  EXPECT_EQ(s->weight_files, 12);
  EXPECT_EQ(s->linked, 0);

  absl::StatusOr<ModelConfig> base = ModelConfig::Load(FixtureModelDir());
  ASSERT_TRUE(base.ok()) << base.status();
  AdapterLoadOptions lo;
  lo.max_rank = 256;
  std::map<int, int> ranks_seen;
  for (int i = 0; i < 12; ++i) {
    const std::string dir = tmp.Sub(absl::StrCat("adapter-", i < 10 ? "000" : "00", i));
    const nlohmann::json cfg = nlohmann::json::parse(ReadAll(dir + "/adapter_config.json"));
    EXPECT_EQ(cfg["peft_type"], "LORA");
    EXPECT_EQ(cfg["bias"], "none");
    EXPECT_EQ(cfg["base_model_name_or_path"], FixtureModelDir());
    const int r = cfg["r"].get<int>();
    EXPECT_DOUBLE_EQ(cfg["lora_alpha"].get<double>(), 2.0 * r);
    absl::StatusOr<std::unique_ptr<PeftAdapter>> a = PeftAdapter::Load(dir, *base, lo);
    ASSERT_TRUE(a.ok()) << dir << ": " << a.status();
    EXPECT_EQ((*a)->ranks(), std::vector<int>{r});
    EXPECT_EQ((*a)->target_modules().size(), 7u);
    EXPECT_EQ((*a)->num_lora_modules(), base->num_hidden_layers * 7);
    ++ranks_seen[r];
    for (int l = 0; l < base->num_hidden_layers; ++l) {
      for (LoraModule m : kAllLoraModules) {
        const LoraModuleWeights& w = (*a)->module(l, m);
        const ProjShape shape = ModuleShape(*base, m);
        ASSERT_EQ(w.rank, r);
        EXPECT_FLOAT_EQ(w.scale, 2.0f);
        EXPECT_EQ(w.in, shape.in);
        EXPECT_EQ(w.out, shape.out);
        // A ~ uniform(+-1/sqrt(in)), B nonzero and small.
        const float bound = 1.0f / std::sqrt(static_cast<float>(shape.in));
        float max_a = 0, max_b = 0;
        for (float v : w.a) max_a = std::max(max_a, std::abs(v));
        for (float v : w.b_t) max_b = std::max(max_b, std::abs(v));
        EXPECT_LE(max_a, bound * 1.01f);
        EXPECT_GT(max_a, bound * 0.5f);
        EXPECT_GT(max_b, 0.0f);
        EXPECT_LT(max_b, 0.5f);
      }
    }
  }
  EXPECT_EQ(ranks_seen, s->rank_counts);
}

TEST(AdapterSetTest, TargetModulesSubsetAndDtype) {
  ScopedTempDir tmp;
  AdapterSetOptions o = Options(tmp.path(), 2);
  o.ranks = {2};
  o.target_modules = {"down_proj", "q_proj"};
  o.dtype = DType::kF32;
  o.alpha_ratio = 0.5;
  ASSERT_TRUE(MakeAdapterSet(o).ok());
  absl::StatusOr<ModelConfig> base = ModelConfig::Load(FixtureModelDir());
  ASSERT_TRUE(base.ok());
  absl::StatusOr<std::unique_ptr<PeftAdapter>> a =
      PeftAdapter::Load(tmp.Sub("adapter-0001"), *base, AdapterLoadOptions{});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ((*a)->target_modules(), (std::vector<LoraModule>{LoraModule::kQ, LoraModule::kDown}));
  EXPECT_FLOAT_EQ((*a)->max_scale(), 0.5f);
  const std::string bytes = ReadAll(tmp.Sub("adapter-0001/adapter_model.safetensors"));
  EXPECT_THAT(bytes.substr(0, 400), HasSubstr("\"F32\""));
}

TEST(AdapterSetTest, SameSeedSameBytesOtherSeedOtherBytes) {
  ScopedTempDir tmp;
  AdapterSetOptions o = Options(tmp.Sub("a"), 5);
  o.seed = 3;
  ASSERT_TRUE(MakeAdapterSet(o).ok());
  o.out_dir = tmp.Sub("b");
  ASSERT_TRUE(MakeAdapterSet(o).ok());
  o.out_dir = tmp.Sub("c");
  o.seed = 4;
  ASSERT_TRUE(MakeAdapterSet(o).ok());
  for (const char* name : {"adapter-0000", "adapter-0004"}) {
    for (const char* file : {"adapter_config.json", "adapter_model.safetensors"}) {
      const std::string rel = std::string("/") + name + "/" + file;
      EXPECT_EQ(ReadAll(tmp.Sub("a") + rel), ReadAll(tmp.Sub("b") + rel)) << rel;
    }
    const std::string w = std::string("/") + name + "/adapter_model.safetensors";
    EXPECT_NE(ReadAll(tmp.Sub("a") + w), ReadAll(tmp.Sub("c") + w)) << w;
  }
  // Two adapters of one set differ too.
  EXPECT_NE(ReadAll(tmp.Sub("a/adapter-0000/adapter_model.safetensors")),
            ReadAll(tmp.Sub("a/adapter-0001/adapter_model.safetensors")));
}

TEST(AdapterSetTest, RankHistogramIsRoughlyUniform) {
  ScopedTempDir tmp;
  AdapterSetOptions o = Options(tmp.path(), 400);
  o.ranks = {4, 8, 16, 32};
  o.target_modules = {"q_proj"};
  o.distinct_weights = 1;  // keep the test fast: one weight file per rank
  o.seed = 5;
  absl::StatusOr<AdapterSetSummary> s = MakeAdapterSet(o);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->rank_counts.size(), 4u);
  int total = 0;
  for (const auto& [rank, count] : s->rank_counts) {
    // Expected 100 each; binomial sd ~8.7, so [60, 140] fails only on a real bias.
    EXPECT_GE(count, 60) << "rank " << rank;
    EXPECT_LE(count, 140) << "rank " << rank;
    total += count;
  }
  EXPECT_EQ(total, 400);
  // The histogram matches the configs on disk.
  std::map<int, int> on_disk;
  for (const auto& e : std::filesystem::directory_iterator(tmp.path())) {
    const nlohmann::json cfg =
        nlohmann::json::parse(ReadAll(e.path().string() + "/adapter_config.json"));
    ++on_disk[cfg["r"].get<int>()];
  }
  EXPECT_EQ(on_disk, s->rank_counts);
}

TEST(AdapterSetTest, DistinctWeightsHardLinksYetSeparateDirectories) {
  ScopedTempDir tmp;
  AdapterSetOptions o = Options(tmp.path(), 20);
  o.ranks = {4, 8};
  o.distinct_weights = 2;
  absl::StatusOr<AdapterSetSummary> s = MakeAdapterSet(o);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->weight_files, 4);  // 2 ranks x 2 slots
  EXPECT_EQ(s->linked, 16);
  EXPECT_GT(s->bytes_logical, s->bytes_written);
  std::map<ino_t, int> inodes;
  int dirs = 0;
  for (const auto& e : std::filesystem::directory_iterator(tmp.path())) {
    ASSERT_TRUE(e.is_directory());
    ++dirs;
    struct stat st {};
    ASSERT_EQ(stat((e.path() / "adapter_model.safetensors").c_str(), &st), 0);
    ++inodes[st.st_ino];
    // Configs are per adapter, never linked.
    struct stat cst {};
    ASSERT_EQ(stat((e.path() / "adapter_config.json").c_str(), &cst), 0);
    EXPECT_EQ(cst.st_nlink, 1u);
  }
  EXPECT_EQ(dirs, 20);
  EXPECT_EQ(inodes.size(), 4u);
  int linked_files = 0;
  for (const auto& [ino, n] : inodes) linked_files += n;
  EXPECT_EQ(linked_files, 20);
  // Linked adapters still load, with their own config's rank.
  absl::StatusOr<ModelConfig> base = ModelConfig::Load(FixtureModelDir());
  ASSERT_TRUE(base.ok());
  for (int i : {0, 7, 19}) {
    const std::string dir = tmp.Sub(absl::StrCat("adapter-00", i < 10 ? "0" : "", i));
    EXPECT_TRUE(PeftAdapter::Load(dir, *base, AdapterLoadOptions{}).ok()) << dir;
  }
}

TEST(AdapterSetTest, NameFormat) {
  EXPECT_EQ(*FormatAdapterName("adapter-%04d", 7), "adapter-0007");
  EXPECT_EQ(*FormatAdapterName("a%d", 12345), "a12345");
  EXPECT_EQ(*FormatAdapterName("lora_%3d_x", 5), "lora_  5_x");
  for (const char* bad : {"adapter", "a%s", "%d-%d", "x/%d", "%04x", "%"}) {
    absl::StatusOr<std::string> r = FormatAdapterName(bad, 1);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_THAT(r.status().message(), HasSubstr("--name-format")) << bad;
  }
}

TEST(AdapterSetTest, BadOptionsAreClearErrors) {
  EXPECT_THAT(ParseRanks("").status().message(), HasSubstr("--ranks is empty"));
  EXPECT_THAT(ParseRanks("8,512").status().message(),
              HasSubstr("--ranks entry 512 is outside [1, 256]"));
  EXPECT_THAT(ParseRanks("8,0").status().message(), HasSubstr("outside"));
  EXPECT_THAT(ParseRanks("8,x").status().message(), HasSubstr("\"x\" is not an integer"));
  EXPECT_EQ(*ParseRanks("8, 16,32"), (std::vector<int>{8, 16, 32}));
  EXPECT_THAT(ParseTargetModules("q_proj,lm_head").status().message(),
              HasSubstr("--target-modules entry \"lm_head\" is not one of"));
  EXPECT_THAT(ParseTargetModules("q_proj,q_proj").status().message(), HasSubstr("twice"));
  EXPECT_THAT(ParseTargetModules("").status().message(), HasSubstr("--target-modules is empty"));

  ScopedTempDir tmp;
  auto error_of = [&](auto mutate) {
    AdapterSetOptions o = Options(tmp.path(), 3);
    mutate(o);
    absl::StatusOr<AdapterSetSummary> s = MakeAdapterSet(o);
    EXPECT_FALSE(s.ok());
    return std::string(s.status().message());
  };
  EXPECT_THAT(error_of([](AdapterSetOptions& o) { o.num = 0; }), HasSubstr("--num is 0"));
  EXPECT_THAT(error_of([](AdapterSetOptions& o) { o.num = -4; }), HasSubstr("--num is -4"));
  EXPECT_THAT(error_of([](AdapterSetOptions& o) { o.ranks.clear(); }),
              HasSubstr("--ranks is empty"));
  EXPECT_THAT(error_of([](AdapterSetOptions& o) { o.ranks = {300}; }),
              HasSubstr("--ranks entry 300"));
  EXPECT_THAT(error_of([](AdapterSetOptions& o) {
                o.target_modules = {"q_proj", "qq_proj"};
              }),
              HasSubstr("\"qq_proj\""));
  EXPECT_THAT(error_of([](AdapterSetOptions& o) { o.alpha_ratio = 0; }),
              HasSubstr("--alpha-ratio"));
  EXPECT_THAT(error_of([](AdapterSetOptions& o) { o.distinct_weights = -1; }),
              HasSubstr("--distinct-weights"));
  EXPECT_THAT(error_of([](AdapterSetOptions& o) { o.base_dir = "/nonexistent/model"; }),
              HasSubstr("--base"));
  // Nothing was written by the refused runs.
  EXPECT_TRUE(std::filesystem::is_empty(tmp.path()));
}

}  // namespace
}  // namespace loraserve::bench
