// CpuThreadPool: every index exactly once, chunk bounds respected, inline for
// small loops, and concurrent callers serialised safely.
#include "kernels/cpu/cpu_thread_pool.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace loraserve {
namespace {

TEST(CpuThreadPool, CoversEveryIndexOnce) {
  for (int threads : {1, 2, 4}) {
    CpuThreadPool pool(threads);
    EXPECT_EQ(pool.num_threads(), threads);
    for (int64_t n : {0, 1, 7, 33, 1000}) {
      for (int64_t min_chunk : {1, 5, 64}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        std::atomic<bool> short_chunk{false};
        pool.ParallelFor(n, min_chunk, [&](int64_t b, int64_t e) {
          if (e - b < min_chunk && e != n) short_chunk = true;
          for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
        });
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)], 1) << n;
        EXPECT_FALSE(short_chunk);
      }
    }
  }
}

TEST(CpuThreadPool, ConcurrentCallersAreSerialised) {
  CpuThreadPool pool(3);
  std::atomic<int64_t> total{0};
  auto caller = [&] {
    for (int round = 0; round < 200; ++round) {
      pool.ParallelFor(100, 1, [&](int64_t b, int64_t e) { total += e - b; });
    }
  };
  std::thread a(caller), b(caller);
  a.join();
  b.join();
  EXPECT_EQ(total.load(), 2 * 200 * 100);
}

}  // namespace
}  // namespace loraserve
