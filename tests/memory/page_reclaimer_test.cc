// PageAllocator with a PageReclaimer: reclaimable pages count for
// CanAllocate; Allocate/Grow reclaim just enough, and nothing at all when the
// request cannot be met even then.
#include <vector>

#include "gtest/gtest.h"
#include "memory/kv_block_table.h"
#include "memory/page_allocator.h"

namespace loraserve {
namespace {

// Holds single-page sets, gives them back oldest first.
class FakeReclaimer final : public PageReclaimer {
 public:
  explicit FakeReclaimer(PageAllocator* a) : allocator_(a) {}
  void Hold(int n) {
    for (int i = 0; i < n; ++i) held_.push_back(*allocator_->Allocate(1, PageKind::kAdapter));
  }
  int32_t ReclaimablePages() const override { return static_cast<int32_t>(held_.size()); }
  int32_t Reclaim(int32_t pages) override {
    ++calls;
    int32_t freed = 0;
    while (freed < pages && !held_.empty()) {
      held_.erase(held_.begin());
      ++freed;
    }
    return freed;
  }
  int calls = 0;

 private:
  PageAllocator* allocator_;
  std::vector<PageSet> held_;
};

TEST(PageReclaimer, ReclaimsJustEnoughAndOnlyWhenItHelps) {
  PageAllocator pool(6);
  FakeReclaimer r(&pool);
  r.Hold(4);
  pool.set_reclaimer(&r);
  EXPECT_EQ(pool.free_pages(), 2);
  EXPECT_TRUE(pool.CanAllocate(6));
  EXPECT_FALSE(pool.CanAllocate(7));

  // Free pages first: no reclaim.
  PageSet a = *pool.Allocate(2, PageKind::kKv);
  EXPECT_EQ(r.calls, 0);
  // Short by 1: exactly one held page goes.
  KvBlockTable kv(&pool, 2);
  ASSERT_TRUE(kv.Reserve(2).ok());
  EXPECT_EQ(r.calls, 1);
  EXPECT_EQ(r.ReclaimablePages(), 3);
  EXPECT_EQ(pool.used_pages(PageKind::kKv), 3);
  EXPECT_EQ(pool.used_pages(PageKind::kAdapter), 3);
  // More than free + reclaimable: refused, nothing evicted.
  EXPECT_FALSE(kv.CanReserve(10));
  EXPECT_EQ(kv.Reserve(10).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(r.calls, 1);
  EXPECT_EQ(r.ReclaimablePages(), 3);
  // Exactly everything: all held pages go.
  ASSERT_TRUE(kv.Reserve(8).ok());
  EXPECT_EQ(r.ReclaimablePages(), 0);
  EXPECT_EQ(pool.used_pages(PageKind::kKv), 6);
  EXPECT_EQ(pool.free_pages(), 0);
  pool.set_reclaimer(nullptr);
}

}  // namespace
}  // namespace loraserve
