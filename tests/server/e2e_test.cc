// End-to-end over real gRPC on loopback with the real engine (CPU backend,
// tiny-llama): streamed greedy tokens equal the HF goldens for the base model
// and every adapter; acceptance errors; client cancel and deadlines free every
// KV page and adapter pin; /metrics passes promtool and its counters agree
// with what the client saw; health follows engine readiness.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "server/health_client.h"
#include "tests/server/e2e_util.h"

namespace loraserve::e2e {
namespace {

class ServerE2e : public E2eFixture {};

void ExpectGolden(const Stream& s, const Golden& g) {
  ASSERT_TRUE(s.status.ok()) << g.name << ": " << s.status.error_message();
  EXPECT_TRUE(s.FinishedWith(v1::FINISH_REASON_LENGTH)) << g.name;
  EXPECT_EQ(s.terminals, 1) << g.name;
  EXPECT_EQ(s.terminals_not_last, 0) << g.name;
  EXPECT_EQ(s.tokens, g.greedy) << g.name;
  ASSERT_FALSE(s.messages.empty());
  const v1::Usage& usage = s.messages.back().usage();
  EXPECT_EQ(usage.prompt_tokens(), g.prompt.size()) << g.name;
  EXPECT_EQ(usage.completion_tokens(), g.greedy.size()) << g.name;
}

TEST_F(ServerE2e, StreamedGreedyTokensEqualTheGoldensForBaseAndEveryAdapter) {
  StartAll();
  const std::vector<Golden> goldens = LoadGoldens();
  ASSERT_GE(goldens.size(), 6u);
  // One at a time.
  for (const Golden& g : goldens) {
    SCOPED_TRACE(g.name);
    ExpectGolden(RunStream(gen_.get(), GreedyRequest(g.prompt, g.adapter, 8, "seq-" + g.name)), g);
  }
  // All at once: one mixed multi-adapter batch must give the same tokens.
  std::vector<Stream> streams(goldens.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < goldens.size(); ++i) {
    threads.emplace_back([&, i] {
      streams[i] = RunStream(gen_.get(), GreedyRequest(goldens[i].prompt, goldens[i].adapter, 8));
    });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < goldens.size(); ++i) {
    SCOPED_TRACE("concurrent " + goldens[i].name);
    ExpectGolden(streams[i], goldens[i]);
  }
  EXPECT_TRUE(WaitEngineQuiet());
}

TEST_F(ServerE2e, AcceptanceErrorsHaveTheirCodeAndNameTheField) {
  StartAll();
  const Golden g = LoadGoldens().front();

  Stream s = RunStream(gen_.get(), GreedyRequest(g.prompt, "no_such_adapter", 8));
  EXPECT_EQ(s.status.error_code(), grpc::StatusCode::NOT_FOUND) << s.status.error_message();
  EXPECT_NE(s.status.error_message().find("no_such_adapter"), std::string::npos)
      << s.status.error_message();
  EXPECT_TRUE(s.messages.empty());

  v1::GenerateRequest top_p = GreedyRequest(g.prompt, "", 8);
  top_p.mutable_sampling()->set_temperature(1.0f);
  top_p.mutable_sampling()->set_top_p(0.0f);
  s = RunStream(gen_.get(), top_p);
  EXPECT_EQ(s.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.status.error_message().find("sampling.top_p"), std::string::npos)
      << s.status.error_message();
  EXPECT_TRUE(s.messages.empty());

  std::vector<uint32_t> bad_prompt = g.prompt;
  bad_prompt[2] = static_cast<uint32_t>(engine_->vocab_size());  // one past the vocabulary
  s = RunStream(gen_.get(), GreedyRequest(bad_prompt, "", 8));
  EXPECT_EQ(s.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.status.error_message().find("prompt.token_ids"), std::string::npos)
      << s.status.error_message();
  EXPECT_TRUE(s.messages.empty());

  // The engine never saw any of them, and still serves.
  EXPECT_TRUE(WaitEngineQuiet());
  ExpectGolden(RunStream(gen_.get(), GreedyRequest(g.prompt, g.adapter, 8)), g);
}

TEST_F(ServerE2e, CancelAndDeadlineFreeEveryKvPageAndPin) {
  StartAll();
  const std::vector<Golden> goldens = LoadGoldens();
  ASSERT_TRUE(WaitEngineQuiet());

  // Client cancel right after the first delta, base and adapters.
  for (size_t i = 0; i < 6; ++i) {
    const Golden& g = goldens[i % goldens.size()];
    SCOPED_TRACE("cancel " + g.name);
    grpc::ClientContext ctx;
    SetDeadline(&ctx, absl::Seconds(20));
    auto reader = gen_->Generate(&ctx, GreedyRequest(g.prompt, g.adapter, 200));
    v1::GenerateResponse msg;
    ASSERT_TRUE(reader->Read(&msg));
    ASSERT_TRUE(msg.has_delta());
    if (i == 0) {
      // The request really holds pages now (so "back to zero" means something).
      EXPECT_TRUE(PollUntil([this] { return engine_->Stats().pool_pages_kv > 0; }, absl::Seconds(5)));
    }
    ctx.TryCancel();
    int more = 0;
    while (reader->Read(&msg) && more < 1000) ++more;
    const grpc::Status st = reader->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::CANCELLED) << st.error_message();
  }
  ASSERT_TRUE(WaitEngineQuiet()) << "KV pages " << engine_->Stats().pool_pages_kv << ", pins "
                                 << engine_->Stats().adapter_pins;

  // Deadlines on long requests: 1 ms (gone before or right after
  // acceptance; 200 tokens take far longer) and a few ms (mid-stream, or
  // finished first on a fast machine: either way nothing may stay held).
  int expired = 0;
  for (int i = 0; i < 10; ++i) {
    const Golden& g = goldens[static_cast<size_t>(i) % goldens.size()];
    const bool tight = i % 2 == 0;
    const absl::Duration d = tight ? absl::Milliseconds(1) : absl::Milliseconds(1 + i);
    Stream s = RunStream(gen_.get(), GreedyRequest(g.prompt, g.adapter, 200), d);
    SCOPED_TRACE(g.name + ": " + s.status.error_message() + " (" + std::to_string(s.tokens.size()) +
                 " tokens)");
    if (tight || s.status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      EXPECT_EQ(s.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
      ++expired;
    } else {
      EXPECT_TRUE(s.FinishedWith(v1::FINISH_REASON_LENGTH));
      EXPECT_EQ(s.tokens.size(), 200u);
    }
  }
  EXPECT_GE(expired, 5);
  ASSERT_TRUE(WaitEngineQuiet()) << "KV pages " << engine_->Stats().pool_pages_kv << ", pins "
                                 << engine_->Stats().adapter_pins;
  EXPECT_TRUE(server_->generation().WaitIdle(absl::Seconds(5)));

  // The /metrics gauges agree.
  ASSERT_TRUE(PollUntil(
      [this] {
        auto body = FetchMetrics(server_->http_port());
        if (!body) return false;
        auto kv = MetricValue(*body, "loraserve_pool_pages", {"kind=\"kv\""});
        auto running = MetricValue(*body, "loraserve_num_requests_running");
        return kv.has_value() && *kv == 0 && running.has_value() && *running == 0;
      },
      absl::Seconds(10)));

  // And the engine still answers exactly.
  const Golden& g = goldens.back();
  ExpectGolden(RunStream(gen_.get(), GreedyRequest(g.prompt, g.adapter, 8)), g);
}

// Runs `promtool check metrics` on `body`; returns its exit status and output.
std::pair<int, std::string> PromtoolCheck(const std::string& body) {
  const std::string dir = ::testing::TempDir();
  const std::string in = dir + "/e2e_metrics_" + std::to_string(::getpid()) + ".txt";
  const std::string out = in + ".out";
  {
    std::ofstream f(in);
    f << body;
  }
  const std::string cmd = "/usr/bin/promtool check metrics < '" + in + "' > '" + out + "' 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream o(out);
  std::string text((std::istreambuf_iterator<char>(o)), std::istreambuf_iterator<char>());
  std::filesystem::remove(in);
  std::filesystem::remove(out);
  return {rc, text};
}

TEST_F(ServerE2e, MetricsPassPromtoolAndCountersAgreeWithTheClient) {
  if (!std::filesystem::exists("/usr/bin/promtool")) {
    FAIL() << "/usr/bin/promtool is missing: run scripts/install-deps.sh (it installs the "
              "Debian package prometheus, which ships promtool)";
  }
  StartAll();
  const std::vector<Golden> goldens = LoadGoldens();
  int length_finished = 0;
  uint64_t tokens_received = 0;
  uint64_t prompt_tokens = 0;
  for (size_t i = 0; i < goldens.size(); ++i) {
    const Golden& g = goldens[i];
    const uint32_t max_tokens = 1 + static_cast<uint32_t>(i % 8);
    Stream s = RunStream(gen_.get(), GreedyRequest(g.prompt, g.adapter, max_tokens));
    ASSERT_TRUE(s.FinishedWith(v1::FINISH_REASON_LENGTH)) << g.name << ": " << s.status.error_message();
    ASSERT_EQ(s.tokens.size(), max_tokens);
    ++length_finished;
    tokens_received += s.tokens.size();
    prompt_tokens += s.messages.back().usage().prompt_tokens();
  }
  // One refused request (never accepted) must not count as a success.
  EXPECT_EQ(RunStream(gen_.get(), GreedyRequest(goldens[0].prompt, "nope", 4)).status.error_code(),
            grpc::StatusCode::NOT_FOUND);

  auto body = FetchMetrics(server_->http_port());
  ASSERT_TRUE(body.has_value());
  const auto [rc, output] = PromtoolCheck(*body);
  EXPECT_EQ(rc, 0) << "promtool check metrics failed:\n" << output << "\n--- body ---\n" << *body;

  auto success = MetricValue(*body, "loraserve_request_success_total", {"finished_reason=\"length\""});
  ASSERT_TRUE(success.has_value()) << *body;
  EXPECT_EQ(*success, length_finished);
  auto gen_tokens = MetricValue(*body, "loraserve_generation_tokens_total");
  ASSERT_TRUE(gen_tokens.has_value()) << *body;
  EXPECT_EQ(*gen_tokens, static_cast<double>(tokens_received));
  auto prompt = MetricValue(*body, "loraserve_prompt_tokens_total");
  ASSERT_TRUE(prompt.has_value()) << *body;
  EXPECT_EQ(*prompt, static_cast<double>(prompt_tokens));
  // The CPU backend runs every step op by op (decode graphs are CUDA's).
  auto eager = MetricValue(*body, "loraserve_model_steps_total", {"mode=\"eager\""});
  ASSERT_TRUE(eager.has_value()) << *body;
  EXPECT_GT(*eager, 0);
  EXPECT_EQ(MetricValue(*body, "loraserve_model_steps_total", {"mode=\"graph\""}), 0.0);
  EXPECT_EQ(MetricValue(*body, "loraserve_decode_graphs"), 0.0);
  for (const char* other : {"stop", "cancelled"}) {
    auto v = MetricValue(*body, "loraserve_request_success_total",
                         {std::string("finished_reason=\"") + other + "\""});
    if (v.has_value()) {
      EXPECT_EQ(*v, 0) << other;
    }
  }
}

TEST_F(ServerE2e, HealthIsNotServingUntilTheEngineIsReady) {
  StartAll(/*ready=*/false);
  auto h = CheckHealth(channel_, "", absl::Seconds(5));
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(*h, HealthStatus::kNotServing);
  const Golden g = LoadGoldens().front();
  Stream early = RunStream(gen_.get(), GreedyRequest(g.prompt, g.adapter, 8));
  EXPECT_EQ(early.status.error_code(), grpc::StatusCode::UNAVAILABLE) << early.status.error_message();

  ASSERT_TRUE(server_->SetEngineReady(engine_.get()).ok());
  h = CheckHealth(channel_, "", absl::Seconds(5));
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(*h, HealthStatus::kServing);
  // --lora-modules were loaded by SetEngineReady.
  const std::vector<Golden> goldens = LoadGoldens();
  ExpectGolden(RunStream(gen_.get(), GreedyRequest(goldens.back().prompt, goldens.back().adapter, 8)),
               goldens.back());
}

}  // namespace
}  // namespace loraserve::e2e
