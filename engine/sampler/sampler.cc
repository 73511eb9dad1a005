#include "engine/sampler/sampler.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status.h"
#include "kernels/logits_ops.h"

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

bool IsGreedy(const SamplingParams& p) {
  return p.temperature < kGreedyTemperature || p.top_k == 1;
}

// Relative bound on how far a weight of logits_ops::ExpWeights may exceed
// the weight of a larger logit: each is within 1e-6 of the exact exp, which
// is monotone, so (1 + 1e-6) / (1 - 1e-6) - 1 < 3e-6.
constexpr double kExpSlack = 3e-6;

// The whole-vocabulary draw of Sampler::Draw, over entries in id order:
// at(i) for i < n is (weight, id), ids ascending; a token with no entry is
// not kept. kept(t) = w > 0, w >= min_w, and inside the nucleus `cut`. The
// kept mass is `total` unless `filtered`; `fallback()` (the most likely
// token) answers a draw lost to rounding at the top end.
template <typename At, typename Fallback>
int32_t DrawInIdOrder(int64_t n, const At& at, double total, float min_w,
                      logits_ops::NucleusCut cut, bool filtered, double u,
                      const Fallback& fallback) {
  auto kept = [&](const logits_ops::Scored& e) {
    return e.value > 0.0f && e.value >= min_w && (e.value > cut.threshold || e.id <= cut.last_id);
  };
  double kept_mass = total;
  if (filtered) {
    kept_mass = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const logits_ops::Scored e = at(i);
      if (kept(e)) kept_mass += e.value;
    }
  }
  const double r = u * kept_mass;
  double cum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const logits_ops::Scored e = at(i);
    if (!kept(e)) continue;
    cum += e.value;
    if (r < cum) return e.id;
  }
  return fallback();
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
  out.token = IsGreedy(p) ? logits_ops::ArgMax(x, vocab_size_) : Draw(x, p, u);
  Record(out.token, state);
  if (out.has_logprobs) out.logprob = static_cast<float>(logits[out.token] - log_z);
  return out;
}

void Sampler::Record(int32_t token, SamplerState* state) {
  ++state->num_sampled_;  // the draw was this token's, used or not
  state->AddOutputToken(token);
}

bool Sampler::IsPlainGreedy(const SamplingParams& p) {
  return IsGreedy(p) && !p.has_penalties() && !p.wants_logprobs();
}

SampledToken Sampler::TakeArgMax(int32_t token, SamplerState* state) {
  LS_CHECK(IsPlainGreedy(state->params_)) << "TakeArgMax needs plain greedy sampling";
  LS_CHECK(token >= 0 && token < vocab_size_) << "argmax " << token << " outside the vocab";
  Record(token, state);
  SampledToken out;
  out.token = token;
  return out;
}

bool Sampler::CanUseCandidates(const SamplingParams& p) {
  const bool cuts_tail = p.top_k > 0 || p.top_p < 1.0f || p.min_p > 0.0f;
  return !IsGreedy(p) && !p.has_penalties() && !p.wants_logprobs() &&
         p.top_k <= logits_ops::kTopCandidates && cuts_tail;
}

std::optional<SampledToken> Sampler::SampleFromCandidates(std::span<const int32_t> ids,
                                                          std::span<const float> values,
                                                          double total, SamplerState* state) {
  LS_CHECK_EQ(state->vocab_size_, vocab_size_);
  const SamplingParams& p = state->params_;
  LS_CHECK(!IsGreedy(p) && !p.has_penalties() && !p.wants_logprobs())
      << "SampleFromCandidates needs sampled params without penalties or logprobs";
  LS_CHECK(!ids.empty() && ids.size() == values.size() &&
           ids.size() <= static_cast<size_t>(vocab_size_))
      << ids.size() << " candidate ids, " << values.size() << " values, vocab " << vocab_size_;
  for (int32_t id : ids) LS_CHECK(id >= 0 && id < vocab_size_) << "candidate id " << id;
  // Sample's draw, peeked: taken only when the candidates decide.
  const double u = state->Uniform(static_cast<uint64_t>(state->num_sampled_));
  const int32_t token = DrawFromCandidates(ids, values, total, p, u);
  if (token < 0) return std::nullopt;
  Record(token, state);
  SampledToken out;
  out.token = token;
  return out;
}

int32_t Sampler::DrawFromCandidates(std::span<const int32_t> ids, std::span<const float> values,
                                    double total, const SamplingParams& p, double u) {
  const int32_t v = vocab_size_;
  const auto k = static_cast<int32_t>(ids.size());
  if (p.top_k > 0 && p.top_k < v) {
    // Draw's top-k path reads exactly the top_k best logits.
    if (p.top_k > k) return -1;
    cand_.clear();
    for (int32_t i = 0; i < p.top_k; ++i) cand_.push_back({values[i], ids[i]});
    return DrawTopK(p, u);
  }
  // Whole vocabulary. A finite total means no NaN or +inf in the row, so its
  // max (Draw's x_max) is values[0], and the candidates' weights are Draw's.
  if (!std::isfinite(total)) return -1;
  const float inv_t = 1.0f / p.temperature;
  cand_weights_.resize(static_cast<size_t>(k));
  logits_ops::ExpWeights(values.data(), k, values[0], inv_t, cand_weights_.data());
  // Every other token's logit is <= the last candidate's, so its weight is
  // 0 when that one's is (0 <=> exponent below -87, monotone in the logit),
  // else at most `outside`. Nothing is outside a complete vocabulary.
  const bool complete = k == v;
  const float w_last = cand_weights_[static_cast<size_t>(k - 1)];
  const double outside =
      complete ? -1.0 : (w_last == 0.0f ? 0.0 : static_cast<double>(w_last) * (1.0 + kExpSlack));
  if (p.top_p < 1.0f) {
    // Draw's first try: the 64 largest weights, ranked by weight then id.
    cand_.resize(static_cast<size_t>(k));
    for (int32_t i = 0; i < k; ++i) cand_[i] = {cand_weights_[i], ids[i]};
    std::sort(cand_.begin(), cand_.end(), logits_ops::Before);
    // The nucleus is Draw's when it fits its first try and each of its
    // weights beats every token outside (so none could rank among them).
    if (!CutToNucleus(p.top_p, total)) return -1;
    if (cand_.size() > static_cast<size_t>(logits_ops::kTopCandidates)) return -1;
    if (!(static_cast<double>(cand_.back().value) > outside)) return -1;
    return DrawSorted(p.min_p, u);
  }
  // No nucleus: Draw keeps w > 0 and w >= min_p over the whole vocabulary,
  // in id order. Decided here when nothing outside can be kept.
  const float min_w = p.min_p;
  if (!(complete || w_last == 0.0f || (min_w > 0.0f && outside < min_w))) return -1;
  cand_.resize(static_cast<size_t>(k));
  for (int32_t i = 0; i < k; ++i) cand_[i] = {cand_weights_[i], ids[i]};
  std::sort(cand_.begin(), cand_.end(),
            [](const logits_ops::Scored& a, const logits_ops::Scored& b) { return a.id < b.id; });
  auto most_likely = [&] {  // Draw's ArgMax over the weights: the first largest
    size_t best = 0;
    for (size_t i = 1; i < cand_.size(); ++i) {
      if (cand_[i].value > cand_[best].value) best = i;
    }
    return cand_[best].id;
  };
  return DrawInIdOrder(
      k, [&](int64_t i) { return cand_[static_cast<size_t>(i)]; }, total, min_w,
      logits_ops::NucleusCut{0.0f, v - 1}, min_w > 0.0f, u, most_likely);
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
  if (p.top_k > 0 && p.top_k < v) {
    // Only the k best logits matter: weigh those alone, already sorted.
    logits_ops::TopK(x, v, p.top_k, &cand_);
    return DrawTopK(p, u);
  }
  const float inv_t = 1.0f / p.temperature;
  const float x_max = logits_ops::MaxOf(x, v);
  const double total = logits_ops::ExpWeights(x, v, x_max, inv_t, weights_.data());
  // Whole vocabulary: kept(t) = in the nucleus (if top_p < 1) and not below
  // min_p (weights are relative to the most likely token, whose weight is 1).
  logits_ops::NucleusCut cut{0.0f, v - 1};  // keeps everything
  if (p.top_p < 1.0f) {
    // The nucleus is usually small: look among the 64 most likely first.
    logits_ops::TopK(weights_.data(), v, logits_ops::kTopCandidates, &cand_);
    if (CutToNucleus(p.top_p, total)) return DrawSorted(p.min_p, u);
    cut = logits_ops::FindNucleus(weights_.data(), v, NucleusTarget(p.top_p, total), &cand_);
  }
  const float min_w = std::max(p.min_p, cut.threshold);
  return DrawInIdOrder(
      v, [&](int64_t t) { return logits_ops::Scored{weights_[t], static_cast<int32_t>(t)}; },
      total, min_w, cut, p.top_p < 1.0f || min_w > 0.0f, u,
      [&] { return logits_ops::ArgMax(weights_.data(), v); });
}

int32_t Sampler::DrawTopK(const SamplingParams& p, double u) {
  const float inv_t = 1.0f / p.temperature;
  const double x_max = cand_[0].value;
  double total = 0.0;
  for (logits_ops::Scored& c : cand_) {
    c.value = static_cast<float>(std::exp((c.value - x_max) * inv_t));
    total += c.value;
  }
  if (p.top_p < 1.0f) CutToNucleus(p.top_p, total);
  return DrawSorted(p.min_p, u);
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
