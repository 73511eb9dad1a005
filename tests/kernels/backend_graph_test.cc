// Backend graphs (kernels/backend.h BeginCapture / EndCapture / LaunchGraph)
// on every backend (CUDA instances skip without a device): captured ops do
// not run until launched, each launch runs them again reading the data then
// behind their pointers, and the capture rules hold: one capture at a time,
// EndCapture only after BeginCapture, work on another stream runs at once.
// The CPU-only cases check the calls CUDA forbids during a capture fail on
// the CPU twin too, and that a failing recorded op names itself at launch.
#include <cstring>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/backend.h"
#include "kernels/backend_factory.h"
#include "tests/engine/backend_param.h"

namespace loraserve {
namespace {

using ::loraserve::testing::AllBackendKinds;
using ::loraserve::testing::BackendParamName;
using ::loraserve::testing::BackendUnavailable;

class BackendGraphTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    if (auto why = BackendUnavailable(GetParam())) GTEST_SKIP() << *why;
    BackendOptions o;
    o.num_threads = 1;
    auto b = CreateBackend(GetParam(), o);
    ASSERT_TRUE(b.ok()) << b.status();
    backend_ = std::move(b).value();
    ASSERT_TRUE(backend_->SupportsGraphs());
  }

  // n storage-dtype elements holding `values` (small integers: exact in bf16).
  DeviceBuffer Upload(const std::vector<float>& values) {
    auto buf = backend_->Allocate(values.size() * backend_->elt_size());
    EXPECT_TRUE(buf.ok()) << buf.status();
    EXPECT_TRUE(backend_
                    ->UploadConverted(values.data(), DType::kF32,
                                      static_cast<int64_t>(values.size()), buf->data())
                    .ok());
    return std::move(buf).value();
  }
  std::vector<float> Download(const DeviceBuffer& buf, size_t n) {
    EXPECT_TRUE(backend_->Synchronize({}).ok());
    std::vector<float> out(n);
    EXPECT_TRUE(backend_->DownloadToF32(buf.data(), static_cast<int64_t>(n), out.data()).ok());
    return out;
  }

  std::unique_ptr<Backend> backend_;
};

TEST_P(BackendGraphTest, CapturedOpsRunOnlyWhenLaunchedAndEachLaunchRunsAgain) {
  DeviceBuffer a = Upload({1, 2, 3, 4, 5});
  DeviceBuffer d = Upload({10, 20, 30, 40, 50});
  ASSERT_TRUE(backend_->BeginCapture().ok());
  ASSERT_TRUE(backend_->ResidualAdd(a.data(), d.data(), 5, {}).ok());
  ASSERT_TRUE(backend_->ResidualAdd(a.data(), d.data(), 3, {}).ok());  // first 3 twice
  auto graph = backend_->EndCapture();
  ASSERT_TRUE(graph.ok()) << graph.status();
  EXPECT_EQ(Download(a, 5), (std::vector<float>{1, 2, 3, 4, 5})) << "nothing ran at capture";
  ASSERT_TRUE(backend_->LaunchGraph(*graph).ok());
  EXPECT_EQ(Download(a, 5), (std::vector<float>{21, 42, 63, 44, 55}));
  // New data behind the same pointers is read by the next launch.
  DeviceBuffer d2 = Upload({1, 1, 1, 1, 1});
  ASSERT_TRUE(backend_->CopyDeviceToDevice(d.data(), d2.data(), 5 * backend_->elt_size(), {}).ok());
  ASSERT_TRUE(backend_->LaunchGraph(*graph).ok());
  EXPECT_EQ(Download(a, 5), (std::vector<float>{23, 44, 65, 45, 56}));
}

TEST_P(BackendGraphTest, CaptureRules) {
  EXPECT_EQ(backend_->EndCapture().status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(backend_->BeginCapture().ok());
  EXPECT_EQ(backend_->BeginCapture().code(), absl::StatusCode::kFailedPrecondition);
  auto graph = backend_->EndCapture();
  ASSERT_TRUE(graph.ok()) << graph.status();  // an empty recording is a valid graph
  EXPECT_TRUE(backend_->LaunchGraph(*graph).ok());
  EXPECT_EQ(backend_->LaunchGraph(Graph()).code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(BackendGraphTest, WorkOnAnotherStreamRunsDuringACapture) {
  DeviceBuffer a = Upload({1, 2});
  DeviceBuffer d = Upload({5, 5});
  auto other = backend_->CreateStream();
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(backend_->BeginCapture().ok());
  ASSERT_TRUE(backend_->ResidualAdd(a.data(), d.data(), 2, other->ref()).ok());
  auto graph = backend_->EndCapture();
  ASSERT_TRUE(graph.ok()) << graph.status();
  ASSERT_TRUE(backend_->Synchronize(other->ref()).ok());
  EXPECT_EQ(Download(a, 2), (std::vector<float>{6, 7})) << "ran without a launch";
}

TEST(CpuBackendGraph, CallsCudaForbidsDuringACaptureFailHereToo) {
  auto b = CreateBackend(BackendKind::kCpu, {});
  ASSERT_TRUE(b.ok());
  Backend& backend = **b;
  ASSERT_TRUE(backend.BeginCapture().ok());
  EXPECT_EQ(backend.Allocate(64).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(backend.Synchronize({}).code(), absl::StatusCode::kFailedPrecondition);
  float x = 1;
  EXPECT_EQ(backend.UploadConverted(&x, DType::kF32, 1, &x).code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(backend.EndCapture().ok());
  // Allowed again after the capture.
  EXPECT_TRUE(backend.Allocate(64).ok());
  EXPECT_TRUE(backend.Synchronize({}).ok());
}

TEST(CpuBackendGraph, ARecordedOpThatFailsNamesItselfAtLaunch) {
  auto b = CreateBackend(BackendKind::kCpu, {});
  ASSERT_TRUE(b.ok());
  Backend& backend = **b;
  auto a = backend.Allocate(16);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(backend.BeginCapture().ok());
  ASSERT_TRUE(backend.ResidualAdd(a->data(), a->data(), 4, {}).ok());
  ASSERT_TRUE(backend.ResidualAdd(a->data(), nullptr, 4, {}).ok());  // checked at launch
  auto graph = backend.EndCapture();
  ASSERT_TRUE(graph.ok());
  const absl::Status s = backend.LaunchGraph(*graph);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("op 1 of 2"), std::string::npos) << s;
  EXPECT_NE(s.message().find("ResidualAdd"), std::string::npos) << s;
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendGraphTest, ::testing::ValuesIn(AllBackendKinds()),
                         BackendParamName);

}  // namespace
}  // namespace loraserve
