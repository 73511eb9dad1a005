// ModelWeights::CreateRandom: fills the layout of ModelWeights::Build on the
// backend with Backend::FillRandom (no host data, no weight files), so
// Llama-7B/13B shapes can be benchmarked from a config.json alone. Called by
// LlamaModel when Options::random_weights_seed is set, and by tests.
#include <chrono>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "common/status.h"
#include "engine/model/model_weights.h"
#include "engine/model/model_weights_source.h"
#include "kernels/counter_random.h"

namespace loraserve {

namespace {

// Tensor k (in Build's order) gets seed CounterHash(seed, k); matrices are
// uniform in [-a, a], norms 1, biases 0.
class RandomFiller final : public WeightSource {
 public:
  RandomFiller(Backend* backend, uint64_t seed, float a) : backend_(backend), seed_(seed), a_(a) {}

  absl::Status Fill(WeightRole role, const std::vector<WeightPart>& parts, void* dst) override {
    auto* out = static_cast<char*>(dst);
    for (const WeightPart& p : parts) {
      const uint64_t seed = CounterHash(seed_, next_index_++);
      float lo = -a_, hi = a_;
      if (role == WeightRole::kNorm) lo = hi = 1.0f;
      if (role == WeightRole::kBias) lo = hi = 0.0f;
      RETURN_IF_ERROR(AnnotateStatus(backend_->FillRandom(out, p.numel(), seed, lo, hi, {}),
                                     absl::StrCat("tensor \"", p.name, "\"")));
      out += static_cast<size_t>(p.numel()) * backend_->elt_size();
    }
    return absl::OkStatus();
  }

 private:
  Backend* backend_;
  uint64_t seed_;
  float a_;
  uint64_t next_index_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ModelWeights>> ModelWeights::CreateRandom(
    const RandomOptions& options) {
  if (options.backend == nullptr || options.config == nullptr) {
    return absl::InvalidArgumentError("ModelWeights::CreateRandom: backend and config are required");
  }
  if (!(std::isfinite(options.init_std) && options.init_std > 0.0f)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ModelWeights::CreateRandom: init_std must be finite and > 0; got ", options.init_std));
  }
  const auto start = std::chrono::steady_clock::now();
  const float a = std::sqrt(3.0f) * options.init_std;
  RandomFiller filler(options.backend, options.seed, a);
  ASSIGN_OR_RETURN(std::unique_ptr<ModelWeights> weights,
                   Build(options.backend, *options.config, filler));
  RETURN_IF_ERROR(options.backend->Synchronize({}));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  LS_LOG(INFO) << "model weights: RANDOM (seed " << options.seed << ", uniform +-" << a
               << ", norms 1, biases 0), " << options.config->num_hidden_layers << " layers, "
               << weights->bytes_ << " bytes (" << (weights->bytes_ >> 20) << " MiB) in "
               << DTypeName(options.backend->dtype()) << ", generated on the backend in "
               << absl::StrFormat("%.3f", seconds) << " s";
  return weights;
}

}  // namespace loraserve
