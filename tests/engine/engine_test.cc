// Engine on the real tiny-llama fixture, on every backend (CUDA instances
// skip where there is no device): request validation and refusals before
// acceptance, greedy outputs equal to the HF+PEFT goldens (on CUDA up to a
// flipped near tie, backend_param.h), 32
// concurrent multi-adapter requests equal to each run alone, seeded sampling
// independent of the batch, stop strings across token boundaries, stop token
// ids, the context-length limit, adapter load semantics, event timings.
#include "engine/engine.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/engine_test_util.h"

namespace loraserve {
namespace {

using ::loraserve::testing::AdapterDir;
using ::loraserve::testing::AllBackendKinds;
using ::loraserve::testing::BackendParamName;
using ::loraserve::testing::Greedy;
using ::loraserve::testing::GreedyOn;
using ::loraserve::testing::LoadGoldens;
using ::loraserve::testing::MakeEngine;
using ::loraserve::testing::RecordingSink;
using ::loraserve::testing::RunAlone;
using ::loraserve::testing::SinkGreedyAgrees;
using ::loraserve::testing::TestOptions;
using ::testing::HasSubstr;

class EngineTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    if (auto why = testing::BackendUnavailable(GetParam())) GTEST_SKIP() << *why;
    engine_ = MakeEngine(TestOptions(GetParam()));
    ASSERT_NE(engine_, nullptr);
  }
  absl::Status Submit(GenerationRequest r) {
    return engine_->Submit(std::move(r), std::make_shared<RecordingSink>());
  }
  std::unique_ptr<Engine> engine_;
};

TEST_P(EngineTest, RefusesBadRequestsNamingTheField) {
  const std::vector<int32_t> p = {1, 2, 3};
  auto expect = [&](GenerationRequest r, absl::StatusCode code, const std::string& field) {
    const absl::Status s = Submit(std::move(r));
    EXPECT_EQ(s.code(), code) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(field));
  };
  expect(Greedy("a", "", {}, 4), absl::StatusCode::kInvalidArgument, "prompt_ids");
  expect(Greedy("a", "", {1, 512}, 4), absl::StatusCode::kInvalidArgument, "prompt_ids[1]");
  expect(Greedy("a", "", {1, -1}, 4), absl::StatusCode::kInvalidArgument, "prompt_ids[1]");
  expect(Greedy("a", "", std::vector<int32_t>(256, 5), 4), absl::StatusCode::kInvalidArgument,
         "prompt_ids");
  expect(Greedy("", "", p, 4), absl::StatusCode::kInvalidArgument, "request_id");
  expect(Greedy("a", "", p, 0), absl::StatusCode::kInvalidArgument, "stopping.max_tokens");
  GenerationRequest r = Greedy("a", "", p, 4);
  r.sampling.top_p = 0;
  expect(r, absl::StatusCode::kInvalidArgument, "top_p");
  r = Greedy("a", "", p, 4);
  r.stopping.stop = {""};
  expect(r, absl::StatusCode::kInvalidArgument, "stopping.stop[0]");
  r = Greedy("a", "", p, 4);
  r.stopping.stop_token_ids = {600};
  expect(r, absl::StatusCode::kInvalidArgument, "stopping.stop_token_ids[0]");
  expect(Greedy("a", "no_such_adapter", p, 4), absl::StatusCode::kNotFound, "no_such_adapter");
  EXPECT_TRUE(engine_->WaitIdle(absl::Seconds(10)).ok());
  EXPECT_EQ(engine_->Stats().running + engine_->Stats().waiting, 0);
  EXPECT_FALSE(engine_->Abort("a"));
}

TEST_P(EngineTest, GreedyMatchesGoldensAlone) {
  int i = 0;
  for (const auto& g : LoadGoldens()) {
    auto sink =
        RunAlone(*engine_, GreedyOn(GetParam(), "g" + std::to_string(i++), g.adapter, g.prompt, 8));
    EXPECT_TRUE(SinkGreedyAgrees(GetParam(), *sink, g.greedy)) << g.name;
    const GenerationEvent end = sink->terminal();
    EXPECT_EQ(end.kind, GenerationEvent::Kind::kFinished) << g.name;
    EXPECT_EQ(end.finish, GenerationFinish::kLength) << g.name;
    EXPECT_EQ(end.completion_tokens, 8);
    EXPECT_EQ(end.prompt_tokens, static_cast<int32_t>(g.prompt.size()));
    EXPECT_EQ(sink->terminals(), 1);
    // Timings are complete and ordered.
    const RequestTimings& t = end.timings;
    EXPECT_LE(t.arrival, t.accepted);
    EXPECT_LE(t.accepted, t.first_scheduled);
    EXPECT_LE(t.first_scheduled, t.first_token);
    EXPECT_LE(t.first_token, t.last_token);
    EXPECT_LE(t.last_token, t.end);
    EXPECT_NE(t.end, absl::InfinitePast());
  }
}

// 32 requests over the base model and every fixture adapter, submitted at
// once, produce exactly what each produces alone (and the goldens).
TEST_P(EngineTest, ConcurrentMixedAdaptersEqualAlone) {
  const auto goldens = LoadGoldens();
  struct Case {
    std::string adapter;
    std::vector<int32_t> prompt;
    const std::vector<int32_t>* golden = nullptr;
  };
  std::vector<Case> cases;
  for (int i = 0; i < 32; ++i) {
    const auto& g = goldens[static_cast<size_t>(i) % goldens.size()];
    Case c{g.adapter, g.prompt, &g.greedy};
    if (i >= static_cast<int>(goldens.size())) {  // variants: other adapter, cut prompt
      const auto& names = testing::FixtureAdapters();
      c.adapter = i % 6 == 0 ? "" : names[static_cast<size_t>(i) % names.size()];
      c.prompt.resize(c.prompt.size() - static_cast<size_t>(i % 5));
      c.golden = nullptr;
    }
    cases.push_back(std::move(c));
  }
  std::vector<std::vector<int32_t>> alone;
  for (size_t i = 0; i < cases.size(); ++i) {
    auto sink = RunAlone(*engine_, GreedyOn(GetParam(), "alone" + std::to_string(i),
                                            cases[i].adapter, cases[i].prompt, 8));
    alone.push_back(sink->tokens());
    if (cases[i].golden != nullptr) {
      EXPECT_TRUE(SinkGreedyAgrees(GetParam(), *sink, *cases[i].golden)) << i;
    }
  }
  std::vector<std::shared_ptr<RecordingSink>> sinks;
  for (size_t i = 0; i < cases.size(); ++i) {
    sinks.push_back(std::make_shared<RecordingSink>());
    ASSERT_TRUE(engine_
                    ->Submit(GreedyOn(GetParam(), "c" + std::to_string(i), cases[i].adapter,
                                      cases[i].prompt, 8),
                             sinks.back())
                    .ok());
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    ASSERT_TRUE(sinks[i]->WaitDone()) << i;
    EXPECT_TRUE(SinkGreedyAgrees(GetParam(), *sinks[i], alone[i]))
        << "request " << i << " adapter " << cases[i].adapter;
    EXPECT_EQ(sinks[i]->terminals(), 1);
  }
  ASSERT_TRUE(engine_->WaitIdle(absl::Seconds(10)).ok());
  const EngineStats st = engine_->Stats();
  EXPECT_EQ(st.pool_pages_kv, 0);
  EXPECT_EQ(st.adapter_pins, 0);
  EXPECT_GE(st.generation_tokens_total, 64 * 8);
}

TEST_P(EngineTest, SeededSamplingIndependentOfBatch) {
  if (GetParam() != BackendKind::kCpu) {
    // Not a missing device: bf16 logits move with the batch (another GEMM
    // algorithm per M flips roundings) and DESIGN.md promises no batch
    // invariance on the GPU, so a seeded draw may legitimately change.
    GTEST_SKIP() << "sampling is batch-invariant only on the fp32 CPU backend";
  }
  const auto goldens = LoadGoldens();
  auto sampled = [](const std::string& id, const std::string& adapter,
                    const std::vector<int32_t>& prompt, uint64_t seed) {
    GenerationRequest r = Greedy(id, adapter, prompt, 16);
    r.sampling.temperature = 0.9f;
    r.sampling.top_p = 0.95f;
    r.sampling.top_k = 50;
    r.sampling.seed = seed;
    r.sampling.top_logprobs = 2;
    return r;
  };
  auto alone = RunAlone(*engine_, sampled("alone", "r8_all", goldens[0].prompt, 1234));
  ASSERT_EQ(alone->tokens().size(), 16u);
  std::vector<std::shared_ptr<RecordingSink>> sinks;
  for (int i = 0; i < 8; ++i) {
    sinks.push_back(std::make_shared<RecordingSink>());
    const auto& g = goldens[static_cast<size_t>(i + 3) % goldens.size()];
    GenerationRequest r = i == 4 ? sampled("x", "r8_all", goldens[0].prompt, 1234)
                                 : sampled("o" + std::to_string(i), g.adapter, g.prompt, 99 + i);
    ASSERT_TRUE(engine_->Submit(std::move(r), sinks.back()).ok());
  }
  for (auto& s : sinks) ASSERT_TRUE(s->WaitDone());
  EXPECT_EQ(sinks[4]->tokens(), alone->tokens());
  // Logprobs came with every token, top-2 each.
  int n = 0;
  for (const auto& e : sinks[4]->events()) {
    if (e.kind != GenerationEvent::Kind::kDelta) continue;
    ASSERT_EQ(e.logprobs.size(), 1u);
    EXPECT_EQ(e.logprobs[0].top.size(), 2u);
    ++n;
  }
  EXPECT_EQ(n, 16);
}

// A stop string spanning a token boundary of the greedy text is caught; the
// emitted text ends right before it.
TEST_P(EngineTest, StopStringAcrossTokens) {
  const auto goldens = LoadGoldens();
  for (const auto& g : goldens) {
    auto sink = RunAlone(*engine_, Greedy("plain-" + g.name, g.adapter, g.prompt, 24));
    // Per-token texts and their boundaries.
    std::vector<std::string> pieces;
    for (const auto& e : sink->events()) {
      if (e.kind == GenerationEvent::Kind::kDelta) pieces.push_back(e.text);
    }
    const std::string full = sink->text();
    auto is_ascii_word = [](const std::string& s) {
      if (s.size() < 2) return false;
      for (unsigned char c : s) {
        if (c >= 0x80) return false;
      }
      return true;
    };
    size_t offset = 0;
    for (size_t k = 0; k + 1 < pieces.size(); ++k) {
      offset += pieces[k].size();
      if (!is_ascii_word(pieces[k]) || !is_ascii_word(pieces[k + 1])) continue;
      const std::string stop = full.substr(offset - 2, 4);  // 2 bytes each side
      const size_t at = full.find(stop);
      GenerationRequest r = Greedy("stop-" + g.name, g.adapter, g.prompt, 24);
      r.stopping.stop = {stop};
      auto stopped = RunAlone(*engine_, std::move(r));
      const GenerationEvent end = stopped->terminal();
      EXPECT_EQ(end.finish, GenerationFinish::kStop);
      EXPECT_EQ(end.matched_stop, stop);
      EXPECT_EQ(stopped->text(), full.substr(0, at)) << "stop \"" << stop << "\"";
      SUCCEED() << g.name << ": stop \"" << stop << "\"";
      return;
    }
  }
  FAIL() << "no greedy text with two adjacent ASCII tokens of >= 2 bytes";
}

TEST_P(EngineTest, StopTokenIdsEosAndContextLength) {
  const auto g = LoadGoldens()[0];
  // This backend's own greedy ids (the goldens' on the CPU; a flipped near
  // tie may change them on CUDA, GreedyMatchesGoldensAlone checks that).
  const std::vector<int32_t> greedy =
      RunAlone(*engine_, Greedy("own", g.adapter, g.prompt, 8))->tokens();
  ASSERT_EQ(greedy.size(), 8u);
  // The 3rd greedy token as a stop token: 3 tokens, finish kStop.
  GenerationRequest r = Greedy("st", g.adapter, g.prompt, 8);
  r.stopping.stop_token_ids = {greedy[2]};
  auto sink = RunAlone(*engine_, std::move(r));
  std::vector<int32_t> want(greedy.begin(), greedy.begin() + 3);
  // Unless the 3rd token also came earlier.
  want.erase(std::find(want.begin(), want.end(), greedy[2]) + 1, want.end());
  EXPECT_EQ(sink->tokens(), want);
  EXPECT_EQ(sink->terminal().finish, GenerationFinish::kStop);
  EXPECT_EQ(sink->terminal().matched_stop, std::to_string(greedy[2]));
  // No max_tokens: the context (256) ends it.
  GenerationRequest c = Greedy("ctx", "", std::vector<int32_t>(250, 7), 8);
  c.stopping.max_tokens.reset();
  auto ctx = RunAlone(*engine_, std::move(c));
  EXPECT_EQ(ctx->tokens().size(), 6u);
  EXPECT_EQ(ctx->terminal().finish, GenerationFinish::kContextLength);
  EXPECT_EQ(ctx->terminal().completion_tokens, 6);
}

TEST_P(EngineTest, AdapterLoadSemantics) {
  auto again = engine_->LoadAdapter("r8_all", AdapterDir("r8_all"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->already_loaded);
  EXPECT_EQ(again->adapter.ranks, std::vector<int32_t>{8});
  auto other = engine_->LoadAdapter("r8_all", AdapterDir("r2_regex"));
  EXPECT_EQ(other.status().code(), absl::StatusCode::kAlreadyExists) << other.status();
  auto missing = engine_->LoadAdapter("nope", AdapterDir("does_not_exist"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound) << missing.status();
  EXPECT_EQ(engine_->LoadAdapter("", AdapterDir("r8_all")).status().code(),
            absl::StatusCode::kInvalidArgument);
  const auto list = engine_->ListAdapters();
  ASSERT_EQ(list.size(), testing::FixtureAdapters().size());
  std::set<std::string> names;
  for (const auto& d : list) names.insert(d.name);
  EXPECT_TRUE(names.contains("r64_mlp_layer1_bf16"));
  EXPECT_TRUE(engine_->UnloadAdapter("r2_regex").ok());
  EXPECT_EQ(engine_->UnloadAdapter("r2_regex").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Submit(Greedy("u", "r2_regex", {1, 2}, 2)).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(engine_->ListAdapters().size(), testing::FixtureAdapters().size() - 1);
}

INSTANTIATE_TEST_SUITE_P(Backends, EngineTest, ::testing::ValuesIn(AllBackendKinds()),
                         BackendParamName);

}  // namespace
}  // namespace loraserve
