// AdapterRowCache + LoraBatch: the row-offset tables point at exactly the
// adapter's A rows and B^T rows, ranks/scales follow rank_pattern and
// alpha_pattern, groups without LoRA are inactive, eviction repacks, and an
// adapter that does not fit the model is refused.
#include "engine/model/adapter_row_cache.h"

#include "engine/model/lora_batch.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/backend_factory.h"

namespace loraserve {
namespace {

using ::testing::HasSubstr;

class AdapterRowCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto backend = CreateBackend(BackendKind::kCpu, {});
    ASSERT_TRUE(backend.ok());
    backend_ = std::move(backend).value();
    dir_ = std::string(LORASERVE_TEST_DATA_DIR) + "/tiny-llama";
    auto config = ModelConfig::Load(dir_);
    ASSERT_TRUE(config.ok()) << config.status();
    config_ = *config;
  }
  std::shared_ptr<const PeftAdapter> Load(const std::string& name) {
    auto a = PeftAdapter::Load(dir_ + "/adapters/" + name, config_, {});
    EXPECT_TRUE(a.ok()) << a.status();
    return std::move(a).value();
  }
  std::unique_ptr<AdapterRowCache> MakeCache(size_t max_bytes) {
    AdapterRowCache::Options o;
    o.backend = backend_.get();
    o.config = config_;
    o.max_bytes = max_bytes;
    auto c = AdapterRowCache::Create(o);
    EXPECT_TRUE(c.ok());
    return std::move(c).value();
  }
  // Checks that `s` reads back exactly the weights `w`.
  void ExpectRows(const LoraSlice& s, const LoraModuleWeights& w, const void* base) {
    ASSERT_EQ(s.rank, w.rank);
    EXPECT_EQ(s.scale, w.scale);
    for (int r = 0; r < w.rank; ++r) {
      std::vector<float> a(w.in), bt(w.out);
      const auto* b = static_cast<const uint8_t*>(base);
      ASSERT_TRUE(backend_->DownloadToF32(b + s.a_row_offsets[r], w.in, a.data()).ok());
      ASSERT_TRUE(backend_->DownloadToF32(b + s.bt_row_offsets[r], w.out, bt.data()).ok());
      EXPECT_TRUE(std::equal(a.begin(), a.end(), w.a.begin() + r * w.in)) << "A row " << r;
      EXPECT_TRUE(std::equal(bt.begin(), bt.end(), w.b_t.begin() + r * w.out)) << "B^T row " << r;
    }
  }

  std::unique_ptr<Backend> backend_;
  std::string dir_;
  ModelConfig config_;
};

TEST_F(AdapterRowCacheTest, OffsetsReadBackTheAdaptersRows) {
  auto cache = MakeCache(0);
  auto a = Load("r4_patterns");
  auto b = Load("r8_all");
  ASSERT_TRUE(cache->Prepare({a, nullptr, b, a}).ok());
  EXPECT_EQ(cache->num_resident(), 2);
  for (int l = 0; l < config_.num_hidden_layers; ++l) {
    for (LoraModule m : kAllLoraModules) {
      ExpectRows(cache->Slice(a.get(), l, m), a->module(l, m), cache->rows_base());
      ExpectRows(cache->Slice(b.get(), l, m), b->module(l, m), cache->rows_base());
    }
  }
  // rank_pattern: layers.1 q_proj is rank 12, down_proj rank 2.
  EXPECT_EQ(cache->Slice(a.get(), 1, LoraModule::kQ).rank, 12);
  EXPECT_EQ(cache->Slice(a.get(), 0, LoraModule::kQ).rank, 4);
  EXPECT_EQ(cache->Slice(a.get(), 0, LoraModule::kDown).rank, 2);
  EXPECT_EQ(cache->Slice(a.get(), 0, LoraModule::kO).rank, 0);
}

TEST_F(AdapterRowCacheTest, LoraBatchTablesAndActiveGroups) {
  auto cache = MakeCache(0);
  auto a = Load("r4_patterns");  // q, v, down
  auto b = Load("r2_regex");     // k, up
  ASSERT_TRUE(cache->Prepare({a, b}).ok());
  LoraBatch batch(backend_.get(), config_.num_hidden_layers);
  ASSERT_TRUE(batch.Build(*cache, {b.get(), a.get()}, {3, 5, 9}).ok());
  EXPECT_EQ(batch.max_rank(), 12);
  EXPECT_TRUE(batch.active(0, LoraGroup::kQkv));
  EXPECT_FALSE(batch.active(0, LoraGroup::kO));
  EXPECT_TRUE(batch.active(0, LoraGroup::kGateUp));
  EXPECT_TRUE(batch.active(1, LoraGroup::kDown));
  const LoraSegments s = batch.segments(1, LoraGroup::kQkv);
  EXPECT_EQ(s.num_segments, 2);
  EXPECT_EQ(s.num_slices, 3);
  EXPECT_EQ(s.seg_starts[0], 3);
  EXPECT_EQ(s.seg_starts[2], 9);
  // Segment 0 = r2_regex: q 0, k 2, v 0; segment 1 = r4_patterns: q 12, k 0, v 4.
  EXPECT_EQ(s.slices[0].rank, 0);
  EXPECT_EQ(s.slices[1].rank, 2);
  EXPECT_EQ(s.slices[3].rank, 12);
  EXPECT_EQ(s.slices[5].rank, 4);
  EXPECT_EQ(s.slices[5].scale, a->module(1, LoraModule::kV).scale);  // alpha_pattern v: 32 / 4
  EXPECT_FLOAT_EQ(s.slices[5].scale, 8.0f);
  const LoraSliceColumns cols = LoraGroupColumns(config_, LoraGroup::kQkv);
  EXPECT_EQ(cols.offsets[3], 96 + 32 + 32);
  EXPECT_EQ(LoraGroupColumns(config_, LoraGroup::kGateUp).offsets[2], 400);

  ASSERT_TRUE(batch.Build(*cache, {}, {}).ok());  // no LoRA at all
  EXPECT_FALSE(batch.active(0, LoraGroup::kQkv));
  EXPECT_EQ(batch.max_rank(), 0);
}

TEST_F(AdapterRowCacheTest, EvictsToFitAndRefusesWhatCannotFit) {
  auto big = Load("r64_mlp_layer1_bf16");
  auto a = Load("r4_patterns");
  auto b = Load("r8_all");
  auto cache = MakeCache(400 * 1024);  // the r64 adapter alone is ~227 KiB
  ASSERT_TRUE(cache->Prepare({a}).ok());
  ASSERT_TRUE(cache->Prepare({b}).ok());
  ASSERT_TRUE(cache->Prepare({big}).ok());
  EXPECT_TRUE(cache->resident(big.get()));
  EXPECT_GE(cache->rebuilds(), 2);
  for (LoraModule m : kAllLoraModules) {
    ExpectRows(cache->Slice(big.get(), 1, m), big->module(1, m), cache->rows_base());
  }
  auto tiny = MakeCache(1024);
  const absl::Status st = tiny->Prepare({big});
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(st.message()), HasSubstr("above the cache limit"));
}

TEST_F(AdapterRowCacheTest, RefusesAnAdapterOfAnotherModel) {
  ModelConfig other = config_;
  other.hidden_size = 64;  // adapters' in/out no longer match
  AdapterRowCache::Options o;
  o.backend = backend_.get();
  o.config = other;
  auto cache = AdapterRowCache::Create(o);
  ASSERT_TRUE(cache.ok());
  const absl::Status st = (*cache)->Prepare({Load("r8_all")});
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("does not fit the model"));
}

}  // namespace
}  // namespace loraserve
