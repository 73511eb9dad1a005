#include "server/http_server.h"

#include <httplib.h>

#include "gtest/gtest.h"

namespace loraserve {
namespace {

TEST(HttpServer, ServesMetricsHealthAndReadiness) {
  int scrapes = 0;
  auto server = HttpServer::Start({.host = "127.0.0.1", .port = 0, .metrics_text = [&scrapes] {
                                     ++scrapes;
                                     return std::string("loraserve_up 1\n");
                                   }});
  ASSERT_TRUE(server.ok()) << server.status();
  httplib::Client client("127.0.0.1", (*server)->port());

  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_EQ(metrics->body, "loraserve_up 1\n");
  EXPECT_EQ(scrapes, 1);

  auto live = client.Get("/health");
  ASSERT_TRUE(live);
  EXPECT_EQ(live->status, 200);

  auto ready = client.Get("/health/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  EXPECT_NE(ready->body.find("model loading"), std::string::npos);

  (*server)->SetReady(true);
  ready = client.Get("/health/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);

  (*server)->SetReady(false, "draining");
  ready = client.Get("/health/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  EXPECT_NE(ready->body.find("draining"), std::string::npos);

  auto missing = client.Get("/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST(HttpServer, PortClashIsAStatusNotACrash) {
  auto first = HttpServer::Start({.host = "127.0.0.1", .port = 0});
  ASSERT_TRUE(first.ok());
  auto second = HttpServer::Start({.host = "127.0.0.1", .port = (*first)->port()});
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find("port in use"), absl::string_view::npos);
}

}  // namespace
}  // namespace loraserve
