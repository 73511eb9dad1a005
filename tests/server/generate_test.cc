// Generation.Generate / Abort against a FakeEngine: streaming order, the one
// terminal message, validation errors naming fields, engine rejections.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/server/server_test_util.h"

namespace loraserve {
namespace {

class GenerateTest : public ServerFixture {
 protected:
  void SetUp() override { StartServer(LoopbackOptions()); }
};

TEST_F(GenerateTest, StreamsDeltasInOrderThenExactlyOneTerminalWithUsage) {
  engine_->set_script({.num_deltas = 5, .finish = GenerationFinish::kLength});
  StreamResult r = Generate(IdsRequest({1, 2, 3}, "req-a"));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  ASSERT_EQ(r.messages.size(), 6u);
  for (int i = 0; i < 5; ++i) {
    const v1::GenerateResponse& m = r.messages[i];
    ASSERT_TRUE(m.has_delta()) << i;
    EXPECT_EQ(m.request_id(), "req-a");
    ASSERT_EQ(m.delta().token_ids_size(), 1);
    EXPECT_EQ(m.delta().token_ids(0), static_cast<uint32_t>(100 + i));
    EXPECT_EQ(m.delta().text(), "t" + std::to_string(i) + " ");
  }
  const v1::GenerateResponse& last = r.messages.back();
  ASSERT_TRUE(last.has_finished());
  EXPECT_EQ(last.finished().reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(last.usage().prompt_tokens(), 3u);
  EXPECT_EQ(last.usage().completion_tokens(), 5u);
}

TEST_F(GenerateTest, TextPromptIsTokenizedWithTheModelTokenizer) {
  v1::GenerateRequest req;
  req.set_text("Hello world, this is a test.");
  req.set_request_id("txt");
  StreamResult r = Generate(req);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  auto expected = engine_->tokenizer().Encode("Hello world, this is a test.", true);
  ASSERT_TRUE(expected.ok());
  auto submitted = engine_->submitted();
  ASSERT_EQ(submitted.size(), 1u);
  EXPECT_EQ(submitted[0].prompt_ids, *expected);
  EXPECT_GT(submitted[0].prompt_ids.size(), 3u);
  EXPECT_EQ(r.messages.back().usage().prompt_tokens(), expected->size());
}

TEST_F(GenerateTest, ServerAssignsARequestIdWhenNoneIsGiven) {
  StreamResult r = Generate(IdsRequest({1}));
  ASSERT_TRUE(r.status.ok());
  ASSERT_FALSE(r.messages.empty());
  EXPECT_FALSE(r.messages[0].request_id().empty());
  EXPECT_EQ(r.messages[0].request_id(), engine_->submitted().at(0).request_id);
}

TEST_F(GenerateTest, OutOfVocabTokenIdIsInvalidArgumentNamingTheIndex) {
  const uint32_t vocab = static_cast<uint32_t>(engine_->vocab_size());
  StreamResult r = Generate(IdsRequest({1, 2, 3, vocab, 4}));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(r.status.error_message().find("prompt.token_ids[3]"), std::string::npos)
      << r.status.error_message();
  EXPECT_TRUE(r.messages.empty());
  EXPECT_TRUE(engine_->submitted().empty());
}

struct InvalidCase {
  const char* field;  // expected in the message
  void (*mutate)(v1::GenerateRequest*);
};

TEST_F(GenerateTest, InvalidFieldsAreInvalidArgumentNamingTheField) {
  const InvalidCase cases[] = {
      {"prompt", [](v1::GenerateRequest* r) { r->clear_token_ids(); }},
      {"prompt.token_ids", [](v1::GenerateRequest* r) { r->mutable_token_ids()->clear_ids(); }},
      {"prompt.text", [](v1::GenerateRequest* r) { r->set_text(""); }},
      {"sampling.temperature", [](v1::GenerateRequest* r) { r->mutable_sampling()->set_temperature(-1); }},
      {"sampling.temperature", [](v1::GenerateRequest* r) { r->mutable_sampling()->set_temperature(std::nanf("")); }},
      {"sampling.top_k", [](v1::GenerateRequest* r) { r->mutable_sampling()->set_top_k(1u << 30); }},
      {"sampling.top_p", [](v1::GenerateRequest* r) { r->mutable_sampling()->set_top_p(0); }},
      {"sampling.top_p", [](v1::GenerateRequest* r) { r->mutable_sampling()->set_top_p(1.5f); }},
      {"sampling.min_p", [](v1::GenerateRequest* r) { r->mutable_sampling()->set_min_p(2); }},
      {"sampling.repetition_penalty", [](v1::GenerateRequest* r) { r->mutable_sampling()->set_repetition_penalty(0); }},
      {"sampling.presence_penalty", [](v1::GenerateRequest* r) { r->mutable_sampling()->set_presence_penalty(3); }},
      {"sampling.frequency_penalty", [](v1::GenerateRequest* r) { r->mutable_sampling()->set_frequency_penalty(-3); }},
      {"top_logprobs", [](v1::GenerateRequest* r) { r->set_top_logprobs(21); }},
      {"stopping.max_tokens", [](v1::GenerateRequest* r) { r->mutable_stopping()->set_max_tokens(0); }},
      {"stopping.stop[1]", [](v1::GenerateRequest* r) {
         r->mutable_stopping()->add_stop("ok");
         r->mutable_stopping()->add_stop("");
       }},
      {"stopping.stop[0]", [](v1::GenerateRequest* r) { r->mutable_stopping()->add_stop(std::string(257, 'x')); }},
      {"stopping.stop", [](v1::GenerateRequest* r) {
         for (int i = 0; i < 17; ++i) r->mutable_stopping()->add_stop("s");
       }},
      {"stopping.stop_token_ids[0]", [](v1::GenerateRequest* r) { r->mutable_stopping()->add_stop_token_ids(1u << 31); }},
      {"prompt is 300 tokens", [](v1::GenerateRequest* r) {
         for (int i = 0; i < 299; ++i) r->mutable_token_ids()->add_ids(5);
       }},
  };
  for (const InvalidCase& c : cases) {
    v1::GenerateRequest req = IdsRequest({1});
    c.mutate(&req);
    StreamResult r = Generate(req);
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.field;
    EXPECT_NE(r.status.error_message().find(c.field), std::string::npos)
        << c.field << ": " << r.status.error_message();
  }
  EXPECT_TRUE(engine_->submitted().empty());
}

TEST_F(GenerateTest, ExplicitZeroTemperatureIsGreedyAndUnsetIsTheDefault) {
  v1::GenerateRequest a = IdsRequest({1}, "a");
  a.mutable_sampling()->set_temperature(0);
  a.mutable_sampling()->set_seed(7);
  ASSERT_TRUE(Generate(a).status.ok());
  ASSERT_TRUE(Generate(IdsRequest({1}, "b")).status.ok());
  auto s = engine_->submitted();
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].sampling.temperature, 0.0f);
  EXPECT_EQ(s[0].sampling.seed, std::optional<uint64_t>(7));
  EXPECT_EQ(s[1].sampling.temperature, 1.0f);
  EXPECT_FALSE(s[1].sampling.seed.has_value());
}

TEST_F(GenerateTest, UnknownAdapterIsNotFound) {
  v1::GenerateRequest req = IdsRequest({1});
  req.set_adapter_id("nope");
  StreamResult r = Generate(req);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(r.status.error_message().find("nope"), std::string::npos);
}

TEST_F(GenerateTest, EngineQueueFullIsResourceExhausted) {
  engine_->set_script({.reject = absl::ResourceExhaustedError("waiting queue is full (1024)")});
  StreamResult r = Generate(IdsRequest({1}));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(r.status.error_message().find("queue is full"), std::string::npos);
}

TEST_F(GenerateTest, ErrorAfterAcceptanceIsOneTerminalErrorEvent) {
  engine_->set_script({.num_deltas = 2, .error = absl::InternalError("kernel failed")});
  StreamResult r = Generate(IdsRequest({1, 2}));
  ASSERT_TRUE(r.status.ok());
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_TRUE(r.messages[0].has_delta());
  EXPECT_TRUE(r.messages[1].has_delta());
  ASSERT_TRUE(r.messages[2].has_error());
  EXPECT_EQ(r.messages[2].error().code(), static_cast<int>(grpc::StatusCode::INTERNAL));
  EXPECT_EQ(r.messages[2].error().message(), "kernel failed");
  EXPECT_EQ(r.messages[2].usage().completion_tokens(), 2u);
}

TEST_F(GenerateTest, AbortRpcCancelsTheStreamWithACancelledTerminal) {
  engine_->set_script({.delay = absl::Milliseconds(5), .until_abort = true});
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  auto reader = gen_->Generate(&ctx, IdsRequest({1}, "to-abort"));
  v1::GenerateResponse msg;
  ASSERT_TRUE(reader->Read(&msg));  // accepted and streaming
  ASSERT_TRUE(msg.has_delta());

  grpc::ClientContext actx;
  SetDeadline(&actx);
  v1::AbortRequest areq;
  areq.set_request_id("to-abort");
  v1::AbortResponse aresp;
  ASSERT_TRUE(gen_->Abort(&actx, areq, &aresp).ok());
  EXPECT_TRUE(aresp.found());

  std::vector<v1::GenerateResponse> rest;
  while (reader->Read(&msg)) rest.push_back(msg);
  ASSERT_TRUE(reader->Finish().ok());
  ASSERT_FALSE(rest.empty());
  ASSERT_TRUE(rest.back().has_finished());
  EXPECT_EQ(rest.back().finished().reason(), v1::FINISH_REASON_CANCELLED);
  for (size_t i = 0; i + 1 < rest.size(); ++i) EXPECT_TRUE(rest[i].has_delta());

  grpc::ClientContext actx2;
  SetDeadline(&actx2);
  areq.set_request_id("never-was");
  ASSERT_TRUE(gen_->Abort(&actx2, areq, &aresp).ok());
  EXPECT_FALSE(aresp.found());
}

TEST_F(GenerateTest, FinishedRequestsAreCountedInMetrics) {
  engine_->set_script({.num_deltas = 4, .finish = GenerationFinish::kStop});
  ASSERT_TRUE(Generate(IdsRequest({1, 2})).status.ok());
  const std::string text = server_->metrics().Scrape(engine_.get());
  EXPECT_NE(text.find("loraserve_request_success_total{finished_reason=\"stop\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("loraserve_generation_tokens_total 4"), std::string::npos);
  EXPECT_NE(text.find("loraserve_prompt_tokens_total 2"), std::string::npos);
  EXPECT_NE(text.find("loraserve_time_to_first_token_seconds_count 1"), std::string::npos);
}

}  // namespace
}  // namespace loraserve
