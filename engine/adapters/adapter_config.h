// A PEFT LoRA adapter's adapter_config.json, and its resolution against a base
// model: which (layer, projection) pairs the adapter targets, at which rank and
// scale. The matching rules are PEFT's own, applied to the module path PEFT
// sees, e.g. "model.layers.3.self_attn.q_proj":
//   target_modules  list: a name equal to the path or to a dot-separated suffix
//                   of it; string: a regex fully matching the path;
//                   "all-linear": all seven projections (never lm_head).
//   exclude_modules the same rules, removing modules.
//   layers_to_transform (+ layers_pattern): only those layer indices.
//   rank_pattern / alpha_pattern: per module, the first key (in the file's
//                   order) whose regex "(.*\.)?(key)" fully matches the path.
//   scale = alpha / r, or alpha / sqrt(r) with use_rslora.
// Anything loraserve cannot serve exactly is refused with InvalidArgument
// naming the field (DoRA, modules_to_save, bias, fan_in_fan_out, LoRA on
// embed_tokens / lm_head, unknown target modules, rank above the server's max).
//
// Called by PeftAdapter::Load. Plain values and pure functions, any thread.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model/model_config.h"

namespace loraserve {

struct AdapterLoadOptions {
  int max_rank = 64;  // the largest LoRA rank the server accepts, per module
};

struct LoraAdapterConfig {
  enum class TargetKind : uint8_t { kList, kRegex, kAllLinear };

  int r = 0;                // > 0
  double lora_alpha = 8.0;  // PEFT's default when absent
  bool use_rslora = false;

  TargetKind target_kind = TargetKind::kList;
  std::vector<std::string> target_modules;  // kList: names or dotted suffixes
  std::string target_regex;                 // kRegex

  std::vector<std::string> exclude_modules;  // names or dotted suffixes
  std::string exclude_regex;                 // non-empty when exclude_modules was a string

  std::vector<std::pair<std::string, int>> rank_pattern;      // in the file's order
  std::vector<std::pair<std::string, double>> alpha_pattern;  // in the file's order

  std::optional<std::vector<int64_t>> layers_to_transform;  // nullopt: every layer
  std::vector<std::string> layers_pattern;                  // empty: any

  // Parses and checks the JSON text. InvalidArgument naming the field.
  [[nodiscard]] static absl::StatusOr<LoraAdapterConfig> Parse(std::string_view json_text);
};

// The resolved LoRA of one (layer, projection).
struct LoraModulePlan {
  int rank = 0;  // 0: not targeted
  double alpha = 0;
  float scale = 0;  // alpha / rank, or alpha / sqrt(rank) with use_rslora
};

using LoraLayerPlan = std::array<LoraModulePlan, kNumLoraModules>;  // by LoraModule

// The module path PEFT matches patterns against: "model.layers.3.self_attn.q_proj".
std::string LoraModulePath(int layer, LoraModule m);

// One LoraLayerPlan per base layer. InvalidArgument when a target names
// something other than the seven projections (embed_tokens / lm_head named as
// such), when nothing is targeted, or when a resolved rank exceeds
// options.max_rank (naming the module path).
[[nodiscard]] absl::StatusOr<std::vector<LoraLayerPlan>> ResolveLoraPlan(
    const LoraAdapterConfig& config, const ModelConfig& base, const AdapterLoadOptions& options);

}  // namespace loraserve
