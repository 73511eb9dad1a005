// Helpers for the engine tests: a recording sink (optionally blocking the
// engine thread at its first delta, or aborting after N tokens), the fixture
// goldens, and request builders. Test-only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "engine/engine.h"
#include "gtest/gtest.h"
#include "tests/golden_cases.h"
#include "tests/engine/backend_param.h"

namespace loraserve::testing {

inline std::string TinyLlamaDir() { return std::string(LORASERVE_TEST_DATA_DIR) + "/tiny-llama"; }
inline std::string AdapterDir(const std::string& name) {
  return TinyLlamaDir() + "/adapters/" + name;
}
inline const std::vector<std::string>& FixtureAdapters() {
  static const auto* names = new std::vector<std::string>{"r8_all", "r2_regex", "r4_patterns",
                                                          "r16_rslora_attn", "r64_mlp_layer1_bf16"};
  return *names;
}

using Golden = GoldenCase<int32_t>;

inline std::vector<Golden> LoadGoldens() { return LoadGoldenCases<int32_t>(TinyLlamaDir()); }

inline EngineOptions TestOptions(BackendKind backend = BackendKind::kCpu) {
  EngineOptions o;
  o.backend = backend;
  o.model_dir = TinyLlamaDir();
  o.num_threads = 1;
  o.max_num_seqs = 64;
  o.max_num_batched_tokens = 512;
  o.max_loras = 8;
  o.block_tokens = 4;
  o.kv_cache_blocks = 2048;
  o.seed = 7;
  o.idle_poll = absl::Milliseconds(5);
  return o;
}

inline std::unique_ptr<Engine> MakeEngine(const EngineOptions& o, bool load_adapters = true) {
  auto e = Engine::Create(o);
  EXPECT_TRUE(e.ok()) << e.status();
  if (!e.ok()) return nullptr;
  if (load_adapters) {
    for (const std::string& a : FixtureAdapters()) {
      auto r = (*e)->LoadAdapter(a, AdapterDir(a));
      EXPECT_TRUE(r.ok()) << r.status();
    }
  }
  return std::move(e).value();
}

inline GenerationRequest Greedy(const std::string& id, const std::string& adapter,
                                std::vector<int32_t> prompt, int32_t max_tokens) {
  GenerationRequest r;
  r.request_id = id;
  r.adapter = adapter;
  r.prompt_ids = std::move(prompt);
  r.sampling.temperature = 0;
  r.stopping.max_tokens = max_tokens;
  r.stopping.ignore_eos = true;
  r.arrival = absl::Now();
  return r;
}

// Greedy, plus the top logprobs GreedyAgrees needs to judge a flipped near
// tie on a backend whose tolerance allows one (CUDA); plain Greedy on the CPU.
inline GenerationRequest GreedyOn(BackendKind backend, const std::string& id,
                                  const std::string& adapter, std::vector<int32_t> prompt,
                                  int32_t max_tokens) {
  GenerationRequest r = Greedy(id, adapter, std::move(prompt), max_tokens);
  if (ToleranceFor(backend).tie_margin > 0) r.sampling.top_logprobs = 5;
  return r;
}

// Records events. `on_delta(n)` runs on the engine thread after the n-th
// token (1-based); `block_first` holds the engine thread at the first delta
// until Release().
class RecordingSink : public GenerationSink {
 public:
  void Push(GenerationEvent event) override {
    std::function<void(int)> hook;
    int n = 0;
    bool block = false;
    {
      absl::MutexLock lock(&mu_);
      if (event.kind == GenerationEvent::Kind::kDelta) {
        for (int32_t t : event.token_ids) tokens_.push_back(t);
        text_ += event.text;
        n = static_cast<int>(tokens_.size());
        hook = on_delta;
        block = block_first && !blocked_once_;
        blocked_once_ = true;
      } else {
        ++terminals_;
      }
      events_.push_back(std::move(event));
    }
    if (block) {
      reached_block_.Notify();
      gate_.WaitForNotificationWithTimeout(absl::Seconds(20));
    }
    if (hook) hook(n);
  }

  // Waits for the terminal event; false on timeout.
  bool WaitDone(absl::Duration timeout = absl::Seconds(20)) {
    absl::MutexLock lock(&mu_);
    auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return terminals_ > 0; };
    return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  }
  bool WaitBlocked() { return reached_block_.WaitForNotificationWithTimeout(absl::Seconds(20)); }
  void Release() {
    if (!gate_.HasBeenNotified()) gate_.Notify();
  }

  std::vector<int32_t> tokens() const {
    absl::MutexLock lock(&mu_);
    return tokens_;
  }
  std::string text() const {
    absl::MutexLock lock(&mu_);
    return text_;
  }
  std::vector<GenerationEvent> events() const {
    absl::MutexLock lock(&mu_);
    return events_;
  }
  int terminals() const {
    absl::MutexLock lock(&mu_);
    return terminals_;
  }
  // The terminal event (the last event); LS_CHECK-free: kDelta when none.
  GenerationEvent terminal() const {
    absl::MutexLock lock(&mu_);
    return events_.empty() ? GenerationEvent{} : events_.back();
  }

  std::function<void(int)> on_delta;
  bool block_first = false;

 private:
  mutable absl::Mutex mu_;
  std::vector<int32_t> tokens_ ABSL_GUARDED_BY(mu_);
  std::string text_ ABSL_GUARDED_BY(mu_);
  std::vector<GenerationEvent> events_ ABSL_GUARDED_BY(mu_);
  int terminals_ ABSL_GUARDED_BY(mu_) = 0;
  bool blocked_once_ ABSL_GUARDED_BY(mu_) = false;
  absl::Notification reached_block_;
  absl::Notification gate_;
};

// GreedyAgrees' gap from the logprobs a request returned (raw logits'
// log_softmax, so differences are logit differences): the chosen token's
// logprob minus `token`'s; nullopt when `token` is not among the top ones.
inline std::function<std::optional<double>(size_t, int32_t)> GapFromLogprobs(
    const RecordingSink& sink) {
  std::vector<TokenLogprobEntry> entries;
  for (const GenerationEvent& e : sink.events()) {
    if (e.kind != GenerationEvent::Kind::kDelta) continue;
    entries.insert(entries.end(), e.logprobs.begin(), e.logprobs.end());
  }
  return [entries = std::move(entries)](size_t k, int32_t token) -> std::optional<double> {
    if (k >= entries.size()) return std::nullopt;
    for (const TopLogprobEntry& t : entries[k].top) {
      if (t.token_id == token) return double{entries[k].logprob} - t.logprob;
    }
    return std::nullopt;
  };
}

// The sink's greedy tokens against `want` at `backend`'s tie margin.
inline ::testing::AssertionResult SinkGreedyAgrees(BackendKind backend, const RecordingSink& sink,
                                                   const std::vector<int32_t>& want) {
  return GreedyAgrees(sink.tokens(), want, ToleranceFor(backend).tie_margin, GapFromLogprobs(sink));
}

// Submits `r` alone and waits for its end; returns the sink.
inline std::shared_ptr<RecordingSink> RunAlone(Engine& e, GenerationRequest r) {
  auto sink = std::make_shared<RecordingSink>();
  const absl::Status s = e.Submit(std::move(r), sink);
  EXPECT_TRUE(s.ok()) << s;
  if (s.ok()) {
    EXPECT_TRUE(sink->WaitDone());
  }
  return sink;
}

// Unified-pool pages each fixture adapter takes (FixtureAdapters() order),
// measured on a roomy pool: one request each, then the idle adapter's pages.
inline std::vector<int64_t> MeasureAdapterPages(BackendKind backend = BackendKind::kCpu) {
  auto engine = MakeEngine(TestOptions(backend));
  std::vector<int64_t> pages;
  if (engine == nullptr) return pages;
  for (const std::string& a : FixtureAdapters()) {
    const int64_t before = engine->Stats().pool_pages_adapter;
    auto sink = RunAlone(*engine, Greedy("m_" + a, a, {1, 2, 3}, 1));
    EXPECT_TRUE(engine->WaitIdle(absl::Seconds(10)).ok());
    pages.push_back(engine->Stats().pool_pages_adapter - before);
  }
  return pages;
}

}  // namespace loraserve::testing
