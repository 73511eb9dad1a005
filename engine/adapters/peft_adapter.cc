#include "engine/adapters/peft_adapter.h"

#include <algorithm>
#include <array>
#include <set>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/logging.h"
#include "common/status.h"
#include "common/strings.h"
#include "engine/model/json_file.h"
#include "engine/model/safetensors.h"

namespace loraserve {
namespace {

constexpr size_t kMaxAdapterConfigBytes = 4u << 20;
constexpr std::string_view kPrefix = "base_model.model.";
constexpr std::string_view kExpected =
    "expected base_model.model.model.layers.N.{self_attn,mlp}.X_proj.lora_{A,B}[.default].weight";

struct TensorKey {
  int layer = 0;
  LoraModule module = LoraModule::kQ;
  int ab = 0;  // 0: lora_A, 1: lora_B
};

// Maps a tensor name to its (layer, projection, A/B), or says why it is not
// a tensor loraserve can serve.
absl::StatusOr<TensorKey> ParseTensorName(const std::string& name, int num_layers) {
  auto refuse = [&](std::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("tensor \"", name, "\": ", Sv(why)));
  };
  if (absl::StrContains(name, "lora_magnitude_vector")) {
    return refuse("DoRA (lora_magnitude_vector) is not supported");
  }
  if (absl::StrContains(name, "lm_head")) return refuse("LoRA on lm_head is not supported");
  if (absl::StrContains(name, "embed_tokens") || absl::StrContains(name, "lora_embedding_")) {
    return refuse("LoRA on embed_tokens is not supported");
  }
  if (!absl::StartsWith(name, Sv(kPrefix))) {
    return refuse(absl::StrCat("unknown tensor name (", Sv(kExpected), ")"));
  }
  const std::vector<absl::string_view> parts =
      absl::StrSplit(absl::string_view(name).substr(kPrefix.size()), '.');
  auto is = [&](size_t i, std::string_view s) { return i < parts.size() && parts[i] == Sv(s); };
  if ((parts.size() == 7 || parts.size() == 8) && parts.back() == "bias" &&
      (is(5, "lora_A") || is(5, "lora_B"))) {
    return refuse("LoRA biases (lora_bias) are not supported");
  }
  const bool shape_ok = (parts.size() == 7 || (parts.size() == 8 && is(6, "default"))) &&
                        is(0, "model") && is(1, "layers") && parts.back() == "weight" &&
                        (is(5, "lora_A") || is(5, "lora_B"));
  int64_t layer = -1;
  const bool digits = shape_ok && !parts[2].empty() && parts[2].size() <= 9 &&
                      std::all_of(parts[2].begin(), parts[2].end(),
                                  [](char ch) { return ch >= '0' && ch <= '9'; }) &&
                      absl::SimpleAtoi(parts[2], &layer);
  const std::optional<LoraModule> module =
      shape_ok ? ParseLoraModule(StdSv(parts[4])) : std::nullopt;
  if (!digits || !module.has_value() || parts[3] != Sv(LoraModuleParent(*module))) {
    return refuse(absl::StrCat("unknown tensor name (", Sv(kExpected), ")"));
  }
  if (layer >= num_layers) {
    return refuse(absl::StrCat("layer ", layer, " is out of range: the base model has ", num_layers,
                               " layers"));
  }
  return TensorKey{static_cast<int>(layer), *module, is(5, "lora_B") ? 1 : 0};
}

// Checks that `t` has shape [rows, cols], explaining a mismatch in terms of
// the rank (from the config) and the base model's projection size.
absl::Status CheckShape(const TensorView& t, int64_t rows, int64_t cols, bool rank_first,
                        const std::string& path) {
  if (t.shape.size() == 2 && t.shape[0] == rows && t.shape[1] == cols) return absl::OkStatus();
  const std::string expected =
      absl::StrCat(rank_first ? "[r, in] = " : "[out, r] = ", ShapeString({rows, cols}));
  std::string why;
  if (t.shape.size() == 2) {
    const int64_t rank_got = rank_first ? t.shape[0] : t.shape[1];
    const int64_t rank_want = rank_first ? rows : cols;
    const int64_t base_got = rank_first ? t.shape[1] : t.shape[0];
    const int64_t base_want = rank_first ? cols : rows;
    if (base_got != base_want) {
      why = absl::StrCat(": it does not match the base model's ", path, " (",
                         rank_first ? "in" : "out", " = ", base_want, ")");
    } else if (rank_got != rank_want) {
      why = absl::StrCat(": rank ", rank_got, " differs from the rank ", rank_want,
                         " that adapter_config.json gives ", path);
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "tensor \"", t.name, "\": shape ", ShapeString(t.shape), ", expected ", expected, why));
}

}  // namespace

absl::StatusOr<std::unique_ptr<PeftAdapter>> PeftAdapter::Load(const std::string& dir,
                                                               const ModelConfig& base,
                                                               const AdapterLoadOptions& options) {
  auto ctx = [&](const absl::Status& s) {
    return AnnotateStatus(s, absl::StrCat("adapter \"", dir, "\""));
  };
  if (options.max_rank <= 0) {
    return ctx(absl::InvalidArgumentError(
        absl::StrCat("server max LoRA rank must be positive, got ", options.max_rank)));
  }
  const std::string config_path = dir + "/adapter_config.json";
  if (!json::IsRegularFile(config_path)) {
    return ctx(absl::NotFoundError("adapter_config.json not found"));
  }
  absl::StatusOr<std::string> text = json::ReadFileToString(config_path, kMaxAdapterConfigBytes);
  if (!text.ok()) return ctx(text.status());
  absl::StatusOr<LoraAdapterConfig> config = LoraAdapterConfig::Parse(*text);
  if (!config.ok()) return ctx(config.status());
  absl::StatusOr<std::vector<LoraLayerPlan>> plan = ResolveLoraPlan(*config, base, options);
  if (!plan.ok()) return ctx(plan.status());

  const std::string weights_path = dir + "/adapter_model.safetensors";
  if (!json::IsRegularFile(weights_path)) {
    if (json::IsRegularFile(dir + "/adapter_model.bin")) {
      return ctx(absl::InvalidArgumentError(
          "adapter_model.bin: pickle .bin adapters are not supported; convert to safetensors"));
    }
    return ctx(absl::NotFoundError("adapter_model.safetensors not found"));
  }
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(weights_path);
  if (!file.ok()) return ctx(file.status());

  const int num_layers = base.num_hidden_layers;
  // found[layer][module][0: A, 1: B]
  std::vector<std::array<std::array<const TensorView*, 2>, kNumLoraModules>> found(
      static_cast<size_t>(num_layers));
  for (auto& layer : found) {
    for (auto& ab : layer) ab = {nullptr, nullptr};
  }
  for (const TensorView& t : (*file)->tensors()) {
    absl::StatusOr<TensorKey> key = ParseTensorName(t.name, num_layers);
    if (!key.ok()) return ctx(key.status());
    const TensorView*& slot = found[static_cast<size_t>(key->layer)]
                                   [static_cast<size_t>(key->module)][static_cast<size_t>(key->ab)];
    if (slot != nullptr) {
      return ctx(absl::InvalidArgumentError(absl::StrCat("tensors \"", slot->name, "\" and \"",
                                                         t.name, "\" are the same LoRA weight")));
    }
    slot = &t;
  }

  std::unique_ptr<PeftAdapter> adapter(new PeftAdapter());
  adapter->path_ = dir;
  adapter->config_ = *std::move(config);
  adapter->num_layers_ = num_layers;
  adapter->modules_.resize(static_cast<size_t>(num_layers) * kNumLoraModules);
  for (int l = 0; l < num_layers; ++l) {
    for (LoraModule m : kAllLoraModules) {
      const LoraModulePlan& p = (*plan)[static_cast<size_t>(l)][static_cast<size_t>(m)];
      const TensorView* a = found[static_cast<size_t>(l)][static_cast<size_t>(m)][0];
      const TensorView* b = found[static_cast<size_t>(l)][static_cast<size_t>(m)][1];
      const std::string path = LoraModulePath(l, m);
      if (p.rank == 0) {
        if (a != nullptr || b != nullptr) {
          return ctx(absl::InvalidArgumentError(
              absl::StrCat("tensor \"", (a != nullptr ? a : b)->name, "\": ", path,
                           " is not targeted by adapter_config.json (\"target_modules\" / "
                           "\"layers_to_transform\")")));
        }
        continue;
      }
      if (a == nullptr && b == nullptr) {
        return ctx(absl::InvalidArgumentError(
            absl::StrCat("adapter_config.json targets ", path,
                         " but adapter_model.safetensors has no lora_A / lora_B tensors for it")));
      }
      if (b == nullptr) {
        return ctx(absl::InvalidArgumentError(
            absl::StrCat("tensor \"", a->name, "\" has no matching lora_B")));
      }
      if (a == nullptr) {
        return ctx(absl::InvalidArgumentError(
            absl::StrCat("tensor \"", b->name, "\" has no matching lora_A")));
      }
      const ProjShape shape = ModuleShape(base, m);
      RETURN_IF_ERROR(ctx(CheckShape(*a, p.rank, shape.in, /*rank_first=*/true, path)));
      RETURN_IF_ERROR(ctx(CheckShape(*b, shape.out, p.rank, /*rank_first=*/false, path)));

      LoraModuleWeights& w =
          adapter->modules_[static_cast<size_t>(l) * kNumLoraModules + static_cast<size_t>(m)];
      w.rank = p.rank;
      w.scale = p.scale;
      w.in = shape.in;
      w.out = shape.out;
      w.a.resize(static_cast<size_t>(p.rank * shape.in));
      RETURN_IF_ERROR(ctx(ToF32(*a, w.a.data())));
      absl::StatusOr<std::vector<float>> b_rows = ToF32(*b);  // [out, rank]
      if (!b_rows.ok()) return ctx(b_rows.status());
      w.b_t.resize(static_cast<size_t>(p.rank * shape.out));
      for (int64_t o = 0; o < shape.out; ++o) {
        for (int64_t j = 0; j < p.rank; ++j) {
          w.b_t[static_cast<size_t>(j * shape.out + o)] =
              (*b_rows)[static_cast<size_t>(o * p.rank + j)];
        }
      }
      adapter->bytes_ += (w.a.size() + w.b_t.size()) * sizeof(float);
    }
  }
  return adapter;
}

const LoraModuleWeights& PeftAdapter::module(int layer, LoraModule m) const {
  LS_CHECK(layer >= 0 && layer < num_layers_) << "layer " << layer << " of " << num_layers_;
  return modules_[static_cast<size_t>(layer) * kNumLoraModules + static_cast<size_t>(m)];
}

static_assert(kNumLoraModules == kNumAdapterModules,
              "memory/adapter_weights.h and LoraModule must list the same modules");

ModuleWeightsView PeftAdapter::ModuleView(int layer, int module_index) const {
  LS_CHECK(module_index >= 0 && module_index < kNumLoraModules) << "module " << module_index;
  const LoraModuleWeights& w = module(layer, kAllLoraModules[module_index]);
  return ModuleWeightsView{w.rank, w.scale, w.in, w.out, w.a.empty() ? nullptr : w.a.data(),
                           w.b_t.empty() ? nullptr : w.b_t.data()};
}

std::vector<int> PeftAdapter::ranks() const {
  std::set<int> s;
  for (const LoraModuleWeights& w : modules_) {
    if (w.rank > 0) s.insert(w.rank);
  }
  return {s.begin(), s.end()};
}

int PeftAdapter::max_rank() const {
  int r = 0;
  for (const LoraModuleWeights& w : modules_) r = std::max(r, w.rank);
  return r;
}

std::vector<LoraModule> PeftAdapter::target_modules() const {
  std::vector<LoraModule> out;
  for (LoraModule m : kAllLoraModules) {
    for (int l = 0; l < num_layers_; ++l) {
      if (!module(l, m).empty()) {
        out.push_back(m);
        break;
      }
    }
  }
  return out;
}

float PeftAdapter::max_scale() const {
  float s = 0;
  bool first = true;
  for (const LoraModuleWeights& w : modules_) {
    if (w.rank == 0) continue;
    if (first || w.scale > s) s = w.scale;
    first = false;
  }
  return s;
}

int PeftAdapter::num_lora_modules() const {
  int n = 0;
  for (const LoraModuleWeights& w : modules_) n += w.rank > 0 ? 1 : 0;
  return n;
}

}  // namespace loraserve
