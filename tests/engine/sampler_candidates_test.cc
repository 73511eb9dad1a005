// Sampler::SampleFromCandidates against Sampler::Sample: candidates come from
// the CPU backend's SampleCandidates (bit-identical to what Sample computes),
// and whenever SampleFromCandidates decides, its token and bookkeeping are
// exactly Sample's on a twin state; when it cannot (nucleus past the
// candidates, mass outside them), it returns nullopt with the state untouched
// and the row's Sample on that state gives the twin's token. Thousands of
// (random logits, params grid, seed) cases; fixed seeds.
#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "engine/sampler/sampler.h"
#include "gtest/gtest.h"
#include "kernels/backend.h"
#include "kernels/backend_factory.h"

namespace loraserve {
namespace {

struct Candidates {
  std::vector<int32_t> ids;
  std::vector<float> values;
  double total = 0;
};

class SamplerCandidatesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BackendOptions o;
    o.num_threads = 1;
    auto b = CreateBackend(BackendKind::kCpu, o);
    ASSERT_TRUE(b.ok()) << b.status();
    backend_ = std::move(b).value();
  }

  Candidates Compute(const std::vector<float>& logits, float temperature, int32_t k = 0) {
    const auto vocab = static_cast<int64_t>(logits.size());
    if (k == 0) k = static_cast<int32_t>(std::min<int64_t>(kMaxSampleCandidates, vocab));
    Candidates c;
    c.ids.resize(static_cast<size_t>(k));
    c.values.resize(static_cast<size_t>(k));
    EXPECT_TRUE(backend_
                    ->SampleCandidates(logits.data(), 1, vocab, &temperature, k, c.ids.data(),
                                       c.values.data(), &c.total, {})
                    .ok());
    return c;
  }

  std::unique_ptr<Backend> backend_;
};

SamplerState MakeState(const SamplingParams& p, int32_t vocab) {
  auto s = SamplerState::Create(p, vocab, std::vector<int32_t>{0});
  EXPECT_TRUE(s.ok()) << s.status();
  return std::move(s).value();
}

// A row of `vocab` logits, normal with the given sigma; `ties` rounds every
// 5th (1) or every (2) value to a grid of 0.5, so exact ties fall among the
// candidates, across their edge and on the nucleus boundary.
std::vector<float> MakeLogits(int32_t vocab, float sigma, int ties, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<float> x(static_cast<size_t>(vocab));
  for (int32_t i = 0; i < vocab; ++i) {
    float v = normal(rng);
    if ((ties == 1 && i % 5 == 0) || ties == 2) v = std::round(v * 2.0f) / 2.0f;
    x[static_cast<size_t>(i)] = v;
  }
  return x;
}

TEST_F(SamplerCandidatesTest, DecidesExactlyAsSampleOrDefersUntouched) {
  std::mt19937 rng(77);
  int64_t decided = 0;
  int64_t deferred = 0;
  int64_t deferred_small_vocab = 0;
  uint64_t seed = 1000;
  for (int32_t vocab : {10, 50, 1000, 32003}) {
    Sampler host(vocab);
    Sampler device(vocab);
    for (float sigma : {1.0f, 3.0f, 8.0f}) {
      for (float temperature : {0.3f, 0.7f, 1.0f, 1.6f}) {
        for (int32_t top_k : {0, 5, 40, 64}) {
          if (top_k > vocab) continue;
          for (float top_p : {1.0f, 0.3f, 0.9f, 0.98f}) {
            for (float min_p : {0.0f, 0.05f, 0.3f}) {
              SamplingParams p;
              p.temperature = temperature;
              p.top_k = top_k;
              p.top_p = top_p;
              p.min_p = min_p;
              p.seed = ++seed;
              SamplerState on_host = MakeState(p, vocab);
              SamplerState on_device = MakeState(p, vocab);
              for (int step = 0; step < 3; ++step) {
                const std::vector<float> logits = MakeLogits(vocab, sigma, step, rng);
                const Candidates c = Compute(logits, temperature);
                const std::string where =
                    "vocab " + std::to_string(vocab) + " sigma " + std::to_string(sigma) + " T " +
                    std::to_string(temperature) + " top_k " + std::to_string(top_k) + " top_p " +
                    std::to_string(top_p) + " min_p " + std::to_string(min_p) + " step " +
                    std::to_string(step);
                const int32_t want = host.Sample(logits.data(), &on_host).token;
                const int64_t before = on_device.num_sampled();
                std::optional<SampledToken> got =
                    device.SampleFromCandidates(c.ids, c.values, c.total, &on_device);
                if (got.has_value()) {
                  ++decided;
                  ASSERT_EQ(got->token, want) << where;
                  EXPECT_FALSE(got->has_logprobs);
                } else {
                  ++deferred;
                  if (vocab <= kMaxSampleCandidates) ++deferred_small_vocab;
                  ASSERT_EQ(on_device.num_sampled(), before) << where << ": a draw was used";
                  ASSERT_EQ(device.Sample(logits.data(), &on_device).token, want) << where;
                }
                ASSERT_EQ(on_device.num_sampled(), on_host.num_sampled()) << where;
                ASSERT_EQ(on_device.OutputCount(want), on_host.OutputCount(want)) << where;
              }
            }
          }
        }
      }
    }
  }
  RecordProperty("decided", std::to_string(decided));
  RecordProperty("deferred", std::to_string(deferred));
  // Both outcomes are exercised, and a whole vocabulary within the candidates
  // is always decided.
  EXPECT_GT(decided, 3000);
  EXPECT_GT(deferred, 300);
  EXPECT_EQ(deferred_small_vocab, 0);
}

TEST_F(SamplerCandidatesTest, DefersWhenTheNucleusExtendsPastTheCandidates) {
  const int32_t vocab = 1000;
  Sampler sampler(vocab);
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_p = 0.5f;
  p.seed = 5;
  // Flat logits: the nucleus holds 500 tokens, the candidates 64.
  const std::vector<float> flat(vocab, 0.25f);
  SamplerState state = MakeState(p, vocab);
  const Candidates c = Compute(flat, p.temperature);
  EXPECT_FALSE(sampler.SampleFromCandidates(c.ids, c.values, c.total, &state).has_value());
  EXPECT_EQ(state.num_sampled(), 0);
  for (int32_t t = 0; t < vocab; ++t) ASSERT_EQ(state.OutputCount(t), 0);
  // The state is as new: its Sample is a fresh state's first draw.
  SamplerState fresh = MakeState(p, vocab);
  EXPECT_EQ(sampler.Sample(flat.data(), &state).token, sampler.Sample(flat.data(), &fresh).token);

  // A nucleus of ~80 near-equal tokens in a peaked row: past the 64.
  std::vector<float> shelf(vocab, -30.0f);
  for (int32_t i = 0; i < 80; ++i) shelf[static_cast<size_t>(i * 7)] = 1.0f + 1e-3f * i;
  p.top_p = 0.95f;
  SamplerState s2 = MakeState(p, vocab);
  const Candidates c2 = Compute(shelf, p.temperature);
  EXPECT_FALSE(sampler.SampleFromCandidates(c2.ids, c2.values, c2.total, &s2).has_value());
  // With top_p 0.5 the same row's nucleus (40 tokens) fits: decided.
  p.top_p = 0.5f;
  SamplerState s3 = MakeState(p, vocab);
  SamplerState twin = MakeState(p, vocab);
  auto got = sampler.SampleFromCandidates(c2.ids, c2.values, c2.total, &s3);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->token, sampler.Sample(shelf.data(), &twin).token);
}

TEST_F(SamplerCandidatesTest, DefersWhenMassOutsideTheCandidatesCouldBeKept) {
  const int32_t vocab = 1000;
  Sampler sampler(vocab);
  std::mt19937 rng(3);
  const std::vector<float> logits = MakeLogits(vocab, 1.0f, 0, rng);
  const Candidates c = Compute(logits, 1.0f);
  SamplingParams plain;  // temperature only: draws over every token
  plain.seed = 9;
  EXPECT_FALSE(Sampler::CanUseCandidates(plain));
  SamplerState s = MakeState(plain, vocab);
  EXPECT_FALSE(sampler.SampleFromCandidates(c.ids, c.values, c.total, &s).has_value());
  SamplingParams low_min_p = plain;  // min_p below the 64th token's probability
  low_min_p.min_p = 1e-4f;
  SamplerState s2 = MakeState(low_min_p, vocab);
  EXPECT_FALSE(sampler.SampleFromCandidates(c.ids, c.values, c.total, &s2).has_value());
  SamplingParams top_k = plain;  // top_k above the candidates given
  top_k.top_k = 20;
  SamplerState s3 = MakeState(top_k, vocab);
  const Candidates ten = Compute(logits, 1.0f, 10);
  EXPECT_FALSE(sampler.SampleFromCandidates(ten.ids, ten.values, ten.total, &s3).has_value());
  // A NaN in the row makes the total NaN: the host decides.
  SamplingParams nucleus = plain;
  nucleus.top_p = 0.9f;
  SamplerState s4 = MakeState(nucleus, vocab);
  EXPECT_FALSE(
      sampler.SampleFromCandidates(c.ids, c.values, std::numeric_limits<double>::quiet_NaN(), &s4)
          .has_value());
  EXPECT_EQ(s.num_sampled() + s2.num_sampled() + s3.num_sampled() + s4.num_sampled(), 0);

  // Temperature only, but a peaked row whose tail weighs exactly 0: decided.
  std::vector<float> peaked(vocab, -200.0f);
  for (int32_t i = 0; i < 30; ++i) peaked[static_cast<size_t>(i * 31)] = 0.1f * i;
  const Candidates cp = Compute(peaked, 1.0f);
  SamplerState s5 = MakeState(plain, vocab);
  SamplerState twin = MakeState(plain, vocab);
  for (int i = 0; i < 20; ++i) {
    auto got = sampler.SampleFromCandidates(cp.ids, cp.values, cp.total, &s5);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->token, sampler.Sample(peaked.data(), &twin).token);
  }
}

TEST(SamplerCandidatesParams, CanUseCandidatesOnlyForPlainCutSampling) {
  SamplingParams p;
  p.top_p = 0.9f;
  EXPECT_TRUE(Sampler::CanUseCandidates(p));
  SamplingParams k = SamplingParams{};
  k.top_k = kMaxSampleCandidates;
  EXPECT_TRUE(Sampler::CanUseCandidates(k));
  k.top_k = kMaxSampleCandidates + 1;
  EXPECT_FALSE(Sampler::CanUseCandidates(k));
  SamplingParams m = SamplingParams{};
  m.min_p = 0.1f;
  EXPECT_TRUE(Sampler::CanUseCandidates(m));
  EXPECT_FALSE(Sampler::CanUseCandidates(SamplingParams{}));  // temperature only
  SamplingParams greedy = p;
  greedy.temperature = 0.0f;
  EXPECT_FALSE(Sampler::CanUseCandidates(greedy));  // TakeArgMax's
  SamplingParams top1 = p;
  top1.top_k = 1;
  EXPECT_FALSE(Sampler::CanUseCandidates(top1));
  SamplingParams penalty = p;
  penalty.presence_penalty = 0.5f;
  EXPECT_FALSE(Sampler::CanUseCandidates(penalty));
  SamplingParams logprobs = p;
  logprobs.top_logprobs = 2;
  EXPECT_FALSE(Sampler::CanUseCandidates(logprobs));
}

}  // namespace
}  // namespace loraserve
