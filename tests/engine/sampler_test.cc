// Sampler and SamplingParams tests. Expected values are hand-computed or come
// from the naive reference below (full sort, double precision), never from the
// sampler itself. Fixed seeds throughout.
#include "engine/sampler/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace loraserve {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

SamplerState MakeState(const SamplingParams& p, int32_t vocab, std::vector<int32_t> prompt = {0}) {
  auto s = SamplerState::Create(p, vocab, prompt);
  EXPECT_TRUE(s.ok()) << s.status();
  return std::move(s).value();
}

SamplingParams Seeded(uint64_t seed, float temperature = 1.0f) {
  SamplingParams p;
  p.seed = seed;
  p.temperature = temperature;
  return p;
}

// Logits whose softmax is exactly `probs` (up to float rounding).
std::vector<float> LogitsOf(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(static_cast<float>(std::log(p)));
  return l;
}

// Tokens seen over `n` draws.
std::set<int32_t> Support(const std::vector<float>& logits, const SamplingParams& p, int n) {
  Sampler sampler(static_cast<int32_t>(logits.size()));
  SamplerState st = MakeState(p, static_cast<int32_t>(logits.size()));
  std::set<int32_t> seen;
  for (int i = 0; i < n; ++i) seen.insert(sampler.Sample(logits.data(), &st).token);
  return seen;
}

TEST(SamplerTest, GreedyPicksArgmaxTiesToLowestId) {
  Sampler sampler(4);
  SamplerState st = MakeState(Seeded(1, 0.0f), 4);
  const float logits[] = {0.1f, 2.5f, -1.0f, 2.4f};
  EXPECT_EQ(sampler.Sample(logits, &st).token, 1);
  const float tied[] = {1.0f, 3.0f, 3.0f, 0.0f};
  EXPECT_EQ(sampler.Sample(tied, &st).token, 1);
}

TEST(SamplerTest, PlainGreedyArgMaxFromElsewhereKeepsTheSameState) {
  SamplingParams greedy = Seeded(3, 0.0f);
  EXPECT_TRUE(Sampler::IsPlainGreedy(greedy));
  SamplingParams top1 = Seeded(3, 1.0f);
  top1.top_k = 1;
  EXPECT_TRUE(Sampler::IsPlainGreedy(top1));
  EXPECT_FALSE(Sampler::IsPlainGreedy(Seeded(3, 0.7f)));
  SamplingParams penalized = greedy;
  penalized.repetition_penalty = 1.2f;
  EXPECT_FALSE(Sampler::IsPlainGreedy(penalized));  // penalties change the argmax
  SamplingParams logprobs = greedy;
  logprobs.logprobs = true;
  EXPECT_FALSE(Sampler::IsPlainGreedy(logprobs));  // needs the logits on the host

  // The same tokens through Sample and through TakeArgMax leave equal states.
  Sampler sampler(4);
  SamplerState by_sample = MakeState(greedy, 4);
  SamplerState by_argmax = MakeState(greedy, 4);
  const float steps[3][4] = {{0.1f, 2.5f, -1.0f, 2.4f}, {3.0f, 3.0f, 0.0f, 1.0f},
                             {0.0f, 0.0f, 0.0f, 9.0f}};
  const int32_t argmax[3] = {1, 0, 3};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(sampler.Sample(steps[i], &by_sample).token, argmax[i]);
    EXPECT_EQ(sampler.TakeArgMax(argmax[i], &by_argmax).token, argmax[i]);
  }
  EXPECT_EQ(by_argmax.num_sampled(), by_sample.num_sampled());
  EXPECT_EQ(by_argmax.num_sampled(), 3);
  for (int32_t t = 0; t < 4; ++t) EXPECT_EQ(by_argmax.OutputCount(t), by_sample.OutputCount(t));
}

TEST(SamplerTest, TemperatureZeroIgnoresSeed) {
  Sampler sampler(5);
  const float logits[] = {0.3f, 0.2f, 0.31f, -4.0f, 0.0f};
  for (uint64_t seed : {1u, 2u, 99u}) {
    SamplerState st = MakeState(Seeded(seed, 0.0f), 5);
    for (int i = 0; i < 20; ++i) EXPECT_EQ(sampler.Sample(logits, &st).token, 2);
  }
}

TEST(SamplerTest, TopKOneEqualsGreedy) {
  Sampler sampler(5);
  const float logits[] = {0.3f, 0.2f, 0.31f, -4.0f, 0.0f};
  SamplingParams p = Seeded(7, 1.5f);
  p.top_k = 1;
  SamplerState st = MakeState(p, 5);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(sampler.Sample(logits, &st).token, 2);
}

TEST(SamplerTest, SameSeedSameSequenceWhateverElseIsSampled) {
  const int32_t vocab = 50;
  std::vector<float> logits(vocab);
  for (int i = 0; i < vocab; ++i) logits[i] = std::sin(i * 0.7f);
  Sampler sampler(vocab);
  SamplerState a = MakeState(Seeded(42), vocab);
  SamplerState b = MakeState(Seeded(42), vocab);
  SamplerState c = MakeState(Seeded(43), vocab);
  SamplerState other = MakeState(Seeded(42), vocab);
  std::vector<int32_t> ta, tb, tc;
  for (int i = 0; i < 200; ++i) {
    ta.push_back(sampler.Sample(logits.data(), &a).token);
    // b shares the sampler with unrelated work between its draws.
    for (int k = 0; k < i % 3; ++k) sampler.Sample(logits.data(), &other);
    tb.push_back(sampler.Sample(logits.data(), &b).token);
    tc.push_back(sampler.Sample(logits.data(), &c).token);
  }
  EXPECT_EQ(ta, tb);
  EXPECT_NE(ta, tc);
  EXPECT_GT(std::set<int32_t>(ta.begin(), ta.end()).size(), 10u) << "not random at all";
  // Unset seeds come from the random device.
  SamplingParams unseeded;
  EXPECT_NE(MakeState(unseeded, vocab).seed(), MakeState(unseeded, vocab).seed());
}

TEST(SamplerTest, FrequenciesMatchSoftmaxAtTemperature) {
  const std::vector<float> logits = {1.0f, 0.5f, 0.0f, -0.5f, 2.0f, 0.3f};
  const double t = 0.7;
  std::vector<double> expected(logits.size());
  double z = 0;
  for (size_t i = 0; i < logits.size(); ++i) z += expected[i] = std::exp(logits[i] / t);
  for (double& e : expected) e /= z;

  constexpr int kDraws = 20000;
  Sampler sampler(6);
  SamplerState st = MakeState(Seeded(12345, 0.7f), 6);
  std::vector<int> counts(6);
  for (int i = 0; i < kDraws; ++i) ++counts[sampler.Sample(logits.data(), &st).token];
  double chi2 = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    const double e = expected[i] * kDraws;
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
  }
  EXPECT_LT(chi2, 20.52) << "chi-square, 5 degrees of freedom, p = 0.001";
}

TEST(SamplerTest, TopPKeepsSmallestSetReachingMass) {
  // Sorted: id1 .5, id3 .3, id0 .1, id2 .05, id4 .05.
  const std::vector<float> logits = LogitsOf({0.1, 0.5, 0.05, 0.3, 0.05});
  struct Case {
    float top_p;
    int32_t top_k;
    std::set<int32_t> kept;
  };
  for (const Case& c : {Case{0.45f, 0, {1}}, Case{0.75f, 0, {1, 3}}, Case{0.85f, 0, {0, 1, 3}},
                        Case{0.97f, 0, {0, 1, 2, 3, 4}},
                        // top-k 3 renormalises to .556/.333/.111: .889 >= .85 keeps two.
                        Case{0.85f, 3, {1, 3}}}) {
    SamplingParams p = Seeded(3);
    p.top_p = c.top_p;
    p.top_k = c.top_k;
    EXPECT_EQ(Support(logits, p, 3000), c.kept) << "top_p " << c.top_p << " top_k " << c.top_k;
  }
}

TEST(SamplerTest, MinPDropsTokensBelowFractionOfMax) {
  const std::vector<float> logits = LogitsOf({0.5, 0.3, 0.1, 0.06, 0.04});
  SamplingParams p = Seeded(5);
  p.min_p = 0.15f;  // threshold .075
  EXPECT_EQ(Support(logits, p, 3000), (std::set<int32_t>{0, 1, 2}));
  p.min_p = 0.25f;  // threshold .125
  EXPECT_EQ(Support(logits, p, 3000), (std::set<int32_t>{0, 1}));
  p.min_p = 0.0f;
  EXPECT_EQ(Support(logits, p, 3000), (std::set<int32_t>{0, 1, 2, 3, 4}));
}

// Greedy pick after penalties, with the state's prompt and prior outputs.
int32_t GreedyWith(SamplingParams p, std::vector<float> logits, std::vector<int32_t> prompt,
                   std::vector<int32_t> outputs = {}) {
  p.temperature = 0.0f;
  const int32_t vocab = static_cast<int32_t>(logits.size());
  SamplerState st = MakeState(p, vocab, prompt);
  for (int32_t t : outputs) st.AddOutputToken(t);
  Sampler sampler(vocab);
  return sampler.Sample(logits.data(), &st).token;
}

TEST(SamplerTest, RepetitionPenaltyHfSemantics) {
  SamplingParams p;
  p.repetition_penalty = 1.25f;
  // Positive logit of a prompt token: 2.0 / 1.25 = 1.6.
  EXPECT_EQ(GreedyWith(p, {2.0f, 1.59f, 0.0f}, {0}), 0);
  EXPECT_EQ(GreedyWith(p, {2.0f, 1.61f, 0.0f}, {0}), 1);
  // Negative logit: -1.0 * 1.25 = -1.25.
  EXPECT_EQ(GreedyWith(p, {-1.0f, -1.26f, -9.0f}, {0}), 0);
  EXPECT_EQ(GreedyWith(p, {-1.0f, -1.24f, -9.0f}, {0}), 1);
  // Output tokens count too; each token is penalised once however often seen.
  EXPECT_EQ(GreedyWith(p, {2.0f, 1.59f, 0.0f}, {2}, {0, 0, 0}), 0);
  EXPECT_EQ(GreedyWith(p, {2.0f, 1.61f, 0.0f}, {2}, {0}), 1);
  // Unseen tokens are untouched.
  EXPECT_EQ(GreedyWith(p, {2.0f, 1.99f, 0.0f}, {2}), 0);
}

TEST(SamplerTest, PresenceAndFrequencyPenaltiesOpenAiSemantics) {
  SamplingParams p;
  p.presence_penalty = 0.5f;  // 3.0 - 0.5 = 2.5
  EXPECT_EQ(GreedyWith(p, {3.0f, 2.49f}, {1}, {0, 0}), 0);
  EXPECT_EQ(GreedyWith(p, {3.0f, 2.51f}, {1}, {0, 0}), 1);
  EXPECT_EQ(GreedyWith(p, {3.0f, 2.99f}, {0}), 0) << "prompt tokens do not count";
  p.presence_penalty = -0.5f;  // negative: encourages repeats
  EXPECT_EQ(GreedyWith(p, {3.0f, 3.49f}, {1}, {0}), 0);

  SamplingParams f;
  f.frequency_penalty = 0.3f;  // 3 - 0.3 * 3 = 2.1
  EXPECT_EQ(GreedyWith(f, {3.0f, 2.09f}, {1}, {0, 0, 0}), 0);
  EXPECT_EQ(GreedyWith(f, {3.0f, 2.11f}, {1}, {0, 0, 0}), 1);

  // Both: 3 - (0.5 + 0.3 * 2) = 1.9.
  SamplingParams both;
  both.presence_penalty = 0.5f;
  both.frequency_penalty = 0.3f;
  EXPECT_EQ(GreedyWith(both, {3.0f, 1.89f}, {1}, {0, 0}), 0);
  EXPECT_EQ(GreedyWith(both, {3.0f, 1.91f}, {1}, {0, 0}), 1);

  // Penalties follow the tokens the sampler itself picks: 3.0, 2.7, 2.4, 2.1 vs 2.2.
  Sampler sampler(2);
  f.temperature = 0.0f;
  SamplerState st = MakeState(f, 2, {1});
  const float logits[] = {3.0f, 2.2f};
  std::vector<int32_t> picked;
  for (int i = 0; i < 6; ++i) picked.push_back(sampler.Sample(logits, &st).token);
  // then id1 (count 1: 1.9) vs id0 at 2.1 -> 0 (count 4: 1.8) -> 1.
  EXPECT_THAT(picked, ElementsAre(0, 0, 0, 1, 0, 1));
  EXPECT_EQ(st.OutputCount(0), 4);
  EXPECT_EQ(st.num_sampled(), 6);
}

TEST(SamplerTest, LogprobsAreRawLogSoftmax) {
  const std::vector<float> logits = {1.0f, 2.0f, 3.0f, 0.5f};
  double z = 0;
  for (float l : logits) z += std::exp(static_cast<double>(l));
  auto lp = [&](int i) { return static_cast<double>(logits[i]) - std::log(z); };

  SamplingParams p = Seeded(9, 0.0f);
  p.logprobs = true;
  p.top_logprobs = 3;
  // Penalties change the pick (id2: 3.0 / 2 = 1.5 < 2.0) but not the logprobs.
  p.repetition_penalty = 2.0f;
  Sampler sampler(4);
  SamplerState st = MakeState(p, 4, {2});
  SampledToken out = sampler.Sample(logits.data(), &st);
  EXPECT_EQ(out.token, 1);
  ASSERT_TRUE(out.has_logprobs);
  EXPECT_NEAR(out.logprob, lp(1), 1e-5);
  ASSERT_EQ(out.top.size(), 3u);
  EXPECT_EQ(out.top[0].token, 2);
  EXPECT_NEAR(out.top[0].logprob, lp(2), 1e-5);
  EXPECT_EQ(out.top[1].token, 1);
  EXPECT_NEAR(out.top[1].logprob, lp(1), 1e-5);
  EXPECT_EQ(out.top[2].token, 0);
  EXPECT_NEAR(out.top[2].logprob, lp(0), 1e-5);

  // Sampled at a temperature: still the raw values; no logprobs unless asked.
  SamplingParams q = Seeded(10, 0.3f);
  q.logprobs = true;
  SamplerState st2 = MakeState(q, 4);
  out = sampler.Sample(logits.data(), &st2);
  EXPECT_NEAR(out.logprob, lp(out.token), 1e-5);
  EXPECT_TRUE(out.top.empty());
  SamplerState st3 = MakeState(Seeded(10), 4);
  EXPECT_FALSE(sampler.Sample(logits.data(), &st3).has_logprobs);
}

// Naive reference: the kept set after top-k -> top-p -> min-p, by full sort.
std::set<int32_t> NaiveKept(const std::vector<float>& logits, const SamplingParams& p) {
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int a, int b) { return logits[a] > logits[b]; });
  if (p.top_k > 0) ids.resize(p.top_k);
  std::vector<double> w;
  double total = 0;
  for (int32_t id : ids) {
    w.push_back(std::exp((static_cast<double>(logits[id]) - logits[ids[0]]) / p.temperature));
    total += w.back();
  }
  size_t n = ids.size();
  double cum = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    cum += w[i] / total;
    if (cum >= p.top_p) {
      n = i + 1;
      break;
    }
  }
  std::set<int32_t> kept;
  for (size_t i = 0; i < n; ++i) {
    if (w[i] >= p.min_p) kept.insert(ids[i]);
  }
  return kept;
}

TEST(SamplerTest, LargeVocabFiltersMatchNaiveReference) {
  constexpr int32_t kVocab = 128256;
  std::mt19937 rng(2024);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> logits(kVocab);
  for (float& l : logits) l = normal(rng);
  Sampler sampler(kVocab);
  struct Case {
    int32_t top_k;
    float top_p;
    float min_p;
  };
  for (const Case& c : {Case{50, 1.0f, 0.0f}, Case{0, 0.9f, 0.0f}, Case{40, 0.5f, 0.0f},
                        Case{0, 1.0f, 0.05f}, Case{0, 0.3f, 0.01f}}) {
    SamplingParams p = Seeded(77, 0.8f);
    p.top_k = c.top_k;
    p.top_p = c.top_p;
    p.min_p = c.min_p;
    const std::set<int32_t> kept = NaiveKept(logits, p);
    SamplerState st = MakeState(p, kVocab);
    std::set<int32_t> seen;
    for (int i = 0; i < 200; ++i) {
      const int32_t t = sampler.Sample(logits.data(), &st).token;
      EXPECT_TRUE(kept.contains(t)) << "token " << t << " outside the kept set of " << kept.size()
                                    << " (top_k " << c.top_k << ")";
      seen.insert(t);
    }
    EXPECT_GT(seen.size(), std::min<size_t>(kept.size(), 5) - 1);
  }
}

TEST(SamplingParamsTest, ValidateNamesTheBadFieldAndRange) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  struct Case {
    std::string name;
    void (*mutate)(SamplingParams&, float nan);
    std::string field;
    std::string range;
  };
  const std::vector<Case> cases = {
      {"temperature_negative", [](SamplingParams& p, float) { p.temperature = -0.1f; },
       "temperature", "[0, 100]"},
      {"temperature_huge", [](SamplingParams& p, float) { p.temperature = 101.0f; }, "temperature",
       "[0, 100]"},
      {"temperature_nan", [](SamplingParams& p, float n) { p.temperature = n; }, "temperature",
       "[0, 100]"},
      {"top_k_negative", [](SamplingParams& p, float) { p.top_k = -1; }, "top_k", "[0,"},
      {"top_k_above_vocab", [](SamplingParams& p, float) { p.top_k = 1001; }, "top_k", "1000"},
      {"top_p_zero", [](SamplingParams& p, float) { p.top_p = 0.0f; }, "top_p", "(0, 1]"},
      {"top_p_above_one", [](SamplingParams& p, float) { p.top_p = 1.01f; }, "top_p", "(0, 1]"},
      {"top_p_nan", [](SamplingParams& p, float n) { p.top_p = n; }, "top_p", "(0, 1]"},
      {"min_p_negative", [](SamplingParams& p, float) { p.min_p = -0.01f; }, "min_p", "[0, 1]"},
      {"min_p_nan", [](SamplingParams& p, float n) { p.min_p = n; }, "min_p", "[0, 1]"},
      {"repetition_zero", [](SamplingParams& p, float) { p.repetition_penalty = 0.0f; },
       "repetition_penalty", "(0, 10]"},
      {"repetition_huge", [](SamplingParams& p, float) { p.repetition_penalty = 10.5f; },
       "repetition_penalty", "(0, 10]"},
      {"repetition_nan", [](SamplingParams& p, float n) { p.repetition_penalty = n; },
       "repetition_penalty", "(0, 10]"},
      {"presence_low", [](SamplingParams& p, float) { p.presence_penalty = -2.5f; },
       "presence_penalty", "[-2, 2]"},
      {"presence_nan", [](SamplingParams& p, float n) { p.presence_penalty = n; },
       "presence_penalty", "[-2, 2]"},
      {"frequency_high", [](SamplingParams& p, float) { p.frequency_penalty = 2.5f; },
       "frequency_penalty", "[-2, 2]"},
      {"frequency_nan", [](SamplingParams& p, float n) { p.frequency_penalty = n; },
       "frequency_penalty", "[-2, 2]"},
      {"top_logprobs_negative", [](SamplingParams& p, float) { p.top_logprobs = -1; },
       "top_logprobs", "[0, 20]"},
      {"top_logprobs_21", [](SamplingParams& p, float) { p.top_logprobs = 21; }, "top_logprobs",
       "[0, 20]"},
  };
  for (const Case& c : cases) {
    SamplingParams p;
    c.mutate(p, nan);
    absl::Status s = p.Validate(/*vocab_size=*/1000);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(std::string(s.message()), HasSubstr("sampling." + c.field + " ")) << c.name;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.range)) << c.name;
  }
  SamplingParams edge;
  edge.temperature = 100.0f;
  edge.top_k = 1000;
  edge.top_p = 1.0f;
  edge.min_p = 1.0f;
  edge.repetition_penalty = 10.0f;
  edge.presence_penalty = -2.0f;
  edge.frequency_penalty = 2.0f;
  edge.top_logprobs = 20;
  EXPECT_TRUE(edge.Validate(1000).ok());
  EXPECT_TRUE(SamplingParams().Validate(1000).ok());
}

TEST(SamplerStateTest, CreateRejectsBadPromptAndParams) {
  EXPECT_EQ(SamplerState::Create(SamplingParams(), 10, std::vector<int32_t>{3, 10}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SamplerState::Create(SamplingParams(), 10, std::vector<int32_t>{-1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  SamplingParams bad;
  bad.top_p = 0.0f;
  EXPECT_EQ(SamplerState::Create(bad, 10, std::vector<int32_t>{1}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace loraserve
