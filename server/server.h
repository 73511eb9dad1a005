// Server: the whole serving process minus the engine: the gRPC Generation
// listener (with grpc.health.v1 and reflection), the AdapterAdmin listener
// (its own grpc::Server, 127.0.0.1 by default, optional bearer token), and
// the HTTP /metrics + /health port. Orchestrates readiness and graceful
// shutdown:
//   Start           listeners up, health NOT_SERVING, /health/ready 503
//   SetEngineReady  --lora-modules loaded, health SERVING, ready 200
//   Shutdown(grace) health NOT_SERVING, ready 503 "draining", new Generate
//                   UNAVAILABLE; in-flight requests get `grace` to finish,
//                   then are aborted in the engine (each ends with its
//                   cancelled terminal event); listeners stop.
//
// Owns the services, listeners and metrics; borrows the engine, which must
// outlive the Server. Thread-safe: Shutdown may be called from any thread
// (a signal-handling thread) and is idempotent; Wait blocks until it is done.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/engine_api.h"
#include "grpcpp/grpcpp.h"
#include "server/admin_service.h"
#include "server/generation_service.h"
#include "server/http_server.h"
#include "server/metrics_collector.h"
#include "server/server_options.h"
#include "server/serving_state.h"

namespace loraserve {

class Server {
 public:
  // Binds every listener (port 0 = any free port). `engine` may be null while
  // the model loads; when given, SetEngineReady(engine) runs before return.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerOptions& options,
                                                       EngineApi* engine);
  ~Server();  // Shutdown(zero grace) if not done yet
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The engine is loaded: loads --lora-modules (paths relative to
  // --adapter-root when set), then reports SERVING. An error names the module.
  absl::Status SetEngineReady(EngineApi* engine);

  void Shutdown(absl::Duration grace);
  void Wait();

  int port() const { return port_; }
  int admin_port() const { return admin_port_; }
  int http_port() const { return http_->port(); }
  GenerationService& generation() { return *generation_; }
  MetricsCollector& metrics() { return *metrics_; }

 private:
  explicit Server(const ServerOptions& options);
  void SetServing(bool serving);

  const ServerOptions options_;
  std::unique_ptr<MetricsCollector> metrics_;
  std::unique_ptr<ServingState> state_;
  std::unique_ptr<GenerationService> generation_;
  std::unique_ptr<AdminService> admin_;
  std::unique_ptr<grpc::Server> grpc_server_;
  std::unique_ptr<grpc::Server> admin_server_;
  std::unique_ptr<HttpServer> http_;
  int port_ = 0;
  int admin_port_ = 0;

  absl::Mutex mu_;
  bool shutdown_started_ ABSL_GUARDED_BY(mu_) = false;
  bool shutdown_done_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace loraserve
