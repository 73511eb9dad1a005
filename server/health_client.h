// CheckHealth: a grpc.health.v1.Health/Check client without the health
// proto's generated code (Debian ships none): the request and response are
// one-field messages, encoded by hand over a generic stub.
//
// Free function; any thread; blocks up to `timeout`.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"

namespace loraserve {

// grpc.health.v1.HealthCheckResponse.ServingStatus.
enum class HealthStatus { kUnknown = 0, kServing = 1, kNotServing = 2, kServiceUnknown = 3 };

const char* HealthStatusName(HealthStatus status);

// The RPC's error (e.g. NOT_FOUND for an unknown service) or the status.
absl::StatusOr<HealthStatus> CheckHealth(const std::shared_ptr<grpc::Channel>& channel,
                                         const std::string& service, absl::Duration timeout);

}  // namespace loraserve
