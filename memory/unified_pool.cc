#include "memory/unified_pool.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "kernels/op_args.h"

namespace loraserve {

absl::StatusOr<int64_t> ComputePageBytes(const PoolGeometry& g, size_t elt_size) {
  if (g.num_layers <= 0 || g.num_kv_heads <= 0 || g.head_dim <= 0 || g.block_tokens <= 0 ||
      g.max_row_elems <= 0 || elt_size == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "pool geometry: num_layers=", g.num_layers, ", num_kv_heads=", g.num_kv_heads,
        ", head_dim=", g.head_dim, ", block_tokens=", g.block_tokens,
        ", max_row_elems=", g.max_row_elems, " must all be > 0"));
  }
  const int64_t kv = MakeKvLayout(g, 0).MinBlockBytes(elt_size);
  const int64_t row = g.max_row_elems * static_cast<int64_t>(elt_size);
  const int64_t table = int64_t{kMaxLoraRank} * static_cast<int64_t>(sizeof(int64_t));
  const int64_t bytes = std::max({kv, row, table});
  return (bytes + kPageAlign - 1) / kPageAlign * kPageAlign;
}

KvLayout MakeKvLayout(const PoolGeometry& g, int64_t page_bytes) {
  KvLayout layout;
  layout.num_layers = g.num_layers;
  layout.num_kv_heads = g.num_kv_heads;
  layout.head_dim = g.head_dim;
  layout.block_tokens = g.block_tokens;
  layout.block_stride_bytes = page_bytes;
  return layout;
}

absl::StatusOr<PoolSize> ParsePoolSize(std::string_view flag) {
  const std::string s(flag);
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        "pool size \"", s, "\": expected bytes (e.g. 1073741824, 512MiB, 4GiB, 100MB) or a "
        "fraction of free device memory in (0, 1] (e.g. 0.9)"));
  };
  if (s.find('.') != std::string::npos) {
    double f = 0;
    if (!absl::SimpleAtod(s, &f) || !(f > 0.0) || f > 1.0) return bad();
    return PoolSize{0, f};
  }
  size_t digits = 0;
  while (digits < s.size() && std::isdigit(static_cast<unsigned char>(s[digits]))) ++digits;
  if (digits == 0) return bad();
  const std::string suffix = s.substr(digits);
  int64_t unit = 1;
  if (suffix.empty() || suffix == "B") {
    unit = 1;
  } else if (suffix == "KiB") {
    unit = int64_t{1} << 10;
  } else if (suffix == "MiB") {
    unit = int64_t{1} << 20;
  } else if (suffix == "GiB") {
    unit = int64_t{1} << 30;
  } else if (suffix == "KB") {
    unit = 1000;
  } else if (suffix == "MB") {
    unit = 1000 * 1000;
  } else if (suffix == "GB") {
    unit = 1000 * 1000 * 1000;
  } else {
    return bad();
  }
  int64_t n = 0;
  if (!absl::SimpleAtoi(s.substr(0, digits), &n) || n <= 0 ||
      n > std::numeric_limits<int64_t>::max() / unit) {
    return bad();
  }
  return PoolSize{n * unit, 0.0};
}

absl::StatusOr<int64_t> ResolvePoolBytes(const PoolSize& size, int64_t free_device_bytes) {
  if (size.bytes > 0) return size.bytes;
  if (!(size.fraction > 0.0) || size.fraction > 1.0) {
    return absl::InvalidArgumentError("pool size: neither bytes nor a fraction in (0, 1]");
  }
  if (free_device_bytes < 0) {
    return absl::InvalidArgumentError(
        "pool size: a fraction of free device memory needs a backend that reports free "
        "memory; give an absolute size instead (e.g. 2GiB)");
  }
  return static_cast<int64_t>(std::floor(size.fraction * static_cast<double>(free_device_bytes)));
}

absl::StatusOr<std::unique_ptr<UnifiedPool>> UnifiedPool::Create(const Options& options) {
  if (options.backend == nullptr) return absl::InvalidArgumentError("UnifiedPool: no backend");
  const int64_t elt = static_cast<int64_t>(options.backend->elt_size());
  if (options.page_bytes <= 0 || options.page_bytes % elt != 0 ||
      options.page_bytes % static_cast<int64_t>(sizeof(int64_t)) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "UnifiedPool: page_bytes=", options.page_bytes,
        " must be > 0 and a multiple of the element size and of 8"));
  }
  const int64_t pages = options.pool_bytes / options.page_bytes;
  if (pages < 1 || pages > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "UnifiedPool: pool_bytes=", options.pool_bytes, " gives ", pages, " pages of ",
        options.page_bytes, " bytes (need 1 to 2^31-1)"));
  }
  ASSIGN_OR_RETURN(DeviceBuffer buffer,
                   options.backend->Allocate(static_cast<size_t>(pages * options.page_bytes)));
  return std::unique_ptr<UnifiedPool>(new UnifiedPool(
      options.backend, std::move(buffer), options.page_bytes, static_cast<int32_t>(pages)));
}

PoolStats UnifiedPool::stats() const {
  PoolStats s;
  s.page_bytes = page_bytes_;
  s.total_pages = allocator_.num_pages();
  s.free_pages = allocator_.free_pages();
  s.kv_pages = allocator_.used_pages(PageKind::kKv);
  s.adapter_pages = allocator_.used_pages(PageKind::kAdapter);
  return s;
}

}  // namespace loraserve
