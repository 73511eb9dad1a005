// The loraserve binary. Until the server issue lands this resolves the flags,
// reports what this build and machine support, and prints what it will do.
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "common/logging.h"
#include "kernels/backend_kind.h"

ABSL_FLAG(std::string, model, "tests/data/tiny-llama", "Hugging Face model directory to serve");
ABSL_FLAG(std::string, device, "auto", "Compute backend: cpu, cuda or auto");
ABSL_FLAG(int, port, 50051, "gRPC Generation port");
ABSL_FLAG(int, http_port, 8080, "HTTP port for /metrics and /health");
ABSL_FLAG(int, admin_port, 50052, "AdapterAdmin gRPC port (bound to 127.0.0.1)");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string device = absl::GetFlag(FLAGS_device);
  auto kind = loraserve::ResolveBackendKind(device);
  if (!kind.ok()) {
    LS_LOG(ERROR) << kind.status().message();
    return 2;
  }
  LS_LOG(INFO) << "loraserve 0.1.0: " << loraserve::DescribeBackendSupport();
  LS_LOG(INFO) << "backend: " << loraserve::BackendKindName(*kind);
  std::printf(
      "loraserve will serve model %s on the %s backend:\n"
      "  gRPC Generation on :%d, AdapterAdmin on 127.0.0.1:%d, HTTP /metrics on :%d.\n"
      "The model, engine and server land with the next issues; this build only checks "
      "the toolchain and the flags.\n",
      absl::GetFlag(FLAGS_model).c_str(), std::string(loraserve::BackendKindName(*kind)).c_str(),
      absl::GetFlag(FLAGS_port), absl::GetFlag(FLAGS_admin_port), absl::GetFlag(FLAGS_http_port));
  return 0;
}
