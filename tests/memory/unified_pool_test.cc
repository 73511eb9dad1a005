#include "memory/unified_pool.h"

#include <memory>

#include "gtest/gtest.h"
#include "kernels/cpu/cpu_backend.h"

namespace loraserve {
namespace {

TEST(ComputePageBytes, MaxOfKvBlockRowAndTable) {
  struct Case {
    PoolGeometry g;
    size_t elt;
    int64_t want;
  };
  const Case cases[] = {
      // KV 2*2*4*2*8*4 = 1024 < offset table 256*8 = 2048.
      {{2, 2, 8, 4, 40}, 4, 2048},
      // KV 2*2*16*2*8*4 = 4096.
      {{2, 2, 8, 16, 40}, 4, 4096},
      // Llama-3-8B-like bf16: 2*32*16*8*128*2 = 2 MiB.
      {{32, 8, 128, 16, 14336}, 2, 2 << 20},
      // A row dominates: 5000 * 4 = 20000, rounded up to 256: 20224.
      {{1, 1, 8, 1, 5000}, 4, 20224},
      // Odd KV: 2*3*5*3*12*2 = 2160 -> 2304.
      {{3, 3, 12, 5, 10}, 2, 2304},
  };
  for (const Case& c : cases) {
    absl::StatusOr<int64_t> got = ComputePageBytes(c.g, c.elt);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, c.want);
    EXPECT_TRUE(MakeKvLayout(c.g, *got).Validate("test", c.elt).ok());
  }
  EXPECT_EQ(ComputePageBytes({0, 1, 8, 4, 10}, 4).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(PoolSize, ParseAndResolve) {
  struct Case {
    const char* flag;
    int64_t bytes;
    double fraction;
  };
  const Case ok[] = {{"1073741824", 1073741824, 0},   {"512MiB", 512ll << 20, 0},
                     {"4GiB", 4ll << 30, 0},          {"100MB", 100000000, 0},
                     {"64KiB", 65536, 0},             {"0.9", 0, 0.9},
                     {"1.0", 0, 1.0}};
  for (const Case& c : ok) {
    absl::StatusOr<PoolSize> s = ParsePoolSize(c.flag);
    ASSERT_TRUE(s.ok()) << c.flag << ": " << s.status();
    EXPECT_EQ(s->bytes, c.bytes) << c.flag;
    EXPECT_DOUBLE_EQ(s->fraction, c.fraction) << c.flag;
  }
  for (const char* bad : {"", "abc", "1.5", "0.0", "-3", "12XB", "0", "GiB"}) {
    EXPECT_EQ(ParsePoolSize(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(*ResolvePoolBytes({1000, 0}, -1), 1000);
  EXPECT_EQ(*ResolvePoolBytes({0, 0.5}, 1000), 500);
  EXPECT_EQ(ResolvePoolBytes({0, 0.5}, -1).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(UnifiedPool, PagesAreSlicesOfOneAllocation) {
  std::unique_ptr<CpuBackend> backend = *CpuBackend::Create({1});
  absl::StatusOr<std::unique_ptr<UnifiedPool>> pool =
      UnifiedPool::Create({backend.get(), 2048, 2048 * 5 + 100});
  ASSERT_TRUE(pool.ok()) << pool.status();
  UnifiedPool& p = **pool;
  EXPECT_EQ(p.num_pages(), 5);  // rounded down
  EXPECT_EQ(p.page(3) - p.base(), 3 * 2048);
  PageSet kv = *p.allocator().Allocate(2, PageKind::kKv);
  PageSet ad = *p.allocator().Allocate(1, PageKind::kAdapter);
  const PoolStats s = p.stats();
  EXPECT_EQ(s.total_pages, 5);
  EXPECT_EQ(s.free_pages, 2);
  EXPECT_EQ(s.kv_pages, 2);
  EXPECT_EQ(s.adapter_pages, 1);
  EXPECT_EQ(s.page_bytes, 2048);

  EXPECT_EQ(UnifiedPool::Create({backend.get(), 2048, 100}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(UnifiedPool::Create({backend.get(), 2047, 1 << 20}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(UnifiedPool::Create({nullptr, 2048, 1 << 20}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace loraserve
