#include "engine/adapters/adapter_config.h"

#include <cmath>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "common/strings.h"
#include "engine/adapters/std_regex.h"
#include "engine/model/json_file.h"

namespace loraserve {
namespace {

using json::Json;

constexpr std::string_view kFile = "adapter_config.json";

absl::Status Invalid(std::string_view msg) {
  return absl::InvalidArgumentError(absl::StrCat(Sv(kFile), ": ", Sv(msg)));
}
absl::Status InFile(const absl::Status& s) { return AnnotateStatus(s, kFile); }

std::string Dump(const Json& v) { return v.dump(-1, ' ', false, Json::error_handler_t::replace); }

// Compiles a user pattern; errors name the config field it came from.
absl::StatusOr<StdRegex> CompileRegex(const std::string& pattern, std::string_view field) {
  absl::StatusOr<StdRegex> re = StdRegex::Compile(pattern);
  if (!re.ok()) return Invalid(absl::StrCat("\"", Sv(field), "\": ", re.status().message()));
  return re;
}

// PEFT's rank_pattern / alpha_pattern rule: re.match(rf"(.*\.)?({key})$", path).
std::string PatternKeyRegex(const std::string& key) { return absl::StrCat("(.*\\.)?(", key, ")"); }

// True when `path` equals `name` or ends with "." + name (PEFT's list rule).
bool SuffixMatch(std::string_view path, std::string_view name) {
  if (path == name) return true;
  return path.size() > name.size() && path.substr(path.size() - name.size()) == name &&
         path[path.size() - name.size() - 1] == '.';
}

absl::StatusOr<std::vector<std::string>> StringList(const Json& v, std::string_view field) {
  std::vector<std::string> out;
  if (v.is_string()) {
    out.push_back(v.get<std::string>());
    return out;
  }
  if (!v.is_array()) {
    return Invalid(absl::StrCat("\"", Sv(field), "\" must be a string or a list of strings"));
  }
  for (const Json& e : v) {
    if (!e.is_string()) {
      return Invalid(absl::StrCat("\"", Sv(field), "\" must be a list of strings"));
    }
    out.push_back(e.get<std::string>());
  }
  return out;
}

// (Messages without the file prefix: the caller adds it.)
// Fields that change what the adapter computes in ways loraserve does not
// implement: refused when set to anything but their neutral value.
absl::Status RefuseUnsupported(const Json& j) {
  ASSIGN_OR_RETURN(std::optional<bool> dora, json::OptionalBool(j, "use_dora"));
  if (dora.value_or(false))
    return absl::InvalidArgumentError("\"use_dora\": DoRA adapters are not supported");
  ASSIGN_OR_RETURN(std::optional<bool> fifo, json::OptionalBool(j, "fan_in_fan_out"));
  if (fifo.value_or(false)) {
    return absl::InvalidArgumentError(
        "\"fan_in_fan_out\": true is not supported (Conv1D-style weights)");
  }
  ASSIGN_OR_RETURN(std::optional<bool> lora_bias, json::OptionalBool(j, "lora_bias"));
  if (lora_bias.value_or(false))
    return absl::InvalidArgumentError("\"lora_bias\": LoRA biases are not supported");
  ASSIGN_OR_RETURN(std::optional<std::string> bias, json::OptionalString(j, "bias"));
  if (bias.value_or("none") != "none") {
    return absl::InvalidArgumentError(
        absl::StrCat("\"bias\": \"", *bias,
                     "\" is not supported (only \"none\": the adapter may not "
                     "train the base model's biases)"));
  }
  if (const Json* m = json::Find(j, "modules_to_save"); m != nullptr && !m->is_null()) {
    if (!m->is_array())
      return absl::InvalidArgumentError("\"modules_to_save\" must be a list or null");
    if (!m->empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"modules_to_save\": ", Dump(*m),
                       " is not supported (the adapter replaces whole base modules)"));
    }
  }
  for (std::string_view field : {"layer_replication", "trainable_token_indices",
                                 "alora_invocation_tokens", "target_parameters"}) {
    const Json* v = json::Find(j, field);
    if (v == nullptr || v->is_null() || (v->is_array() && v->empty()) ||
        (v->is_object() && v->empty())) {
      continue;
    }
    return absl::InvalidArgumentError(
        absl::StrCat("\"", Sv(field), "\": ", Dump(*v), " is not supported"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<LoraAdapterConfig> LoraAdapterConfig::Parse(std::string_view text) {
  ASSIGN_OR_RETURN(Json j, json::ParseObject(text, kFile));
  LoraAdapterConfig c;

  absl::StatusOr<std::optional<std::string>> peft_type = json::OptionalString(j, "peft_type");
  if (!peft_type.ok()) return InFile(peft_type.status());
  if (!peft_type->has_value()) return Invalid("missing required field \"peft_type\"");
  if (**peft_type != "LORA") {
    return Invalid(
        absl::StrCat("\"peft_type\": \"", **peft_type, "\" is not supported (only LORA)"));
  }
  RETURN_IF_ERROR(InFile(RefuseUnsupported(j)));

  absl::StatusOr<int64_t> r = json::RequiredInt(j, "r");
  if (!r.ok()) return InFile(r.status());
  if (*r <= 0 || *r > std::numeric_limits<int>::max()) {
    return Invalid(absl::StrCat("\"r\" must be a positive rank, got ", *r));
  }
  c.r = static_cast<int>(*r);
  absl::StatusOr<std::optional<double>> alpha = json::OptionalNumber(j, "lora_alpha");
  if (!alpha.ok()) return InFile(alpha.status());
  c.lora_alpha = alpha->value_or(8.0);
  if (!std::isfinite(c.lora_alpha)) return Invalid("\"lora_alpha\" must be finite");
  absl::StatusOr<std::optional<bool>> rslora = json::OptionalBool(j, "use_rslora");
  if (!rslora.ok()) return InFile(rslora.status());
  c.use_rslora = rslora->value_or(false);

  // target_modules
  const Json* targets = json::Find(j, "target_modules");
  if (targets == nullptr || targets->is_null()) {
    return Invalid("missing \"target_modules\" (list of module names, a regex, or \"all-linear\")");
  }
  if (targets->is_string()) {
    const std::string t = targets->get<std::string>();
    if (absl::AsciiStrToLower(t) == "all-linear") {
      c.target_kind = TargetKind::kAllLinear;
    } else {
      c.target_kind = TargetKind::kRegex;
      c.target_regex = t;
      RETURN_IF_ERROR(CompileRegex(t, "target_modules").status());
    }
  } else {
    ASSIGN_OR_RETURN(c.target_modules, StringList(*targets, "target_modules"));
    if (c.target_modules.empty()) return Invalid("\"target_modules\" is empty");
    c.target_kind = TargetKind::kList;
  }
  if (const Json* ex = json::Find(j, "exclude_modules"); ex != nullptr && !ex->is_null()) {
    if (ex->is_string()) {
      c.exclude_regex = ex->get<std::string>();
      RETURN_IF_ERROR(CompileRegex(c.exclude_regex, "exclude_modules").status());
    } else {
      ASSIGN_OR_RETURN(c.exclude_modules, StringList(*ex, "exclude_modules"));
    }
  }

  // rank_pattern / alpha_pattern, in the file's key order.
  if (const Json* rp = json::Find(j, "rank_pattern"); rp != nullptr && !rp->is_null()) {
    if (!rp->is_object()) return Invalid("\"rank_pattern\" must be an object");
    for (auto it = rp->begin(); it != rp->end(); ++it) {
      const std::string field = absl::StrCat("rank_pattern[\"", it.key(), "\"]");
      absl::StatusOr<int64_t> v = json::AsInt(it.value(), field);
      if (!v.ok()) return InFile(v.status());
      if (*v <= 0 || *v > std::numeric_limits<int>::max()) {
        return Invalid(absl::StrCat(field, " must be a positive rank, got ", *v));
      }
      RETURN_IF_ERROR(CompileRegex(PatternKeyRegex(it.key()), field).status());
      c.rank_pattern.emplace_back(it.key(), static_cast<int>(*v));
    }
  }
  if (const Json* ap = json::Find(j, "alpha_pattern"); ap != nullptr && !ap->is_null()) {
    if (!ap->is_object()) return Invalid("\"alpha_pattern\" must be an object");
    for (auto it = ap->begin(); it != ap->end(); ++it) {
      const std::string field = absl::StrCat("alpha_pattern[\"", it.key(), "\"]");
      if (!it.value().is_number() || !std::isfinite(it.value().get<double>())) {
        return Invalid(absl::StrCat(field, " must be a number"));
      }
      RETURN_IF_ERROR(CompileRegex(PatternKeyRegex(it.key()), field).status());
      c.alpha_pattern.emplace_back(it.key(), it.value().get<double>());
    }
  }

  // layers_to_transform (+ layers_pattern)
  if (const Json* lt = json::Find(j, "layers_to_transform"); lt != nullptr && !lt->is_null()) {
    std::vector<int64_t> layers;
    auto add = [&](const Json& e) -> absl::Status {
      absl::StatusOr<int64_t> v = json::AsInt(e, "\"layers_to_transform\"");
      if (!v.ok()) return InFile(v.status());
      if (*v < 0) return Invalid(absl::StrCat("\"layers_to_transform\" has negative layer ", *v));
      layers.push_back(*v);
      return absl::OkStatus();
    };
    if (lt->is_array()) {
      for (const Json& e : *lt) RETURN_IF_ERROR(add(e));
    } else {
      RETURN_IF_ERROR(add(*lt));
    }
    c.layers_to_transform = std::move(layers);
  }
  if (const Json* lp = json::Find(j, "layers_pattern"); lp != nullptr && !lp->is_null()) {
    ASSIGN_OR_RETURN(c.layers_pattern, StringList(*lp, "layers_pattern"));
    for (const std::string& p : c.layers_pattern) {
      RETURN_IF_ERROR(CompileRegex(p, "layers_pattern").status());
    }
  }
  return c;
}

std::string LoraModulePath(int layer, LoraModule m) {
  return absl::StrCat("model.layers.", layer, ".", Sv(LoraModuleParent(m)), ".",
                      Sv(LoraModuleName(m)));
}

absl::StatusOr<std::vector<LoraLayerPlan>> ResolveLoraPlan(const LoraAdapterConfig& c,
                                                           const ModelConfig& base,
                                                           const AdapterLoadOptions& options) {
  using TargetKind = LoraAdapterConfig::TargetKind;
  const int num_layers = base.num_hidden_layers;
  const std::string kLmHead = "lm_head", kEmbed = "model.embed_tokens";

  std::optional<StdRegex> target_re, exclude_re;
  if (c.target_kind == TargetKind::kRegex) {
    ASSIGN_OR_RETURN(target_re, CompileRegex(c.target_regex, "target_modules"));
    for (const std::string* name : {&kLmHead, &kEmbed}) {
      ASSIGN_OR_RETURN(bool hit, target_re->FullMatch(*name));
      if (hit) {
        return Invalid(absl::StrCat("\"target_modules\": \"", c.target_regex, "\" selects ", *name,
                                    "; LoRA on embed_tokens / lm_head is not supported"));
      }
    }
  }
  if (c.target_kind == TargetKind::kList) {
    for (const std::string& t : c.target_modules) {
      if (SuffixMatch(kLmHead, t) || SuffixMatch(kEmbed, t)) {
        return Invalid(absl::StrCat("\"target_modules\": \"", t,
                                    "\": LoRA on embed_tokens / lm_head is not supported"));
      }
      bool known = false;
      for (int l = 0; l < num_layers && !known; ++l) {
        for (LoraModule m : kAllLoraModules) known = known || SuffixMatch(LoraModulePath(l, m), t);
      }
      if (!known) {
        return Invalid(absl::StrCat(
            "\"target_modules\": unknown target module \"", t,
            "\" (supported: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)"));
      }
    }
  }
  if (!c.exclude_regex.empty()) {
    ASSIGN_OR_RETURN(exclude_re, CompileRegex(c.exclude_regex, "exclude_modules"));
  }
  std::vector<std::pair<StdRegex, int>> rank_res;
  std::vector<std::pair<StdRegex, double>> alpha_res;
  for (const auto& [key, rank] : c.rank_pattern) {
    ASSIGN_OR_RETURN(StdRegex re, CompileRegex(PatternKeyRegex(key), "rank_pattern"));
    rank_res.emplace_back(std::move(re), rank);
  }
  for (const auto& [key, alpha] : c.alpha_pattern) {
    ASSIGN_OR_RETURN(StdRegex re, CompileRegex(PatternKeyRegex(key), "alpha_pattern"));
    alpha_res.emplace_back(std::move(re), alpha);
  }
  // PEFT's layer-index extraction: re.match(r".*\.[^.]*\.(\d+)\.", path), or
  // with layers_pattern P: re.match(rf".*\.{P}\.(\d+)\.", path).
  std::vector<StdRegex> layer_res;
  if (c.layers_pattern.empty()) {
    ASSIGN_OR_RETURN(StdRegex re, CompileRegex(R"(.*\.[^.]*\.(\d+)\..*)", "layers_pattern"));
    layer_res.push_back(std::move(re));
  } else {
    for (const std::string& p : c.layers_pattern) {
      ASSIGN_OR_RETURN(StdRegex re, CompileRegex(absl::StrCat(R"(.*\.)", p, R"(\.(\d+)\..*)"),
                                                 "layers_pattern"));
      layer_res.push_back(std::move(re));
    }
  }

  std::vector<LoraLayerPlan> plan(static_cast<size_t>(num_layers));
  bool any = false;
  for (int l = 0; l < num_layers; ++l) {
    for (LoraModule m : kAllLoraModules) {
      const std::string path = LoraModulePath(l, m);
      bool targeted = false;
      switch (c.target_kind) {
        case TargetKind::kAllLinear:
          targeted = true;
          break;
        case TargetKind::kRegex: {
          ASSIGN_OR_RETURN(targeted, target_re->FullMatch(path));
          break;
        }
        case TargetKind::kList:
          for (const std::string& t : c.target_modules) targeted = targeted || SuffixMatch(path, t);
          break;
      }
      if (exclude_re.has_value()) {
        ASSIGN_OR_RETURN(bool excluded, exclude_re->FullMatch(path));
        if (excluded) targeted = false;
      }
      for (const std::string& e : c.exclude_modules) {
        if (SuffixMatch(path, e)) targeted = false;
      }
      if (targeted && c.layers_to_transform.has_value()) {
        std::optional<int64_t> index;
        for (const StdRegex& re : layer_res) {
          std::string digits;
          ASSIGN_OR_RETURN(bool hit, re.FullMatch(path, &digits));
          if (hit) {
            int64_t v = 0;
            if (absl::SimpleAtoi(digits, &v)) index = v;
            break;
          }
        }
        bool listed = false;
        for (int64_t want : *c.layers_to_transform) listed = listed || (index == want);
        targeted = listed;
      }
      if (!targeted) continue;

      LoraModulePlan& p = plan[static_cast<size_t>(l)][static_cast<size_t>(m)];
      p.rank = c.r;
      for (const auto& [re, rank] : rank_res) {
        ASSIGN_OR_RETURN(bool hit, re.FullMatch(path));
        if (hit) {
          p.rank = rank;
          break;
        }
      }
      p.alpha = c.lora_alpha;
      for (const auto& [re, alpha] : alpha_res) {
        ASSIGN_OR_RETURN(bool hit, re.FullMatch(path));
        if (hit) {
          p.alpha = alpha;
          break;
        }
      }
      if (p.rank > options.max_rank) {
        return Invalid(absl::StrCat("rank ", p.rank, " of ", path,
                                    " (from \"r\" / \"rank_pattern\") exceeds the server's "
                                    "maximum LoRA rank ",
                                    options.max_rank));
      }
      p.scale = static_cast<float>(c.use_rslora ? p.alpha / std::sqrt(static_cast<double>(p.rank))
                                                : p.alpha / p.rank);
      any = true;
    }
  }
  if (!any) {
    return Invalid(
        "the adapter targets no projection of the base model (check \"target_modules\", "
        "\"exclude_modules\", \"layers_to_transform\", \"layers_pattern\")");
  }
  return plan;
}

}  // namespace loraserve
