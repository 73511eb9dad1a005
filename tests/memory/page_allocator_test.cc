#include "memory/page_allocator.h"

#include <algorithm>
#include <random>
#include <set>
#include <vector>

#include "gtest/gtest.h"
#include "memory/kv_block_table.h"

namespace loraserve {
namespace {

TEST(PageAllocator, QueryThenCommit) {
  PageAllocator pool(8);
  EXPECT_EQ(pool.free_pages(), 8);
  EXPECT_TRUE(pool.CanAllocate(8));
  EXPECT_FALSE(pool.CanAllocate(9));
  EXPECT_EQ(pool.free_pages(), 8);  // queries change nothing

  absl::StatusOr<PageSet> a = pool.Allocate(3, PageKind::kKv);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->pages(), (std::vector<int32_t>{0, 1, 2}));  // low ids first
  EXPECT_EQ(pool.free_pages(), 5);
  EXPECT_EQ(pool.used_pages(PageKind::kKv), 3);
  EXPECT_EQ(pool.used_pages(PageKind::kAdapter), 0);

  absl::StatusOr<PageSet> too_many = pool.Allocate(6, PageKind::kAdapter);
  EXPECT_EQ(too_many.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(too_many.status().message().find("6 pages requested, 5 of 8 free"),
            absl::string_view::npos)
      << too_many.status();
  EXPECT_EQ(pool.free_pages(), 5);  // failed commit changed nothing
  EXPECT_EQ(pool.used_pages(PageKind::kAdapter), 0);
}

TEST(PageAllocator, HandlesReturnPagesWhenDropped) {
  PageAllocator pool(4);
  {
    absl::StatusOr<PageSet> a = pool.Allocate(2, PageKind::kAdapter);
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(pool.used_pages(PageKind::kAdapter), 2);
    PageSet moved = std::move(*a);  // ownership moves, pages are not freed twice
    EXPECT_TRUE(a->empty());
    EXPECT_EQ(moved.size(), 2);
    EXPECT_EQ(pool.free_pages(), 2);
  }
  EXPECT_EQ(pool.free_pages(), 4);
  EXPECT_EQ(pool.used_pages(PageKind::kAdapter), 0);
}

TEST(PageAllocator, MoveAssignReleasesTheOverwrittenSet) {
  PageAllocator pool(6);
  PageSet a = *pool.Allocate(2, PageKind::kKv);
  PageSet b = *pool.Allocate(3, PageKind::kAdapter);
  EXPECT_EQ(pool.free_pages(), 1);
  a = std::move(b);  // a's two KV pages go back
  EXPECT_EQ(pool.free_pages(), 3);
  EXPECT_EQ(pool.used_pages(PageKind::kKv), 0);
  EXPECT_EQ(pool.used_pages(PageKind::kAdapter), 3);
  EXPECT_EQ(a.kind(), PageKind::kAdapter);
}

TEST(PageAllocator, GrowIsAllOrNothingAndShrinkGivesBackTheTail) {
  PageAllocator pool(5);
  PageSet s;
  ASSERT_TRUE(pool.Grow(s, 2, PageKind::kKv).ok());
  ASSERT_TRUE(pool.Grow(s, 2, PageKind::kKv).ok());
  EXPECT_EQ(s.pages(), (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(pool.Grow(s, 2, PageKind::kKv).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(s.size(), 4);
  EXPECT_EQ(pool.free_pages(), 1);
  EXPECT_EQ(pool.Grow(s, 1, PageKind::kAdapter).code(), absl::StatusCode::kInvalidArgument);
  pool.Shrink(s, 3);
  EXPECT_EQ(s.pages(), (std::vector<int32_t>{0}));
  EXPECT_EQ(pool.free_pages(), 4);
  EXPECT_EQ(pool.used_pages(PageKind::kKv), 1);
}

// Random allocate/free: at every step each page is owned by exactly one set or
// free, and the per-kind counts match the sets.
TEST(PageAllocator, RandomChurnKeepsExactAccounting) {
  constexpr int32_t kPages = 64;
  PageAllocator pool(kPages);
  std::mt19937 rng(1234);
  std::vector<PageSet> sets;
  for (int step = 0; step < 5000; ++step) {
    const int op = rng() % 3;
    if (op == 0 || sets.empty()) {
      const int32_t n = static_cast<int32_t>(rng() % 9);
      const PageKind kind = rng() % 2 ? PageKind::kKv : PageKind::kAdapter;
      const bool can = pool.CanAllocate(n);
      absl::StatusOr<PageSet> s = pool.Allocate(n, kind);
      ASSERT_EQ(s.ok(), can);
      if (s.ok()) sets.push_back(std::move(*s));
    } else if (op == 1) {
      sets.erase(sets.begin() + static_cast<long>(rng() % sets.size()));
    } else {
      PageSet& s = sets[rng() % sets.size()];
      if (!s.empty()) pool.Shrink(s, static_cast<int32_t>(rng() % (s.size() + 1)));
    }
    std::set<int32_t> owned;
    int32_t kv = 0, adapter = 0;
    for (const PageSet& s : sets) {
      for (int32_t p : s.pages()) ASSERT_TRUE(owned.insert(p).second) << "page " << p << " twice";
      (s.kind() == PageKind::kKv ? kv : adapter) += s.size();
    }
    ASSERT_EQ(pool.free_pages() + static_cast<int32_t>(owned.size()), kPages);
    ASSERT_EQ(pool.used_pages(PageKind::kKv), kv);
    ASSERT_EQ(pool.used_pages(PageKind::kAdapter), adapter);
  }
  sets.clear();
  EXPECT_EQ(pool.free_pages(), kPages);
}

TEST(KvBlockTable, GrowsByBlocksAndFreesOnPreemption) {
  PageAllocator pool(5);
  KvBlockTable t(&pool, /*block_tokens=*/4);
  EXPECT_EQ(t.BlocksFor(0), 0);
  EXPECT_EQ(t.BlocksFor(1), 1);
  EXPECT_EQ(t.BlocksFor(4), 1);
  EXPECT_EQ(t.BlocksFor(5), 2);
  ASSERT_TRUE(t.Reserve(5).ok());   // prompt of 5 tokens -> 2 blocks
  EXPECT_EQ(t.num_blocks(), 2);
  ASSERT_TRUE(t.Reserve(8).ok());   // decode up to 8 tokens: still 2 blocks
  EXPECT_EQ(t.num_blocks(), 2);
  EXPECT_EQ(t.ExtraBlocksFor(9), 1);
  ASSERT_TRUE(t.Reserve(3).ok());   // never shrinks
  EXPECT_EQ(t.reserved_tokens(), 8);

  KvBlockTable other(&pool, 4);
  ASSERT_TRUE(other.Reserve(12).ok());  // 3 blocks: pool now full
  EXPECT_FALSE(t.CanReserve(9));
  EXPECT_EQ(t.Reserve(9).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(t.num_blocks(), 2);  // failed reserve changed nothing

  other.Free();  // preempt the other sequence
  EXPECT_EQ(other.num_blocks(), 0);
  EXPECT_EQ(other.reserved_tokens(), 0);
  ASSERT_TRUE(t.Reserve(9).ok());
  EXPECT_EQ(t.num_blocks(), 3);
  EXPECT_EQ(pool.used_pages(PageKind::kKv), 3);
}

}  // namespace
}  // namespace loraserve
