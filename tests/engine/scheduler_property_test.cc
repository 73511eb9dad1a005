// Randomized scheduler property test: fixed seeds, 1000 steps of random
// arrivals, aborts, early finishes and adapter readiness flips, with the
// invariants checked after every step, then a drain in which every request
// must end (finished, aborted or failed) and every block come back.
#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "engine/scheduler/scheduler.h"
#include "gtest/gtest.h"
#include "tests/engine/scheduler_fakes.h"

namespace loraserve {
namespace {

using ::loraserve::testing::FakeAdapters;
using ::loraserve::testing::FakeKvBlockManager;

constexpr AdapterKey kNumAdapters = 7;  // keys 1..6, plus the base model 0

struct Live {
  AdapterKey adapter;
  int32_t max_tokens;
};

class PropertyRun {
 public:
  PropertyRun(uint32_t seed, SchedulerConfig config, int32_t num_blocks)
      : rng_(seed), config_(config), kv_(num_blocks, config.block_tokens) {
    scheduler_ = *Scheduler::Create(config_, &kv_, &adapters_);
  }

  void Run(int steps, bool arrivals) {
    for (int i = 0; i < steps && !::testing::Test::HasFailure(); ++i) {
      if (arrivals) Perturb();
      Step();
    }
  }

  // Everything ready, no arrivals: every request must end.
  void Drain() {
    for (AdapterKey a = 1; a < kNumAdapters; ++a) adapters_.SetReady(a, true);
    int steps = 0;
    while (scheduler_->HasUnfinished() && steps++ < 20000 && !::testing::Test::HasFailure()) {
      Step();
    }
    EXPECT_FALSE(scheduler_->HasUnfinished());
    EXPECT_TRUE(live_.empty());
    EXPECT_EQ(ended_, next_id_ - 1) << "every accepted request ends exactly once";
    EXPECT_EQ(kv_.NumFreeBlocks(), kv_.NumTotalBlocks());
  }

  int64_t finished() const { return finished_; }
  int64_t aborted() const { return aborted_; }
  int64_t preemptions() const { return scheduler_->NumPreemptions(); }

 private:
  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool Chance(double p) { return std::bernoulli_distribution(p)(rng_); }

  void Perturb() {
    for (int n = Uniform(0, 2); n > 0; --n) {
      const RequestId id = next_id_++;
      const AdapterKey adapter = Chance(0.3) ? 0 : Uniform(1, kNumAdapters - 1);
      const int32_t len = Uniform(1, 60);
      ASSERT_TRUE(scheduler_->AddRequest(id, adapter, std::vector<int32_t>(len, 3)).ok());
      live_[id] = {adapter, Uniform(1, 40)};
    }
    if (!live_.empty() && Chance(0.05)) {
      auto it = live_.begin();
      std::advance(it, Uniform(0, static_cast<int>(live_.size()) - 1));
      EXPECT_TRUE(scheduler_->Abort(it->first));
      live_.erase(it);
      ++aborted_;
      ++ended_;
    }
    for (AdapterKey a = 1; a < kNumAdapters; ++a) {
      if (Chance(0.1)) adapters_.SetReady(a, Chance(0.6));
    }
  }

  void Step() {
    ScheduleResult r = scheduler_->Schedule();
    CheckResult(r);
    std::vector<StepOutput> outputs;
    for (const ScheduledSequence& e : r.batch) {
      if (!e.sample) continue;
      const RequestId id = e.seq->id();
      const bool done = e.seq->num_output_tokens() + 1 >= live_.at(id).max_tokens || Chance(0.02);
      outputs.push_back({id, Uniform(0, 999), done});
      if (done) {
        live_.erase(id);
        ++finished_;
        ++ended_;
      }
    }
    scheduler_->OnStepDone(outputs);
    CheckState();
  }

  void CheckResult(const ScheduleResult& r) {
    int32_t tokens = 0;
    std::set<RequestId> in_batch;
    for (const ScheduledSequence& e : r.batch) {
      const Sequence* seq = e.seq;
      ASSERT_NE(seq, nullptr);
      EXPECT_TRUE(in_batch.insert(seq->id()).second) << "twice in one batch";
      EXPECT_EQ(seq->status(), SequenceStatus::kRunning);
      EXPECT_GE(e.num_new_tokens, 1);
      EXPECT_EQ(e.start_position + e.num_new_tokens, seq->num_computed_tokens());
      EXPECT_EQ(e.sample, seq->num_computed_tokens() == seq->num_tokens());
      if (config_.max_prefill_chunk > 0) {
        EXPECT_LE(e.num_new_tokens, config_.max_prefill_chunk);
      }
      if (e.start_position == 0) {  // admitted in this step (new, or after preemption)
        EXPECT_TRUE(seq->adapter() == 0 || adapters_.IsReady(seq->adapter()))
            << "admitted with an adapter that is not ready";
      }
      tokens += e.num_new_tokens;
    }
    EXPECT_EQ(tokens, r.num_batched_tokens);
    EXPECT_LE(tokens, config_.max_num_batched_tokens);
    for (RequestId id : r.preempted) {
      EXPECT_FALSE(in_batch.contains(id));
      const Sequence* seq = scheduler_->Find(id);
      ASSERT_NE(seq, nullptr);
      EXPECT_EQ(seq->status(), SequenceStatus::kWaiting);
    }
    for (RequestId id : r.failed) {
      ADD_FAILURE() << "request " << id << " failed: every request fits the pool alone";
      live_.erase(id);
      ++ended_;
    }
    std::set<AdapterKey> prefetch(r.prefetch.begin(), r.prefetch.end());
    EXPECT_EQ(prefetch.size(), r.prefetch.size()) << "duplicates in the prefetch list";
    EXPECT_FALSE(prefetch.contains(0));
    for (const auto& [id, info] : live_) {
      if (info.adapter != 0) {
        EXPECT_TRUE(prefetch.contains(info.adapter)) << info.adapter;
      }
    }
  }

  void CheckState() {
    // Nothing lost: exactly the live requests are in flight.
    EXPECT_EQ(scheduler_->NumRunning() + scheduler_->NumWaiting(),
              static_cast<int32_t>(live_.size()));
    EXPECT_LE(scheduler_->NumRunning(), config_.max_num_seqs);
    EXPECT_LE(static_cast<int32_t>(scheduler_->RunningAdapters().size()), config_.max_loras);
    int32_t held = 0;
    for (const auto& [id, info] : live_) {
      const Sequence* seq = scheduler_->Find(id);
      ASSERT_NE(seq, nullptr) << "request " << id << " lost";
      EXPECT_EQ(seq->adapter(), info.adapter);
      if (seq->status() == SequenceStatus::kRunning) {
        // Blocks accounted exactly: KV for the computed tokens, no more.
        EXPECT_EQ(kv_.HeldTokens(id), seq->num_computed_tokens());
        const int32_t bt = config_.block_tokens;
        EXPECT_EQ(kv_.HeldBlocks(id), (seq->num_computed_tokens() + bt - 1) / bt);
      } else {
        EXPECT_EQ(kv_.HeldBlocks(id), 0);
        EXPECT_EQ(seq->num_computed_tokens(), 0);
      }
      held += kv_.HeldBlocks(id);
    }
    EXPECT_EQ(held, kv_.SumHeldBlocks()) << "blocks held by requests no longer in flight";
    EXPECT_EQ(held + kv_.NumFreeBlocks(), kv_.NumTotalBlocks());
  }

  std::mt19937 rng_;
  SchedulerConfig config_;
  FakeKvBlockManager kv_;
  FakeAdapters adapters_;
  std::unique_ptr<Scheduler> scheduler_;
  std::map<RequestId, Live> live_;
  RequestId next_id_ = 1;
  int64_t ended_ = 0;
  int64_t finished_ = 0;
  int64_t aborted_ = 0;
};

SchedulerConfig PropertyConfig(int32_t chunk, int32_t starvation) {
  SchedulerConfig c;
  c.max_num_batched_tokens = 48;
  c.max_num_seqs = 12;
  c.max_loras = 3;
  c.block_tokens = 4;
  c.max_prefill_chunk = chunk;
  c.starvation_iterations = starvation;
  return c;
}

TEST(SchedulerPropertyTest, InvariantsHoldOverRandomTraffic) {
  struct Case {
    uint32_t seed;
    int32_t num_blocks;  // 26 blocks: just over one 100-token request
    int32_t chunk;
    int32_t starvation;
  };
  for (const Case& c :
       {Case{1, 64, 16, 5}, Case{2, 26, 0, 0}, Case{3, 40, 7, 2}, Case{4, 200, 0, 10}}) {
    SCOPED_TRACE(::testing::Message() << "seed " << c.seed);
    PropertyRun run(c.seed, PropertyConfig(c.chunk, c.starvation), c.num_blocks);
    run.Run(1000, /*arrivals=*/true);
    run.Drain();
    EXPECT_GT(run.finished(), 100);
    EXPECT_GT(run.aborted(), 5);
    if (c.num_blocks <= 40) {
      EXPECT_GT(run.preemptions(), 0) << "KV pressure never exercised";
    }
  }
}

}  // namespace
}  // namespace loraserve
