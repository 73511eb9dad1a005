// Sizing the unified pool from backend memory (--gpu-memory-utilization):
// the pure rule with hand-computed numbers, and Engine::Create using it
// (refusing with the numbers when nothing is left; explicit sizes win).
#include "engine/engine_pool_sizing.h"

#include <string>

#include "engine/engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cpu/cpu_backend.h"
#include "tests/engine/engine_test_util.h"

namespace loraserve {
namespace {

using ::testing::HasSubstr;

constexpr size_t kGiB = size_t{1} << 30;

TEST(PoolSizingTest, TakesWhatIsLeftOfTheShareInWholePages) {
  // 80 GiB device, 20 GiB in use: 0.9 * 80 = 72 GiB budget, 52 GiB left.
  const Backend::MemoryInfo m{60 * kGiB, 80 * kGiB};
  auto bytes = PoolBytesForUtilization(m, 0.9, 2 << 20);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  const int64_t budget = static_cast<int64_t>(0.9 * 80.0 * static_cast<double>(kGiB));
  const int64_t left = budget - static_cast<int64_t>(20 * kGiB);
  EXPECT_EQ(*bytes, left / (2 << 20) * (2 << 20));
  EXPECT_EQ(*bytes % (2 << 20), 0);

  // A page size that does not divide: rounded down to whole pages.
  auto odd = PoolBytesForUtilization(Backend::MemoryInfo{1000, 1000}, 1.0, 300);
  ASSERT_TRUE(odd.ok());
  EXPECT_EQ(*odd, 900);
  // utilization 1 with nothing in use: everything.
  auto all = PoolBytesForUtilization(Backend::MemoryInfo{kGiB, kGiB}, 1.0, 4096);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, static_cast<int64_t>(kGiB));
}

TEST(PoolSizingTest, RefusesWithTheNumbersWhenNothingIsLeft) {
  // 0.5 * 80 = 40 GiB budget, but 50 GiB are used already.
  auto none = PoolBytesForUtilization(Backend::MemoryInfo{30 * kGiB, 80 * kGiB}, 0.5, 1 << 20);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(none.status().message()),
              HasSubstr("gpu_memory_utilization=0.5 allows 42949672960 of 85899345920 bytes, "
                        "but 53687091200 are in use"));
  // Less than min_pages pages left.
  auto few = PoolBytesForUtilization(Backend::MemoryInfo{1000, 1000}, 1.0, 300, 4);
  ASSERT_FALSE(few.ok());
  EXPECT_THAT(std::string(few.status().message()), HasSubstr("3 pool pages of 300 bytes fit"));
  for (double bad : {0.0, -0.1, 1.01}) {
    auto b = PoolBytesForUtilization(Backend::MemoryInfo{kGiB, kGiB}, bad, 4096);
    ASSERT_FALSE(b.ok());
    EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(b.status().message()), HasSubstr("must be in (0, 1]"));
  }
  EXPECT_FALSE(PoolBytesForUtilization(Backend::MemoryInfo{2, 1}, 0.5, 4096).ok());
}

TEST(PoolSizingTest, CpuBackendReportsPhysicalMemory) {
  auto cpu = CpuBackend::Create({1});
  ASSERT_TRUE(cpu.ok());
  auto m = (*cpu)->GetMemoryInfo();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_GT(m->total_bytes, size_t{64} << 20);
  EXPECT_GT(m->free_bytes, 0u);
  EXPECT_LE(m->free_bytes, m->total_bytes);
}

TEST(PoolSizingTest, EngineSizesFromUtilizationUnlessASizeIsGiven) {
  EngineOptions o = testing::TestOptions();
  o.kv_cache_blocks = 0;
  o.pool_bytes = 0;
  o.gpu_memory_utilization = 1e-9;  // far below what the process already uses
  auto refused = Engine::Create(o);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("gpu_memory_utilization=1e-09"));

  o.kv_cache_blocks = 64;  // an explicit size wins over the utilization
  auto sized = Engine::Create(o);
  ASSERT_TRUE(sized.ok()) << sized.status();
  EXPECT_EQ((*sized)->Stats().pool_pages_total, 64);
}

}  // namespace
}  // namespace loraserve
