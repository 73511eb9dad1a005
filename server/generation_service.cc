#include "server/generation_service.h"

#include "server/generate_call.h"

namespace loraserve {

grpc::ServerWriteReactor<v1::GenerateResponse>* GenerationService::Generate(
    grpc::CallbackServerContext* context, const v1::GenerateRequest* request) {
  return GenerateCall::Start(this, context, request);
}

grpc::ServerUnaryReactor* GenerationService::Abort(grpc::CallbackServerContext* context,
                                                   const v1::AbortRequest* request,
                                                   v1::AbortResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  EngineApi* engine = state_->engine();
  if (engine == nullptr) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "model is loading"));
  } else if (request->request_id().empty()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "request_id is empty"));
  } else {
    response->set_found(engine->Abort(request->request_id()));
    reactor->Finish(grpc::Status::OK);
  }
  return reactor;
}

void GenerationService::StartDraining() {
  absl::MutexLock lock(&mu_);
  draining_ = true;
}

bool GenerationService::draining() const {
  absl::MutexLock lock(&mu_);
  return draining_;
}

bool GenerationService::WaitIdle(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return active_.empty(); };
  return mu_.AwaitWithTimeout(absl::Condition(&idle), timeout);
}

int GenerationService::AbortAll() {
  std::vector<std::string> ids;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [serial, id] : active_) {
      if (!id.empty()) ids.push_back(id);
    }
  }
  EngineApi* engine = state_->engine();
  if (engine == nullptr) return 0;
  int n = 0;
  for (const std::string& id : ids) n += engine->Abort(id) ? 1 : 0;
  return n;
}

int GenerationService::num_active() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(active_.size());
}

uint64_t GenerationService::Register() {
  absl::MutexLock lock(&mu_);
  if (draining_) return 0;
  const uint64_t serial = next_serial_++;
  active_.emplace(serial, std::string());
  return serial;
}

void GenerationService::SetRequestId(uint64_t serial, const std::string& request_id) {
  absl::MutexLock lock(&mu_);
  auto it = active_.find(serial);
  if (it != active_.end()) it->second = request_id;
}

void GenerationService::Unregister(uint64_t serial) {
  absl::MutexLock lock(&mu_);
  active_.erase(serial);
}

}  // namespace loraserve
