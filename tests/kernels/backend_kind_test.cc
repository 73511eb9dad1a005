#include "kernels/backend_kind.h"

#include "gtest/gtest.h"

namespace loraserve {
namespace {

TEST(BackendKind, CpuAlwaysResolves) {
  auto k = ResolveBackendKind("cpu");
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(*k, BackendKind::kCpu);
  EXPECT_EQ(BackendKindName(*k), "cpu");
}

TEST(BackendKind, AutoPicksCudaOnlyWithADevice) {
  auto k = ResolveBackendKind("auto");
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(*k, CudaDeviceCount() > 0 ? BackendKind::kCuda : BackendKind::kCpu);
}

TEST(BackendKind, CudaWithoutDeviceNamesTheReason) {
  auto k = ResolveBackendKind("cuda");
  if (CudaDeviceCount() > 0) {
    EXPECT_TRUE(k.ok());
  } else {
    EXPECT_EQ(k.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_NE(k.status().message().find("--device=cuda"), std::string_view::npos);
  }
}

TEST(BackendKind, UnknownValueIsInvalidArgument) {
  auto k = ResolveBackendKind("tpu");
  EXPECT_EQ(k.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(k.status().message().find("tpu"), std::string_view::npos);
}

}  // namespace
}  // namespace loraserve
