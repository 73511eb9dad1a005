// Engine lifecycle on the CPU tiny-llama fixture: cancellation at random
// points returns every KV block and adapter pin; preemption under a tiny KV
// cache leaves greedy outputs unchanged; a request that can never fit ends
// with an error; unload while running keeps the original weights and a
// replacement under the same name is a new adapter; the waiting-queue bound;
// shutdown with and without grace.
#include <algorithm>
#include <random>
#include <thread>
#include <utility>

#include "engine/engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/engine_test_util.h"

namespace loraserve {
namespace {

using ::loraserve::testing::AdapterDir;
using ::loraserve::testing::FixtureAdapters;
using ::loraserve::testing::Greedy;
using ::loraserve::testing::LoadGoldens;
using ::loraserve::testing::MakeEngine;
using ::loraserve::testing::MeasureAdapterPages;
using ::loraserve::testing::RecordingSink;
using ::loraserve::testing::RunAlone;
using ::loraserve::testing::TestOptions;

TEST(EngineLifecycleTest, CancellationAtRandomPointsFreesEverything) {
  auto engine = MakeEngine(TestOptions());
  ASSERT_NE(engine, nullptr);
  const EngineStats start = engine->Stats();
  const auto goldens = LoadGoldens();
  std::mt19937 rng(42);
  constexpr int kRequests = 24;
  constexpr int kMaxTokens = 12;
  std::vector<std::shared_ptr<RecordingSink>> sinks;
  std::vector<int> abort_after;  // 0: right after Submit; > kMaxTokens: never
  for (int i = 0; i < kRequests; ++i) {
    const auto& g = goldens[static_cast<size_t>(i) % goldens.size()];
    const int k = std::uniform_int_distribution<int>(0, kMaxTokens + 3)(rng);
    abort_after.push_back(k);
    auto sink = std::make_shared<RecordingSink>();
    const std::string id = "r" + std::to_string(i);
    Engine* e = engine.get();
    if (k >= 1 && k <= kMaxTokens) {
      sink->on_delta = [e, id, k](int n) {
        if (n == k) e->Abort(id);
      };
    }
    sinks.push_back(sink);
    ASSERT_TRUE(engine->Submit(Greedy(id, g.adapter, g.prompt, kMaxTokens), sink).ok());
    if (k == 0) {
      EXPECT_TRUE(engine->Abort(id));
    }
  }
  ASSERT_TRUE(engine->WaitIdle(absl::Seconds(20)).ok());
  int cancelled = 0;
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_EQ(sinks[i]->terminals(), 1) << i;
    const GenerationEvent end = sinks[i]->terminal();
    ASSERT_EQ(end.kind, GenerationEvent::Kind::kFinished) << i;
    const int k = abort_after[i];
    if (k < kMaxTokens) {  // aborted before the last token: exactly k tokens
      EXPECT_EQ(end.finish, GenerationFinish::kCancelled) << i;
      EXPECT_EQ(end.error.code(), absl::StatusCode::kCancelled) << i;
      if (k > 0) {
        EXPECT_EQ(static_cast<int>(sinks[i]->tokens().size()), k) << i;
      }
      ++cancelled;
    } else {  // aborted at (or after) the last token: finished normally
      EXPECT_EQ(end.finish, GenerationFinish::kLength) << i;
      EXPECT_EQ(static_cast<int>(sinks[i]->tokens().size()), kMaxTokens) << i;
    }
  }
  EXPECT_GT(cancelled, 5);
  const EngineStats end = engine->Stats();
  // Every KV page is back; idle adapters may stay resident in the pool.
  EXPECT_EQ(end.pool_pages_free + end.pool_pages_adapter, start.pool_pages_free);
  EXPECT_EQ(end.pool_pages_kv, 0);
  EXPECT_EQ(end.adapter_pins, 0);
  EXPECT_EQ(end.running + end.waiting, 0);
  for (const auto& d : engine->ListAdapters()) EXPECT_EQ(d.in_use, 0) << d.name;
  EXPECT_FALSE(engine->Abort("r0"));
}

TEST(EngineLifecycleTest, PreemptionLeavesOutputsUnchanged) {
  // The unified pool: room for the largest adapter and 24 KV blocks (96
  // tokens): a few requests at a time.
  const std::vector<int64_t> pages = MeasureAdapterPages();
  ASSERT_FALSE(pages.empty());
  EngineOptions o = TestOptions();
  o.kv_cache_blocks = *std::max_element(pages.begin(), pages.end()) + 24;
  auto engine = MakeEngine(o);
  ASSERT_NE(engine, nullptr);
  const auto goldens = LoadGoldens();
  std::vector<std::shared_ptr<RecordingSink>> sinks;
  for (size_t i = 0; i < goldens.size(); ++i) {
    sinks.push_back(std::make_shared<RecordingSink>());
    ASSERT_TRUE(engine
                    ->Submit(Greedy("p" + std::to_string(i), goldens[i].adapter, goldens[i].prompt, 8),
                             sinks.back())
                    .ok());
  }
  for (size_t i = 0; i < goldens.size(); ++i) {
    ASSERT_TRUE(sinks[i]->WaitDone()) << i;
    EXPECT_EQ(sinks[i]->tokens(), goldens[i].greedy) << goldens[i].name;
    EXPECT_EQ(sinks[i]->terminals(), 1);
  }
  ASSERT_TRUE(engine->WaitIdle(absl::Seconds(10)).ok());
  const EngineStats st = engine->Stats();
  EXPECT_GT(st.preemptions_total, 0) << "the pool was meant to force preemption";
  EXPECT_EQ(st.pool_pages_kv, 0);
  EXPECT_EQ(st.pool_pages_free + st.pool_pages_adapter, o.kv_cache_blocks);
  EXPECT_EQ(st.adapter_pins, 0);
}

TEST(EngineLifecycleTest, RequestLargerThanThePoolFails) {
  EngineOptions o = TestOptions();
  o.kv_cache_blocks = 24;  // 96 tokens
  auto engine = MakeEngine(o, /*load_adapters=*/false);
  ASSERT_NE(engine, nullptr);
  // Needs 120 + 1 tokens of KV: can never run.
  auto too_big = RunAlone(*engine, Greedy("big", "", std::vector<int32_t>(120, 3), 1));
  EXPECT_EQ(too_big->terminal().kind, GenerationEvent::Kind::kError);
  EXPECT_EQ(too_big->terminal().error.code(), absl::StatusCode::kResourceExhausted);
  const auto g = LoadGoldens()[0];
  auto good = RunAlone(*engine, Greedy("good", "", g.prompt, 8));
  EXPECT_EQ(good->tokens(), g.greedy);
  ASSERT_TRUE(engine->WaitIdle(absl::Seconds(10)).ok());
  const EngineStats st = engine->Stats();
  EXPECT_EQ(st.pool_pages_free, 24);
  EXPECT_EQ(st.adapter_pins, 0);
}

TEST(EngineLifecycleTest, UnloadWhileRunningKeepsOriginalAdapter) {
  auto engine = MakeEngine(TestOptions(), /*load_adapters=*/false);
  ASSERT_NE(engine, nullptr);
  const auto g = LoadGoldens()[0];
  ASSERT_TRUE(engine->LoadAdapter("a", AdapterDir("r8_all")).ok());
  const auto with_r8 = RunAlone(*engine, Greedy("ref1", "a", g.prompt, 8))->tokens();
  ASSERT_TRUE(engine->LoadAdapter("b", AdapterDir("r2_regex")).ok());
  const auto with_r2 = RunAlone(*engine, Greedy("ref2", "b", g.prompt, 8))->tokens();
  ASSERT_NE(with_r8, with_r2);

  auto first = std::make_shared<RecordingSink>();
  first->block_first = true;  // holds the engine thread at its first token
  ASSERT_TRUE(engine->Submit(Greedy("first", "a", g.prompt, 8), first).ok());
  ASSERT_TRUE(first->WaitBlocked());
  EXPECT_EQ(engine->ListAdapters()[0].in_use, 1);
  ASSERT_TRUE(engine->UnloadAdapter("a").ok());
  EXPECT_EQ(engine->Submit(Greedy("x", "a", g.prompt, 8), std::make_shared<RecordingSink>()).code(),
            absl::StatusCode::kNotFound);
  auto replaced = engine->LoadAdapter("a", AdapterDir("r2_regex"));
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  EXPECT_FALSE(replaced->already_loaded);
  auto second = std::make_shared<RecordingSink>();
  ASSERT_TRUE(engine->Submit(Greedy("second", "a", g.prompt, 8), second).ok());
  first->Release();
  ASSERT_TRUE(first->WaitDone());
  ASSERT_TRUE(second->WaitDone());
  EXPECT_EQ(first->tokens(), with_r8) << "the running request must keep its original adapter";
  EXPECT_EQ(second->tokens(), with_r2) << "the replacement is a new adapter";
  ASSERT_TRUE(engine->WaitIdle(absl::Seconds(10)).ok());
  EXPECT_EQ(engine->Stats().adapter_pins, 0);
}

TEST(EngineLifecycleTest, QueueBoundAndDuplicateIds) {
  EngineOptions o = TestOptions();
  o.max_waiting = 2;
  auto engine = MakeEngine(o, /*load_adapters=*/false);
  ASSERT_NE(engine, nullptr);
  auto blocker = std::make_shared<RecordingSink>();
  blocker->block_first = true;
  ASSERT_TRUE(engine->Submit(Greedy("blocker", "", {1, 2, 3}, 4), blocker).ok());
  ASSERT_TRUE(blocker->WaitBlocked());
  EXPECT_EQ(engine->Submit(Greedy("blocker", "", {1, 2}, 4), std::make_shared<RecordingSink>())
                .code(),
            absl::StatusCode::kAlreadyExists);
  std::vector<std::shared_ptr<RecordingSink>> sinks;
  for (int i = 0; i < 2; ++i) {
    sinks.push_back(std::make_shared<RecordingSink>());
    EXPECT_TRUE(engine->Submit(Greedy("q" + std::to_string(i), "", {4, 5}, 2), sinks.back()).ok());
  }
  EXPECT_EQ(engine->Submit(Greedy("q9", "", {4, 5}, 2), std::make_shared<RecordingSink>()).code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(engine->Stats().waiting, 2);
  blocker->Release();
  for (auto& s : sinks) ASSERT_TRUE(s->WaitDone());
  ASSERT_TRUE(blocker->WaitDone());
}

TEST(EngineLifecycleTest, ShutdownWithGraceFinishesInFlight) {
  auto engine = MakeEngine(TestOptions());
  ASSERT_NE(engine, nullptr);
  const auto goldens = LoadGoldens();
  std::vector<std::shared_ptr<RecordingSink>> sinks;
  for (size_t i = 0; i < goldens.size(); ++i) {
    sinks.push_back(std::make_shared<RecordingSink>());
    ASSERT_TRUE(engine
                    ->Submit(Greedy("s" + std::to_string(i), goldens[i].adapter, goldens[i].prompt, 8),
                             sinks.back())
                    .ok());
  }
  engine->Shutdown(absl::Seconds(30));
  for (size_t i = 0; i < goldens.size(); ++i) {
    EXPECT_EQ(sinks[i]->terminals(), 1) << i;
    EXPECT_EQ(sinks[i]->terminal().finish, GenerationFinish::kLength) << i;
    EXPECT_EQ(sinks[i]->tokens(), goldens[i].greedy) << i;
  }
  EXPECT_EQ(engine->Submit(Greedy("late", "", {1, 2}, 2), std::make_shared<RecordingSink>()).code(),
            absl::StatusCode::kUnavailable);
}

TEST(EngineLifecycleTest, ShutdownWithoutGraceCancelsInFlight) {
  auto engine = MakeEngine(TestOptions());
  ASSERT_NE(engine, nullptr);
  auto blocker = std::make_shared<RecordingSink>();
  blocker->block_first = true;
  ASSERT_TRUE(engine->Submit(Greedy("blocker", "", {1, 2, 3}, 100), blocker).ok());
  ASSERT_TRUE(blocker->WaitBlocked());
  std::vector<std::shared_ptr<RecordingSink>> sinks;
  for (int i = 0; i < 6; ++i) {
    sinks.push_back(std::make_shared<RecordingSink>());
    const std::string& a = FixtureAdapters()[static_cast<size_t>(i) % FixtureAdapters().size()];
    ASSERT_TRUE(engine->Submit(Greedy("w" + std::to_string(i), a, {7, 8, 9}, 100), sinks.back()).ok());
  }
  std::thread stopper([&] { engine->Shutdown(absl::ZeroDuration()); });
  // Submit turns Unavailable as soon as shutdown starts.
  absl::Status late;
  for (int i = 0; i < 2000; ++i) {
    late = engine->Submit(Greedy("late" + std::to_string(i), "", {1}, 1),
                          std::make_shared<RecordingSink>());
    if (late.code() == absl::StatusCode::kUnavailable) break;
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(late.code(), absl::StatusCode::kUnavailable);
  blocker->Release();
  stopper.join();
  sinks.push_back(blocker);
  for (auto& s : sinks) {
    ASSERT_EQ(s->terminals(), 1);
    EXPECT_EQ(s->terminal().finish, GenerationFinish::kCancelled);
    EXPECT_EQ(s->terminal().error.code(), absl::StatusCode::kUnavailable);
    EXPECT_LT(s->tokens().size(), 100u);
  }
  const EngineStats st = engine->Stats();
  EXPECT_EQ(st.pool_pages_kv, 0);
  EXPECT_EQ(st.adapter_pins, 0);
}

TEST(EngineLifecycleTest, DeadlineCancels) {
  auto engine = MakeEngine(TestOptions(), /*load_adapters=*/false);
  ASSERT_NE(engine, nullptr);
  GenerationRequest r = Greedy("late", "", {1, 2, 3}, 100);
  r.deadline = absl::Now() - absl::Seconds(1);
  auto sink = RunAlone(*engine, std::move(r));
  EXPECT_EQ(sink->terminal().finish, GenerationFinish::kCancelled);
  EXPECT_EQ(sink->terminal().error.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(sink->terminals(), 1);
  ASSERT_TRUE(engine->WaitIdle(absl::Seconds(10)).ok());
  EXPECT_EQ(engine->Stats().pool_pages_kv, 0);
}

}  // namespace
}  // namespace loraserve
