// AdapterLayout: where one adapter's rank-rows and row-offset tables go in its
// pool pages. Each (layer, module) with rank r > 0 has r A rows ([in]
// elements) and r B^T rows ([out] elements), then two int64 tables of r byte
// offsets (A rows, B^T rows) counted from the pool base: exactly the
// LoraSlice::a_row_offsets / bt_row_offsets the LoRA kernels read. The tables
// live in the adapter's own pool pages (kind adapter), so they are copied,
// published, accounted and freed together with the rows, and are device
// memory on CUDA.
//
// Packing: items (all rows in (layer, module, A then B^T) order, then all
// tables) are placed one after another, each starting kRowAlign-aligned; an
// item that does not fit in the rest of the current page starts the next
// page, so no row or table ever spans pages. Nothing is padded to a maximum
// rank: an adapter costs exactly its own rows (plus page-tail slack).
//
// Plan() runs on the engine thread (it decides how many pages to allocate);
// Fill() runs on the prefetch worker (it converts fp32 rows into a staging
// image in the pool's storage dtype). Plain data afterwards; any thread.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "common/dtype.h"
#include "memory/adapter_weights.h"

namespace loraserve {

inline constexpr int64_t kRowAlign = 16;

// A position inside an adapter's pages: local page index (0..num_pages-1) and
// byte offset within that page.
struct PagePlace {
  int32_t page = 0;
  int32_t offset = 0;
};

struct ModulePlan {
  int32_t rank = 0;
  float scale = 0.0f;
  int64_t in = 0;
  int64_t out = 0;
  int64_t first_row = 0;  // rows[first_row + i]: A row i; rows[first_row + rank + i]: B^T row i
  PagePlace a_table;      // [rank] int64
  PagePlace bt_table;     // [rank] int64
};

struct AdapterLayout {
  int64_t page_bytes = 0;
  DType dtype = DType::kF32;
  int32_t num_layers = 0;
  int32_t num_pages = 0;
  std::vector<ModulePlan> modules;  // [num_layers * kNumAdapterModules], layer-major
  std::vector<PagePlace> rows;      // every rank-row, see ModulePlan::first_row
  std::vector<int32_t> page_used;   // [num_pages]: bytes used from each page's start
  int64_t row_bytes = 0;            // sum of rank-row bytes (no alignment slack)

  const ModulePlan& module(int layer, int m) const {
    return modules[static_cast<size_t>(layer) * kNumAdapterModules + static_cast<size_t>(m)];
  }
  int64_t num_rows() const { return static_cast<int64_t>(rows.size()); }

  // Plans `weights` into pages of `page_bytes` holding `dtype` elements.
  // InvalidArgument naming the (layer, module) when a rank is outside
  // [0, kMaxLoraRank], an array is missing, or a row or table would not fit
  // in one page.
  static absl::StatusOr<AdapterLayout> Plan(const AdapterWeights& weights, int64_t page_bytes,
                                            DType dtype);

  // Writes the adapter's pages into `staging` ([num_pages, page_bytes], host):
  // rows converted to `dtype`, and the offset tables for the pool pages
  // `pool_pages` ([num_pages] page ids) of a pool with this page size.
  void Fill(const AdapterWeights& weights, const int32_t* pool_pages /* [num_pages] */,
            uint8_t* staging /* host [num_pages * page_bytes] */) const;

  // Byte offset from the pool base of `place`, given the pool page ids.
  int64_t PoolOffset(PagePlace place, const int32_t* pool_pages /* [num_pages] */) const {
    return static_cast<int64_t>(pool_pages[place.page]) * page_bytes + place.offset;
  }
};

}  // namespace loraserve
