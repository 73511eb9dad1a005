#include "bench/loadgen/generate_client.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/logging.h"
#include "grpcpp/grpcpp.h"
#include "server/request_convert.h"

namespace loraserve::loadgen {
namespace {

using Clock = std::chrono::steady_clock;

class GenerateCall;

// What the dispatcher and the reactors share: the open calls (so the drain
// timeout can cancel them), their lifetime, and the counters progress lines
// show. A call is deleted by whoever lets go of it last: its own OnDone, or
// CancelOpen, which pins the open calls so it can cancel them without
// holding the lock (a cancel may run OnDone inline).
class CallTracker {
 public:
  explicit CallTracker(size_t total) : total_(total) {}

  void Opened(GenerateCall* call);
  // From the call's OnDone, after its record is complete; may delete it.
  void Closed(GenerateCall* call, Outcome outcome);
  // Cancels every open call (the drain timeout).
  void CancelOpen();

  // Waits until every request is done or `deadline` passes; true when done.
  bool WaitAllDone(Clock::time_point deadline) {
    const absl::Duration d =
        absl::FromChrono(std::max(Clock::duration::zero(), deadline - Clock::now()));
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(this, &CallTracker::AllDoneLocked), d);
  }
  void WaitAllDone() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(this, &CallTracker::AllDoneLocked));
  }
  std::string ProgressLine(double elapsed_s) {
    absl::MutexLock lock(&mu_);
    return absl::StrFormat("loadgen: %.1fs sent %d/%d done %d failed %d in flight %d\n", elapsed_s,
                           sent_, total_, done_, failed_, open_.size());
  }

 private:
  bool AllDoneLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done_ == total_; }

  const size_t total_;
  absl::Mutex mu_;
  absl::flat_hash_set<GenerateCall*> open_ ABSL_GUARDED_BY(mu_);
  size_t sent_ ABSL_GUARDED_BY(mu_) = 0;
  size_t done_ ABSL_GUARDED_BY(mu_) = 0;
  size_t failed_ ABSL_GUARDED_BY(mu_) = 0;  // done but not ok
};

// One Generate stream. Created and started by the dispatcher; deletes itself
// in OnDone after filling its record.
class GenerateCall final : public grpc::ClientReadReactor<v1::GenerateResponse> {
 public:
  GenerateCall(std::shared_ptr<CallTracker> tracker, RequestRecord* record,
               Clock::time_point origin)
      : tracker_(std::move(tracker)), record_(record), origin_(origin) {}

  void Start(v1::Generation::StubInterface* stub, const TraceRequest& request,
             double timeout_s) {
    request_ = MakeGenerateRequest(request);
    if (timeout_s > 0) {
      context_.set_deadline(std::chrono::system_clock::now() +
                            std::chrono::microseconds(static_cast<int64_t>(timeout_s * 1e6)));
    }
    tracker_->Opened(this);
    stub->async()->Generate(&context_, &request_, this);
    StartRead(&response_);
    record_->send_s = Now();
    StartCall();
  }

  // On an open (or just closing) call pinned by CancelOpen.
  void CancelForDrain() {
    drain_cancelled_.store(true, std::memory_order_relaxed);
    context_.TryCancel();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream is over; OnDone follows
    const double now = Now();
    if (response_.has_delta() && response_.delta().token_ids_size() > 0) {
      const int32_t n = response_.delta().token_ids_size();
      if (!record_->first_token_s.has_value()) record_->first_token_s = now;
      record_->deltas.push_back({now, n});
      counted_tokens_ += n;
    }
    has_usage_ = response_.has_usage();
    if (has_usage_) usage_ = response_.usage();
    if (response_.has_finished()) {
      finished_ = true;
      finish_reason_ = response_.finished().reason();
    } else if (response_.has_error()) {
      error_ = true;
      error_code_ = response_.error().code();
      error_message_ = response_.error().message();
    }
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override {
    RequestRecord& r = *record_;
    r.end_s = Now();
    r.prompt_tokens = has_usage_ ? usage_.prompt_tokens() : r.input_len;
    r.output_tokens = has_usage_ ? usage_.completion_tokens() : counted_tokens_;
    if (finished_) r.finish_reason = FinishReasonName(finish_reason_);
    if (drain_cancelled_.load(std::memory_order_relaxed) && !status.ok()) {
      r.outcome = Outcome::kCancelled;
      r.status_code = status.error_code();
      r.message = "cancelled by the load generator at the drain timeout";
    } else if (!status.ok()) {
      r.outcome = Outcome::kFailed;
      r.status_code = status.error_code();
      r.message = status.error_message();
    } else if (error_) {
      r.outcome = Outcome::kFailed;
      r.status_code = error_code_;
      r.message = error_message_;
    } else if (finished_) {
      r.outcome = finish_reason_ == v1::FINISH_REASON_CANCELLED ? Outcome::kCancelled : Outcome::kOk;
    } else {
      r.outcome = Outcome::kFailed;
      r.status_code = static_cast<int>(grpc::StatusCode::INTERNAL);
      r.message = "stream ended without a terminal event";
    }
    // The local reference keeps the tracker alive until Closed has left its
    // lock, even if the dispatcher has returned by then.
    const std::shared_ptr<CallTracker> tracker = tracker_;
    tracker->Closed(this, r.outcome);  // may delete this
  }

  // Guarded by the tracker's lock: pins held by CancelOpen, and whether
  // OnDone has run.
  int pins = 0;
  bool closed = false;

 private:
  double Now() const { return std::chrono::duration<double>(Clock::now() - origin_).count(); }

  const std::shared_ptr<CallTracker> tracker_;
  RequestRecord* const record_;
  const Clock::time_point origin_;
  grpc::ClientContext context_;
  v1::GenerateRequest request_;
  v1::GenerateResponse response_;
  std::atomic<bool> drain_cancelled_{false};
  // Reactions of one call never run concurrently: no lock needed below.
  int64_t counted_tokens_ = 0;
  bool has_usage_ = false;
  v1::Usage usage_;
  bool finished_ = false;
  v1::FinishReason finish_reason_ = v1::FINISH_REASON_UNSPECIFIED;
  bool error_ = false;
  int error_code_ = 0;
  std::string error_message_;
};

void CallTracker::Opened(GenerateCall* call) {
  absl::MutexLock lock(&mu_);
  open_.insert(call);
  ++sent_;
}

void CallTracker::Closed(GenerateCall* call, Outcome outcome) {
  bool release = false;
  {
    absl::MutexLock lock(&mu_);
    open_.erase(call);
    ++done_;
    if (outcome != Outcome::kOk) ++failed_;
    call->closed = true;
    release = call->pins == 0;
  }
  if (release) delete call;
}

void CallTracker::CancelOpen() {
  std::vector<GenerateCall*> pinned;
  {
    absl::MutexLock lock(&mu_);
    for (GenerateCall* call : open_) {
      ++call->pins;
      pinned.push_back(call);
    }
  }
  for (GenerateCall* call : pinned) call->CancelForDrain();
  std::vector<GenerateCall*> release;
  {
    absl::MutexLock lock(&mu_);
    for (GenerateCall* call : pinned) {
      if (--call->pins == 0 && call->closed) release.push_back(call);
    }
  }
  for (GenerateCall* call : release) delete call;
}

}  // namespace

v1::GenerateRequest MakeGenerateRequest(const TraceRequest& request) {
  v1::GenerateRequest req;
  req.set_request_id(absl::StrCat("lg-", request.id));
  req.mutable_token_ids()->mutable_ids()->Assign(request.prompt_ids.begin(),
                                                 request.prompt_ids.end());
  req.set_adapter_id(request.adapter);
  req.mutable_sampling()->set_temperature(0.0f);
  req.mutable_stopping()->set_max_tokens(static_cast<uint32_t>(request.output_len));
  req.mutable_stopping()->set_ignore_eos(true);
  return req;
}

std::vector<RequestRecord> ReplayTrace(v1::Generation::StubInterface* stub,
                                       const std::vector<TraceRequest>& trace,
                                       const ReplayOptions& options) {
  std::vector<RequestRecord> records(trace.size());
  for (size_t i = 0; i < trace.size(); ++i) {
    records[i].id = trace[i].id;
    records[i].adapter = trace[i].adapter;
    records[i].input_len = trace[i].input_len;
    records[i].output_len = trace[i].output_len;
    records[i].scheduled_s = trace[i].t;
  }
  auto tracker_ptr = std::make_shared<CallTracker>(trace.size());
  CallTracker& tracker = *tracker_ptr;
  const Clock::time_point origin = Clock::now();
  const bool show_progress = options.progress != nullptr && options.progress_interval_s > 0;
  const auto interval = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(show_progress ? options.progress_interval_s : 1e9));
  Clock::time_point next_progress = origin + interval;
  auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - origin).count(); };
  auto maybe_progress = [&] {
    if (!show_progress || Clock::now() < next_progress) return;
    *options.progress << tracker.ProgressLine(elapsed()) << std::flush;
    while (next_progress <= Clock::now()) next_progress += interval;
  };

  for (size_t i = 0; i < trace.size(); ++i) {
    const Clock::time_point at = origin + std::chrono::duration_cast<Clock::duration>(
                                              std::chrono::duration<double>(trace[i].t));
    while (Clock::now() < at) {
      std::this_thread::sleep_until(std::min(at, next_progress));
      maybe_progress();
    }
    auto* call = new GenerateCall(tracker_ptr, &records[i], origin);  // the tracker deletes it
    call->Start(stub, trace[i], options.request_timeout_s);
    maybe_progress();
  }

  const Clock::time_point drain_deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(options.drain_timeout_s));
  bool all_done = false;
  while (!all_done && Clock::now() < drain_deadline) {
    all_done = tracker.WaitAllDone(std::min(drain_deadline, next_progress));
    maybe_progress();
  }
  if (!all_done) {
    if (options.progress != nullptr) {
      *options.progress << absl::StrFormat(
          "loadgen: drain timeout (%gs after the last send): cancelling open requests\n",
          options.drain_timeout_s);
    }
    tracker.CancelOpen();
    // gRPC runs OnDone promptly after a cancel; nothing is left behind.
    tracker.WaitAllDone();
  }
  if (options.progress != nullptr) *options.progress << tracker.ProgressLine(elapsed()) << std::flush;
  return records;
}

}  // namespace loraserve::loadgen
