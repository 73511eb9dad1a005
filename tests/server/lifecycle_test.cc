// Readiness (grpc.health.v1 + /health/ready) and graceful shutdown: draining
// refuses new requests, lets running ones finish, cancels the rest after the
// grace period.
#include <httplib.h>

#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "server/health_client.h"
#include "tests/server/server_test_util.h"

namespace loraserve {
namespace {

class LifecycleTest : public ServerFixture {
 protected:
  HealthStatus Health() {
    auto h = CheckHealth(channel_, "", absl::Seconds(5));
    EXPECT_TRUE(h.ok()) << h.status();
    return h.ok() ? *h : HealthStatus::kUnknown;
  }
  int Ready() {
    httplib::Client http("127.0.0.1", server_->http_port());
    auto res = http.Get("/health/ready");
    return res ? res->status : -1;
  }
  // Runs streams on threads; results land in results_.
  void StartStreams(int n) {
    results_.resize(n);
    for (int i = 0; i < n; ++i) {
      threads_.emplace_back([this, i] { results_[i] = Generate(IdsRequest({1}, "s" + std::to_string(i))); });
    }
  }
  void JoinStreams() {
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
  std::vector<StreamResult> results_;
  std::vector<std::thread> threads_;
};

TEST_F(LifecycleTest, NotServingUntilTheEngineIsReady) {
  StartServer(LoopbackOptions(), /*ready=*/false);
  EXPECT_EQ(Health(), HealthStatus::kNotServing);
  EXPECT_EQ(Ready(), 503);
  StreamResult r = Generate(IdsRequest({1}));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(r.status.error_message().find("loading"), std::string::npos);

  ASSERT_TRUE(server_->SetEngineReady(engine_.get()).ok());
  EXPECT_EQ(Health(), HealthStatus::kServing);
  EXPECT_EQ(Ready(), 200);
  EXPECT_TRUE(Generate(IdsRequest({1})).status.ok());
  // The metrics port serves the engine's gauges.
  httplib::Client http("127.0.0.1", server_->http_port());
  auto metrics = http.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("loraserve_num_requests_running"), std::string::npos);
}

TEST_F(LifecycleTest, DrainingRefusesNewRequestsAndLetsRunningOnesFinish) {
  StartServer(LoopbackOptions());
  engine_->set_script({.num_deltas = 10, .delay = absl::Milliseconds(30)});
  StartStreams(3);
  // Wait until all three are in the engine.
  for (int i = 0; i < 500 && engine_->in_flight() < 3; ++i) absl::SleepFor(absl::Milliseconds(2));
  ASSERT_EQ(engine_->in_flight(), 3);

  std::thread shutdown([this] { server_->Shutdown(absl::Seconds(20)); });
  for (int i = 0; i < 500 && !server_->generation().draining(); ++i) absl::SleepFor(absl::Milliseconds(1));
  ASSERT_TRUE(server_->generation().draining());
  EXPECT_EQ(Health(), HealthStatus::kNotServing);
  EXPECT_EQ(Ready(), 503);
  StreamResult refused = Generate(IdsRequest({1}, "late"));
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(refused.status.error_message().find("draining"), std::string::npos);

  JoinStreams();
  shutdown.join();
  for (const StreamResult& r : results_) {
    ASSERT_TRUE(r.status.ok()) << r.status.error_message();
    ASSERT_EQ(r.messages.size(), 11u);
    EXPECT_EQ(r.messages.back().finished().reason(), v1::FINISH_REASON_LENGTH);
  }
  EXPECT_EQ(engine_->total_aborts(), 0);
}

TEST_F(LifecycleTest, AfterTheGracePeriodTheRestGetCancelledTerminalEvents) {
  StartServer(LoopbackOptions());
  engine_->set_script({.delay = absl::Milliseconds(5), .until_abort = true});
  StartStreams(4);
  for (int i = 0; i < 500 && engine_->in_flight() < 4; ++i) absl::SleepFor(absl::Milliseconds(2));
  ASSERT_EQ(engine_->in_flight(), 4);
  const absl::Time start = absl::Now();
  server_->Shutdown(absl::Milliseconds(300));
  const absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Milliseconds(290));
  EXPECT_LT(took, absl::Seconds(5));
  JoinStreams();
  for (const StreamResult& r : results_) {
    ASSERT_TRUE(r.status.ok()) << r.status.error_message();
    ASSERT_FALSE(r.messages.empty());
    ASSERT_TRUE(r.messages.back().has_finished());
    EXPECT_EQ(r.messages.back().finished().reason(), v1::FINISH_REASON_CANCELLED);
  }
  EXPECT_EQ(engine_->total_aborts(), 4);
  server_->Wait();  // returns at once: shutdown is done
}

}  // namespace
}  // namespace loraserve
