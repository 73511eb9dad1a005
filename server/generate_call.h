// GenerateCall: one Generate RPC from arrival to OnDone. It is the request's
// GenerationSink (the engine holds it by shared_ptr) and drives the gRPC
// ServerWriteReactor: events pushed by the engine thread are queued, at most
// one write is in flight, the next starts in OnWriteDone, and the terminal
// event is followed by Finish(OK). Client cancel and deadline expiry
// (OnCancel), or a failed write, abort the request in the engine once.
//
// Lifetime: the reactor (GenerateCall::Reactor) owns a shared_ptr to the call
// and deletes itself in OnDone; the call keeps a raw pointer to the reactor,
// cleared under the mutex in OnDone, so events pushed afterwards are dropped.
// The reactor is never finished while a write is in flight, and Finish is
// called exactly once (finish_called_). No lock is held across StartWrite or
// Finish, so gRPC may run reactions inline.
//
// Thread-safety: Push on the engine thread, reactions on gRPC threads; all
// state is guarded by mu_.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "absl/synchronization/mutex.h"
#include "engine/engine_api.h"
#include "grpcpp/grpcpp.h"
#include "loraserve/v1/generation.grpc.pb.h"
#include "server/metrics_collector.h"

namespace loraserve {

class GenerationService;

class GenerateCall : public GenerationSink, public std::enable_shared_from_this<GenerateCall> {
 public:
  class Reactor;

  // Creates the call and its reactor (returned to gRPC), validates and
  // submits the request, or finishes the RPC with the rejection status.
  static grpc::ServerWriteReactor<v1::GenerateResponse>* Start(
      GenerationService* service, grpc::CallbackServerContext* context,
      const v1::GenerateRequest* request);

  explicit GenerateCall(GenerationService* service) : service_(service) {}
  ~GenerateCall() override = default;

  void Push(GenerationEvent event) override;

 private:
  enum class Action { kNone, kWrite, kFinish };
  struct Step {
    Action action = Action::kNone;
    Reactor* reactor = nullptr;
    const v1::GenerateResponse* message = nullptr;  // kWrite
    grpc::Status status;                            // kFinish
  };

  void Accept(const v1::GenerateRequest& request);
  void FinishEarly(const grpc::Status& status);
  void OnWriteDone(bool ok);
  void OnCancel();
  void OnDone();
  // Decides the next gRPC operation; run it with Run() after unlocking.
  Step NextStepLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends the RPC with `status` unless already finishing (write in flight: the
  // pending OnWriteDone finishes it).
  Step CancelLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // True (once) when the engine still owes this accepted request its
  // terminal event and must be told to abort it; sets *id.
  bool TakeAbortLocked(std::string* id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Run(const Step& step);

  GenerationService* const service_;
  uint64_t serial_ = 0;        // registration in service_ (0: none); set before any reaction
  EngineApi* engine_ = nullptr;
  MetricsCollector* metrics_ = nullptr;

  absl::Mutex mu_;
  Reactor* reactor_ ABSL_GUARDED_BY(mu_) = nullptr;  // null after OnDone
  std::string request_id_ ABSL_GUARDED_BY(mu_);
  bool accepted_ ABSL_GUARDED_BY(mu_) = false;        // Submit returned OK
  std::deque<v1::GenerateResponse> queue_ ABSL_GUARDED_BY(mu_);
  v1::GenerateResponse writing_ ABSL_GUARDED_BY(mu_);  // the one write in flight
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool terminal_seen_ ABSL_GUARDED_BY(mu_) = false;     // engine pushed the terminal event
  bool terminal_written_ ABSL_GUARDED_BY(mu_) = false;  // it is (being) written
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;
  bool abort_sent_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<RequestObserver> observer_ ABSL_GUARDED_BY(mu_);
};

}  // namespace loraserve
