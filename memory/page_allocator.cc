#include "memory/page_allocator.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace loraserve {

PageSet::PageSet(PageSet&& other) noexcept
    : allocator_(std::exchange(other.allocator_, nullptr)),
      kind_(other.kind_),
      pages_(std::move(other.pages_)) {
  other.pages_.clear();
}

PageSet& PageSet::operator=(PageSet&& other) noexcept {
  if (this != &other) {
    Reset();
    allocator_ = std::exchange(other.allocator_, nullptr);
    kind_ = other.kind_;
    pages_ = std::move(other.pages_);
    other.pages_.clear();
  }
  return *this;
}

void PageSet::Reset() {
  if (allocator_ != nullptr && !pages_.empty()) {
    allocator_->Release(kind_, pages_.data(), static_cast<int32_t>(pages_.size()));
  }
  pages_.clear();
  allocator_ = nullptr;
}

PageAllocator::PageAllocator(int32_t num_pages)
    : num_pages_(num_pages), in_use_(static_cast<size_t>(num_pages), false) {
  LS_CHECK_GE(num_pages, 0);
  free_.reserve(static_cast<size_t>(num_pages));
  for (int32_t p = num_pages - 1; p >= 0; --p) free_.push_back(p);
}

PageAllocator::~PageAllocator() {
  absl::MutexLock lock(&mu_);
  LS_CHECK_EQ(static_cast<int32_t>(free_.size()), num_pages_)
      << "PageAllocator destroyed while PageSets still hold pages";
}

int32_t PageAllocator::free_pages() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int32_t>(free_.size());
}

int32_t PageAllocator::used_pages(PageKind kind) const {
  absl::MutexLock lock(&mu_);
  return used_[static_cast<int>(kind)];
}

void PageAllocator::set_reclaimer(PageReclaimer* reclaimer) { reclaimer_ = reclaimer; }

bool PageAllocator::CanAllocate(int32_t n) const {
  if (n < 0) return false;
  const int32_t free = free_pages();
  if (n <= free) return true;
  return reclaimer_ != nullptr && n <= free + reclaimer_->ReclaimablePages();
}

void PageAllocator::ReclaimFor(int32_t n) {
  if (reclaimer_ == nullptr || n <= 0) return;
  const int32_t free = free_pages();
  if (n <= free) return;
  // All or nothing: evict only when that makes the whole request fit.
  if (n > free + reclaimer_->ReclaimablePages()) return;
  reclaimer_->Reclaim(n - free);
}

absl::Status PageAllocator::TakeLocked(int32_t n, PageKind kind, std::vector<int32_t>& out) {
  if (n < 0) return absl::InvalidArgumentError(absl::StrCat("negative page count ", n));
  if (n > static_cast<int32_t>(free_.size())) {
    return absl::ResourceExhaustedError(absl::StrCat("page pool: ", n, " pages requested, ",
                                                     free_.size(), " of ", num_pages_,
                                                     " free"));
  }
  for (int32_t i = 0; i < n; ++i) {
    const int32_t p = free_.back();
    free_.pop_back();
    LS_CHECK(!in_use_[p]) << "page " << p << " on the free list twice";
    in_use_[p] = true;
    out.push_back(p);
  }
  used_[static_cast<int>(kind)] += n;
  return absl::OkStatus();
}

absl::StatusOr<PageSet> PageAllocator::Allocate(int32_t n, PageKind kind) {
  ReclaimFor(n);
  PageSet set;
  absl::MutexLock lock(&mu_);
  std::vector<int32_t> pages;
  pages.reserve(static_cast<size_t>(n > 0 ? n : 0));
  if (absl::Status s = TakeLocked(n, kind, pages); !s.ok()) return s;
  set.allocator_ = this;
  set.kind_ = kind;
  set.pages_ = std::move(pages);
  return set;
}

absl::Status PageAllocator::Grow(PageSet& set, int32_t n, PageKind kind) {
  if (set.allocator_ != nullptr && set.allocator_ != this) {
    return absl::InvalidArgumentError("PageSet belongs to another allocator");
  }
  if (!set.pages_.empty() && set.kind_ != kind) {
    return absl::InvalidArgumentError("cannot grow a PageSet with pages of another kind");
  }
  ReclaimFor(n);
  absl::MutexLock lock(&mu_);
  if (absl::Status s = TakeLocked(n, kind, set.pages_); !s.ok()) return s;
  set.allocator_ = this;
  set.kind_ = kind;
  return absl::OkStatus();
}

void PageAllocator::Shrink(PageSet& set, int32_t n) {
  LS_CHECK(set.allocator_ == this || set.pages_.empty());
  LS_CHECK_GE(n, 0);
  LS_CHECK_LE(n, set.size());
  if (n == 0) return;
  const int32_t keep = set.size() - n;
  Release(set.kind_, set.pages_.data() + keep, n);
  set.pages_.resize(static_cast<size_t>(keep));
}

void PageAllocator::Release(PageKind kind, const int32_t* pages, int32_t n) {
  absl::MutexLock lock(&mu_);
  for (int32_t i = n - 1; i >= 0; --i) {
    const int32_t p = pages[i];
    LS_CHECK(p >= 0 && p < num_pages_ && in_use_[p]) << "double free of page " << p;
    in_use_[p] = false;
    free_.push_back(p);
  }
  used_[static_cast<int>(kind)] -= n;
  LS_CHECK_GE(used_[static_cast<int>(kind)], 0);
}

}  // namespace loraserve
