// End-to-end harness: the real Engine (CPU backend, tiny-llama fixture) behind
// an in-process Server on 127.0.0.1 (every port 0), the HF goldens, blocking
// stream helpers that always carry a deadline, a /metrics scraper and a
// bounded poll. Test-only; shared by e2e_test.cc and e2e_stress_test.cc.
#pragma once

#include <httplib.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/logging.h"
#include "engine/engine.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "loraserve/v1/admin.grpc.pb.h"
#include "loraserve/v1/generation.grpc.pb.h"
#include "server/server.h"
#include "tests/golden_cases.h"

namespace loraserve::e2e {

inline std::string ModelDir() { return std::string(LORASERVE_TEST_DATA_DIR) + "/tiny-llama"; }
inline std::string AdapterRoot() { return ModelDir() + "/adapters"; }
inline const std::vector<std::string>& FixtureAdapterNames() {
  static const auto* names = new std::vector<std::string>{
      "r8_all", "r16_rslora_attn", "r4_patterns", "r64_mlp_layer1_bf16", "r2_regex"};
  return *names;
}

using Golden = testing::GoldenCase<uint32_t>;  // ids as on the wire

inline std::vector<Golden> LoadGoldens() { return testing::LoadGoldenCases<uint32_t>(ModelDir()); }

inline const Golden& FindGolden(const std::vector<Golden>& goldens, const std::string& name) {
  for (const Golden& g : goldens) {
    if (g.name == name) return g;
  }
  LS_CHECK(false) << "no golden case " << name;
  return goldens.front();
}

// Small limits so the CPU engine is quick; deterministic seed.
inline EngineOptions SmallEngineOptions() {
  EngineOptions o;
  o.model_dir = ModelDir();
  o.backend = BackendKind::kCpu;
  o.num_threads = 1;
  o.max_num_seqs = 32;
  o.max_num_batched_tokens = 512;
  o.max_loras = 8;
  o.block_tokens = 4;
  o.kv_cache_blocks = 4096;
  o.max_waiting = 1024;
  o.seed = 7;
  o.idle_poll = absl::Milliseconds(5);
  return o;
}

// Loopback listeners on free ports, the fixture adapters under their own
// names (loaded by SetEngineReady, paths relative to --adapter-root).
inline ServerOptions E2eServerOptions() {
  ServerOptions o;
  o.model = ModelDir();
  o.device = "cpu";
  o.host = "127.0.0.1";
  o.port = 0;
  o.http_port = 0;
  o.admin_host = "127.0.0.1";
  o.admin_port = 0;
  o.adapter_root = AdapterRoot();
  o.max_loras = 8;
  o.max_num_seqs = 32;
  for (const std::string& a : FixtureAdapterNames()) o.lora_modules.push_back({a, a});
  return o;
}

inline void SetDeadline(grpc::ClientContext* ctx, absl::Duration d) {
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::microseconds(absl::ToInt64Microseconds(d)));
}

inline v1::GenerateRequest GreedyRequest(const std::vector<uint32_t>& prompt,
                                         const std::string& adapter, uint32_t max_tokens,
                                         const std::string& request_id = "") {
  v1::GenerateRequest req;
  req.set_request_id(request_id);
  for (uint32_t id : prompt) req.mutable_token_ids()->add_ids(id);
  req.set_adapter_id(adapter);
  req.mutable_sampling()->set_temperature(0);
  req.mutable_stopping()->set_max_tokens(max_tokens);
  req.mutable_stopping()->set_ignore_eos(true);
  return req;
}

// One finished stream, summarized.
struct Stream {
  std::vector<v1::GenerateResponse> messages;
  grpc::Status status;
  std::vector<uint32_t> tokens;  // every delta's token ids, in order
  int terminals = 0;             // finished + error messages
  int terminals_not_last = 0;    // terminal messages followed by more messages
  absl::Time start;
  absl::Time end;

  bool FinishedWith(v1::FinishReason reason) const {
    return status.ok() && !messages.empty() && messages.back().has_finished() &&
           messages.back().finished().reason() == reason;
  }
};

inline void Accumulate(Stream* s, const v1::GenerateResponse& msg) {
  if (s->terminals > 0) ++s->terminals_not_last;
  if (msg.has_delta()) {
    for (uint32_t t : msg.delta().token_ids()) s->tokens.push_back(t);
  } else {
    ++s->terminals;
  }
  s->messages.push_back(msg);
}

inline Stream RunStream(v1::Generation::Stub* stub, const v1::GenerateRequest& req,
                        absl::Duration deadline = absl::Seconds(20)) {
  Stream s;
  s.start = absl::Now();
  grpc::ClientContext ctx;
  SetDeadline(&ctx, deadline);
  auto reader = stub->Generate(&ctx, req);
  v1::GenerateResponse msg;
  while (reader->Read(&msg)) Accumulate(&s, msg);
  s.status = reader->Finish();
  s.end = absl::Now();
  return s;
}

// Polls `pred` every 5 ms until it holds or `timeout` passes.
inline bool PollUntil(const std::function<bool()>& pred, absl::Duration timeout) {
  const absl::Time until = absl::Now() + timeout;
  while (true) {
    if (pred()) return true;
    if (absl::Now() > until) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
}

inline std::optional<std::string> FetchMetrics(int http_port) {
  httplib::Client http("127.0.0.1", http_port);
  http.set_connection_timeout(5);
  http.set_read_timeout(5);
  auto res = http.Get("/metrics");
  if (!res || res->status != 200) return std::nullopt;
  return res->body;
}

// The value of the first sample whose line starts with `name` followed by
// '{' or ' ' and contains every `label` fragment (e.g. `kind="kv"`).
inline std::optional<double> MetricValue(const std::string& body, const std::string& name,
                                         const std::vector<std::string>& labels = {}) {
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line.compare(0, name.size(), name) != 0) continue;
    if (line.size() <= name.size() || (line[name.size()] != '{' && line[name.size()] != ' ')) {
      continue;
    }
    bool all = true;
    for (const std::string& l : labels) all = all && line.find(l) != std::string::npos;
    if (!all) continue;
    const size_t sp = line.rfind(' ');
    if (sp == std::string::npos) continue;
    return std::stod(line.substr(sp + 1));
  }
  return std::nullopt;
}

// A real engine behind an in-process server, with stubs on loopback.
class E2eFixture : public ::testing::Test {
 protected:
  // `ready`: pass the engine to Start (SERVING at once); else the server
  // starts with no engine and the test calls SetEngineReady itself.
  void StartAll(bool ready = true, ServerOptions options = E2eServerOptions()) {
    auto engine = Engine::Create(SmallEngineOptions());
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
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
    if (engine_) engine_->Shutdown(absl::ZeroDuration());
    engine_.reset();
  }

  grpc::Status LoadAdapter(const std::string& name, const std::string& path) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, absl::Seconds(10));
    v1::LoadAdapterRequest req;
    req.set_name(name);
    req.set_path(path);
    v1::LoadAdapterResponse resp;
    return admin_->LoadAdapter(&ctx, req, &resp);
  }
  grpc::Status UnloadAdapter(const std::string& name) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, absl::Seconds(10));
    v1::UnloadAdapterRequest req;
    req.set_name(name);
    v1::UnloadAdapterResponse resp;
    return admin_->UnloadAdapter(&ctx, req, &resp);
  }

  // Waits until no request holds KV pages or adapter pins and nothing runs
  // or waits.
  bool WaitEngineQuiet(absl::Duration timeout = absl::Seconds(10)) {
    return PollUntil(
        [this] {
          const EngineStats s = engine_->Stats();
          return s.running == 0 && s.waiting == 0 && s.pool_pages_kv == 0 && s.adapter_pins == 0;
        },
        timeout);
  }

  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::shared_ptr<grpc::Channel> admin_channel_;
  std::unique_ptr<v1::Generation::Stub> gen_;
  std::unique_ptr<v1::AdapterAdmin::Stub> admin_;
};

}  // namespace loraserve::e2e
