#include "server/generate_call.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/generation_service.h"
#include "server/grpc_status.h"
#include "server/request_convert.h"

namespace loraserve {

class GenerateCall::Reactor final : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  explicit Reactor(std::shared_ptr<GenerateCall> call) : call_(std::move(call)) {}

  // Each reaction keeps the call alive for its own duration: once it calls
  // Finish, OnDone may run (and delete this) on another thread at once.
  void OnWriteDone(bool ok) override {
    std::shared_ptr<GenerateCall> call = call_;
    call->OnWriteDone(ok);
  }
  void OnCancel() override {
    std::shared_ptr<GenerateCall> call = call_;
    call->OnCancel();
  }
  void OnDone() override {
    call_->OnDone();
    delete this;
  }

 private:
  std::shared_ptr<GenerateCall> call_;
};

grpc::ServerWriteReactor<v1::GenerateResponse>* GenerateCall::Start(
    GenerationService* service, grpc::CallbackServerContext* /*context*/,
    const v1::GenerateRequest* request) {
  auto call = std::make_shared<GenerateCall>(service);
  auto* reactor = new Reactor(call);
  {
    absl::MutexLock lock(&call->mu_);
    call->reactor_ = reactor;
  }
  call->Accept(*request);
  return reactor;
}

void GenerateCall::Accept(const v1::GenerateRequest& request) {
  // Runs inside the RPC handler, before gRPC binds the reactor: no reaction
  // can run yet; only the engine thread may Push once Submit accepted.
  serial_ = service_->Register();
  if (serial_ == 0) {
    FinishEarly(grpc::Status(grpc::StatusCode::UNAVAILABLE, "server is draining"));
    return;
  }
  engine_ = service_->state()->engine();
  metrics_ = service_->state()->metrics();
  if (engine_ == nullptr) {
    FinishEarly(grpc::Status(grpc::StatusCode::UNAVAILABLE, "model is loading"));
    return;
  }
  const ModelLimits limits{.tokenizer = &engine_->tokenizer(),
                           .vocab_size = engine_->vocab_size(),
                           .max_context = engine_->max_context()};
  absl::StatusOr<GenerationRequest> req = ToGenerationRequest(request, limits);
  if (!req.ok()) {
    FinishEarly(ToGrpcStatus(req.status()));
    return;
  }
  if (req->request_id.empty()) req->request_id = absl::StrCat("srv-", serial_);
  req->arrival = absl::Now();
  const std::string id = req->request_id;
  {
    absl::MutexLock lock(&mu_);
    request_id_ = id;
    observer_.emplace(req->arrival);
  }
  absl::Status submitted = engine_->Submit(*std::move(req), shared_from_this());
  if (!submitted.ok()) {
    FinishEarly(ToGrpcStatus(submitted));
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    accepted_ = true;
  }
  service_->SetRequestId(serial_, id);
}

void GenerateCall::FinishEarly(const grpc::Status& status) {
  Reactor* reactor = nullptr;
  {
    absl::MutexLock lock(&mu_);
    finish_called_ = true;
    observer_.reset();
    reactor = reactor_;
  }
  reactor->Finish(status);
}

void GenerateCall::Push(GenerationEvent event) {
  const absl::Time now = absl::Now();
  Step step;
  {
    absl::MutexLock lock(&mu_);
    // After OnDone, after a cancel, or (contract breach) after a terminal
    // event: dropped.
    if (reactor_ == nullptr || finish_called_ || terminal_seen_) return;
    if (observer_.has_value()) {
      std::optional<RequestMetrics> done = observer_->OnEvent(event, now);
      if (done.has_value()) {
        // Inside the lock: the reactor (and so the server and its metrics)
        // is alive until OnDone, which takes this lock.
        if (metrics_ != nullptr) metrics_->OnRequestFinished(*done);
        observer_.reset();
      }
    }
    queue_.push_back(ToGenerateResponse(event, request_id_));
    if (event.kind != GenerationEvent::Kind::kDelta) terminal_seen_ = true;
    step = NextStepLocked();
  }
  Run(step);
}

GenerateCall::Step GenerateCall::NextStepLocked() {
  if (finish_called_ || write_in_flight_ || reactor_ == nullptr) return {};
  if (!queue_.empty()) {
    writing_ = std::move(queue_.front());
    queue_.pop_front();
    write_in_flight_ = true;
    if (terminal_seen_ && queue_.empty()) terminal_written_ = true;
    return {.action = Action::kWrite, .reactor = reactor_, .message = &writing_};
  }
  if (terminal_written_) {
    finish_called_ = true;
    return {.action = Action::kFinish, .reactor = reactor_, .status = grpc::Status::OK};
  }
  return {};
}

GenerateCall::Step GenerateCall::CancelLocked(const grpc::Status& status) {
  if (finish_called_ || write_in_flight_ || reactor_ == nullptr) return {};
  finish_called_ = true;
  queue_.clear();
  return {.action = Action::kFinish, .reactor = reactor_, .status = status};
}

bool GenerateCall::TakeAbortLocked(std::string* id) {
  if (!accepted_ || terminal_seen_ || abort_sent_) return false;
  abort_sent_ = true;
  *id = request_id_;
  return true;
}

void GenerateCall::Run(const Step& step) {
  switch (step.action) {
    case Action::kNone:
      return;
    case Action::kWrite:
      step.reactor->StartWrite(step.message);
      return;
    case Action::kFinish:
      step.reactor->Finish(step.status);
      return;
  }
}

void GenerateCall::OnWriteDone(bool ok) {
  Step step;
  std::string abort_id;
  bool abort = false;
  {
    absl::MutexLock lock(&mu_);
    write_in_flight_ = false;
    if (ok) {
      step = NextStepLocked();
    } else {
      abort = TakeAbortLocked(&abort_id);
      step = CancelLocked(grpc::Status(grpc::StatusCode::CANCELLED, "stream write failed"));
    }
  }
  // The engine may push (and drop) a few more events before it sees this.
  if (abort) engine_->Abort(abort_id);
  Run(step);
}

void GenerateCall::OnCancel() {
  Step step;
  std::string abort_id;
  bool abort = false;
  {
    absl::MutexLock lock(&mu_);
    abort = TakeAbortLocked(&abort_id);
    step = CancelLocked(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client"));
  }
  if (abort) engine_->Abort(abort_id);
  Run(step);
}

void GenerateCall::OnDone() {
  {
    absl::MutexLock lock(&mu_);
    reactor_ = nullptr;
    if (accepted_ && observer_.has_value() && metrics_ != nullptr) {
      metrics_->OnRequestFinished(observer_->Abandon(absl::Now()));
    }
    observer_.reset();
    queue_.clear();
  }
  if (serial_ != 0) service_->Unregister(serial_);
}

}  // namespace loraserve
