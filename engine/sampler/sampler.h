// Sampler: turns one sequence's logits into its next token, on the host.
//
//   SamplerState  one request's sampling state: its params, its own random
//                 stream, and the token counts the penalties need. Created
//                 when the request is accepted, lives as long as it does.
//   Sampler       the stateless-per-request algorithm plus vocab-sized
//                 scratch buffers, reused for every row of every step.
//
// Order (vLLM/HF semantics):
//   1. penalties: repetition over prompt + output tokens (HF: a seen token's
//      logit l becomes l / p if l > 0, else l * p), then presence and
//      frequency over output tokens (OpenAI: l -= presence * (count > 0) +
//      frequency * count);
//   2. temperature below kGreedyTemperature (1e-5, as vLLM), or top_k == 1:
//      argmax, ties to the lowest id;
//   3. else temperature -> top-k -> top-p (the smallest set of most likely
//      tokens whose mass, renormalised after top-k, reaches top_p; a
//      relative 1e-6 slack absorbs float rounding) -> min-p (drop
//      p < min_p * p_max) -> one draw. Ties in every ranking go to the
//      lower id.
//
// Randomness: each request has its own counter-based stream (SplitMix64 of
// the mixed seed and the draw index; one draw per sampled token, greedy
// included), so a seed and the same logits give the same tokens whatever
// else is in the batch, and draw i never depends on earlier draws. Unset
// seed: one 64-bit value from std::random_device.
//
// Logprobs are those of the model's RAW logits: log_softmax before
// penalties, temperature and filtering (what OpenAI and vLLM return by
// default), for the chosen token and the top_logprobs most likely tokens.
//
// Cost per row for a vocab of V, never a full sort: greedy is one vectorised
// max pass; top-k one heap-select pass over the logits, then k exps; without
// top-k, one vectorised exp pass (logits_ops.h), and top-p first tries the 64
// most likely tokens, else finds the nucleus with a mass histogram (O(V)).
// Logprobs add one exp pass.
//
// On the device: plain greedy rows need only their argmax (TakeArgMax), and
// the common sampled rows only their 64 best logits and the full-row weight
// sum (Backend::SampleCandidates; SampleFromCandidates), which decide the
// token exactly as Sample would whenever the kept tokens all lie among those
// 64; otherwise the caller fetches the row and calls Sample.
//
// Thread-safety: a Sampler and a SamplerState are
// each used by one thread at a time (the engine thread); distinct Samplers
// are independent, so rows may be split across threads, one Sampler each.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "engine/sampler/sampling_params.h"
#include "kernels/logits_ops.h"

namespace loraserve {

// Temperatures below this sample greedily (1 / T would overflow the weights).
inline constexpr float kGreedyTemperature = 1e-5f;

struct TopLogprob {
  int32_t token = 0;
  float logprob = 0.0f;
};

struct SampledToken {
  int32_t token = 0;
  // Set when params.wants_logprobs(); raw log_softmax of the chosen token.
  bool has_logprobs = false;
  float logprob = 0.0f;
  // params.top_logprobs most likely tokens by raw logit, most likely first.
  std::vector<TopLogprob> top;
};

class SamplerState {
 public:
  // InvalidArgument for bad params (SamplingParams::Validate) or a prompt
  // token outside [0, vocab_size).
  static absl::StatusOr<SamplerState> Create(const SamplingParams& params, int32_t vocab_size,
                                             std::span<const int32_t> prompt_tokens);

  SamplerState(SamplerState&&) = default;
  SamplerState& operator=(SamplerState&&) = default;

  const SamplingParams& params() const { return params_; }
  // The seed in use (params.seed, or the one drawn from the random device).
  uint64_t seed() const { return seed_; }
  // Tokens sampled so far (also the index of the next random draw).
  int64_t num_sampled() const { return num_sampled_; }
  // Times `token` was generated (the count frequency_penalty uses).
  int32_t OutputCount(int32_t token) const;

  // Records a generated token for the penalties. Sampler::Sample does this
  // for the token it returns; call it only for tokens chosen elsewhere.
  void AddOutputToken(int32_t token);

  // The i-th uniform draw in [0, 1) of this request's stream.
  double Uniform(uint64_t i) const;

 private:
  friend class Sampler;
  SamplerState(const SamplingParams& params, int32_t vocab_size, uint64_t seed);

  SamplingParams params_;
  int32_t vocab_size_ = 0;
  uint64_t seed_ = 0;
  uint64_t key_ = 0;  // mixed seed
  int64_t num_sampled_ = 0;
  // Distinct prompt + output tokens, kept only with a repetition penalty.
  std::vector<int32_t> seen_;
  absl::flat_hash_set<int32_t> seen_set_;
  absl::flat_hash_map<int32_t, int32_t> output_counts_;
};

class Sampler {
 public:
  explicit Sampler(int32_t vocab_size);

  int32_t vocab_size() const { return vocab_size_; }

  // Picks the next token of one sequence and records it in `state`.
  // logits: [vocab_size] raw logits of the sequence's last position.
  SampledToken Sample(const float* logits, SamplerState* state);

  // Whether Sample picks exactly the argmax of the raw logits for these params
  // (greedy, no penalties, no logprobs). Then the argmax may be taken on the
  // device (Backend::ArgMaxRows) and TakeArgMax used instead of Sample, so the
  // logits need not be copied to the host.
  static bool IsPlainGreedy(const SamplingParams& params);
  // Sample's bookkeeping (draw index, output counts) for `token`, the argmax
  // computed elsewhere. Only for IsPlainGreedy params.
  SampledToken TakeArgMax(int32_t token, SamplerState* state);

  // Whether SampleFromCandidates may be tried for these params: sampled (not
  // greedy: TakeArgMax serves those), no penalties, no logprobs, top_k at
  // most the candidates (kMaxSampleCandidates) or off, and something that
  // cuts the tail (top_k, top_p < 1 or min_p > 0): plain temperature sampling
  // draws over the whole vocabulary, which the candidates almost never cover,
  // so such rows are better copied with the batch than fetched one by one.
  static bool CanUseCandidates(const SamplingParams& params);
  // Sample, decided from the row's candidates (Backend::SampleCandidates):
  // `ids` / `values` the k best ids and raw logits, best first (k <= vocab);
  // `total` the row's exp weight sum at the state's temperature. Returns
  // exactly Sample's token and bookkeeping when every token Sample could
  // keep is among the candidates: top_k <= k; or the top-p nucleus ends
  // inside them (and within the 64 Sample tries first) strictly above
  // every other token's weight; or, with top_p == 1, min_p (or an all-zero
  // tail) leaves nothing outside them. Otherwise (including a non-finite
  // total) nullopt, with the state untouched and no draw used: fetch the
  // row and call Sample. Needs sampled params without penalties or logprobs
  // (CHECKed), any top_k.
  std::optional<SampledToken> SampleFromCandidates(std::span<const int32_t> ids,
                                                   std::span<const float> values, double total,
                                                   SamplerState* state);

  // One token per row. logits: [states.size(), vocab_size], row-major.
  void SampleBatch(const float* logits, std::span<SamplerState* const> states,
                   std::vector<SampledToken>* out);

 private:
  // The decision of SampleFromCandidates (-1: the candidates do not decide).
  int32_t DrawFromCandidates(std::span<const int32_t> ids, std::span<const float> values,
                             double total, const SamplingParams& params, double u);
  // Sample's bookkeeping for a token drawn with the state's next draw.
  static void Record(int32_t token, SamplerState* state);
  void ApplyPenalties(const SamplerState& state, float* x /* [vocab] */) const;
  int32_t Draw(const float* x /* [vocab] */, const SamplingParams& params, double u);
  // Draw with 0 < top_k < vocab, cand_ holding the top_k best logits (best
  // first): their weights, then top-p and min-p among them.
  int32_t DrawTopK(const SamplingParams& params, double u);
  // Fills out->top; returns log Z = logsumexp(logits).
  double FillLogprobs(const float* logits /* [vocab] */, int32_t top_n, SampledToken* out);
  // Cuts cand_ (weights, most likely first) to the smallest prefix with
  // mass >= top_p * total; false (unchanged) when cand_ holds too little.
  bool CutToNucleus(float top_p, double total);
  static double NucleusTarget(float top_p, double total);
  // Draws from cand_ after dropping weights below min_p * the first one.
  int32_t DrawSorted(float min_p, double u);

  int32_t vocab_size_;
  std::vector<float> penalized_;          // [vocab] logits after penalties
  std::vector<float> weights_;            // [vocab] exp((x - x_max) / T), by token id
  std::vector<logits_ops::Scored> cand_;  // candidates: weight (or logit), id
  std::vector<float> cand_weights_;       // [k] SampleFromCandidates: weights of its values
};

}  // namespace loraserve
