#include "engine/scheduler/scheduler.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status.h"

namespace loraserve {
namespace {

absl::Status RequireAtLeast(const char* field, int64_t value, int64_t min) {
  if (value >= min) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("scheduler config: ", field, " is ", value, ", must be >= ", min));
}

}  // namespace

absl::Status SchedulerConfig::Validate() const {
  RETURN_IF_ERROR(RequireAtLeast("max_num_batched_tokens", max_num_batched_tokens, 1));
  RETURN_IF_ERROR(RequireAtLeast("max_num_seqs", max_num_seqs, 1));
  RETURN_IF_ERROR(RequireAtLeast("max_loras", max_loras, 1));
  RETURN_IF_ERROR(RequireAtLeast("block_tokens", block_tokens, 1));
  RETURN_IF_ERROR(RequireAtLeast("max_prefill_chunk", max_prefill_chunk, 0));
  RETURN_IF_ERROR(RequireAtLeast("starvation_iterations", starvation_iterations, 0));
  // Every running decode must fit in one step, or the newest decodes could
  // wait forever behind older ones (and the starvation bound would not hold).
  if (max_num_batched_tokens < max_num_seqs) {
    return absl::InvalidArgumentError(absl::StrCat(
        "scheduler config: max_num_batched_tokens (", max_num_batched_tokens,
        ") must be >= max_num_seqs (", max_num_seqs, ") so every running decode fits a step"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Scheduler>> Scheduler::Create(const SchedulerConfig& config,
                                                             KvBlockManager* kv,
                                                             const AdapterAvailability* adapters) {
  RETURN_IF_ERROR(config.Validate());
  if (kv == nullptr || adapters == nullptr) {
    return absl::InvalidArgumentError("scheduler: KvBlockManager and AdapterAvailability required");
  }
  return std::unique_ptr<Scheduler>(new Scheduler(config, kv, adapters));
}

Scheduler::Scheduler(const SchedulerConfig& config, KvBlockManager* kv,
                     const AdapterAvailability* adapters)
    : config_(config), kv_(kv), adapters_(adapters) {}

absl::Status Scheduler::AddRequest(RequestId id, AdapterKey adapter,
                                   std::vector<int32_t> prompt_tokens) {
  if (prompt_tokens.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("request ", id, ": empty prompt"));
  }
  if (prompt_tokens.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max() / 2)) {
    return absl::InvalidArgumentError(absl::StrCat("request ", id, ": prompt too long"));
  }
  auto [it, inserted] = seqs_.try_emplace(id);
  if (!inserted) {
    return absl::AlreadyExistsError(absl::StrCat("request ", id, " is already in flight"));
  }
  it->second = std::make_unique<Sequence>(id, adapter, std::move(prompt_tokens), next_arrival_++);
  waiting_.push_back(it->second.get());
  return absl::OkStatus();
}

bool Scheduler::Abort(RequestId id) {
  auto it = seqs_.find(id);
  if (it == seqs_.end()) return false;
  Sequence* seq = it->second.get();
  if (seq->status_ == SequenceStatus::kWaiting) {
    auto w = std::find(waiting_.begin(), waiting_.end(), seq);
    LS_CHECK(w != waiting_.end()) << "waiting request " << id << " not queued";
    waiting_.erase(w);
  }
  Remove(seq);
  return true;
}

const Sequence* Scheduler::Find(RequestId id) const {
  auto it = seqs_.find(id);
  return it == seqs_.end() ? nullptr : it->second.get();
}

std::vector<AdapterKey> Scheduler::RunningAdapters() const {
  std::vector<AdapterKey> out;
  out.reserve(running_loras_.size());
  for (const auto& [adapter, count] : running_loras_) out.push_back(adapter);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<AdapterKey> Scheduler::WaitingAdapters() const {
  std::vector<AdapterKey> out;
  absl::flat_hash_set<AdapterKey> seen;
  for (const Sequence* seq : waiting_) {
    if (seq->adapter() != kBaseModelAdapter && seen.insert(seq->adapter()).second) {
      out.push_back(seq->adapter());
    }
  }
  return out;
}

bool Scheduler::IsReady(AdapterKey adapter) const {
  return adapter == kBaseModelAdapter || adapters_->IsReady(adapter);
}

bool Scheduler::TryGrow(Sequence* seq, int32_t new_total) {
  if (!kv_->CanGrow(seq->id(), new_total)) return false;
  absl::Status s = kv_->Grow(seq->id(), new_total);
  if (!s.ok()) {
    // CanGrow said yes: a KvBlockManager bug, but treated as "no room".
    LS_LOG(ERROR) << "KV grow of request " << seq->id() << " to " << new_total
                  << " tokens failed after CanGrow: " << s.ToString();
    return false;
  }
  return true;
}

int32_t Scheduler::GrowUpTo(Sequence* seq, int32_t want) {
  const int32_t computed = seq->num_computed_;
  if (TryGrow(seq, computed + want)) return want;
  // KV capacity comes in whole blocks, so the most that fits ends on a block
  // boundary: search the largest k with k * block_tokens in (computed, computed + want).
  const int32_t bt = config_.block_tokens;
  int32_t lo = computed / bt + 1;
  int32_t hi = (computed + want - 1) / bt;
  int32_t best = 0;
  while (lo <= hi) {
    const int32_t mid = lo + (hi - lo) / 2;
    if (kv_->CanGrow(seq->id(), mid * bt)) {
      best = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  if (best == 0 || !TryGrow(seq, best * bt)) return 0;
  return best * bt - computed;
}

void Scheduler::Commit(Sequence* seq, int32_t n, ScheduleResult* result) {
  ScheduledSequence entry;
  entry.seq = seq;
  entry.start_position = seq->num_computed_;
  entry.num_new_tokens = n;
  seq->num_computed_ += n;
  entry.sample = seq->num_computed_ == seq->num_tokens();
  seq->scheduled_in_ = step_;
  result->batch.push_back(entry);
  result->num_batched_tokens += n;
}

void Scheduler::InsertRunning(Sequence* seq) {
  auto pos = std::upper_bound(
      running_.begin(), running_.end(), seq,
      [](const Sequence* a, const Sequence* b) { return a->arrival() < b->arrival(); });
  running_.insert(pos, seq);
  seq->status_ = SequenceStatus::kRunning;
  if (seq->adapter() != kBaseModelAdapter) ++running_loras_[seq->adapter()];
}

void Scheduler::EraseRunning(Sequence* seq) {
  auto it = std::find(running_.begin(), running_.end(), seq);
  LS_CHECK(it != running_.end()) << "request " << seq->id() << " not running";
  running_.erase(it);
  if (seq->adapter() != kBaseModelAdapter) {
    auto lora = running_loras_.find(seq->adapter());
    LS_CHECK(lora != running_loras_.end() && lora->second > 0);
    if (--lora->second == 0) running_loras_.erase(lora);
  }
}

void Scheduler::Remove(Sequence* seq) {
  if (seq->status_ == SequenceStatus::kRunning) EraseRunning(seq);
  kv_->Free(seq->id());
  seqs_.erase(seq->id());  // destroys seq
}

void Scheduler::Preempt(Sequence* seq, ScheduleResult* result, int32_t* budget) {
  if (seq->scheduled_in_ == step_) {
    // Already in this step's batch (a decode, when a prefill chunk preempts):
    // take it back out and return its tokens to the budget.
    for (auto it = result->batch.rbegin(); it != result->batch.rend(); ++it) {
      if (it->seq == seq) {
        *budget += it->num_new_tokens;
        result->num_batched_tokens -= it->num_new_tokens;
        result->batch.erase(std::next(it).base());
        break;
      }
    }
    seq->scheduled_in_ = 0;
  }
  EraseRunning(seq);
  kv_->Free(seq->id());
  seq->status_ = SequenceStatus::kWaiting;
  seq->num_computed_ = 0;
  seq->passed_over_ = 0;
  ++seq->num_preemptions_;
  ++num_preemptions_;
  waiting_.push_front(seq);
  result->preempted.push_back(seq->id());
}

void Scheduler::ScheduleRunning(ScheduleResult* result, int32_t* budget) {
  const int32_t chunk_cap = config_.max_prefill_chunk > 0 ? config_.max_prefill_chunk
                                                          : std::numeric_limits<int32_t>::max();
  // Pass 0: decodes (one token left); pass 1: prefill chunks (more left).
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < running_.size() && *budget > 0; ++i) {
      Sequence* seq = running_[i];
      const int32_t remaining = seq->num_remaining_tokens();
      if (remaining == 0 || seq->scheduled_in_ == step_) continue;  // awaiting its sample
      if ((remaining == 1) != (pass == 0)) continue;
      const int32_t want = std::min({remaining, *budget, chunk_cap});
      int32_t got = 0;
      while ((got = GrowUpTo(seq, want)) == 0) {
        Sequence* victim = running_.back();  // the newest running sequence
        if (victim == seq && running_.size() == 1) {
          LS_LOG(WARNING) << "request " << seq->id() << " cannot grow to " << seq->num_computed_ + 1
                          << " tokens of KV even alone; failing it";
          result->failed.push_back(seq->id());
          Remove(seq);
          break;
        }
        Preempt(victim, result, budget);
        if (victim == seq) break;
      }
      if (got == 0) continue;  // seq left running_, which ended at index i
      Commit(seq, got, result);
      *budget -= got;
    }
  }
}

void Scheduler::ScheduleWaiting(ScheduleResult* result, int32_t* budget) {
  if (!result->preempted.empty()) return;  // memory is tight: admit nothing this step
  const int32_t chunk_cap = config_.max_prefill_chunk > 0 ? config_.max_prefill_chunk
                                                          : std::numeric_limits<int32_t>::max();
  bool lora_claimed = false;  // a starving sequence ahead claims the next LoRA slot
  bool removed_any = false;
  for (Sequence*& seq : waiting_) {
    if (NumRunning() >= config_.max_num_seqs || *budget == 0) break;
    const AdapterKey adapter = seq->adapter();
    if (!IsReady(adapter)) continue;  // no head-of-line blocking
    if (adapter != kBaseModelAdapter) {
      const bool needs_slot = !running_loras_.contains(adapter);
      const bool slots_full = static_cast<int32_t>(running_loras_.size()) >= config_.max_loras;
      if (lora_claimed || (needs_slot && slots_full)) {
        if (seq->passed_over_ >= config_.starvation_iterations) lora_claimed = true;
        ++seq->passed_over_;
        continue;
      }
    }
    // Admit only what memory can finish: KV for every known token must fit
    // now, though only the first chunk's is taken (a prefill started without
    // room to finish would preempt itself and waste its work).
    if (!kv_->CanGrow(seq->id(), seq->num_tokens())) {
      if (!running_.empty()) break;  // FCFS on memory: nobody behind overtakes it
      LS_LOG(WARNING) << "request " << seq->id() << " needs KV for " << seq->num_tokens()
                      << " tokens, more than the whole pool; failing it";
      result->failed.push_back(seq->id());
      Remove(seq);
      seq = nullptr;
      removed_any = true;
      continue;
    }
    const int32_t got = std::min({seq->num_remaining_tokens(), *budget, chunk_cap});
    if (!TryGrow(seq, seq->num_computed_ + got)) break;
    InsertRunning(seq);
    seq->passed_over_ = 0;
    Commit(seq, got, result);
    *budget -= got;
    seq = nullptr;  // taken out of the queue below
    removed_any = true;
  }
  if (removed_any) std::erase(waiting_, nullptr);
}

void Scheduler::FillPrefetch(ScheduleResult* result) {
  prefetch_seen_.clear();
  auto add = [&](AdapterKey adapter) {
    if (adapter != kBaseModelAdapter && prefetch_seen_.insert(adapter).second) {
      result->prefetch.push_back(adapter);
    }
  };
  for (const Sequence* seq : running_) add(seq->adapter());
  for (const Sequence* seq : waiting_) add(seq->adapter());
}

ScheduleResult Scheduler::Schedule() {
  ++step_;
  ScheduleResult result;
  int32_t budget = config_.max_num_batched_tokens;
  ScheduleRunning(&result, &budget);
  ScheduleWaiting(&result, &budget);
  FillPrefetch(&result);
  LS_CHECK_LE(result.num_batched_tokens, config_.max_num_batched_tokens);
  return result;
}

void Scheduler::OnStepDone(std::span<const StepOutput> outputs) {
  for (const StepOutput& out : outputs) {
    auto it = seqs_.find(out.id);
    if (it == seqs_.end()) continue;  // aborted or failed since the step was scheduled
    Sequence* seq = it->second.get();
    // A running sequence gets a token only after a step that fed its last
    // known token. (A waiting one was preempted after such a step: the token
    // is still valid and is recomputed with the rest.)
    LS_CHECK(seq->status_ == SequenceStatus::kWaiting || seq->num_remaining_tokens() == 0)
        << "request " << out.id << " got a token with " << seq->num_remaining_tokens()
        << " known tokens not yet fed";
    seq->output_.push_back(out.token);
    if (out.finished) {
      if (seq->status_ == SequenceStatus::kWaiting) {
        std::erase(waiting_, seq);
      }
      Remove(seq);
    }
  }
}

}  // namespace loraserve
