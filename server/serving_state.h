// ServingState: what the gRPC services share about the server's lifecycle:
// the engine (null while the model loads) and the metrics collector.
//
// Owned by Server; read by GenerationService and AdminService on gRPC
// threads. Thread-safe: the engine pointer is atomic and set once it is
// ready; the engine must outlive every service that reads it.
#pragma once

#include <atomic>

#include "engine/engine_api.h"
#include "server/metrics_collector.h"

namespace loraserve {

class ServingState {
 public:
  explicit ServingState(MetricsCollector* metrics) : metrics_(metrics) {}

  // Null until the model is loaded.
  EngineApi* engine() const { return engine_.load(std::memory_order_acquire); }
  void set_engine(EngineApi* engine) { engine_.store(engine, std::memory_order_release); }

  MetricsCollector* metrics() const { return metrics_; }

 private:
  std::atomic<EngineApi*> engine_{nullptr};
  MetricsCollector* const metrics_;
};

}  // namespace loraserve
