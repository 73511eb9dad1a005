// Scheduler: iteration-level continuous batching across adapters (S-LoRA
// style). Each Schedule() picks the next step's mixed batch of decodes and
// prefill chunks from the running and waiting sequences, under a token
// budget, a cap on running sequences, a cap on distinct LoRA adapters, the
// KV blocks a KvBlockManager can give, and the adapters an
// AdapterAvailability says are resident (DESIGN.md, "The data path of one
// request").
//
// Owns: every in-flight Sequence (waiting or running). Does not own the
// KvBlockManager or the AdapterAvailability (both must outlive it).
// Called by: the engine loop, one iteration at a time:
//   AddRequest / Abort (from the drained inbox) -> Schedule() -> model step ->
//   sampler + stop checker -> OnStepDone().
// Thread-safety: none. The scheduler belongs to the single engine thread.
//
// Policy of one Schedule() call:
//  1. Running sequences first, in arrival order: decodes (1 token) in a first
//     pass, then unfinished prefill chunks (a chunk is cut to the remaining
//     budget, max_prefill_chunk, and, under KV pressure, to the blocks that
//     are free). When a running sequence cannot get even one token of KV, the
//     NEWEST running sequence (largest arrival) is preempted: its KV is freed,
//     it goes back to the FRONT of the waiting queue and later recomputes its
//     prompt and generated tokens. A sequence that cannot grow while it is
//     the only one running can never be served and is reported in `failed`.
//  2. Then waiting sequences in queue order (no admissions in a step that
//     preempted). A sequence whose adapter is not ready is skipped without
//     blocking those behind it (no head-of-line blocking). A ready one is
//     admitted while running < max_num_seqs, budget remains and its adapter
//     is running already or a LoRA slot is free (max_loras; the base model
//     needs none), and KV for ALL its known tokens fits in the free blocks
//     (only its first chunk, cut to the remaining budget, is taken now: a
//     prefill is not started that memory cannot finish). If that KV does not
//     fit, admission stops for this step (FCFS on memory, so a large request
//     is not overtaken forever); if it does not fit with nothing running, the
//     request can never be served and is reported in `failed`.
//  3. Starvation bound. A ready waiting sequence refused a LoRA slot counts
//     the Schedule() calls in which that happened (not necessarily
//     consecutive). From its (K+1)-th refusal on, that call included
//     (K = starvation_iterations), it CLAIMS the next slot: no non-base
//     sequence queued behind it is admitted while it waits; base-model
//     requests still are. Guarantee, for a sequence S whose adapter stays ready: at most K
//     Schedule() calls admit LoRA requests queued behind S while S waits
//     for a slot; from then on, S is admitted at the first call in which a
//     LoRA slot is free (not held by running sequences nor taken by ones
//     queued ahead of S) and its KV fits (FCFS on seqs, budget and KV). If each LoRA
//     sequence running at S's claim needs at most M more steps and nothing
//     is preempted, that is within K + M + 1 calls of S becoming ready (the
//     budget always covers every running decode: see Validate()). Preempted
//     sequences return to the queue front, ahead of S, and may retake a
//     slot first.
//
// Output: the batch (decodes, then running prefill chunks, then new
// admissions), the sequences preempted, the ones that failed, and the
// adapters to prefetch: those of running sequences, then of waiting ones in
// queue order, deduplicated, base excluded.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/scheduler/scheduler_resources.h"
#include "engine/scheduler/sequence.h"

namespace loraserve {

struct SchedulerConfig {
  // Tokens fed to the model in one step (decodes count 1 each).
  int32_t max_num_batched_tokens = 2048;
  // Running (admitted) sequences at most; <= max_num_batched_tokens.
  int32_t max_num_seqs = 256;
  // Distinct non-base adapters among running sequences at most (>= 1).
  int32_t max_loras = 8;
  // Tokens per KV block; prefill chunks shrunk by KV pressure end on a block
  // boundary.
  int32_t block_tokens = 16;
  // Tokens of one sequence in one step at most; 0 = only the budget limits.
  int32_t max_prefill_chunk = 0;
  // K: refusals of a LoRA slot before a waiting sequence claims the next one.
  int32_t starvation_iterations = 16;

  // InvalidArgument naming the field when a value is out of range.
  absl::Status Validate() const;
};

// One sequence's part of a step: feed Token(start_position) ..
// Token(start_position + num_new_tokens - 1), whose KV the step writes.
struct ScheduledSequence {
  const Sequence* seq = nullptr;
  int32_t start_position = 0;
  int32_t num_new_tokens = 0;
  // The step feeds the last known token: the runner samples the next token
  // and reports it through OnStepDone().
  bool sample = false;
};

struct ScheduleResult {
  std::vector<ScheduledSequence> batch;
  // Sum of num_new_tokens over `batch`; <= max_num_batched_tokens.
  int32_t num_batched_tokens = 0;
  // Preempted in this call: KV freed, waiting again (state kept).
  std::vector<RequestId> preempted;
  // Removed in this call: their KV cannot fit even with nothing else running.
  // The engine ends each with an error (ResourceExhausted).
  std::vector<RequestId> failed;
  // Non-base adapters wanted, most urgent first (running, then waiting).
  std::vector<AdapterKey> prefetch;
};

// What the engine learned about one sampled sequence after a step.
struct StepOutput {
  RequestId id = 0;
  int32_t token = 0;      // the sampled token, appended to the output
  bool finished = false;  // the request is complete: its KV is freed
};

class Scheduler {
 public:
  // `kv` and `adapters` must outlive the scheduler.
  static absl::StatusOr<std::unique_ptr<Scheduler>> Create(const SchedulerConfig& config,
                                                           KvBlockManager* kv,
                                                           const AdapterAvailability* adapters);

  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a request at the back. InvalidArgument for an empty prompt,
  // AlreadyExists when `id` is in flight.
  absl::Status AddRequest(RequestId id, AdapterKey adapter, std::vector<int32_t> prompt_tokens);

  // Removes a waiting or running request and frees its KV. False when `id`
  // is not in flight (finished, failed, or never added).
  bool Abort(RequestId id);

  // Picks the next step. Pointers in the result stay valid until the next
  // non-const call.
  ScheduleResult Schedule();

  // Applies the tokens sampled for entries of the last batch with
  // sample == true; unknown ids (aborted since) are ignored. A finished
  // sequence is removed and its KV freed.
  void OnStepDone(std::span<const StepOutput> outputs);

  // The request, or nullptr when not in flight.
  const Sequence* Find(RequestId id) const;

  int32_t NumRunning() const { return static_cast<int32_t>(running_.size()); }
  int32_t NumWaiting() const { return static_cast<int32_t>(waiting_.size()); }
  bool HasUnfinished() const { return !seqs_.empty(); }
  // Preemptions since creation (loraserve_preemptions_total).
  int64_t NumPreemptions() const { return num_preemptions_; }
  // Distinct non-base adapters of running sequences, ascending.
  std::vector<AdapterKey> RunningAdapters() const;
  // Distinct non-base adapters of waiting sequences, in queue order.
  std::vector<AdapterKey> WaitingAdapters() const;

  const SchedulerConfig& config() const { return config_; }

 private:
  Scheduler(const SchedulerConfig& config, KvBlockManager* kv, const AdapterAvailability* adapters);

  bool IsReady(AdapterKey adapter) const;
  // Grows seq's KV to `new_total` tokens; false (nothing changed) if it cannot.
  bool TryGrow(Sequence* seq, int32_t new_total);
  // Grows seq's KV for as many of `want` (>= 1) next tokens as fit, ending a
  // shortened chunk on a block boundary; returns the tokens granted (0: none).
  int32_t GrowUpTo(Sequence* seq, int32_t want);
  // Adds seq's next `n` tokens to the batch and advances num_computed.
  void Commit(Sequence* seq, int32_t n, ScheduleResult* result);
  // Running -> waiting front; takes it back out of `result`'s batch if there.
  void Preempt(Sequence* seq, ScheduleResult* result, int32_t* budget);
  void InsertRunning(Sequence* seq);
  void EraseRunning(Sequence* seq);
  // Frees KV and forgets a sequence (finished, aborted, failed).
  void Remove(Sequence* seq);
  void ScheduleRunning(ScheduleResult* result, int32_t* budget);
  void ScheduleWaiting(ScheduleResult* result, int32_t* budget);
  void FillPrefetch(ScheduleResult* result);

  const SchedulerConfig config_;
  KvBlockManager* const kv_;
  const AdapterAvailability* const adapters_;

  absl::flat_hash_map<RequestId, std::unique_ptr<Sequence>> seqs_;
  std::deque<Sequence*> waiting_;
  std::vector<Sequence*> running_;  // ascending arrival
  // Running sequences per non-base adapter (entries > 0 only).
  absl::flat_hash_map<AdapterKey, int32_t> running_loras_;

  uint64_t next_arrival_ = 1;
  uint64_t step_ = 0;
  int64_t num_preemptions_ = 0;
  absl::flat_hash_set<AdapterKey> prefetch_seen_;  // scratch
};

}  // namespace loraserve
