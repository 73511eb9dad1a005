// Engine::Step: one iteration of the engine loop on the engine thread:
// schedule, forward the mixed batch, sample, detokenize, stop, emit.
#include <optional>
#include <span>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status.h"
#include "engine/engine.h"

namespace loraserve {

bool Engine::Step() {
  ScheduleResult sched = scheduler_->Schedule();
  const absl::Time scheduled_at = absl::Now();
  // Pins move from this Schedule()'s IsReady calls to the requests that got
  // in; preempted requests let theirs go (their adapter may be evicted).
  for (RequestId id : sched.preempted) residency_->UnpinRequest(id);
  for (const ScheduledSequence& s : sched.batch) residency_->PinRequest(s.seq->id());
  residency_->EndSchedule();

  // Requests that can never fit (the scheduler has already dropped them).
  for (RequestId id : sched.failed) {
    auto it = active_.find(id);
    if (it == active_.end()) continue;
    RequestState& r = *it->second;
    r.Fail(absl::ResourceExhaustedError(absl::StrCat(
               "request needs KV for ", r.tokens().size(), "+ tokens but the KV cache holds only ",
               int64_t{kv_->NumTotalBlocks()} * kv_->block_tokens(),
               " tokens; it cannot run even alone")),
           scheduled_at);
    Release(id);
  }
  residency_->Prefetch(sched.prefetch);
  FailUnloadable();
  if (sched.batch.empty()) return false;

  ForwardBatch batch;
  batch.lora = residency_.get();
  batch.sequences.reserve(sched.batch.size());
  for (const ScheduledSequence& s : sched.batch) {
    RequestState& r = *active_.at(s.seq->id());
    LS_CHECK(static_cast<size_t>(s.start_position + s.num_new_tokens) <= r.tokens().size())
        << "request " << r.id << ": step past its known tokens";
    if (r.timings().first_scheduled == absl::InfinitePast()) {
      r.timings().first_scheduled = scheduled_at;
    }
    SequenceStep step;
    step.tokens = std::span<const int32_t>(r.tokens()).subspan(
        static_cast<size_t>(s.start_position), static_cast<size_t>(s.num_new_tokens));
    step.num_cached = s.start_position;
    step.block_table = kv_->Table(r.id);
    step.adapter_id = r.adapter_key;
    step.compute_logits = s.sample;
    const SamplingParams& params = r.sampler()->params();
    step.greedy_on_device = s.sample && Sampler::IsPlainGreedy(params);
    step.candidates_on_device =
        s.sample && options_.device_sampling && Sampler::CanUseCandidates(params);
    step.temperature = params.temperature;
    batch.sequences.push_back(std::move(step));
  }

  const absl::Status status = model_->Forward(batch, kv_->view(), &forward_out_);
  if (!status.ok()) {
    LS_LOG(ERROR) << "engine: forward of " << sched.batch.size() << " sequences failed: "
                  << status.ToString();
    FailBatch(sched, status);
    return true;
  }

  // Sample every row first: a row whose candidates cannot decide fetches its
  // logits, and a failed fetch fails the step before any token is emitted.
  const ForwardOutput& out = forward_out_;
  sampled_.assign(sched.batch.size(), SampledToken{});
  for (size_t i = 0; i < sched.batch.size(); ++i) {
    if (!sched.batch[i].sample) continue;
    RequestState& r = *active_.at(sched.batch[i].seq->id());
    const SequenceStep& step = batch.sequences[i];
    const int64_t row = out.first_row[i];
    LS_CHECK(row >= 0) << "request " << r.id << ": no logits row";
    if (step.greedy_on_device) {
      sampled_[i] = sampler_->TakeArgMax(out.argmax[row], r.sampler());
      continue;
    }
    if (!step.candidates_on_device) {
      sampled_[i] = sampler_->Sample(out.row(row).data(), r.sampler());
      continue;
    }
    std::optional<SampledToken> t = sampler_->SampleFromCandidates(
        out.candidate_ids_of(row), out.candidate_values_of(row), out.candidate_totals[row],
        r.sampler());
    if (t.has_value()) {
      sampled_[i] = *std::move(t);
      continue;
    }
    fallback_row_.resize(static_cast<size_t>(vocab_size_));
    const absl::Status fetched = model_->CopyLogitsRow(row, fallback_row_.data());
    if (!fetched.ok()) {
      LS_LOG(ERROR) << "engine: fetching the logits of request " << r.id
                    << " failed: " << fetched.ToString();
      FailBatch(sched, fetched);
      return true;
    }
    sampled_[i] = sampler_->Sample(fallback_row_.data(), r.sampler());
  }

  const absl::Time now = absl::Now();
  step_outputs_.clear();
  std::vector<RequestId> ended;
  for (size_t i = 0; i < sched.batch.size(); ++i) {
    const ScheduledSequence& s = sched.batch[i];
    if (!s.sample) continue;
    RequestState& r = *active_.at(s.seq->id());
    const SampledToken& t = sampled_[i];
    ++generation_tokens_total_;
    const bool end = r.OnToken(t, now);
    step_outputs_.push_back(StepOutput{r.id, t.token, end});
    if (end) ended.push_back(r.id);
  }
  scheduler_->OnStepDone(step_outputs_);  // frees the KV of ended requests
  for (RequestId id : ended) Release(id);
  return true;
}

void Engine::FailUnloadable() {
  std::vector<RequestId> failed;
  for (const auto& [id, r] : active_) {
    if (r->adapter_key == kBaseModelAdapter || residency_->Pinned(id)) continue;
    if (!residency_->AdapterError(r->adapter_key).ok()) failed.push_back(id);
  }
  const absl::Time now = absl::Now();
  for (RequestId id : failed) {
    RequestState& r = *active_.at(id);
    scheduler_->Abort(id);
    r.Fail(AnnotateStatus(residency_->AdapterError(r.adapter_key),
                          absl::StrCat("adapter \"", r.request().adapter, "\" cannot be loaded")),
           now);
    Release(id);
  }
}

void Engine::FailBatch(const ScheduleResult& sched, const absl::Status& error) {
  const absl::Time now = absl::Now();
  std::vector<RequestId> ids;
  for (const ScheduledSequence& s : sched.batch) ids.push_back(s.seq->id());
  // Each request of the batch ends with an error; the others keep running.
  for (RequestId id : ids) {
    scheduler_->Abort(id);
    active_.at(id)->Fail(AnnotateStatus(error, "model step"), now);
    Release(id);
  }
}

}  // namespace loraserve
