// loraserve-make-model: writes a synthetic Hugging Face Llama directory with
// random weights (bench/tools/synthetic_model.h), e.g.
//   loraserve-make-model --shape llama-7b --out /data/llama-7b-synthetic --seed 1
//   loraserve-make-model --shape llama-13b --out /tmp/llama-13b --no-weights
// (--no-weights: config.json, generation_config.json and the tokenizer only,
// for --random-weights-seed / forward_bench --random-weights, which generate
// the weights on the device).
// Exit status: 0 written, 2 bad flags, 1 any other error.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "bench/tools/model_shapes.h"
#include "bench/tools/progress.h"
#include "bench/tools/synthetic_model.h"
#include "common/dtype.h"
#include "common/flag_names.h"

ABSL_FLAG(std::string, shape, "", "Built-in shape: llama-7b, llama-13b, tiny or smollm-135m");
ABSL_FLAG(std::string, config, "", "A config.json to use instead of --shape");
ABSL_FLAG(std::string, out, "", "Output model directory");
ABSL_FLAG(uint64_t, seed, 0, "Random seed");
ABSL_FLAG(std::string, dtype, "bf16", "Weight dtype: bf16, f16 or f32");
ABSL_FLAG(int64_t, shard_bytes, int64_t{4} << 30, "Approximate bytes per safetensors shard");
ABSL_FLAG(bool, no_weights, false,
          "Write config.json and the tokenizer only, no safetensors (for random weights "
          "generated on the device: loraserve --random-weights-seed, forward_bench "
          "--random-weights)");

namespace {

constexpr int64_t kMiB = int64_t{1} << 20;

int Fail(int code, const absl::Status& s) {
  std::fprintf(stderr, "loraserve-make-model: %s\n", std::string(s.message()).c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Writes a synthetic Llama model directory with random weights (shapes: " +
      loraserve::bench::ModelShapeNames() + ").");
  std::vector<std::string> args = loraserve::UnderscoreFlagNames(argc, argv);
  std::vector<char*> cargs;
  for (std::string& a : args) cargs.push_back(a.data());
  absl::ParseCommandLine(static_cast<int>(cargs.size()), cargs.data());

  loraserve::bench::SyntheticModelOptions o;
  o.shape = absl::GetFlag(FLAGS_shape);
  o.config_file = absl::GetFlag(FLAGS_config);
  o.out_dir = absl::GetFlag(FLAGS_out);
  o.seed = absl::GetFlag(FLAGS_seed);
  o.shard_bytes = absl::GetFlag(FLAGS_shard_bytes);
  o.write_weights = !absl::GetFlag(FLAGS_no_weights);
  const std::string dtype = absl::GetFlag(FLAGS_dtype);
  if (dtype == "bf16") {
    o.dtype = loraserve::DType::kBF16;
  } else if (dtype == "f16") {
    o.dtype = loraserve::DType::kF16;
  } else if (dtype == "f32") {
    o.dtype = loraserve::DType::kF32;
  } else {
    return Fail(
        2, absl::InvalidArgumentError("--dtype is \"" + dtype + "\", must be bf16, f16 or f32"));
  }

  std::unique_ptr<loraserve::bench::ProgressPrinter> printer;
  absl::StatusOr<loraserve::bench::SyntheticModelSummary> summary =
      loraserve::bench::MakeSyntheticModel(o, [&printer](int64_t done, int64_t total) {
        if (printer == nullptr) {
          printer =
              std::make_unique<loraserve::bench::ProgressPrinter>("make-model", "MiB", total, kMiB);
        }
        printer->Update(done);
      });
  if (!summary.ok()) {
    return Fail(summary.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1,
                summary.status());
  }
  if (!o.write_weights) {
    std::fprintf(stderr,
                 "make-model: wrote %s: config.json and tokenizer only (--no-weights; load it "
                 "with random weights)\n",
                 o.out_dir.c_str());
    return 0;
  }
  std::fprintf(stderr, "make-model: wrote %s: %d tensors, %s in %d shard(s), %.1f s (%.0f MiB/s)\n",
               o.out_dir.c_str(), summary->num_tensors,
               loraserve::bench::HumanBytes(summary->weight_bytes).c_str(), summary->num_shards,
               summary->seconds,
               summary->seconds > 0
                   ? static_cast<double>(summary->weight_bytes) / kMiB / summary->seconds
                   : 0.0);
  return 0;
}
