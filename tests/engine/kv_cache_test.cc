// KvCache: layout for a model, all-or-nothing block reservation, release.
#include "engine/model/kv_cache.h"

#include <set>

#include "gtest/gtest.h"
#include "kernels/backend_factory.h"

namespace loraserve {
namespace {

TEST(KvCache, ReservesAllOrNothingAndReleases) {
  auto backend = CreateBackend(BackendKind::kCpu, {});
  ASSERT_TRUE(backend.ok());
  KvCache::Options o;
  o.backend = backend->get();
  o.num_layers = 3;
  o.num_kv_heads = 2;
  o.head_dim = 6;
  o.block_tokens = 4;
  o.num_blocks = 5;
  auto cache = KvCache::Create(o);
  ASSERT_TRUE(cache.ok()) << cache.status();
  KvCache& kv = **cache;
  EXPECT_EQ(kv.layout().block_stride_bytes, 2 * 3 * 4 * 2 * 6 * 4);
  EXPECT_NE(kv.view().base, nullptr);

  std::vector<int32_t> a, b;
  ASSERT_TRUE(kv.Reserve(&a, 9).ok());  // 3 blocks
  EXPECT_EQ(a.size(), 3u);
  ASSERT_TRUE(kv.Reserve(&a, 12).ok());  // still 3
  EXPECT_EQ(a.size(), 3u);
  const absl::Status st = kv.Reserve(&b, 12);  // needs 3, 2 free
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(kv.num_free_blocks(), 2);
  ASSERT_TRUE(kv.Reserve(&b, 8).ok());
  std::set<int32_t> all(a.begin(), a.end());
  all.insert(b.begin(), b.end());
  EXPECT_EQ(all.size(), 5u);  // distinct
  kv.Release(&a);
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(kv.num_free_blocks(), 3);

  o.num_blocks = 0;
  EXPECT_EQ(KvCache::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.num_blocks = 4;
  o.block_tokens = 0;
  EXPECT_EQ(KvCache::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace loraserve
