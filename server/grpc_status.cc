#include "server/grpc_status.h"

#include "absl/strings/str_cat.h"

namespace loraserve {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(static_cast<int>(status.code())),
                      std::string(status.message()));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(static_cast<int>(status.error_code())),
                      status.error_message());
}

std::string GrpcCodeName(int code) {
  if (code < 0 || code > static_cast<int>(absl::StatusCode::kUnauthenticated)) {
    return absl::StrCat("UNKNOWN_CODE_", code);
  }
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

}  // namespace loraserve
