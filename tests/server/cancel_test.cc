// Client cancel and deadline expiry: the engine is told to abort exactly once
// and keeps pushing into the dead call's sink without harm.
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/server/server_test_util.h"

namespace loraserve {
namespace {

class CancelTest : public ServerFixture {
 protected:
  void SetUp() override { StartServer(LoopbackOptions()); }
};

TEST_F(CancelTest, ClientCancelMidStreamAbortsOnceAndLatePushesAreDropped) {
  engine_->set_script({.delay = absl::Microseconds(300), .until_abort = true,
                       .deltas_after_abort = 5});
  std::mt19937 rng(20240611);
  constexpr int kIterations = 60;
  for (int i = 0; i < kIterations; ++i) {
    const std::string id = "cancel-" + std::to_string(i);
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    auto reader = gen_->Generate(&ctx, IdsRequest({1, 2}, id));
    v1::GenerateResponse msg;
    const int reads = 1 + static_cast<int>(rng() % 4);  // >= 1: the engine accepted it
    for (int k = 0; k < reads; ++k) ASSERT_TRUE(reader->Read(&msg)) << id;
    if (rng() % 2) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 1500));
    ctx.TryCancel();
    int after = 0;
    while (reader->Read(&msg) && after < 100000) ++after;
    grpc::Status s = reader->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::CANCELLED) << id << ": " << s.error_message();
  }
  ASSERT_TRUE(engine_->WaitDrained(absl::Seconds(10)));
  ASSERT_TRUE(server_->generation().WaitIdle(absl::Seconds(10)));
  for (int i = 0; i < kIterations; ++i) {
    EXPECT_EQ(engine_->aborts("cancel-" + std::to_string(i)), 1) << i;
  }
  EXPECT_EQ(engine_->total_aborts(), kIterations);
  // The server is still healthy.
  engine_->set_script({.num_deltas = 2});
  StreamResult r = Generate(IdsRequest({1}, "after"));
  EXPECT_TRUE(r.status.ok());
  EXPECT_EQ(r.messages.size(), 3u);
}

TEST_F(CancelTest, DeadlineExceededAbortsInTheEngine) {
  engine_->set_script({.delay = absl::Milliseconds(2), .until_abort = true});
  StreamResult r = Generate(IdsRequest({1}, "slow"), absl::Milliseconds(300));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_FALSE(r.messages.empty());
  ASSERT_TRUE(engine_->WaitDrained(absl::Seconds(10)));
  EXPECT_EQ(engine_->aborts("slow"), 1);
}

TEST_F(CancelTest, CompletedRequestsAreNeverAborted) {
  engine_->set_script({.num_deltas = 3});
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Generate(IdsRequest({1}, "ok" + std::to_string(i))).status.ok());
  ASSERT_TRUE(server_->generation().WaitIdle(absl::Seconds(10)));
  EXPECT_EQ(engine_->total_aborts(), 0);
}

}  // namespace
}  // namespace loraserve
