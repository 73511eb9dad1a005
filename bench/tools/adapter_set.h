// The adapter-set generator behind loraserve-make-adapters: N real PEFT LoRA
// directories for one base model, named by a printf-style pattern
// ("adapter-%04d" -> adapter-0000, adapter-0001, ... as the load generator
// names them). Each adapter's rank is drawn uniformly from a list; its
// adapter_config.json has peft_type LORA, r, lora_alpha = alpha_ratio * r,
// the target modules, bias "none"; adapter_model.safetensors holds
// base_model.model.model.layers.{i}.{self_attn,mlp}.{X}_proj.lora_A.weight
// [r, in] ~ uniform(+-1/sqrt(in)) and lora_B.weight [out, r] ~ normal(0,
// 0.02/sqrt(r)) (nonzero, so adapters change outputs; small, so they stay
// finite), loadable by engine/adapters/peft_adapter.h and by PEFT.
//
// distinct_weights K > 0 generates only K weight files per rank; the other
// adapters' adapter_model.safetensors are hard links to them (2,000
// 7B-shaped adapters would otherwise be ~160 GB). Each adapter is still its
// own directory and config, so the server treats it as its own adapter.
//
// Deterministic: the same options give the same bytes. Tensor bytes are
// generated straight into the storage dtype and streamed to disk.
// Called by make_adapters_main.cc and tests. One call at a time per directory.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/dtype.h"

namespace loraserve::bench {

inline constexpr int kMaxGeneratedRank = 256;

struct AdapterSetOptions {
  std::string base_dir;                      // HF model directory (config.json is read)
  std::string out_dir;                       // created if missing; adapter directories are replaced
  int num = 0;                               // adapters to write, > 0
  std::vector<int> ranks = {8, 16, 32, 64};  // each in [1, kMaxGeneratedRank]
  std::vector<std::string> target_modules = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                             "gate_proj", "up_proj", "down_proj"};
  double alpha_ratio = 2.0;  // lora_alpha = alpha_ratio * r
  DType dtype = DType::kBF16;
  std::string name_format = "adapter-%04d";  // exactly one %d / %0Nd
  int distinct_weights = 0;                  // 0: every adapter its own weights
  uint64_t seed = 0;
};

struct AdapterSetSummary {
  int count = 0;
  int weight_files = 0;            // adapter_model.safetensors written
  int linked = 0;                  // hard links to one of those
  int64_t bytes_written = 0;       // bytes of the files written
  int64_t bytes_logical = 0;       // bytes as if every adapter had its own file
  std::map<int, int> rank_counts;  // rank -> adapters
  double seconds = 0;
};

// Called with (adapters done, total).
using AdapterProgressFn = std::function<void(int, int)>;

// "8,16,32" -> {8, 16, 32}. InvalidArgument naming --ranks when empty, not a
// number, or outside [1, kMaxGeneratedRank].
[[nodiscard]] absl::StatusOr<std::vector<int>> ParseRanks(std::string_view list);
// "q_proj,v_proj" -> names, checked against the seven projections, no repeats.
[[nodiscard]] absl::StatusOr<std::vector<std::string>> ParseTargetModules(std::string_view list);
// `format` with `index` substituted. InvalidArgument naming --name-format
// unless the format has exactly one %d / %Nd / %0Nd and no other '%' or '/'.
[[nodiscard]] absl::StatusOr<std::string> FormatAdapterName(std::string_view format, int index);
// Every option checked; the error names the flag.
[[nodiscard]] absl::Status ValidateAdapterSetOptions(const AdapterSetOptions& options);

// Validates, reads the base config and writes the set.
[[nodiscard]] absl::StatusOr<AdapterSetSummary> MakeAdapterSet(
    const AdapterSetOptions& options, const AdapterProgressFn& progress = nullptr);

}  // namespace loraserve::bench
