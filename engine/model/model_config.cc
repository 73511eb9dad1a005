#include "engine/model/model_config.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status.h"
#include "common/strings.h"
#include "engine/model/json_file.h"

namespace loraserve {
namespace {

using json::Json;

constexpr size_t kMaxConfigBytes = 16u << 20;

// Per-architecture defaults of the transformers config classes, used when a
// key is absent from config.json (as transformers does).
struct ArchInfo {
  std::string_view architecture;
  std::string_view model_type;
  int64_t default_max_position_embeddings;
  std::optional<int32_t> default_bos;
  std::optional<int32_t> default_eos;
};

constexpr ArchInfo kArchs[] = {
    {"LlamaForCausalLM", "llama", 2048, 1, 2},
    {"MistralForCausalLM", "mistral", 4096 * 32, 1, 2},
    {"Qwen2ForCausalLM", "qwen2", 32768, std::nullopt, std::nullopt},
};

std::string SupportedArchitectures() {
  std::string s;
  for (const ArchInfo& a : kArchs) absl::StrAppend(&s, s.empty() ? "" : ", ", Sv(a.architecture));
  return s;
}

absl::Status Invalid(std::string_view file, std::string_view msg) {
  return absl::InvalidArgumentError(absl::StrCat(Sv(file), ": ", Sv(msg)));
}

// Prefixes a field-level error from the json helpers with the file name.
absl::Status InFile(const absl::Status& s, std::string_view file) {
  return AnnotateStatus(s, file);
}

absl::StatusOr<int64_t> PositiveInt(const Json& obj, std::string_view key, std::string_view file,
                                    std::optional<int64_t> fallback = std::nullopt) {
  absl::StatusOr<std::optional<int64_t>> v = json::OptionalInt(obj, key);
  if (!v.ok()) return InFile(v.status(), file);
  if (!v->has_value()) {
    if (fallback.has_value()) return *fallback;
    return Invalid(file, absl::StrCat("missing required field \"", Sv(key), "\""));
  }
  if (**v <= 0) return Invalid(file, absl::StrCat("\"", Sv(key), "\" must be positive, got ", **v));
  return **v;
}

absl::StatusOr<int> PositiveSmallInt(const Json& obj, std::string_view key, std::string_view file,
                                     std::optional<int64_t> fallback = std::nullopt) {
  ASSIGN_OR_RETURN(int64_t v, PositiveInt(obj, key, file, fallback));
  if (v > (1 << 20)) return Invalid(file, absl::StrCat("\"", Sv(key), "\" is too large: ", v));
  return static_cast<int>(v);
}

// A token id field: an integer, a list of integers, or null. nullopt when the
// key is absent; an empty vector for null.
absl::StatusOr<std::optional<std::vector<int32_t>>> TokenIds(const Json& obj, std::string_view key,
                                                             std::string_view file) {
  const Json* v = json::Find(obj, key);
  if (v == nullptr) return std::optional<std::vector<int32_t>>();
  std::vector<int32_t> ids;
  auto add = [&](const Json& e) -> absl::Status {
    absl::StatusOr<int64_t> id = json::AsInt(e, absl::StrCat("\"", Sv(key), "\""));
    if (!id.ok()) return InFile(id.status(), file);
    if (*id < std::numeric_limits<int32_t>::min() || *id > std::numeric_limits<int32_t>::max()) {
      return Invalid(file, absl::StrCat("\"", Sv(key), "\" out of range: ", *id));
    }
    ids.push_back(static_cast<int32_t>(*id));
    return absl::OkStatus();
  };
  if (v->is_array()) {
    for (const Json& e : *v) RETURN_IF_ERROR(add(e));
  } else if (!v->is_null()) {
    RETURN_IF_ERROR(add(*v));
  }
  return std::optional<std::vector<int32_t>>(std::move(ids));
}

absl::Status ParseRopeScaling(const Json& rs, std::string_view file, RopeScaling* out) {
  if (rs.is_null()) return absl::OkStatus();
  if (!rs.is_object()) {
    return Invalid(
        file, absl::StrCat("\"rope_scaling\" must be an object, got ", Sv(json::TypeName(rs))));
  }
  absl::StatusOr<std::optional<std::string>> type = json::OptionalString(rs, "rope_type");
  if (!type.ok()) return InFile(type.status(), file);
  if (!type->has_value()) {
    type = json::OptionalString(rs, "type");
    if (!type.ok()) return InFile(type.status(), file);
  }
  const std::string t = type->value_or("default");
  auto number = [&](std::string_view key) -> absl::StatusOr<double> {
    absl::StatusOr<double> v = json::RequiredNumber(rs, key);
    if (!v.ok()) return InFile(AnnotateStatus(v.status(), "rope_scaling"), file);
    return *v;
  };
  if (t == "default") return absl::OkStatus();
  if (t == "linear") {
    out->type = RopeScalingType::kLinear;
    ASSIGN_OR_RETURN(out->factor, number("factor"));
    if (!(out->factor > 0)) return Invalid(file, "rope_scaling: \"factor\" must be positive");
    return absl::OkStatus();
  }
  if (t == "llama3") {
    out->type = RopeScalingType::kLlama3;
    ASSIGN_OR_RETURN(out->factor, number("factor"));
    ASSIGN_OR_RETURN(out->low_freq_factor, number("low_freq_factor"));
    ASSIGN_OR_RETURN(out->high_freq_factor, number("high_freq_factor"));
    absl::StatusOr<std::optional<int64_t>> orig =
        json::OptionalInt(rs, "original_max_position_embeddings");
    if (!orig.ok()) return InFile(AnnotateStatus(orig.status(), "rope_scaling"), file);
    if (!orig->has_value() || **orig <= 0) {
      return Invalid(file,
                     "rope_scaling: llama3 needs a positive \"original_max_position_embeddings\"");
    }
    out->original_max_position_embeddings = **orig;
    if (!(out->factor > 0) || !(out->low_freq_factor > 0)) {
      return Invalid(file, "rope_scaling: \"factor\" and \"low_freq_factor\" must be positive");
    }
    if (!(out->high_freq_factor > out->low_freq_factor)) {
      return Invalid(file,
                     "rope_scaling: \"high_freq_factor\" must be greater than \"low_freq_factor\"");
    }
    return absl::OkStatus();
  }
  return Invalid(file, absl::StrCat("unsupported rope_scaling type \"", t,
                                    "\" (supported: default, linear, llama3)"));
}

absl::Status CheckId(std::optional<int32_t> id, std::string_view what, int64_t vocab) {
  if (id.has_value() && (*id < 0 || *id >= vocab)) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.json / generation_config.json: ", Sv(what), " ", *id,
                     " is outside the vocabulary [0, ", vocab, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

int64_t ModelConfig::max_context() const {
  if (sliding_window.has_value()) return std::min(max_position_embeddings, *sliding_window);
  return max_position_embeddings;
}

absl::StatusOr<ModelConfig> ModelConfig::Parse(std::string_view config_json,
                                               std::string_view generation_config_json) {
  constexpr std::string_view kFile = "config.json";
  ASSIGN_OR_RETURN(Json cfg, json::ParseObject(config_json, kFile));
  ModelConfig c;

  // Architecture: the first of "architectures", else inferred from model_type.
  absl::StatusOr<std::optional<std::string>> model_type = json::OptionalString(cfg, "model_type");
  if (!model_type.ok()) return InFile(model_type.status(), kFile);
  c.model_type = model_type->value_or("");
  const Json* archs = json::Find(cfg, "architectures");
  if (archs != nullptr && !archs->is_null()) {
    if (!archs->is_array() || archs->empty() || !(*archs)[0].is_string()) {
      return Invalid(kFile, "\"architectures\" must be a non-empty list of strings");
    }
    c.architecture = (*archs)[0].get<std::string>();
  } else {
    for (const ArchInfo& a : kArchs) {
      if (c.model_type == a.model_type) c.architecture = std::string(a.architecture);
    }
    if (c.architecture.empty()) {
      return Invalid(kFile, absl::StrCat("missing \"architectures\" and unsupported model_type \"",
                                         c.model_type, "\" (supported architectures: ",
                                         SupportedArchitectures(), ")"));
    }
  }
  const ArchInfo* arch = nullptr;
  for (const ArchInfo& a : kArchs) {
    if (c.architecture == a.architecture) arch = &a;
  }
  if (arch == nullptr) {
    return Invalid(kFile, absl::StrCat("unsupported architecture \"", c.architecture,
                                       "\" (supported: ", SupportedArchitectures(), ")"));
  }
  if (const Json* q = json::Find(cfg, "quantization_config"); q != nullptr && !q->is_null()) {
    return Invalid(kFile, "quantized checkpoints (\"quantization_config\") are not supported");
  }

  ASSIGN_OR_RETURN(c.vocab_size, PositiveInt(cfg, "vocab_size", kFile));
  ASSIGN_OR_RETURN(c.hidden_size, PositiveInt(cfg, "hidden_size", kFile));
  ASSIGN_OR_RETURN(c.intermediate_size, PositiveInt(cfg, "intermediate_size", kFile));
  ASSIGN_OR_RETURN(c.num_hidden_layers, PositiveSmallInt(cfg, "num_hidden_layers", kFile));
  ASSIGN_OR_RETURN(c.num_attention_heads, PositiveSmallInt(cfg, "num_attention_heads", kFile));
  ASSIGN_OR_RETURN(c.num_key_value_heads,
                   PositiveSmallInt(cfg, "num_key_value_heads", kFile, c.num_attention_heads));
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    return Invalid(
        kFile, absl::StrCat("\"num_key_value_heads\" (", c.num_key_value_heads,
                            ") must divide \"num_attention_heads\" (", c.num_attention_heads, ")"));
  }
  absl::StatusOr<std::optional<int64_t>> head_dim = json::OptionalInt(cfg, "head_dim");
  if (!head_dim.ok()) return InFile(head_dim.status(), kFile);
  if (head_dim->has_value()) {
    if (**head_dim <= 0) return Invalid(kFile, "\"head_dim\" must be positive");
    c.head_dim = **head_dim;
  } else {
    if (c.hidden_size % c.num_attention_heads != 0) {
      return Invalid(kFile, absl::StrCat("\"hidden_size\" (", c.hidden_size,
                                         ") is not divisible by \"num_attention_heads\" (",
                                         c.num_attention_heads, ") and no \"head_dim\" is given"));
    }
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  if (c.head_dim % 2 != 0) {
    return Invalid(kFile, absl::StrCat("head_dim ", c.head_dim, " must be even for RoPE"));
  }

  auto number = [&](std::string_view key, double fallback) -> absl::StatusOr<double> {
    absl::StatusOr<std::optional<double>> v = json::OptionalNumber(cfg, key);
    if (!v.ok()) return InFile(v.status(), kFile);
    const double d = v->value_or(fallback);
    if (!(d > 0)) return Invalid(kFile, absl::StrCat("\"", Sv(key), "\" must be positive"));
    return d;
  };
  auto boolean = [&](std::string_view key) -> absl::StatusOr<bool> {
    absl::StatusOr<std::optional<bool>> v = json::OptionalBool(cfg, key);
    if (!v.ok()) return InFile(v.status(), kFile);
    return v->value_or(false);
  };
  ASSIGN_OR_RETURN(c.rms_norm_eps, number("rms_norm_eps", 1e-6));

  // RoPE: "rope_theta" + "rope_scaling", or newer transformers' "rope_parameters"
  // which holds both.
  const Json* rope_params = json::Find(cfg, "rope_parameters");
  const Json* rope_scaling = json::Find(cfg, "rope_scaling");
  if (rope_params != nullptr && rope_params->is_object() &&
      (rope_scaling == nullptr || rope_scaling->is_null())) {
    rope_scaling = rope_params;
    absl::StatusOr<std::optional<double>> theta = json::OptionalNumber(*rope_params, "rope_theta");
    if (!theta.ok()) return InFile(AnnotateStatus(theta.status(), "rope_parameters"), kFile);
    ASSIGN_OR_RETURN(c.rope_theta, number("rope_theta", theta->value_or(10000.0)));
  } else {
    ASSIGN_OR_RETURN(c.rope_theta, number("rope_theta", 10000.0));
  }
  if (rope_scaling != nullptr)
    RETURN_IF_ERROR(ParseRopeScaling(*rope_scaling, kFile, &c.rope_scaling));

  absl::StatusOr<std::optional<std::string>> act = json::OptionalString(cfg, "hidden_act");
  if (!act.ok()) return InFile(act.status(), kFile);
  c.hidden_act = act->value_or("silu");
  if (c.hidden_act != "silu") {
    return Invalid(
        kFile, absl::StrCat("unsupported \"hidden_act\" \"", c.hidden_act, "\" (supported: silu)"));
  }

  if (arch->model_type == "qwen2") {
    c.qkv_bias = true;  // Qwen2 always has q/k/v biases and no o/mlp bias
  } else if (arch->model_type == "llama") {
    ASSIGN_OR_RETURN(bool attention_bias, boolean("attention_bias"));
    c.qkv_bias = c.o_bias = attention_bias;
    ASSIGN_OR_RETURN(c.mlp_bias, boolean("mlp_bias"));
  }
  ASSIGN_OR_RETURN(c.tie_word_embeddings, boolean("tie_word_embeddings"));
  ASSIGN_OR_RETURN(c.max_position_embeddings, PositiveInt(cfg, "max_position_embeddings", kFile,
                                                          arch->default_max_position_embeddings));

  // Sliding window: Mistral uses it whenever set; Qwen2 only with use_sliding_window.
  if (arch->model_type == "mistral" || arch->model_type == "qwen2") {
    bool use = true;
    if (arch->model_type == "qwen2") {
      ASSIGN_OR_RETURN(use, boolean("use_sliding_window"));
    }
    absl::StatusOr<std::optional<int64_t>> window = json::OptionalInt(cfg, "sliding_window");
    if (!window.ok()) return InFile(window.status(), kFile);
    if (use && window->has_value()) {
      if (**window <= 0) return Invalid(kFile, "\"sliding_window\" must be positive");
      c.sliding_window = **window;
    }
  }

  absl::StatusOr<std::optional<std::string>> dtype = json::OptionalString(cfg, "torch_dtype");
  if (!dtype.ok()) return InFile(dtype.status(), kFile);
  if (!dtype->has_value()) {
    dtype = json::OptionalString(cfg, "dtype");  // newer transformers
    if (!dtype.ok()) return InFile(dtype.status(), kFile);
  }
  c.torch_dtype = dtype->value_or("");

  // Token ids: generation_config.json first, then config.json (class defaults
  // when config.json lacks the key entirely).
  ASSIGN_OR_RETURN(std::optional<std::vector<int32_t>> cfg_bos,
                   TokenIds(cfg, "bos_token_id", kFile));
  ASSIGN_OR_RETURN(std::optional<std::vector<int32_t>> cfg_eos,
                   TokenIds(cfg, "eos_token_id", kFile));
  ASSIGN_OR_RETURN(std::optional<std::vector<int32_t>> cfg_pad,
                   TokenIds(cfg, "pad_token_id", kFile));
  if (!cfg_bos.has_value() && arch->default_bos.has_value())
    cfg_bos = std::vector<int32_t>{*arch->default_bos};
  if (!cfg_eos.has_value() && arch->default_eos.has_value())
    cfg_eos = std::vector<int32_t>{*arch->default_eos};
  std::optional<std::vector<int32_t>> gen_bos, gen_eos, gen_pad;
  if (!generation_config_json.empty()) {
    constexpr std::string_view kGenFile = "generation_config.json";
    ASSIGN_OR_RETURN(Json gen, json::ParseObject(generation_config_json, kGenFile));
    ASSIGN_OR_RETURN(gen_bos, TokenIds(gen, "bos_token_id", kGenFile));
    ASSIGN_OR_RETURN(gen_eos, TokenIds(gen, "eos_token_id", kGenFile));
    ASSIGN_OR_RETURN(gen_pad, TokenIds(gen, "pad_token_id", kGenFile));
  }
  auto first = [](const std::optional<std::vector<int32_t>>& a,
                  const std::optional<std::vector<int32_t>>& b) -> std::optional<int32_t> {
    if (a.has_value() && !a->empty()) return a->front();
    if (b.has_value() && !b->empty()) return b->front();
    return std::nullopt;
  };
  c.bos_token_id = first(gen_bos, cfg_bos);
  c.pad_token_id = first(gen_pad, cfg_pad);
  if (c.pad_token_id.has_value() && *c.pad_token_id < 0) c.pad_token_id.reset();  // "-1": none
  for (const auto* list : {&gen_eos, &cfg_eos}) {
    if (!list->has_value()) continue;
    for (int32_t id : **list) {
      if (std::find(c.eos_token_ids.begin(), c.eos_token_ids.end(), id) == c.eos_token_ids.end()) {
        c.eos_token_ids.push_back(id);
      }
    }
  }
  RETURN_IF_ERROR(CheckId(c.bos_token_id, "bos_token_id", c.vocab_size));
  RETURN_IF_ERROR(CheckId(c.pad_token_id, "pad_token_id", c.vocab_size));
  for (int32_t id : c.eos_token_ids) RETURN_IF_ERROR(CheckId(id, "eos_token_id", c.vocab_size));
  return c;
}

absl::StatusOr<ModelConfig> ModelConfig::Load(const std::string& model_dir) {
  ASSIGN_OR_RETURN(std::string config,
                   json::ReadFileToString(model_dir + "/config.json", kMaxConfigBytes));
  std::string generation;
  const std::string gen_path = model_dir + "/generation_config.json";
  if (json::IsRegularFile(gen_path)) {
    ASSIGN_OR_RETURN(generation, json::ReadFileToString(gen_path, kMaxConfigBytes));
    if (generation.empty()) generation = "{}";
  }
  absl::StatusOr<ModelConfig> c = Parse(config, generation);
  if (!c.ok()) return AnnotateStatus(c.status(), model_dir);
  return c;
}

std::string_view LoraModuleName(LoraModule m) {
  switch (m) {
    case LoraModule::kQ:
      return "q_proj";
    case LoraModule::kK:
      return "k_proj";
    case LoraModule::kV:
      return "v_proj";
    case LoraModule::kO:
      return "o_proj";
    case LoraModule::kGate:
      return "gate_proj";
    case LoraModule::kUp:
      return "up_proj";
    case LoraModule::kDown:
      return "down_proj";
  }
  return "?";
}

std::string_view LoraModuleParent(LoraModule m) {
  switch (m) {
    case LoraModule::kQ:
    case LoraModule::kK:
    case LoraModule::kV:
    case LoraModule::kO:
      return "self_attn";
    default:
      return "mlp";
  }
}

std::optional<LoraModule> ParseLoraModule(std::string_view name) {
  for (LoraModule m : kAllLoraModules) {
    if (LoraModuleName(m) == name) return m;
  }
  return std::nullopt;
}

ProjShape ModuleShape(const ModelConfig& c, LoraModule m) {
  const int64_t q_dim = static_cast<int64_t>(c.num_attention_heads) * c.head_dim;
  const int64_t kv_dim = static_cast<int64_t>(c.num_key_value_heads) * c.head_dim;
  switch (m) {
    case LoraModule::kQ:
      return {c.hidden_size, q_dim};
    case LoraModule::kK:
    case LoraModule::kV:
      return {c.hidden_size, kv_dim};
    case LoraModule::kO:
      return {q_dim, c.hidden_size};
    case LoraModule::kGate:
    case LoraModule::kUp:
      return {c.hidden_size, c.intermediate_size};
    case LoraModule::kDown:
      return {c.intermediate_size, c.hidden_size};
  }
  LS_CHECK(false) << "bad LoraModule " << static_cast<int>(m);
  return {};
}

}  // namespace loraserve
