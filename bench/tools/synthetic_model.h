// The synthetic base model generator behind loraserve-make-model: a Hugging
// Face Llama directory with random weights, for benchmarks that need a
// 7B/13B-shaped model without downloading one. Writes config.json (a built-in
// shape from model_shapes.h, or a given config file), generation_config.json,
// tokenizer.json + tokenizer_config.json (synthetic_tokenizer.h: every id
// decodes), and the weights in HF Llama naming as sharded safetensors
// (model-0000k-of-0000n.safetensors, ~shard_bytes each, plus
// model.safetensors.index.json). Linear weights ~ normal(0, stddev), RMSNorm
// weights 1. Each tensor is generated from its own seed (seed, tensor index)
// and streamed to disk in chunks: memory stays small, output is a function of
// the options only. With write_weights false only config.json,
// generation_config.json and the tokenizer files are written (and weights of
// an earlier run removed): a directory for random_weights_seed
// (ModelWeights::CreateRandom), which generates the weights on the device.
//
// Called by make_model_main.cc and tests. One call at a time per directory.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "common/dtype.h"

namespace loraserve::bench {

struct SyntheticModelOptions {
  std::string shape;        // a built-in shape name (model_shapes.h), or ""
  std::string config_file;  // a config.json to use instead of `shape`
  std::string out_dir;      // created if missing; files there are replaced
  uint64_t seed = 0;
  DType dtype = DType::kBF16;
  int64_t shard_bytes = int64_t{4} << 30;  // a shard closes once it reaches this
  float stddev = 0.02f;
  bool write_weights = true;  // false: config + tokenizer only (make-model --no-weights)
};

// Without weights (write_weights false) the counts and bytes are 0.
struct SyntheticModelSummary {
  int num_tensors = 0;
  int num_shards = 0;
  int64_t weight_bytes = 0;
  double seconds = 0;
};

// Called with (weight bytes written, total weight bytes).
using ModelProgressFn = std::function<void(int64_t, int64_t)>;

// Validates the options (InvalidArgument naming the option: neither or both
// of shape / config_file, unknown shape, bad config, empty out_dir,
// shard_bytes <= 0, stddev not in (0, 1]) and writes the directory.
[[nodiscard]] absl::StatusOr<SyntheticModelSummary> MakeSyntheticModel(
    const SyntheticModelOptions& options, const ModelProgressFn& progress = nullptr);

}  // namespace loraserve::bench
