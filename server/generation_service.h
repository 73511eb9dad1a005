// GenerationService: loraserve.v1.Generation on the gRPC callback API.
// Generate validates and tokenizes a request, Submit()s it to the engine and
// streams its events back (one GenerateCall per RPC, see generate_call.h);
// Abort forwards to EngineApi::Abort.
//
// Also the drain bookkeeping for Server: every Generate call is registered
// from arrival to OnDone; StartDraining() makes new calls UNAVAILABLE,
// WaitIdle() waits for the registered ones, AbortAll() cancels them in the
// engine (each then gets its terminal cancelled event).
//
// Owned by Server; gRPC threads call the RPC methods. Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "loraserve/v1/generation.grpc.pb.h"
#include "server/serving_state.h"

namespace loraserve {

class GenerationService final : public v1::Generation::CallbackService {
 public:
  explicit GenerationService(ServingState* state) : state_(state) {}

  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(
      grpc::CallbackServerContext* context, const v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Abort(grpc::CallbackServerContext* context,
                                  const v1::AbortRequest* request,
                                  v1::AbortResponse* response) override;

  // New Generate calls fail with UNAVAILABLE from now on.
  void StartDraining();
  bool draining() const;
  // Waits until no Generate call is registered; false on timeout.
  bool WaitIdle(absl::Duration timeout);
  // EngineApi::Abort for every accepted call still registered; returns how many.
  int AbortAll();
  int num_active() const;

  // Used by GenerateCall. Register returns 0 (not registered) while draining.
  uint64_t Register();
  void SetRequestId(uint64_t serial, const std::string& request_id);
  void Unregister(uint64_t serial);
  ServingState* state() const { return state_; }

 private:
  ServingState* const state_;
  mutable absl::Mutex mu_;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_serial_ ABSL_GUARDED_BY(mu_) = 1;
  // serial -> request id ("" until accepted by the engine).
  absl::flat_hash_map<uint64_t, std::string> active_ ABSL_GUARDED_BY(mu_);
};

}  // namespace loraserve
