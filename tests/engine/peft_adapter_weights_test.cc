// PeftAdapter as memory/'s AdapterWeights: the view the unified pool packs.
#include <memory>

#include "engine/adapters/peft_adapter.h"
#include "gtest/gtest.h"
#include "memory/adapter_layout.h"
#include "tests/engine/peft_test_util.h"

namespace loraserve {
namespace {

using ::loraserve::testutil::AdapterBuilder;
using ::loraserve::testutil::SmallBase;
using ::loraserve::testutil::TempDir;

TEST(PeftAdapterWeights, ViewMatchesModulesAndPacks) {
  TempDir tmp;
  const ModelConfig base = SmallBase();
  AdapterBuilder b(tmp, "a", base);
  b.AddAllLayers(LoraModule::kQ, 8);  // the builder's config targets q and v at r=8
  b.AddAllLayers(LoraModule::kV, 8);
  absl::StatusOr<std::unique_ptr<PeftAdapter>> ad = b.Load();
  ASSERT_TRUE(ad.ok()) << ad.status();
  const AdapterWeights& w = **ad;
  EXPECT_EQ(w.num_layers(), 2);
  EXPECT_EQ(w.num_modules(), kNumLoraModules);
  EXPECT_EQ(w.bytes(), (*ad)->bytes());
  int64_t row_bytes = 0;
  for (int l = 0; l < w.num_layers(); ++l) {
    for (int m = 0; m < kNumLoraModules; ++m) {
      const LoraModuleWeights& src = (*ad)->module(l, kAllLoraModules[m]);
      const ModuleWeightsView v = w.ModuleView(l, m);
      EXPECT_EQ(v.rank, src.rank);
      EXPECT_EQ(v.scale, src.scale);
      if (src.rank == 0) {
        EXPECT_EQ(v.a, nullptr);
        continue;
      }
      EXPECT_EQ(v.in, src.in);
      EXPECT_EQ(v.out, src.out);
      EXPECT_EQ(v.a, src.a.data());
      EXPECT_EQ(v.b_t, src.b_t.data());
      row_bytes += src.rank * (src.in + src.out) * 4;
    }
  }
  absl::StatusOr<AdapterLayout> layout = AdapterLayout::Plan(w, 1 << 20, DType::kF32);
  ASSERT_TRUE(layout.ok()) << layout.status();
  EXPECT_EQ(layout->row_bytes, row_bytes);
  EXPECT_EQ(layout->num_rows(), 2 * 2 * (8 + 8));
}

}  // namespace
}  // namespace loraserve
