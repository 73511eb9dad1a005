// ToGrpcStatus: the one conversion from our internal absl::Status to the
// grpc::Status a client sees (the codes are numerically identical), plus the
// code's canonical name ("INVALID_ARGUMENT") for messages and the CLI.
//
// Free functions; any thread.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace loraserve {

// Same code, same message. OK stays OK.
grpc::Status ToGrpcStatus(const absl::Status& status);

// Back from the wire (used by the CLI and the tests).
absl::Status FromGrpcStatus(const grpc::Status& status);

// "OK", "INVALID_ARGUMENT", ... ("UNKNOWN_CODE_<n>" for values outside the enum).
std::string GrpcCodeName(int code);

}  // namespace loraserve
