// HttpServer: the plain-HTTP port (cpp-httplib): /metrics (Prometheus text
// exposition of ServerMetrics), /health (liveness: 200 while the process
// serves HTTP) and /health/ready (200 only once the model is loaded and the
// server is not draining, 503 with the reason otherwise). Later: the
// OpenAI-compatible API on the same port.
//
// Owns the listening socket and one accept thread (httplib's worker pool
// serves requests). Start() binds synchronously, so a port clash is reported
// as a Status at startup rather than later. Thread-safe: SetReady may be
// called from any thread; Stop is idempotent.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace httplib {
class Server;
}

namespace loraserve {

class HttpServer {
 public:
  struct Options {
    std::string host = "0.0.0.0";
    int port = 8080;  // 0 picks a free port (see port())
    // Produces the /metrics body; called on an httplib worker thread.
    std::function<std::string()> metrics_text;
  };

  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(Options options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  // Readiness for /health/ready; `reason` is reported while not ready.
  void SetReady(bool ready, std::string reason = "");
  void Stop();

 private:
  HttpServer() = default;

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  absl::Mutex mu_;
  bool ready_ ABSL_GUARDED_BY(mu_) = false;
  std::string not_ready_reason_ ABSL_GUARDED_BY(mu_) = "model loading";
};

}  // namespace loraserve
