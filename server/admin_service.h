// AdminService: loraserve.v1.AdapterAdmin (LoadAdapter / UnloadAdapter /
// ListAdapters) on the admin listener. When a token is configured every call
// must carry "authorization: Bearer <token>" metadata (constant-time compare;
// UNAUTHENTICATED otherwise). LoadAdapter checks the name, resolves the path
// inside --adapter-root (PERMISSION_DENIED outside it), then asks the engine.
//
// Owned by Server; gRPC threads call it. Thread-safe (immutable after
// construction; the engine is thread-safe). LoadAdapter runs the engine's
// load on the calling gRPC thread: admin traffic is rare and loads read
// only the adapter's few files.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "loraserve/v1/admin.grpc.pb.h"
#include "server/serving_state.h"

namespace loraserve {

class AdminService final : public v1::AdapterAdmin::CallbackService {
 public:
  struct Options {
    std::string adapter_root;  // "" disables LoadAdapter
    std::string token;         // "" = no authentication
  };
  AdminService(ServingState* state, Options options)
      : state_(state), options_(std::move(options)) {}

  grpc::ServerUnaryReactor* LoadAdapter(grpc::CallbackServerContext* context,
                                        const v1::LoadAdapterRequest* request,
                                        v1::LoadAdapterResponse* response) override;
  grpc::ServerUnaryReactor* UnloadAdapter(grpc::CallbackServerContext* context,
                                          const v1::UnloadAdapterRequest* request,
                                          v1::UnloadAdapterResponse* response) override;
  grpc::ServerUnaryReactor* ListAdapters(grpc::CallbackServerContext* context,
                                         const v1::ListAdaptersRequest* request,
                                         v1::ListAdaptersResponse* response) override;

  // The same checks and engine calls without gRPC (also used for
  // --lora-modules at startup, with check_root=false: operator-given paths).
  absl::StatusOr<v1::LoadAdapterResponse> DoLoad(const v1::LoadAdapterRequest& request,
                                                 bool check_root);

 private:
  absl::Status Authorize(const grpc::CallbackServerContext& context) const;
  absl::StatusOr<EngineApi*> Engine() const;

  ServingState* const state_;
  const Options options_;
};

// Reads a bearer token file: surrounding whitespace trimmed; InvalidArgument
// naming --admin-token-file when empty, NotFound when unreadable.
absl::StatusOr<std::string> ReadAdminTokenFile(const std::string& path);

// Compares without an early exit on the first differing byte.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace loraserve
