// Cost of one Scheduler::Schedule() call on the engine thread, in
// microseconds per iteration: 1,000 waiting requests spread over 1,000
// adapters (only some resident), with 0 or 256 sequences already running.
// The KV pool and adapter residency are small in-memory fakes (a counter and
// a hash set), so the time is the scheduler's own.
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "benchmark/benchmark.h"
#include "common/logging.h"
#include "engine/scheduler/scheduler.h"

namespace loraserve {
namespace {

class CountingKv : public KvBlockManager {
 public:
  CountingKv(int32_t blocks, int32_t block_tokens)
      : free_(blocks), total_(blocks), bt_(block_tokens) {}
  bool CanGrow(RequestId seq, int32_t tokens) const override { return Extra(seq, tokens) <= free_; }
  absl::Status Grow(RequestId seq, int32_t tokens) override {
    const int32_t extra = Extra(seq, tokens);
    free_ -= extra;
    held_[seq] += extra;
    return absl::OkStatus();
  }
  void Free(RequestId seq) override {
    auto it = held_.find(seq);
    if (it == held_.end()) return;
    free_ += it->second;
    held_.erase(it);
  }
  int32_t NumFreeBlocks() const override { return free_; }
  int32_t NumTotalBlocks() const override { return total_; }

 private:
  int32_t Extra(RequestId seq, int32_t tokens) const {
    auto it = held_.find(seq);
    const int32_t have = it == held_.end() ? 0 : it->second;
    return std::max(0, (tokens + bt_ - 1) / bt_ - have);
  }
  int32_t free_, total_, bt_;
  absl::flat_hash_map<RequestId, int32_t> held_;
};

class SomeReady : public AdapterAvailability {
 public:
  // Adapters [first, last] are resident.
  void Add(AdapterKey first, AdapterKey last) {
    for (AdapterKey a = first; a <= last; ++a) ready_.insert(a);
  }
  bool IsReady(AdapterKey adapter) const override { return ready_.contains(adapter); }

 private:
  absl::flat_hash_set<AdapterKey> ready_;
};

constexpr int kWaiting = 1000;
constexpr int kAdapters = 1000;

// Steady state: `running` decodes on adapters 1..8 (max_loras 8) plus 1,000
// waiting requests on adapters 9..1008, none admissible, so every iteration
// scans the whole queue, builds the prefetch list and schedules every decode.
// With 0 running, no waiting adapter is resident (a residency check each);
// with 256 running, half of them are, and are refused a LoRA slot (the
// starvation bookkeeping, then the claim, run for each).
void BM_Schedule(benchmark::State& state) {
  const int running = static_cast<int>(state.range(0));
  SchedulerConfig config;
  config.max_num_batched_tokens = 8192;
  config.max_num_seqs = 512;
  config.max_loras = 8;
  config.block_tokens = 16;
  CountingKv kv(/*blocks=*/1 << 20, config.block_tokens);
  SomeReady adapters;
  adapters.Add(1, 8);
  if (running > 0) adapters.Add(500, kAdapters + 8);
  auto scheduler = *Scheduler::Create(config, &kv, &adapters);
  RequestId id = 1;
  for (int i = 0; i < running; ++i) {
    LS_CHECK_OK(scheduler->AddRequest(id++, 1 + i % 8, std::vector<int32_t>(16, 1)));
  }
  std::vector<StepOutput> out;
  for (const ScheduledSequence& e : scheduler->Schedule().batch) {  // admits the running set
    out.push_back({e.seq->id(), 7, false});
  }
  scheduler->OnStepDone(out);
  for (int i = 0; i < kWaiting; ++i) {
    LS_CHECK_OK(scheduler->AddRequest(id++, 9 + i % kAdapters, std::vector<int32_t>(16, 1)));
  }
  LS_CHECK_EQ(scheduler->NumRunning(), running);
  for (auto _ : state) {
    ScheduleResult r = scheduler->Schedule();
    LS_CHECK_EQ(static_cast<int>(r.batch.size()), running);
    out.clear();
    for (const ScheduledSequence& e : r.batch) out.push_back({e.seq->id(), 7, false});
    scheduler->OnStepDone(out);
    benchmark::DoNotOptimize(r.prefetch.data());
  }
  state.counters["batch"] = running;
}
BENCHMARK(BM_Schedule)->Arg(0)->Arg(256)->Unit(benchmark::kMicrosecond);

// Admission-heavy: each iteration re-adds 1,000 waiting requests over 1,000
// adapters, all resident, max_loras 1,000: Schedule() admits up to
// max_num_seqs of them (the rest stay waiting), then everything is aborted.
void BM_ScheduleAdmit(benchmark::State& state) {
  SchedulerConfig config;
  config.max_num_batched_tokens = 8192;
  config.max_num_seqs = 256;
  config.max_loras = kAdapters;
  config.block_tokens = 16;
  CountingKv kv(1 << 20, config.block_tokens);
  SomeReady adapters;
  adapters.Add(1, kAdapters);
  auto scheduler = *Scheduler::Create(config, &kv, &adapters);
  RequestId id = 1;
  std::vector<RequestId> ids;
  for (auto _ : state) {
    state.PauseTiming();
    ids.clear();
    for (int i = 0; i < kWaiting; ++i) {
      ids.push_back(id);
      LS_CHECK_OK(scheduler->AddRequest(id++, 1 + i % kAdapters, std::vector<int32_t>(16, 1)));
    }
    state.ResumeTiming();
    ScheduleResult r = scheduler->Schedule();
    benchmark::DoNotOptimize(r.batch.data());
    state.PauseTiming();
    for (RequestId rid : ids) scheduler->Abort(rid);
    state.ResumeTiming();
  }
}
BENCHMARK(BM_ScheduleAdmit)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace loraserve

BENCHMARK_MAIN();
