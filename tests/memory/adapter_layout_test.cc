#include "memory/adapter_layout.h"

#include <cstring>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/op_args.h"
#include "tests/memory/fake_adapter.h"

namespace loraserve {
namespace {

using testing_memory::AllRanks;
using testing_memory::FakeAdapter;
using testing_memory::FakeValue;
using testing_memory::TinyShapes;

// An adapter costs exactly its own rank-rows: with one big page there is no
// slack at all (every row is a multiple of 16 bytes), and the bytes are
// sum over modules of rank * (in + out) * 4 plus 2 * rank * 8 of tables.
TEST(AdapterLayout, RankRCostsExactlyItsRows) {
  // ranks q=3 k=1 v=0 o=2 gate=0 up=0 down=5; 2 layers.
  FakeAdapter adapter(7, 2, {3, 1, 0, 2, 0, 0, 5}, TinyShapes());
  absl::StatusOr<AdapterLayout> layout = AdapterLayout::Plan(adapter, 1 << 16, DType::kF32);
  ASSERT_TRUE(layout.ok()) << layout.status();
  // Per layer: q 3*(24+24)*4=576, k 1*(24+8)*4=128, o 2*(24+24)*4=384,
  // down 5*(40+24)*4=1280 -> 2368; two layers 4736.
  EXPECT_EQ(layout->row_bytes, 4736);
  EXPECT_EQ(layout->num_rows(), 2 * 2 * (3 + 1 + 2 + 5));
  ASSERT_EQ(layout->num_pages, 1);
  // Tables: 2 tables of rank*8 bytes per module, each padded to 16: 3->32,
  // 1->16, 2->16, 5->48 => 2*(32+16+16+48)=224 per layer, 448 total, less
  // the 8 alignment bytes after the very last table (nothing follows it).
  EXPECT_EQ(layout->page_used[0], 4736 + 448 - 8);
  EXPECT_EQ(layout->module(0, 2).rank, 0);
  EXPECT_EQ(layout->module(1, 6).rank, 5);

  // Rank 4 everywhere costs exactly 4x rank 1 in row bytes: no padding to a max rank.
  FakeAdapter r1(1, 1, AllRanks(1), TinyShapes());
  FakeAdapter r4(1, 1, AllRanks(4), TinyShapes());
  absl::StatusOr<AdapterLayout> l1 = AdapterLayout::Plan(r1, 1 << 16, DType::kF32);
  absl::StatusOr<AdapterLayout> l4 = AdapterLayout::Plan(r4, 1 << 16, DType::kF32);
  ASSERT_TRUE(l1.ok() && l4.ok());
  EXPECT_EQ(l1->row_bytes, 1408);  // A: 6*24+40 = 184 elems, B^T: 24+8+8+24+40+40+24 = 168
  EXPECT_EQ(l4->row_bytes, 4 * 1408);
  // bf16 halves the row bytes.
  absl::StatusOr<AdapterLayout> l4h = AdapterLayout::Plan(r4, 1 << 16, DType::kBF16);
  ASSERT_TRUE(l4h.ok());
  EXPECT_EQ(l4h->row_bytes, 2 * 1408);
}

// Hand-computed page counts: q only, in = out = 64 fp32 (256-byte rows),
// 2048-byte pages hold 8 rows.
TEST(AdapterLayout, PageCountsAndNoRowSpansAPage) {
  std::array<testing_memory::ModuleShape, kNumAdapterModules> shapes = TinyShapes();
  shapes[0] = {64, 64};
  struct Case {
    int32_t rank;
    int32_t pages;
  };
  // r=3: 6 rows (1536) + tables 32+32 -> 1 page; r=4: 8 rows fill page 0,
  // tables on page 1; r=7: 14 rows over 2 pages + tables (64+64) fit page 1;
  // r=8: 16 rows = 2 full pages, tables on page 2.
  for (const Case& c : {Case{3, 1}, Case{4, 2}, Case{7, 2}, Case{8, 3}}) {
    FakeAdapter adapter(3, 1, {c.rank, 0, 0, 0, 0, 0, 0}, shapes);
    absl::StatusOr<AdapterLayout> layout = AdapterLayout::Plan(adapter, 2048, DType::kF32);
    ASSERT_TRUE(layout.ok()) << layout.status();
    EXPECT_EQ(layout->num_pages, c.pages) << "rank " << c.rank;
  }

  // Odd sizes and small pages: every item inside one page, no overlaps.
  FakeAdapter adapter(5, 3, {5, 3, 2, 1, 4, 6, 7}, TinyShapes());
  const int64_t page = 512;
  absl::StatusOr<AdapterLayout> layout = AdapterLayout::Plan(adapter, page, DType::kF32);
  ASSERT_TRUE(layout.ok()) << layout.status();
  std::vector<int> owner(static_cast<size_t>(layout->num_pages * page), -1);
  int item = 0;
  auto mark = [&](PagePlace p, int64_t bytes) {
    ASSERT_GE(p.page, 0);
    ASSERT_LT(p.page, layout->num_pages);
    ASSERT_LE(p.offset + bytes, page) << "item spans a page";
    ASSERT_LE(p.offset + bytes, layout->page_used[p.page]);
    for (int64_t b = 0; b < bytes; ++b) {
      int& o = owner[static_cast<size_t>(p.page * page + p.offset + b)];
      ASSERT_EQ(o, -1) << "items overlap";
      o = item;
    }
    ++item;
  };
  for (int l = 0; l < 3; ++l) {
    for (int m = 0; m < kNumAdapterModules; ++m) {
      const ModulePlan& p = layout->module(l, m);
      for (int32_t i = 0; i < p.rank; ++i) {
        mark(layout->rows[static_cast<size_t>(p.first_row + i)], p.in * 4);
        mark(layout->rows[static_cast<size_t>(p.first_row + p.rank + i)], p.out * 4);
      }
      mark(p.a_table, p.rank * 8);
      mark(p.bt_table, p.rank * 8);
    }
  }
}

TEST(AdapterLayout, RefusesWhatCannotBePacked) {
  FakeAdapter adapter(1, 1, AllRanks(2), TinyShapes());
  // The down projection's A row is 40 fp32 = 160 bytes.
  absl::StatusOr<AdapterLayout> small = AdapterLayout::Plan(adapter, 128, DType::kF32);
  EXPECT_EQ(small.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(small.status().message().find("160 bytes does not fit a pool page of 128"),
            absl::string_view::npos)
      << small.status();
  FakeAdapter big(1, 1, AllRanks(kMaxLoraRank + 1), {testing_memory::ModuleShape{1, 1},
                                                     {1, 1}, {1, 1}, {1, 1}, {1, 1}, {1, 1},
                                                     {1, 1}});
  absl::StatusOr<AdapterLayout> too_big = AdapterLayout::Plan(big, 1 << 16, DType::kF32);
  EXPECT_EQ(too_big.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(too_big.status().message().find("rank 257"), absl::string_view::npos);
}

// Fill writes rows in the storage dtype and tables of pool offsets that,
// followed from the pool base, land on the right adapter's rows.
TEST(AdapterLayout, FillTablesPointAtTheRows) {
  for (DType dtype : {DType::kF32, DType::kBF16}) {
    FakeAdapter adapter(11, 2, {2, 1, 3, 0, 1, 2, 4}, TinyShapes());
    const int64_t page = 1024;
    absl::StatusOr<AdapterLayout> layout = AdapterLayout::Plan(adapter, page, dtype);
    ASSERT_TRUE(layout.ok()) << layout.status();
    // Scatter the adapter's pages over a 3x larger "pool", in reverse order.
    const int32_t n = layout->num_pages;
    std::vector<int32_t> pool_pages;
    for (int32_t i = 0; i < n; ++i) pool_pages.push_back(3 * (n - 1 - i) + 1);
    std::vector<uint8_t> staging(static_cast<size_t>(n * page));
    layout->Fill(adapter, pool_pages.data(), staging.data());
    std::vector<uint8_t> pool(static_cast<size_t>(3 * n * page), 0xAB);
    for (int32_t i = 0; i < n; ++i) {
      std::memcpy(pool.data() + pool_pages[i] * page, staging.data() + i * page,
                  static_cast<size_t>(page));
    }
    for (int l = 0; l < 2; ++l) {
      for (int m = 0; m < kNumAdapterModules; ++m) {
        const ModulePlan& p = layout->module(l, m);
        const int64_t* a_tab = nullptr;
        const int64_t* b_tab = nullptr;
        if (p.rank > 0) {
          a_tab = reinterpret_cast<const int64_t*>(pool.data() +
                                                   layout->PoolOffset(p.a_table, pool_pages.data()));
          b_tab = reinterpret_cast<const int64_t*>(
              pool.data() + layout->PoolOffset(p.bt_table, pool_pages.data()));
        }
        for (int32_t r = 0; r < p.rank; ++r) {
          for (int ab = 0; ab < 2; ++ab) {
            const int64_t cols = ab == 0 ? p.in : p.out;
            const uint8_t* row = pool.data() + (ab == 0 ? a_tab[r] : b_tab[r]);
            std::vector<float> got(static_cast<size_t>(cols));
            ConvertToF32(row, dtype, got.data(), got.size());
            for (int64_t c = 0; c < cols; ++c) {
              float want = FakeValue(11, l, m, ab, r, c);
              if (dtype == DType::kBF16) want = Bf16ToFloat(FloatToBf16(want));
              ASSERT_EQ(got[static_cast<size_t>(c)], want)
                  << "layer " << l << " module " << m << " ab " << ab << " row " << r;
            }
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace loraserve
