#include "engine/sampler/sampler.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status.h"
#include "engine/sampler/logits_ops.h"

namespace loraserve {
namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;

// SplitMix64's output function (Steele, Lea, Flood 2014).
uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t RandomDeviceSeed() {
  std::random_device rd;
  return (uint64_t{rd()} << 32) ^ uint64_t { rd() };
}

}  // namespace

// ---------------------------------------------------------------- SamplerState

SamplerState::SamplerState(const SamplingParams& params, int32_t vocab_size, uint64_t seed)
    : params_(params), vocab_size_(vocab_size), seed_(seed), key_(Mix64(seed + kGolden)) {}

absl::StatusOr<SamplerState> SamplerState::Create(const SamplingParams& params, int32_t vocab_size,
                                                  std::span<const int32_t> prompt_tokens) {
  if (vocab_size <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("vocab size ", vocab_size, " must be > 0"));
  }
  RETURN_IF_ERROR(params.Validate(vocab_size));
  for (size_t i = 0; i < prompt_tokens.size(); ++i) {
    if (prompt_tokens[i] < 0 || prompt_tokens[i] >= vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("prompt token ", i, " is ", prompt_tokens[i],
                                                     ", must be in [0, ", vocab_size, ")"));
    }
  }
  SamplerState state(params, vocab_size,
                     params.seed.has_value() ? *params.seed : RandomDeviceSeed());
  if (params.repetition_penalty != 1.0f) {
    for (int32_t t : prompt_tokens) {
      if (state.seen_set_.insert(t).second) state.seen_.push_back(t);
    }
  }
  return state;
}

int32_t SamplerState::OutputCount(int32_t token) const {
  auto it = output_counts_.find(token);
  return it == output_counts_.end() ? 0 : it->second;
}

void SamplerState::AddOutputToken(int32_t token) {
  LS_CHECK(token >= 0 && token < vocab_size_) << "token " << token;
  if (params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f) {
    ++output_counts_[token];
  }
  if (params_.repetition_penalty != 1.0f && seen_set_.insert(token).second) {
    seen_.push_back(token);
  }
}

double SamplerState::Uniform(uint64_t i) const {
  // Counter-based: the i-th state of a SplitMix64 stream keyed by the seed.
  const uint64_t bits = Mix64(key_ + (i + 1) * kGolden);
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

// --------------------------------------------------------------------- Sampler

Sampler::Sampler(int32_t vocab_size)
    : vocab_size_(vocab_size), penalized_(vocab_size), weights_(vocab_size) {
  LS_CHECK_GT(vocab_size, 0);
}

void Sampler::SampleBatch(const float* logits, std::span<SamplerState* const> states,
                          std::vector<SampledToken>* out) {
  out->clear();
  out->reserve(states.size());
  for (size_t r = 0; r < states.size(); ++r) {
    out->push_back(Sample(logits + r * static_cast<size_t>(vocab_size_), states[r]));
  }
}

SampledToken Sampler::Sample(const float* logits, SamplerState* state) {
  LS_CHECK_EQ(state->vocab_size_, vocab_size_);
  const SamplingParams& p = state->params_;
  SampledToken out;
  double log_z = 0.0;
  if (p.wants_logprobs()) log_z = FillLogprobs(logits, p.top_logprobs, &out);

  const float* x = logits;
  if (p.has_penalties()) {
    std::copy(logits, logits + vocab_size_, penalized_.begin());
    ApplyPenalties(*state, penalized_.data());
    x = penalized_.data();
  }
  // One draw per sampled token, used or not, so draw i belongs to token i.
  const double u = state->Uniform(static_cast<uint64_t>(state->num_sampled_));
  ++state->num_sampled_;
  const bool greedy = p.temperature < kGreedyTemperature || p.top_k == 1;
  out.token = greedy ? logits_ops::ArgMax(x, vocab_size_) : Draw(x, p, u);
  state->AddOutputToken(out.token);
  if (out.has_logprobs) out.logprob = static_cast<float>(logits[out.token] - log_z);
  return out;
}

bool Sampler::IsPlainGreedy(const SamplingParams& p) {
  return (p.temperature < kGreedyTemperature || p.top_k == 1) && !p.has_penalties() &&
         !p.wants_logprobs();
}

SampledToken Sampler::TakeArgMax(int32_t token, SamplerState* state) {
  LS_CHECK(IsPlainGreedy(state->params_)) << "TakeArgMax needs plain greedy sampling";
  LS_CHECK(token >= 0 && token < vocab_size_) << "argmax " << token << " outside the vocab";
  ++state->num_sampled_;  // the draw Sample would have consumed
  state->AddOutputToken(token);
  SampledToken out;
  out.token = token;
  return out;
}

void Sampler::ApplyPenalties(const SamplerState& state, float* x) const {
  const SamplingParams& p = state.params_;
  if (p.repetition_penalty != 1.0f) {
    const float rp = p.repetition_penalty;
    for (int32_t t : state.seen_) x[t] = x[t] > 0.0f ? x[t] / rp : x[t] * rp;
  }
  if (p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) {
    for (const auto& [t, count] : state.output_counts_) {
      x[t] -= p.presence_penalty + p.frequency_penalty * static_cast<float>(count);
    }
  }
}

double Sampler::FillLogprobs(const float* logits, int32_t top_n, SampledToken* out) {
  const float m = logits_ops::MaxOf(logits, vocab_size_);
  const double s = logits_ops::ExpWeights(logits, vocab_size_, m, 1.0f, weights_.data());
  const double log_z = static_cast<double>(m) + std::log(s);
  out->has_logprobs = true;
  if (top_n == 0) return log_z;
  logits_ops::TopK(logits, vocab_size_, top_n, &cand_);
  out->top.resize(cand_.size());
  for (size_t i = 0; i < cand_.size(); ++i) {
    out->top[i].token = cand_[i].id;
    out->top[i].logprob = static_cast<float>(cand_[i].value - log_z);
  }
  return log_z;
}

int32_t Sampler::Draw(const float* x, const SamplingParams& p, double u) {
  const int32_t v = vocab_size_;
  const float inv_t = 1.0f / p.temperature;
  if (p.top_k > 0 && p.top_k < v) {
    // Only the k best logits matter: weigh those alone, already sorted.
    logits_ops::TopK(x, v, p.top_k, &cand_);
    const double x_max = cand_[0].value;
    double total = 0.0;
    for (logits_ops::Scored& c : cand_) {
      c.value = static_cast<float>(std::exp((c.value - x_max) * inv_t));
      total += c.value;
    }
    if (p.top_p < 1.0f) CutToNucleus(p.top_p, total);
    return DrawSorted(p.min_p, u);
  }
  const float x_max = logits_ops::MaxOf(x, v);
  const double total = logits_ops::ExpWeights(x, v, x_max, inv_t, weights_.data());
  // Whole vocabulary: kept(t) = in the nucleus (if top_p < 1) and not below
  // min_p (weights are relative to the most likely token, whose weight is 1).
  logits_ops::NucleusCut cut{0.0f, v - 1};  // keeps everything
  if (p.top_p < 1.0f) {
    // The nucleus is usually small: look among the 64 most likely first.
    logits_ops::TopK(weights_.data(), v, 64, &cand_);
    if (CutToNucleus(p.top_p, total)) return DrawSorted(p.min_p, u);
    cut = logits_ops::FindNucleus(weights_.data(), v, NucleusTarget(p.top_p, total), &cand_);
  }
  const float min_w = std::max(p.min_p, cut.threshold);
  auto kept = [&](int32_t t) {
    const float w = weights_[t];
    return w > 0.0f && w >= min_w && (w > cut.threshold || t <= cut.last_id);
  };
  double kept_mass = total;
  if (p.top_p < 1.0f || min_w > 0.0f) {
    kept_mass = 0.0;
    for (int32_t t = 0; t < v; ++t) {
      if (kept(t)) kept_mass += weights_[t];
    }
  }
  const double r = u * kept_mass;
  double cum = 0.0;
  for (int32_t t = 0; t < v; ++t) {
    if (!kept(t)) continue;
    cum += weights_[t];
    if (r < cum) return t;
  }
  // Rounding at the top end: the most likely token is always kept.
  return logits_ops::ArgMax(weights_.data(), v);
}

double Sampler::NucleusTarget(float top_p, double total) {
  // A relative 1e-6 slack so that a hand-exact mass (0.5 + 0.3 >= 0.8) is
  // not missed by float rounding of the weights.
  return static_cast<double>(top_p) * total * (1.0 - 1e-6);
}

bool Sampler::CutToNucleus(float top_p, double total) {
  // Smallest prefix of cand_ (sorted, most likely first) with mass >= top_p.
  const double target = NucleusTarget(top_p, total);
  double cum = 0.0;
  for (size_t i = 0; i < cand_.size(); ++i) {
    cum += cand_[i].value;
    if (cum >= target) {
      cand_.resize(i + 1);
      return true;
    }
  }
  return false;
}

int32_t Sampler::DrawSorted(float min_p, double u) {
  const float min_w = min_p * cand_.front().value;
  size_t n = 0;
  double kept = 0.0;
  while (n < cand_.size() && cand_[n].value >= min_w && cand_[n].value > 0.0f) {
    kept += cand_[n++].value;
  }
  if (n == 0) return cand_.front().id;
  const double r = u * kept;
  double cum = 0.0;
  for (size_t i = 0; i < n; ++i) {
    cum += cand_[i].value;
    if (r < cum) return cand_[i].id;
  }
  return cand_[n - 1].id;  // rounding at the top end
}

}  // namespace loraserve
