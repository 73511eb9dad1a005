// End-to-end engine throughput on the CPU backend: generated tokens per
// second vs concurrency (1, 4, 16, 64 requests in flight), requests spread
// over the base model and the fixture's five LoRA adapters, greedy, 64 new
// tokens each (ignore_eos), prompts of 12-20 tokens. Also the mean time to
// first token and inter-token latency from the events' timings.
//
// Usage: engine_bench [model_dir]   (default: tests/data/tiny-llama, run from
// the repository root). A plain main printing a table.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/logging.h"
#include "engine/engine.h"

namespace loraserve {
namespace {

class CountingSink : public GenerationSink {
 public:
  void Push(GenerationEvent event) override {
    absl::MutexLock lock(&mu_);
    if (event.kind == GenerationEvent::Kind::kDelta) return;
    done_ = true;
    last_ = std::move(event);
  }
  void Wait() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done_));
  }
  GenerationEvent last() {
    absl::MutexLock lock(&mu_);
    return last_;
  }

 private:
  absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  GenerationEvent last_ ABSL_GUARDED_BY(mu_);
};

int Main(int argc, char** argv) {
  SetMinLogSeverity(LogSeverity::kWarning);
  const std::string dir = argc > 1 ? argv[1] : "tests/data/tiny-llama";
  EngineOptions o;
  o.model_dir = dir;
  o.max_num_seqs = 64;
  o.max_num_batched_tokens = 2048;
  o.max_loras = 8;
  o.kv_cache_blocks = 4096;
  o.seed = 1;
  o.idle_poll = absl::Milliseconds(1);
  auto engine = Engine::Create(o);
  if (!engine.ok()) {
    std::fprintf(stderr, "engine: %s\n", engine.status().ToString().c_str());
    return 1;
  }
  const std::vector<std::string> adapters = {"",         "r8_all",          "r2_regex",
                                             "r4_patterns", "r16_rslora_attn", "r64_mlp_layer1_bf16"};
  for (const std::string& a : adapters) {
    if (a.empty()) continue;
    auto r = (*engine)->LoadAdapter(a, dir + "/adapters/" + a);
    if (!r.ok()) {
      std::fprintf(stderr, "adapter %s: %s\n", a.c_str(), r.status().ToString().c_str());
      return 1;
    }
  }
  constexpr int kNewTokens = 64;
  std::printf("engine_bench: %s, CPU backend, greedy, %d new tokens per request\n", dir.c_str(),
              kNewTokens);
  std::printf("%12s %10s %12s %14s %12s %12s\n", "concurrency", "requests", "gen tokens",
              "tokens/s", "TTFT ms", "ITL ms");
  int serial = 0;
  for (int concurrency : {1, 4, 16, 64}) {
    const int rounds = concurrency >= 16 ? 2 : 4;
    int64_t tokens = 0;
    double ttft_ms = 0, itl_ms = 0;
    int n = 0;
    const absl::Time start = absl::Now();
    for (int round = 0; round < rounds; ++round) {
      std::vector<std::shared_ptr<CountingSink>> sinks;
      for (int i = 0; i < concurrency; ++i) {
        GenerationRequest r;
        r.request_id = "b" + std::to_string(serial++);
        r.adapter = adapters[static_cast<size_t>(i) % adapters.size()];
        for (int t = 0; t < 12 + i % 9; ++t) r.prompt_ids.push_back((serial * 31 + t * 7) % 500);
        r.sampling.temperature = 0;
        r.stopping.max_tokens = kNewTokens;
        r.stopping.ignore_eos = true;
        r.arrival = absl::Now();
        sinks.push_back(std::make_shared<CountingSink>());
        const absl::Status s = (*engine)->Submit(std::move(r), sinks.back());
        if (!s.ok()) {
          std::fprintf(stderr, "submit: %s\n", s.ToString().c_str());
          return 1;
        }
      }
      for (auto& s : sinks) {
        s->Wait();
        const GenerationEvent e = s->last();
        tokens += e.completion_tokens;
        ttft_ms += absl::ToDoubleMilliseconds(e.timings.first_token - e.timings.arrival);
        if (e.completion_tokens > 1) {
          itl_ms += absl::ToDoubleMilliseconds(e.timings.last_token - e.timings.first_token) /
                    (e.completion_tokens - 1);
        }
        ++n;
      }
    }
    const double secs = absl::ToDoubleSeconds(absl::Now() - start);
    std::printf("%12d %10d %12lld %14.0f %12.2f %12.3f\n", concurrency, rounds * concurrency,
                static_cast<long long>(tokens), static_cast<double>(tokens) / secs, ttft_ms / n,
                itl_ms / n);
  }
  const EngineStats st = (*engine)->Stats();
  std::printf("preemptions: %lld\n", static_cast<long long>(st.preemptions_total));
  (*engine)->Shutdown(absl::Seconds(10));
  return 0;
}

}  // namespace
}  // namespace loraserve

int main(int argc, char** argv) { return loraserve::Main(argc, argv); }
