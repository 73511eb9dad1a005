// PageAllocator: the host-side free list of the unified page pool.
//
// The pool is one backend allocation cut into `num_pages` fixed-size pages;
// this class owns only the bookkeeping (which page ids are free, and how many
// pages each kind holds), never the memory, so it is the same on CPU and CUDA.
// KV-cache blocks and adapter rank-rows both come from here (DESIGN.md,
// "Unified paged memory").
//
// API shape is query-then-commit: CanAllocate(n) answers without changing
// anything; Allocate(n, kind) commits, or fails with ResourceExhausted and
// changes nothing. Allocations are PageSet handles: move-only, growable, and
// they give their pages back when dropped.
//
// Reclaiming: an optional PageReclaimer (the adapter residency) holds pages it
// can give back on demand (idle resident adapters). CanAllocate counts them,
// and Allocate/Grow ask it to free just enough when the free list is short,
// so idle adapters are always evicted before any allocation is refused. A
// request that cannot be met even then evicts nothing.
//
// Thread-safety: without a reclaimer, all methods are safe to call from any
// thread (one internal mutex). With one, CanAllocate/Allocate/Grow call into
// it and must be called only from the reclaimer's thread (the engine thread);
// releasing pages (dropping a PageSet, Shrink) stays safe from any thread.
// The allocator must outlive every PageSet it handed out (checked at
// destruction).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace loraserve {

enum class PageKind : uint8_t { kKv = 0, kAdapter = 1 };
inline constexpr int kNumPageKinds = 2;

class PageAllocator;

// Something that holds pages it can give back when the pool runs short.
// Called without the allocator's lock held, on the allocating thread.
class PageReclaimer {
 public:
  virtual ~PageReclaimer() = default;
  // Pages Reclaim could free right now.
  virtual int32_t ReclaimablePages() const = 0;
  // Frees at least `pages` pages if it can (fewer only when it cannot),
  // returning their PageSets to the allocator; returns the pages freed.
  virtual int32_t Reclaim(int32_t pages) = 0;
};

// Pages owned by one holder (a sequence's KV blocks, one adapter's rank-rows).
// Move-only; returns its pages to the allocator when destroyed or Reset().
class PageSet {
 public:
  PageSet() = default;
  ~PageSet() { Reset(); }
  PageSet(PageSet&& other) noexcept;
  PageSet& operator=(PageSet&& other) noexcept;
  PageSet(const PageSet&) = delete;
  PageSet& operator=(const PageSet&) = delete;

  // Page ids in allocation order (a KV block table reads them in this order).
  const std::vector<int32_t>& pages() const { return pages_; }
  int32_t size() const { return static_cast<int32_t>(pages_.size()); }
  bool empty() const { return pages_.empty(); }
  PageKind kind() const { return kind_; }

  // Returns every page to the allocator; the set is empty afterwards.
  void Reset();

 private:
  friend class PageAllocator;
  PageAllocator* allocator_ = nullptr;
  PageKind kind_ = PageKind::kKv;
  std::vector<int32_t> pages_;
};

class PageAllocator {
 public:
  // `num_pages` >= 0 pages, ids 0..num_pages-1, all free.
  explicit PageAllocator(int32_t num_pages);
  ~PageAllocator();
  PageAllocator(const PageAllocator&) = delete;
  PageAllocator& operator=(const PageAllocator&) = delete;

  int32_t num_pages() const { return num_pages_; }
  int32_t free_pages() const;
  int32_t used_pages(PageKind kind) const;

  // Installs (or, with nullptr, removes) the reclaimer; it must outlive its
  // installation. See the thread-safety note above.
  void set_reclaimer(PageReclaimer* reclaimer);

  // True when `n` more pages could be allocated right now, counting pages the
  // reclaimer would free.
  bool CanAllocate(int32_t n) const;

  // A new PageSet of `n` pages of `kind`, reclaiming pages first if the free
  // list is short; ResourceExhausted (naming the request and the free count)
  // when fewer than `n` are free even after reclaiming, with no change.
  absl::StatusOr<PageSet> Allocate(int32_t n, PageKind kind);

  // Adds `n` pages to `set` (which must come from this allocator, or be empty
  // and then takes `kind`); all or nothing; reclaims as Allocate does.
  absl::Status Grow(PageSet& set, int32_t n, PageKind kind);

  // Gives back the last `n` pages of `set` (n <= set.size()).
  void Shrink(PageSet& set, int32_t n);

 private:
  friend class PageSet;
  void Release(PageKind kind, const int32_t* pages /* [n] */, int32_t n);
  // Reclaims pages when fewer than `n` are free and reclaiming can cover it.
  void ReclaimFor(int32_t n);
  absl::Status TakeLocked(int32_t n, PageKind kind, std::vector<int32_t>& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int32_t num_pages_;
  PageReclaimer* reclaimer_ = nullptr;  // set and used on the allocating thread only
  mutable absl::Mutex mu_;
  // Free page ids; popped from the back, so low ids are handed out first.
  std::vector<int32_t> free_ ABSL_GUARDED_BY(mu_);
  int32_t used_[kNumPageKinds] ABSL_GUARDED_BY(mu_) = {0, 0};
  // Debug bitmap: true while a page is handed out (catches double frees).
  std::vector<bool> in_use_ ABSL_GUARDED_BY(mu_);
};

}  // namespace loraserve
