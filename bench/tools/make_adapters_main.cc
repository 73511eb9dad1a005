// loraserve-make-adapters: writes N random PEFT LoRA adapters for a base
// model (bench/tools/adapter_set.h), e.g.
//   loraserve-make-adapters --base tests/data/tiny-llama --out /tmp/adapters --num 2000
//       --ranks 8,16,32,64 --seed 1
// Exit status: 0 written, 2 bad flags, 1 any other error.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_join.h"
#include "bench/tools/adapter_set.h"
#include "bench/tools/progress.h"
#include "common/dtype.h"
#include "common/flag_names.h"

ABSL_FLAG(std::string, base, "", "Base model directory (its config.json gives the shapes)");
ABSL_FLAG(std::string, out, "", "Output directory; one subdirectory per adapter");
ABSL_FLAG(int, num, 0, "Number of adapters");
ABSL_FLAG(std::string, ranks, "8,16,32,64", "Ranks to draw from, uniformly (each in [1, 256])");
ABSL_FLAG(std::string, target_modules, "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
          "Projections every adapter targets");
ABSL_FLAG(double, alpha_ratio, 2.0, "lora_alpha = alpha_ratio * r");
ABSL_FLAG(std::string, dtype, "bf16", "Weight dtype: bf16, f16 or f32");
ABSL_FLAG(std::string, name_format, "adapter-%04d", "Adapter directory names (one %d)");
ABSL_FLAG(int, distinct_weights, 0,
          "0: every adapter gets its own weights; K > 0: K weight files per rank, the other "
          "adapters hard-link to them");
ABSL_FLAG(uint64_t, seed, 0, "Random seed (ranks and weights)");

namespace {

int Fail(int code, const absl::Status& s) {
  std::fprintf(stderr, "loraserve-make-adapters: %s\n", std::string(s.message()).c_str());
  return code;
}

absl::StatusOr<loraserve::DType> ParseDtypeFlag(const std::string& s) {
  if (s == "bf16") return loraserve::DType::kBF16;
  if (s == "f16") return loraserve::DType::kF16;
  if (s == "f32") return loraserve::DType::kF32;
  return absl::InvalidArgumentError("--dtype is \"" + s + "\", must be bf16, f16 or f32");
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Writes N random PEFT LoRA adapters for a base model.");
  std::vector<std::string> args = loraserve::UnderscoreFlagNames(argc, argv);
  std::vector<char*> cargs;
  for (std::string& a : args) cargs.push_back(a.data());
  absl::ParseCommandLine(static_cast<int>(cargs.size()), cargs.data());

  loraserve::bench::AdapterSetOptions o;
  o.base_dir = absl::GetFlag(FLAGS_base);
  o.out_dir = absl::GetFlag(FLAGS_out);
  o.num = absl::GetFlag(FLAGS_num);
  absl::StatusOr<std::vector<int>> ranks = loraserve::bench::ParseRanks(absl::GetFlag(FLAGS_ranks));
  if (!ranks.ok()) return Fail(2, ranks.status());
  o.ranks = *ranks;
  absl::StatusOr<std::vector<std::string>> modules =
      loraserve::bench::ParseTargetModules(absl::GetFlag(FLAGS_target_modules));
  if (!modules.ok()) return Fail(2, modules.status());
  o.target_modules = *modules;
  o.alpha_ratio = absl::GetFlag(FLAGS_alpha_ratio);
  absl::StatusOr<loraserve::DType> dtype = ParseDtypeFlag(absl::GetFlag(FLAGS_dtype));
  if (!dtype.ok()) return Fail(2, dtype.status());
  o.dtype = *dtype;
  o.name_format = absl::GetFlag(FLAGS_name_format);
  o.distinct_weights = absl::GetFlag(FLAGS_distinct_weights);
  o.seed = absl::GetFlag(FLAGS_seed);
  if (absl::Status s = loraserve::bench::ValidateAdapterSetOptions(o); !s.ok()) return Fail(2, s);

  loraserve::bench::ProgressPrinter printer("make-adapters", "adapters", o.num);
  absl::StatusOr<loraserve::bench::AdapterSetSummary> summary =
      loraserve::bench::MakeAdapterSet(o, [&printer](int done, int) { printer.Update(done); });
  if (!summary.ok()) {
    return Fail(summary.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1,
                summary.status());
  }
  std::vector<std::string> hist;
  for (const auto& [rank, count] : summary->rank_counts)
    hist.push_back(absl::StrCat("r", rank, ":", count));
  std::fprintf(stderr,
               "make-adapters: wrote %d adapters to %s in %.2f s: %d weight files (%s), %d hard "
               "links, %s as separate files; ranks %s\n",
               summary->count, o.out_dir.c_str(), summary->seconds, summary->weight_files,
               loraserve::bench::HumanBytes(summary->bytes_written).c_str(), summary->linked,
               loraserve::bench::HumanBytes(summary->bytes_logical).c_str(),
               absl::StrJoin(hist, " ").c_str());
  return 0;
}
