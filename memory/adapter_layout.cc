#include "memory/adapter_layout.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "kernels/op_args.h"

namespace loraserve {
namespace {

// Bump placement over pages; items never span pages.
class PagePacker {
 public:
  explicit PagePacker(int64_t page_bytes) : page_bytes_(page_bytes) {}

  // False when `bytes` is larger than a page.
  bool Place(int64_t bytes, PagePlace* place) {
    if (bytes > page_bytes_) return false;
    int64_t at = (cursor_ + kRowAlign - 1) / kRowAlign * kRowAlign;
    if (used_.empty() || at + bytes > page_bytes_) {
      used_.push_back(0);
      at = 0;
    }
    place->page = static_cast<int32_t>(used_.size()) - 1;
    place->offset = static_cast<int32_t>(at);
    cursor_ = at + bytes;
    used_.back() = static_cast<int32_t>(cursor_);
    return true;
  }
  std::vector<int32_t> TakeUsed() { return std::move(used_); }

 private:
  int64_t page_bytes_;
  int64_t cursor_ = 0;
  std::vector<int32_t> used_;
};

}  // namespace

absl::StatusOr<AdapterLayout> AdapterLayout::Plan(const AdapterWeights& weights,
                                                  int64_t page_bytes, DType dtype) {
  AdapterLayout layout;
  layout.page_bytes = page_bytes;
  layout.dtype = dtype;
  layout.num_layers = weights.num_layers();
  if (weights.num_modules() != kNumAdapterModules) {
    return absl::InvalidArgumentError(absl::StrCat("adapter has ", weights.num_modules(),
                                                   " modules per layer, expected ",
                                                   kNumAdapterModules));
  }
  if (page_bytes <= 0 || page_bytes > (int64_t{1} << 30)) {
    return absl::InvalidArgumentError(absl::StrCat("bad page_bytes ", page_bytes));
  }
  const int64_t elt = static_cast<int64_t>(DTypeSize(dtype));
  PagePacker packer(page_bytes);
  layout.modules.resize(static_cast<size_t>(layout.num_layers) * kNumAdapterModules);
  auto where = [](int l, int m) { return absl::StrCat("layer ", l, " module ", m); };
  for (int l = 0; l < layout.num_layers; ++l) {
    for (int m = 0; m < kNumAdapterModules; ++m) {
      const ModuleWeightsView w = weights.ModuleView(l, m);
      ModulePlan& p = layout.modules[static_cast<size_t>(l) * kNumAdapterModules + m];
      if (w.rank < 0 || w.rank > kMaxLoraRank) {
        return absl::InvalidArgumentError(absl::StrCat(where(l, m), ": rank ", w.rank,
                                                       " outside [0, ", kMaxLoraRank, "]"));
      }
      if (w.rank == 0) continue;
      if (w.a == nullptr || w.b_t == nullptr || w.in <= 0 || w.out <= 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(where(l, m), ": rank ", w.rank, " without A/B^T data or sizes"));
      }
      p.rank = w.rank;
      p.scale = w.scale;
      p.in = w.in;
      p.out = w.out;
      p.first_row = layout.num_rows();
      for (int ab = 0; ab < 2; ++ab) {
        const int64_t bytes = (ab == 0 ? w.in : w.out) * elt;
        for (int32_t i = 0; i < w.rank; ++i) {
          PagePlace place;
          if (!packer.Place(bytes, &place)) {
            return absl::InvalidArgumentError(absl::StrCat(
                where(l, m), ": a rank-row of ", bytes, " bytes does not fit a pool page of ",
                page_bytes, " bytes (page_bytes must be >= the largest row)"));
          }
          layout.rows.push_back(place);
          layout.row_bytes += bytes;
        }
      }
    }
  }
  for (ModulePlan& p : layout.modules) {
    if (p.rank == 0) continue;
    const int64_t bytes = int64_t{p.rank} * static_cast<int64_t>(sizeof(int64_t));
    if (!packer.Place(bytes, &p.a_table) || !packer.Place(bytes, &p.bt_table)) {
      return absl::InvalidArgumentError(absl::StrCat("a row-offset table of ", bytes,
                                                     " bytes does not fit a pool page of ",
                                                     page_bytes, " bytes"));
    }
  }
  layout.page_used = packer.TakeUsed();
  layout.num_pages = static_cast<int32_t>(layout.page_used.size());
  return layout;
}

void AdapterLayout::Fill(const AdapterWeights& weights, const int32_t* pool_pages,
                         uint8_t* staging) const {
  auto at = [&](PagePlace p) { return staging + p.page * page_bytes + p.offset; };
  for (int l = 0; l < num_layers; ++l) {
    for (int m = 0; m < kNumAdapterModules; ++m) {
      const ModulePlan& p = module(l, m);
      if (p.rank == 0) continue;
      const ModuleWeightsView w = weights.ModuleView(l, m);
      LS_CHECK(w.rank == p.rank && w.in == p.in && w.out == p.out)
          << "adapter weights changed after planning";
      auto* a_table = reinterpret_cast<int64_t*>(at(p.a_table));
      auto* bt_table = reinterpret_cast<int64_t*>(at(p.bt_table));
      for (int32_t i = 0; i < p.rank; ++i) {
        const PagePlace ar = rows[static_cast<size_t>(p.first_row + i)];
        const PagePlace br = rows[static_cast<size_t>(p.first_row + p.rank + i)];
        ConvertFromF32(w.a + i * p.in, at(ar), dtype, static_cast<size_t>(p.in));
        ConvertFromF32(w.b_t + i * p.out, at(br), dtype, static_cast<size_t>(p.out));
        const int64_t a_off = PoolOffset(ar, pool_pages);
        const int64_t b_off = PoolOffset(br, pool_pages);
        std::memcpy(a_table + i, &a_off, sizeof(a_off));
        std::memcpy(bt_table + i, &b_off, sizeof(b_off));
      }
    }
  }
}

}  // namespace loraserve
