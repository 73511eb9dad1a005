// Unified pool benchmark (the memory issue's): on the CPU backend,
//   1. plain memcpy bandwidth on a 256 MiB buffer (the machine's ceiling);
//   2. host -> pool adapter copy throughput for a 7B-shaped (hidden 4096,
//      intermediate 11008, 32 layers, 32 KV heads of 128) rank-16 adapter on
//      all seven modules: AdapterLayout::Plan, Fill (pack + convert the fp32
//      rank-rows and offset tables into a staging image) and the
//      Backend::CopyToDevice of each run of consecutive pool pages, exactly
//      what the prefetcher does; reported per stage and in total as adapter
//      row bytes per second, next to the memcpy number;
//   3. PageAllocator allocate + free operations per second with 100k pages,
//      for single pages and runs of 16 (Allocate + PageSet drop), and
//      Grow/Shrink of one set.
//
// Usage: pool_bench [--reps=N]   (default 5; best of N is reported). A plain main printing a table;
// single-threaded (the prefetcher is one worker).
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common/logging.h"
#include "kernels/backend_factory.h"
#include "memory/adapter_layout.h"
#include "memory/adapter_weights.h"
#include "memory/page_allocator.h"
#include "memory/unified_pool.h"

namespace loraserve {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// rank-r LoRA on q,k,v,o,gate,up,down of every layer, every (layer, module)
// with its own pseudo-random arrays (so Fill streams the whole adapter from
// memory, as with a real one).
class BenchAdapter final : public AdapterWeights {
 public:
  BenchAdapter(int num_layers, int32_t rank, const std::array<std::array<int64_t, 2>, 7>& shapes)
      : num_layers_(num_layers), rank_(rank), shapes_(shapes) {
    uint64_t seed = 1;
    for (int l = 0; l < num_layers; ++l) {
      for (int m = 0; m < kNumAdapterModules; ++m) {
        a_.push_back(Random(static_cast<size_t>(rank * shapes[m][0]), seed++));
        bt_.push_back(Random(static_cast<size_t>(rank * shapes[m][1]), seed++));
        bytes_ += (a_.back().size() + bt_.back().size()) * sizeof(float);
      }
    }
  }
  int num_layers() const override { return num_layers_; }
  ModuleWeightsView ModuleView(int l, int m) const override {
    const size_t i = static_cast<size_t>(l) * kNumAdapterModules + static_cast<size_t>(m);
    return ModuleWeightsView{rank_, 2.0f, shapes_[m][0], shapes_[m][1], a_[i].data(),
                             bt_[i].data()};
  }
  size_t bytes() const override { return bytes_; }

 private:
  static std::vector<float> Random(size_t n, uint64_t seed) {
    std::vector<float> v(n);
    uint64_t s = seed * 6364136223846793005ull + 1442695040888963407ull;
    for (float& x : v) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      x = static_cast<float>(static_cast<double>(s >> 40) / double(1ull << 24)) * 0.02f - 0.01f;
    }
    return v;
  }
  int num_layers_;
  int32_t rank_;
  std::array<std::array<int64_t, 2>, 7> shapes_;
  std::vector<std::vector<float>> a_, bt_;  // [layer * 7 + module]
  size_t bytes_ = 0;
};

void MemcpyBench(int reps, double* gbps) {
  const size_t n = 256ull << 20;
  std::vector<uint8_t> src(n, 1), dst(n, 0);  // touched: no page faults in the timing
  std::memcpy(dst.data(), src.data(), n);     // warm-up
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    src[static_cast<size_t>(r)] = static_cast<uint8_t>(r);
    const auto t0 = Clock::now();
    std::memcpy(dst.data(), src.data(), n);
    best = std::min(best, Seconds(t0, Clock::now()));
  }
  LS_CHECK(dst[0] == src[0]);
  *gbps = static_cast<double>(n) / best / 1e9;
  std::printf("memcpy 256 MiB                       best of %d: %8.2f ms  %7.2f GB/s copied"
              " (%.2f GB/s read+write)\n",
              reps, best * 1e3, *gbps, 2 * *gbps);
}

void AdapterCopyBench(int reps, double memcpy_gbps) {
  auto backend_or = CreateBackend(BackendKind::kCpu, BackendOptions{});
  LS_CHECK(backend_or.ok()) << backend_or.status();
  std::unique_ptr<Backend> backend = std::move(backend_or).value();

  // Llama-2-7B: hidden 4096, intermediate 11008, 32 layers, 32 KV heads of 128.
  const int64_t h = 4096, im = 11008;
  const std::array<std::array<int64_t, 2>, 7> shapes = {{{h, h}, {h, h}, {h, h}, {h, h},
                                                          {h, im}, {h, im}, {im, h}}};
  const auto tb = Clock::now();
  BenchAdapter adapter(32, 16, shapes);
  const double build_s = Seconds(tb, Clock::now());

  PoolGeometry g;
  g.num_layers = 32;
  g.num_kv_heads = 32;
  g.head_dim = 128;
  g.block_tokens = 16;
  g.max_row_elems = im;
  auto page_bytes = ComputePageBytes(g, backend->elt_size());
  LS_CHECK(page_bytes.ok()) << page_bytes.status();

  auto plan0 = AdapterLayout::Plan(adapter, *page_bytes, backend->dtype());
  LS_CHECK(plan0.ok()) << plan0.status();
  // Room for the adapter twice, so the pages it gets need not be 0..n-1.
  UnifiedPool::Options po;
  po.backend = backend.get();
  po.page_bytes = *page_bytes;
  po.pool_bytes = (2 * plan0->num_pages + 2) * *page_bytes;
  auto pool = UnifiedPool::Create(po);
  LS_CHECK(pool.ok()) << pool.status();
  LS_CHECK(backend->Memset((*pool)->base(), 0, static_cast<size_t>(po.pool_bytes), StreamRef{}).ok());

  std::printf("adapter: 7B-shaped rank-16 all-module, %.1f MiB of fp32 rank-rows (built in %.2f s);"
              " pool %d pages of %.2f MiB, storage %s\n",
              static_cast<double>(plan0->row_bytes) / (1 << 20), build_s, (*pool)->num_pages(),
              static_cast<double>(*page_bytes) / (1 << 20),
              std::string(DTypeName(backend->dtype())).c_str());

  double best_plan = 1e30, best_fill = 1e30, best_copy = 1e30, best_total = 1e30;
  std::vector<uint8_t> staging;
  for (int r = 0; r < reps + 1; ++r) {  // rep 0 warms up (first-touch of staging)
    // Odd reps hold one KV page first, so the adapter lands on other page ids.
    PageSet filler;
    if (r % 2 == 1) {
      auto f = (*pool)->allocator().Allocate(1, PageKind::kKv);
      LS_CHECK(f.ok());
      filler = std::move(f).value();
    }
    const auto t0 = Clock::now();
    auto layout = AdapterLayout::Plan(adapter, *page_bytes, backend->dtype());
    LS_CHECK(layout.ok()) << layout.status();
    auto pages = (*pool)->allocator().Allocate(layout->num_pages, PageKind::kAdapter);
    LS_CHECK(pages.ok()) << pages.status();
    const auto t1 = Clock::now();
    const std::vector<int32_t>& ids = pages->pages();
    staging.assign(static_cast<size_t>(layout->num_pages * *page_bytes), 0);
    layout->Fill(adapter, ids.data(), staging.data());
    const auto t2 = Clock::now();
    for (int32_t i = 0; i < layout->num_pages;) {  // as Prefetcher::Run
      int32_t j = i + 1;
      while (j < layout->num_pages && ids[j] == ids[j - 1] + 1) ++j;
      const size_t bytes = static_cast<size_t>((j - 1 - i) * *page_bytes + layout->page_used[j - 1]);
      LS_CHECK(backend
                   ->CopyToDevice((*pool)->page(ids[i]), staging.data() + i * *page_bytes, bytes,
                                  StreamRef{})
                   .ok());
      i = j;
    }
    LS_CHECK(backend->Synchronize(StreamRef{}).ok());
    const auto t3 = Clock::now();
    if (r == 0) continue;
    best_plan = std::min(best_plan, Seconds(t0, t1));
    best_fill = std::min(best_fill, Seconds(t1, t2));
    best_copy = std::min(best_copy, Seconds(t2, t3));
    best_total = std::min(best_total, Seconds(t0, t3));
  }
  const double mb = static_cast<double>(plan0->row_bytes);
  auto row = [&](const char* what, double s) {
    std::printf("  %-34s best of %d: %8.2f ms  %7.2f GB/s  (%.0f%% of memcpy)\n", what, reps,
                s * 1e3, mb / s / 1e9, 100.0 * mb / s / 1e9 / memcpy_gbps);
  };
  std::printf("  %-34s best of %d: %8.3f ms\n", "plan + allocate pages", reps, best_plan * 1e3);
  row("fill (pack + convert to staging)", best_fill);
  row("copy staging -> pool pages", best_copy);
  row("total host -> pool", best_total);
}

void AllocatorBench(int reps) {
  constexpr int32_t kPages = 100000;
  PageAllocator alloc(kPages);
  for (int32_t run : {1, 16}) {
    const int32_t sets = kPages / run;
    std::vector<PageSet> held;
    held.reserve(static_cast<size_t>(sets));
    double best = 1e30;
    for (int r = 0; r < reps + 1; ++r) {
      const auto t0 = Clock::now();
      for (int32_t i = 0; i < sets; ++i) {
        auto s = alloc.Allocate(run, PageKind::kKv);
        LS_CHECK(s.ok());
        held.push_back(std::move(s).value());
      }
      held.clear();  // frees every set
      const double sec = Seconds(t0, Clock::now());
      if (r > 0) best = std::min(best, sec);
    }
    LS_CHECK(alloc.free_pages() == kPages);
    const double ops = 2.0 * sets;  // one Allocate + one free per set
    std::printf("  %-34s best of %d: %8.2f ms  %7.2f M ops/s  %7.2f M pages/s\n",
                run == 1 ? "allocate+free 100k x 1 page" : "allocate+free 6250 x 16 pages", reps,
                best * 1e3, ops / best / 1e6, 2.0 * kPages / best / 1e6);
  }
  {
    // One set grown 16 pages at a time to the whole pool, then shrunk back.
    double best = 1e30;
    for (int r = 0; r < reps + 1; ++r) {
      PageSet set;
      const auto t0 = Clock::now();
      for (int32_t i = 0; i < kPages / 16; ++i) LS_CHECK(alloc.Grow(set, 16, PageKind::kKv).ok());
      for (int32_t i = 0; i < kPages / 16; ++i) alloc.Shrink(set, 16);
      const double sec = Seconds(t0, Clock::now());
      if (r > 0) best = std::min(best, sec);
    }
    const double ops = 2.0 * (kPages / 16);
    std::printf("  %-34s best of %d: %8.2f ms  %7.2f M ops/s  %7.2f M pages/s\n",
                "grow+shrink one set by 16 pages", reps, best * 1e3, ops / best / 1e6,
                2.0 * kPages / best / 1e6);
  }
}

}  // namespace
}  // namespace loraserve

int main(int argc, char** argv) {
  int reps = 5;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--reps=", 0) == 0) {
      reps = std::max(1, std::atoi(a.c_str() + 7));
    } else {
      std::fprintf(stderr, "usage: %s [--reps=N]\n", argv[0]);
      return 2;
    }
  }
  double memcpy_gbps = 0;
  std::printf("== host bandwidth\n");
  loraserve::MemcpyBench(reps, &memcpy_gbps);
  std::printf("== host -> pool adapter copy (CPU backend)\n");
  loraserve::AdapterCopyBench(reps, memcpy_gbps);
  std::printf("== PageAllocator, 100k pages\n");
  loraserve::AllocatorBench(reps);
  return 0;
}
