// Scheduler scenarios: table-driven, several iterations each, with a fake KV
// pool and fake adapter availability. Every expected batch was worked out by
// hand from the policy in engine/scheduler/scheduler.h.
#include "engine/scheduler/scheduler.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/scheduler_fakes.h"

namespace loraserve {
namespace {

using ::loraserve::testing::FakeAdapters;
using ::loraserve::testing::FakeKvBlockManager;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;

// Something that happens before a step's Schedule().
struct Action {
  enum Kind { kAdd, kAbort, kReady, kUnready } kind;
  RequestId id = 0;
  AdapterKey adapter = 0;
  int32_t prompt_len = 0;
  int32_t max_tokens = 0;  // the fake runner finishes the request after this many
};
Action Add(RequestId id, AdapterKey adapter, int32_t prompt_len, int32_t max_tokens) {
  return {Action::kAdd, id, adapter, prompt_len, max_tokens};
}
Action AbortReq(RequestId id) { return {Action::kAbort, id}; }
Action Ready(AdapterKey adapter) { return {Action::kReady, 0, adapter}; }

struct Entry {
  RequestId id;
  int32_t num_new_tokens;
  bool sample;
  bool operator==(const Entry&) const = default;
};
void PrintTo(const Entry& e, std::ostream* os) {
  *os << "{" << e.id << ", " << e.num_new_tokens << (e.sample ? ", sample}" : "}");
}

struct Step {
  std::vector<Action> before;
  std::vector<Entry> batch;
  std::vector<RequestId> preempted = {};
  std::optional<std::vector<AdapterKey>> prefetch = std::nullopt;
  int32_t free_blocks_after = -1;  // after OnStepDone; -1: not checked
};

struct Scenario {
  std::string name;
  SchedulerConfig config;
  int32_t num_blocks;
  std::vector<Step> steps;
};

SchedulerConfig Config(int32_t budget, int32_t max_seqs, int32_t max_loras, int32_t chunk = 0,
                       int32_t starvation = 100) {
  SchedulerConfig c;
  c.max_num_batched_tokens = budget;
  c.max_num_seqs = max_seqs;
  c.max_loras = max_loras;
  c.block_tokens = 4;
  c.max_prefill_chunk = chunk;
  c.starvation_iterations = starvation;
  return c;
}

// A: request ids used across scenarios.
enum : RequestId { A = 1, B, C, D, E, F, L, X, Y };

std::vector<Scenario> Scenarios() {
  return {
      {"BudgetChunkCapAndDecodesFirst",
       Config(/*budget=*/16, /*max_seqs=*/8, /*max_loras=*/4, /*chunk=*/8),
       100,
       {
           {{Add(A, 0, 40, 2), Add(B, 0, 2, 3)}, {{A, 8, false}, {B, 2, true}}},
           // B (newer) decodes before A's (older) chunk; C gets what is left.
           {{Add(C, 0, 20, 1)}, {{B, 1, true}, {A, 8, false}, {C, 7, false}}},
           {{}, {{B, 1, true}, {A, 8, false}, {C, 7, false}}},
           {{}, {{A, 8, false}, {C, 6, true}}},
           {{}, {{A, 8, true}}},
           {{}, {{A, 1, true}}, {}, std::nullopt, 100},
           {{}, {}},
       }},
      {"MaxNumSeqs",
       Config(64, /*max_seqs=*/2, 4),
       100,
       {
           {{Add(A, 0, 4, 2), Add(B, 0, 4, 2), Add(C, 0, 4, 2)}, {{A, 4, true}, {B, 4, true}}},
           {{}, {{A, 1, true}, {B, 1, true}}},
           {{}, {{C, 4, true}}},
           {{}, {{C, 1, true}}, {}, std::nullopt, 100},
       }},
      {"MaxLorasThreeAdaptersFourthWaitsBaseUnaffected",
       Config(64, 8, /*max_loras=*/3),
       100,
       {
           {{Ready(1), Ready(2), Ready(3), Ready(4), Add(A, 1, 4, 3), Add(B, 2, 4, 3),
             Add(C, 3, 4, 3), Add(D, 4, 4, 1), Add(E, 0, 4, 1), Add(F, 1, 4, 1)},
            {{A, 4, true}, {B, 4, true}, {C, 4, true}, {E, 4, true}, {F, 4, true}},
            {},
            std::vector<AdapterKey>{1, 2, 3, 4}},
           {{},
            {{A, 1, true}, {B, 1, true}, {C, 1, true}},
            {},
            std::vector<AdapterKey>{1, 2, 3, 4}},
           {{}, {{A, 1, true}, {B, 1, true}, {C, 1, true}}},
           {{}, {{D, 4, true}}, {}, std::vector<AdapterKey>{4}, 100},
       }},
      {"NotReadyAdapterDoesNotBlockAndIsPrefetched",
       Config(64, 8, 4),
       100,
       {
           {{Ready(2), Add(A, 1, 4, 1), Add(B, 2, 4, 1), Add(C, 0, 4, 1)},
            {{B, 4, true}, {C, 4, true}},
            {},
            std::vector<AdapterKey>{2, 1}},
           {{}, {}, {}, std::vector<AdapterKey>{1}},
           {{Ready(1)}, {{A, 4, true}}, {}, std::vector<AdapterKey>{1}, 100},
       }},
      {"ChunkedPrefill100TokensBudget32WhileDecoding",
       Config(/*budget=*/32, 8, 4),
       100,
       {
           {{Add(D, 0, 4, 6)}, {{D, 4, true}}},
           {{Add(L, 0, 100, 1)}, {{D, 1, true}, {L, 31, false}}},
           {{}, {{D, 1, true}, {L, 31, false}}},
           {{}, {{D, 1, true}, {L, 31, false}}},
           {{}, {{D, 1, true}, {L, 7, true}}},
           {{}, {{D, 1, true}}, {}, std::nullopt, 100},
       }},
      {"KvPressurePreemptsNewestWhichResumesAndRecomputes",
       Config(64, 8, 4),
       /*num_blocks=*/6,  // 24 tokens
       {
           {{Add(A, 0, 8, 8), Add(B, 0, 8, 7)}, {{A, 8, true}, {B, 8, true}}, {}, std::nullopt, 2},
           {{}, {{A, 1, true}, {B, 1, true}}, {}, std::nullopt, 0},  // 9 tokens: 3 blocks each
           {{}, {{A, 1, true}, {B, 1, true}}},
           {{}, {{A, 1, true}, {B, 1, true}}},
           {{}, {{A, 1, true}, {B, 1, true}}, {}, std::nullopt, 0},  // 12 tokens: still 3
           // A needs a 4th block: B (newest) is preempted, nothing admitted.
           {{}, {{A, 1, true}}, {B}, std::nullopt, 2},
           // B must recompute 8 prompt + 5 generated = 13 tokens (4 blocks): 2 free.
           {{}, {{A, 1, true}}, {}, std::nullopt, 2},
           {{}, {{A, 1, true}}, {}, std::nullopt, 6},  // A's 8th token: finished
           {{}, {{B, 13, true}}, {}, std::nullopt, 2},
           {{}, {{B, 1, true}}, {}, std::nullopt, 6},  // B's 7th token: finished
       }},
      {"KvFcfsLargeRequestIsNotOvertakenBySmallerOnes",
       Config(64, 8, 4),
       /*num_blocks=*/6,
       {
           {{Add(A, 0, 12, 3)}, {{A, 12, true}}, {}, std::nullopt, 3},
           // X needs 4 blocks, 2 are free after A grows; Y (1 block) would fit but waits.
           {{Add(X, 0, 16, 1), Add(Y, 0, 4, 1)}, {{A, 1, true}}, {}, std::nullopt, 2},
           {{}, {{A, 1, true}}, {}, std::nullopt, 6},
           {{}, {{X, 16, true}, {Y, 4, true}}, {}, std::nullopt, 6},
       }},
      {"AbortWaitingAndRunningFreesBlocks",
       Config(64, /*max_seqs=*/2, 4),
       10,
       {
           {{Add(A, 0, 8, 10), Add(B, 0, 8, 10), Add(C, 0, 8, 10)},
            {{A, 8, true}, {B, 8, true}},
            {},
            std::nullopt,
            6},
           {{AbortReq(C), AbortReq(A)}, {{B, 1, true}}, {}, std::nullopt, 7},
           {{AbortReq(B)}, {}, {}, std::nullopt, 10},
       }},
  };
}

void PrintTo(const Scenario& sc, std::ostream* os) { *os << sc.name; }

class SchedulerScenarioTest : public ::testing::TestWithParam<Scenario> {};

TEST_P(SchedulerScenarioTest, StepByStep) {
  const Scenario& sc = GetParam();
  FakeKvBlockManager kv(sc.num_blocks, sc.config.block_tokens);
  FakeAdapters adapters;
  auto scheduler_or = Scheduler::Create(sc.config, &kv, &adapters);
  ASSERT_TRUE(scheduler_or.ok()) << scheduler_or.status();
  Scheduler& s = **scheduler_or;
  std::map<RequestId, int32_t> max_tokens;

  for (size_t i = 0; i < sc.steps.size(); ++i) {
    SCOPED_TRACE("step " + std::to_string(i + 1));
    const Step& step = sc.steps[i];
    for (const Action& a : step.before) {
      switch (a.kind) {
        case Action::kAdd:
          ASSERT_TRUE(s.AddRequest(a.id, a.adapter, std::vector<int32_t>(a.prompt_len, 7)).ok());
          max_tokens[a.id] = a.max_tokens;
          break;
        case Action::kAbort:
          EXPECT_TRUE(s.Abort(a.id));
          break;
        case Action::kReady:
        case Action::kUnready:
          adapters.SetReady(a.adapter, a.kind == Action::kReady);
          break;
      }
    }
    ScheduleResult r = s.Schedule();
    std::vector<Entry> got;
    int32_t tokens = 0;
    std::vector<StepOutput> outputs;
    for (const ScheduledSequence& e : r.batch) {
      got.push_back({e.seq->id(), e.num_new_tokens, e.sample});
      tokens += e.num_new_tokens;
      if (e.sample) {
        const bool done = e.seq->num_output_tokens() + 1 >= max_tokens[e.seq->id()];
        outputs.push_back({e.seq->id(), static_cast<int32_t>(100 + i), done});
      }
    }
    EXPECT_THAT(got, ElementsAreArray(step.batch));
    EXPECT_EQ(r.num_batched_tokens, tokens);
    EXPECT_LE(tokens, sc.config.max_num_batched_tokens);
    EXPECT_THAT(r.preempted, ElementsAreArray(step.preempted));
    EXPECT_THAT(r.failed, IsEmpty());
    if (step.prefetch.has_value()) {
      EXPECT_THAT(r.prefetch, ElementsAreArray(*step.prefetch));
    }
    s.OnStepDone(outputs);
    if (step.free_blocks_after >= 0) {
      EXPECT_EQ(kv.NumFreeBlocks(), step.free_blocks_after);
    }
    EXPECT_EQ(kv.NumFreeBlocks() + kv.SumHeldBlocks(), sc.num_blocks);
  }
}

INSTANTIATE_TEST_SUITE_P(Scenarios, SchedulerScenarioTest, ::testing::ValuesIn(Scenarios()),
                         [](const auto& info) { return info.param.name; });

// The preempted request keeps its generated tokens and recomputes them.
TEST(SchedulerTest, PreemptedSequenceKeepsOutputAndCountsPreemption) {
  FakeKvBlockManager kv(/*num_blocks=*/3, /*block_tokens=*/4);
  FakeAdapters adapters;
  auto s = *Scheduler::Create(Config(64, 8, 4), &kv, &adapters);
  ASSERT_TRUE(s->AddRequest(A, 0, {1, 2, 3, 4}).ok());
  ASSERT_TRUE(s->AddRequest(B, 0, {5, 6, 7}).ok());
  ScheduleResult r = s->Schedule();  // A: 1 block, B: 1 block
  ASSERT_EQ(r.batch.size(), 2u);
  StepOutput out[] = {{A, 10, false}, {B, 20, false}};
  s->OnStepDone(out);
  r = s->Schedule();  // A grows to 5 tokens (2 blocks), B stays at 4: 3 blocks used
  ASSERT_EQ(r.batch.size(), 2u);
  StepOutput out2[] = {{A, 11, false}, {B, 21, false}};
  s->OnStepDone(out2);
  r = s->Schedule();  // A stays in 2 blocks (6 tokens); B needs a 2nd block: none free
  EXPECT_THAT(r.preempted, ElementsAre(B));
  EXPECT_EQ(s->NumPreemptions(), 1);
  const Sequence* b = s->Find(B);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->status(), SequenceStatus::kWaiting);
  EXPECT_EQ(b->num_computed_tokens(), 0);
  EXPECT_EQ(b->num_preemptions(), 1);
  EXPECT_THAT(b->output_tokens(), ElementsAre(20, 21));
  EXPECT_EQ(b->Token(3), 20);  // recompute feeds prompt ++ output
  EXPECT_EQ(kv.HeldBlocks(B), 0);
}

TEST(SchedulerTest, SequenceThatCannotFitAloneFails) {
  FakeKvBlockManager kv(/*num_blocks=*/2, /*block_tokens=*/4);
  FakeAdapters adapters;
  auto s = *Scheduler::Create(Config(64, 8, 4), &kv, &adapters);
  ASSERT_TRUE(s->AddRequest(A, 0, std::vector<int32_t>(8, 1)).ok());
  ScheduleResult r = s->Schedule();
  ASSERT_EQ(r.batch.size(), 1u);
  StepOutput out[] = {{A, 3, false}};
  s->OnStepDone(out);
  r = s->Schedule();  // a 9th token needs a 3rd block; nothing else to preempt
  EXPECT_THAT(r.batch, IsEmpty());
  EXPECT_THAT(r.failed, ElementsAre(A));
  EXPECT_EQ(s->Find(A), nullptr);
  EXPECT_EQ(kv.NumFreeBlocks(), 2);
  EXPECT_FALSE(s->HasUnfinished());
}

TEST(SchedulerTest, AddAbortAndQueries) {
  FakeKvBlockManager kv(100, 4);
  FakeAdapters adapters;
  adapters.SetReady(7, true);
  auto s = *Scheduler::Create(Config(64, 8, 4), &kv, &adapters);
  EXPECT_EQ(s->AddRequest(A, 0, {}).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(s->AddRequest(A, 7, {1, 2}).ok());
  EXPECT_EQ(s->AddRequest(A, 0, {1}).code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(s->AddRequest(B, 9, {1}).ok());
  ASSERT_TRUE(s->AddRequest(C, 8, {1}).ok());
  ASSERT_TRUE(s->AddRequest(D, 9, {1}).ok());
  EXPECT_THAT(s->WaitingAdapters(), ElementsAre(7, 9, 8));
  s->Schedule();
  EXPECT_EQ(s->NumRunning(), 1);
  EXPECT_EQ(s->NumWaiting(), 3);
  EXPECT_THAT(s->RunningAdapters(), ElementsAre(7));
  EXPECT_THAT(s->WaitingAdapters(), ElementsAre(9, 8));
  EXPECT_FALSE(s->Abort(42));
  EXPECT_TRUE(s->Abort(A));
  EXPECT_FALSE(s->Abort(A));
  EXPECT_THAT(s->RunningAdapters(), IsEmpty());
  EXPECT_EQ(kv.NumFreeBlocks(), 100);
}

TEST(SchedulerTest, ConfigValidationNamesTheField) {
  struct Case {
    SchedulerConfig config;
    std::string field;
  };
  std::vector<Case> cases;
  auto bad = [&](auto mutate, std::string field) {
    SchedulerConfig c = Config(64, 8, 4);
    mutate(c);
    cases.push_back({c, field});
  };
  bad([](SchedulerConfig& c) { c.max_num_batched_tokens = 0; }, "max_num_batched_tokens");
  bad([](SchedulerConfig& c) { c.max_num_seqs = 0; }, "max_num_seqs");
  bad([](SchedulerConfig& c) { c.max_loras = 0; }, "max_loras");
  bad([](SchedulerConfig& c) { c.block_tokens = 0; }, "block_tokens");
  bad([](SchedulerConfig& c) { c.max_prefill_chunk = -1; }, "max_prefill_chunk");
  bad([](SchedulerConfig& c) { c.starvation_iterations = -1; }, "starvation_iterations");
  bad([](SchedulerConfig& c) { c.max_num_seqs = 65; }, "max_num_seqs");
  for (const Case& c : cases) {
    absl::Status st = c.config.Validate();
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_THAT(std::string(st.message()), ::testing::HasSubstr(c.field));
  }
  EXPECT_TRUE(Config(64, 8, 4).Validate().ok());
  FakeAdapters adapters;
  EXPECT_FALSE(Scheduler::Create(Config(64, 8, 4), nullptr, &adapters).ok());
}

// Three hot adapters get three new requests every step; a request for a 4th
// adapter arrives at step 2. Returns the step that admitted it (0: never in
// `steps` steps), and checks base requests keep flowing meanwhile.
int StepAdmittingColdRequest(int32_t starvation_iterations, int steps) {
  FakeKvBlockManager kv(10000, 4);
  FakeAdapters adapters;
  for (AdapterKey a = 1; a <= 4; ++a) adapters.SetReady(a, true);
  SchedulerConfig config = Config(64, 16, 3, 0, starvation_iterations);
  auto s = *Scheduler::Create(config, &kv, &adapters);
  constexpr RequestId kCold = 999999;
  constexpr int32_t kMaxTokens = 3;
  std::map<RequestId, int32_t> outputs;
  RequestId next = 1;
  for (int step = 1; step <= steps; ++step) {
    for (AdapterKey a = 1; a <= 3; ++a) {
      EXPECT_TRUE(s->AddRequest(next++, a, {1, 2, 3, 4}).ok());
    }
    if (step == 2) {
      EXPECT_TRUE(s->AddRequest(kCold, 4, {1, 2, 3, 4}).ok());
    }
    const RequestId base_id = next++;
    if (step == 7) {
      EXPECT_TRUE(s->AddRequest(base_id, 0, {5}).ok());
    }
    ScheduleResult r = s->Schedule();
    std::vector<StepOutput> out;
    int admitted_at = 0;
    for (const ScheduledSequence& e : r.batch) {
      if (e.seq->id() == kCold) admitted_at = step;
      if (step == 7 && e.seq->id() == base_id) {
        EXPECT_EQ(e.num_new_tokens, 1) << "base request admitted during the claim";
      }
      if (e.sample) {
        out.push_back({e.seq->id(), 5, ++outputs[e.seq->id()] >= kMaxTokens});
      }
    }
    if (step == 7) {
      EXPECT_NE(s->Find(base_id)->status(), SequenceStatus::kWaiting);
    }
    EXPECT_LE(static_cast<int>(s->RunningAdapters().size()), 3);
    s->OnStepDone(out);
    if (admitted_at != 0) return admitted_at;
  }
  return 0;
}

TEST(SchedulerTest, StarvationBoundAdmitsFourthAdapterBehindHotStream) {
  // K = 4: refused at steps 2..5, claims at step 6; the hot requests admitted
  // at step 5 finish at step 7 (3 tokens), so the slot frees for step 8.
  // Bound from the header: within K + M + 1 = 4 + 2 + 1 calls of step 2.
  EXPECT_EQ(StepAdmittingColdRequest(/*starvation_iterations=*/4, 50), 8);
  // K = 0: claims at its first refusal (step 2); the hot requests admitted
  // ahead of it at step 2 finish at step 4.
  EXPECT_EQ(StepAdmittingColdRequest(/*starvation_iterations=*/0, 50), 5);
  // Without the bound (K larger than the run) it never gets a slot.
  EXPECT_EQ(StepAdmittingColdRequest(/*starvation_iterations=*/1000, 50), 0);
}

}  // namespace
}  // namespace loraserve
