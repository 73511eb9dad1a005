// Test harness: an in-process Server on 127.0.0.1 (every port 0) over a
// FakeEngine with the tiny-llama tokenizer, plus stubs and RPC helpers that
// always carry a deadline so no test can hang.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/logging.h"
#include "engine/model/tokenizer.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "loraserve/v1/admin.grpc.pb.h"
#include "loraserve/v1/generation.grpc.pb.h"
#include "server/server.h"
#include "tests/server/fake_engine.h"

namespace loraserve {

inline std::unique_ptr<FakeEngine> MakeFakeEngine() {
  auto tok = Tokenizer::Load(LORASERVE_TEST_DATA_DIR "/tiny-llama/tokenizer.json");
  LS_CHECK(tok.ok()) << tok.status().ToString();
  return std::make_unique<FakeEngine>(*std::move(tok));
}

inline ServerOptions LoopbackOptions() {
  ServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.http_port = 0;
  o.admin_host = "127.0.0.1";
  o.admin_port = 0;
  return o;
}

inline void SetDeadline(grpc::ClientContext* ctx, absl::Duration d = absl::Seconds(10)) {
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::microseconds(absl::ToInt64Microseconds(d)));
}

struct StreamResult {
  std::vector<v1::GenerateResponse> messages;
  grpc::Status status;
};

class ServerFixture : public ::testing::Test {
 protected:
  void StartServer(ServerOptions options, bool ready = true) {
    engine_ = MakeFakeEngine();
    auto server = Server::Start(options, ready ? engine_.get() : nullptr);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                   grpc::InsecureChannelCredentials());
    admin_channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->admin_port()),
                                         grpc::InsecureChannelCredentials());
    gen_ = v1::Generation::NewStub(channel_);
    admin_ = v1::AdapterAdmin::NewStub(admin_channel_);
  }
  void TearDown() override {
    if (server_) server_->Shutdown(absl::Seconds(2));
    server_.reset();
    engine_.reset();
  }

  StreamResult Generate(const v1::GenerateRequest& req, absl::Duration deadline = absl::Seconds(10)) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, deadline);
    auto reader = gen_->Generate(&ctx, req);
    StreamResult r;
    v1::GenerateResponse msg;
    while (reader->Read(&msg)) r.messages.push_back(msg);
    r.status = reader->Finish();
    return r;
  }

  static v1::GenerateRequest IdsRequest(std::vector<uint32_t> ids, std::string request_id = "") {
    v1::GenerateRequest req;
    req.set_request_id(std::move(request_id));
    for (uint32_t id : ids) req.mutable_token_ids()->add_ids(id);
    return req;
  }

  std::unique_ptr<FakeEngine> engine_;
  std::unique_ptr<Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::shared_ptr<grpc::Channel> admin_channel_;
  std::unique_ptr<v1::Generation::Stub> gen_;
  std::unique_ptr<v1::AdapterAdmin::Stub> admin_;
};

}  // namespace loraserve
