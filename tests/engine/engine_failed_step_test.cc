// A model step that fails (here: the backend's Logits returns an error) ends
// every request of that batch with exactly one error event naming the cause,
// frees their KV, and the engine keeps serving: the next request still gets
// its golden tokens.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/engine_test_util.h"
#include "tests/memory/gated_backend.h"

namespace loraserve {
namespace {

using ::loraserve::testing::Greedy;
using ::loraserve::testing::LoadGoldens;
using ::loraserve::testing::RecordingSink;
using ::loraserve::testing::RunAlone;
using ::loraserve::testing::TestOptions;
using ::testing::HasSubstr;

TEST(EngineFailedStepTest, FailedStepEndsItsRequestsWithAnErrorAndServingGoesOn) {
  testing_memory::GatedBackend* gated = nullptr;
  EngineOptions o = TestOptions();
  o.backend_factory = [&gated]() -> absl::StatusOr<std::unique_ptr<Backend>> {
    auto b = std::make_unique<testing_memory::GatedBackend>();
    gated = b.get();
    return std::unique_ptr<Backend>(std::move(b));
  };
  auto created = Engine::Create(o);
  ASSERT_TRUE(created.ok()) << created.status();
  std::unique_ptr<Engine> engine = std::move(created).value();
  ASSERT_NE(gated, nullptr);

  const auto goldens = LoadGoldens();
  ASSERT_GE(goldens.size(), 2u);
  gated->FailLogits(absl::InternalError("injected device fault"));
  std::vector<std::shared_ptr<RecordingSink>> sinks;
  for (int i = 0; i < 2; ++i) {
    const auto& g = goldens[static_cast<size_t>(i)];
    auto sink = std::make_shared<RecordingSink>();
    ASSERT_TRUE(engine->Submit(Greedy("f" + std::to_string(i), g.adapter, g.prompt, 8), sink).ok());
    sinks.push_back(sink);
  }
  for (const auto& sink : sinks) {
    ASSERT_TRUE(sink->WaitDone());
    EXPECT_EQ(sink->terminals(), 1);
    EXPECT_TRUE(sink->tokens().empty());
    const GenerationEvent end = sink->terminal();
    EXPECT_EQ(end.kind, GenerationEvent::Kind::kError);
    EXPECT_EQ(end.error.code(), absl::StatusCode::kInternal);
    EXPECT_THAT(std::string(end.error.message()), HasSubstr("model step"));
    EXPECT_THAT(std::string(end.error.message()), HasSubstr("injected device fault"));
  }
  ASSERT_TRUE(engine->WaitIdle(absl::Seconds(10)).ok());
  EXPECT_EQ(engine->Stats().pool_pages_kv, 0);

  gated->FailLogits(absl::OkStatus());
  const auto& g = goldens[0];
  auto ok = RunAlone(*engine, Greedy("after", g.adapter, g.prompt,
                                     static_cast<int32_t>(g.greedy.size())));
  EXPECT_EQ(ok->terminal().kind, GenerationEvent::Kind::kFinished);
  EXPECT_EQ(ok->tokens(), g.greedy);
}

}  // namespace
}  // namespace loraserve
