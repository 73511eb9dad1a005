#include "bench/tools/adapter_set.h"

#include <cmath>
#include <filesystem>
#include <memory>
#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "bench/tools/fast_random.h"
#include "bench/tools/file_util.h"
#include "bench/tools/safetensors_stream_writer.h"
#include "common/status.h"
#include "engine/model/model_config.h"
#include "nlohmann/json.hpp"

namespace loraserve::bench {
namespace {

using Json = nlohmann::ordered_json;

// Independent random streams derived from the seed.
constexpr uint64_t kRankStream = 1;
constexpr uint64_t kOwnWeightsStream = 2;
constexpr uint64_t kSharedWeightsStream = 3;

absl::Status Invalid(std::string_view flag, std::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat("--", Sv(flag), " ", Sv(problem)));
}

Json AdapterConfig(const AdapterSetOptions& o, int rank) {
  Json c;
  c["alpha_pattern"] = Json::object();
  c["auto_mapping"] = nullptr;
  c["base_model_name_or_path"] = o.base_dir;
  c["bias"] = "none";
  c["fan_in_fan_out"] = false;
  c["inference_mode"] = true;
  c["init_lora_weights"] = true;
  c["layers_pattern"] = nullptr;
  c["layers_to_transform"] = nullptr;
  c["loftq_config"] = Json::object();
  c["lora_alpha"] = o.alpha_ratio * rank;
  c["lora_dropout"] = 0.0;
  c["megatron_config"] = nullptr;
  c["megatron_core"] = "megatron.core";
  c["modules_to_save"] = nullptr;
  c["peft_type"] = "LORA";
  c["r"] = rank;
  c["rank_pattern"] = Json::object();
  c["revision"] = nullptr;
  c["target_modules"] = o.target_modules;
  c["task_type"] = "CAUSAL_LM";
  c["use_dora"] = false;
  c["use_rslora"] = false;
  return c;
}

// Writes one adapter_model.safetensors of rank `rank` from `seed`; returns its bytes.
absl::StatusOr<int64_t> WriteWeights(const std::string& path, const ModelConfig& base,
                                     const std::vector<LoraModule>& modules, int rank, DType dtype,
                                     uint64_t seed, std::vector<char>* buf) {
  struct Item {
    TensorSpec spec;
    bool is_a;
    int64_t in;
  };
  std::vector<Item> items;
  for (int l = 0; l < base.num_hidden_layers; ++l) {
    for (LoraModule m : modules) {
      const ProjShape s = ModuleShape(base, m);
      const std::string prefix = absl::StrCat("base_model.model.model.layers.", l, ".",
                                              Sv(LoraModuleParent(m)), ".", Sv(LoraModuleName(m)));
      items.push_back({{prefix + ".lora_A.weight", dtype, {rank, s.in}}, true, s.in});
      items.push_back({{prefix + ".lora_B.weight", dtype, {s.out, rank}}, false, s.in});
    }
  }
  std::vector<TensorSpec> specs;
  for (const Item& it : items) specs.push_back(it.spec);
  ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsStreamWriter> w,
                   SafetensorsStreamWriter::Open(path, specs, {{"format", "pt"}}));
  FastRandom rng(seed);
  const float b_std = 0.02f / std::sqrt(static_cast<float>(rank));
  for (const Item& it : items) {
    const size_t n = static_cast<size_t>(it.spec.numel());
    const size_t bytes = n * DTypeSize(dtype);
    if (buf->size() < bytes) buf->resize(bytes);
    if (it.is_a) {
      rng.FillUniform(buf->data(), dtype, n, 1.0f / std::sqrt(static_cast<float>(it.in)));
    } else {
      rng.FillNormal(buf->data(), dtype, n, b_std);
    }
    RETURN_IF_ERROR(w->Append(buf->data(), bytes));
  }
  RETURN_IF_ERROR(w->Close());
  return static_cast<int64_t>(std::filesystem::file_size(path));
}

}  // namespace

absl::StatusOr<std::vector<int>> ParseRanks(std::string_view list) {
  std::vector<int> ranks;
  for (absl::string_view item : absl::StrSplit(Sv(list), ',', absl::SkipWhitespace())) {
    int r = 0;
    if (!absl::SimpleAtoi(item, &r))
      return Invalid("ranks", absl::StrCat("entry \"", item, "\" is not an integer"));
    if (r < 1 || r > kMaxGeneratedRank) {
      return Invalid("ranks",
                     absl::StrCat("entry ", r, " is outside [1, ", kMaxGeneratedRank, "]"));
    }
    ranks.push_back(r);
  }
  if (ranks.empty()) return Invalid("ranks", "is empty: give ranks like 8,16,32,64");
  return ranks;
}

absl::StatusOr<std::vector<std::string>> ParseTargetModules(std::string_view list) {
  std::vector<std::string> out;
  for (absl::string_view item : absl::StrSplit(Sv(list), ',', absl::SkipWhitespace())) {
    const std::string name(item);
    if (!ParseLoraModule(name).has_value()) {
      return Invalid(
          "target-modules",
          absl::StrCat(
              "entry \"", name,
              "\" is not one of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj"));
    }
    for (const std::string& seen : out) {
      if (seen == name)
        return Invalid("target-modules", absl::StrCat("names \"", name, "\" twice"));
    }
    out.push_back(name);
  }
  if (out.empty()) return Invalid("target-modules", "is empty");
  return out;
}

absl::StatusOr<std::string> FormatAdapterName(std::string_view format, int index) {
  std::string out;
  int conversions = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    const char ch = format[i];
    if (ch == '/' || ch == '\\') return Invalid("name-format", "must not contain a path separator");
    if (ch != '%') {
      out.push_back(ch);
      continue;
    }
    size_t j = i + 1;
    const bool zero = j < format.size() && format[j] == '0';
    if (zero) ++j;
    int width = 0;
    while (j < format.size() && format[j] >= '0' && format[j] <= '9' && width < 100) {
      width = width * 10 + (format[j] - '0');
      ++j;
    }
    if (j >= format.size() || format[j] != 'd' || width >= 100) {
      return Invalid("name-format",
                     absl::StrCat("\"", Sv(format), "\": only %d, %Nd or %0Nd is allowed"));
    }
    std::string digits = absl::StrCat(index);
    while (static_cast<int>(digits.size()) < width) digits.insert(digits.begin(), zero ? '0' : ' ');
    out += digits;
    ++conversions;
    i = j;
  }
  if (conversions != 1) {
    return Invalid("name-format", absl::StrCat("\"", Sv(format), "\" must contain exactly one %d"));
  }
  if (out.empty() || out == "." || out == "..")
    return Invalid("name-format", "gives an empty name");
  return out;
}

absl::Status ValidateAdapterSetOptions(const AdapterSetOptions& o) {
  if (o.base_dir.empty()) return Invalid("base", "is empty: name the base model directory");
  if (o.out_dir.empty()) return Invalid("out", "is empty: name the output directory");
  if (o.num <= 0 || o.num > 1000000)
    return Invalid("num", absl::StrCat("is ", o.num, ", must be in [1, 1000000]"));
  if (o.ranks.empty()) return Invalid("ranks", "is empty: give ranks like 8,16,32,64");
  for (int r : o.ranks) {
    if (r < 1 || r > kMaxGeneratedRank) {
      return Invalid("ranks",
                     absl::StrCat("entry ", r, " is outside [1, ", kMaxGeneratedRank, "]"));
    }
  }
  RETURN_IF_ERROR(ParseTargetModules(absl::StrJoin(o.target_modules, ",")).status());
  if (!(o.alpha_ratio > 0 && std::isfinite(o.alpha_ratio))) {
    return Invalid("alpha-ratio",
                   absl::StrCat("is ", o.alpha_ratio, ", must be a finite number > 0"));
  }
  if (o.distinct_weights < 0) {
    return Invalid("distinct-weights", absl::StrCat("is ", o.distinct_weights, ", must be >= 0"));
  }
  RETURN_IF_ERROR(FormatAdapterName(o.name_format, 0).status());
  return absl::OkStatus();
}

absl::StatusOr<AdapterSetSummary> MakeAdapterSet(const AdapterSetOptions& o,
                                                 const AdapterProgressFn& progress) {
  const absl::Time start = absl::Now();
  RETURN_IF_ERROR(ValidateAdapterSetOptions(o));
  absl::StatusOr<ModelConfig> base = ModelConfig::Load(o.base_dir);
  if (!base.ok()) return AnnotateStatus(base.status(), "--base");
  std::vector<LoraModule> modules;
  for (LoraModule m : kAllLoraModules) {  // storage order, whatever the flag's order
    for (const std::string& name : o.target_modules) {
      if (LoraModuleName(m) == name) modules.push_back(m);
    }
  }
  RETURN_IF_ERROR(EnsureDirectory(o.out_dir));

  AdapterSetSummary summary;
  FastRandom rank_rng(DeriveSeed(o.seed, kRankStream));
  // distinct_weights > 0: (rank, slot) -> the file holding those weights.
  std::map<std::pair<int, int>, std::string> shared_files;
  std::map<int, int> seen_of_rank;
  std::vector<char> buf;
  for (int i = 0; i < o.num; ++i) {
    const int rank = o.ranks[rank_rng.Below(o.ranks.size())];
    ASSIGN_OR_RETURN(const std::string name, FormatAdapterName(o.name_format, i));
    const std::string dir = o.out_dir + "/" + name;
    RETURN_IF_ERROR(EnsureDirectory(dir));
    RETURN_IF_ERROR(WriteTextFile(dir + "/adapter_config.json", AdapterConfig(o, rank).dump(2)));
    const std::string weights = dir + "/adapter_model.safetensors";
    const int nth = seen_of_rank[rank]++;
    if (o.distinct_weights == 0) {
      ASSIGN_OR_RETURN(const int64_t bytes,
                       WriteWeights(weights, *base, modules, rank, o.dtype,
                                    DeriveSeed(DeriveSeed(o.seed, kOwnWeightsStream), i), &buf));
      summary.bytes_written += bytes;
      summary.bytes_logical += bytes;
      ++summary.weight_files;
    } else {
      const int slot = nth % o.distinct_weights;
      auto [it, fresh] = shared_files.try_emplace({rank, slot}, weights);
      if (fresh) {
        const uint64_t seed =
            DeriveSeed(DeriveSeed(DeriveSeed(o.seed, kSharedWeightsStream), rank), slot);
        ASSIGN_OR_RETURN(const int64_t bytes,
                         WriteWeights(weights, *base, modules, rank, o.dtype, seed, &buf));
        summary.bytes_written += bytes;
        summary.bytes_logical += bytes;
        ++summary.weight_files;
      } else {
        RETURN_IF_ERROR(HardLink(it->second, weights));
        summary.bytes_logical += static_cast<int64_t>(std::filesystem::file_size(it->second));
        ++summary.linked;
      }
    }
    ++summary.rank_counts[rank];
    ++summary.count;
    if (progress) progress(i + 1, o.num);
  }
  summary.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return summary;
}

}  // namespace loraserve::bench
