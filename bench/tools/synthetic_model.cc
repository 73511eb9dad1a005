#include "bench/tools/synthetic_model.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <future>
#include <memory>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "bench/tools/fast_random.h"
#include "bench/tools/file_util.h"
#include "bench/tools/model_shapes.h"
#include "bench/tools/safetensors_stream_writer.h"
#include "bench/tools/synthetic_tokenizer.h"
#include "common/status.h"
#include "engine/model/json_file.h"
#include "engine/model/model_config.h"
#include "nlohmann/json.hpp"

namespace loraserve::bench {
namespace {

using Json = nlohmann::ordered_json;

constexpr size_t kChunkElems = size_t{1} << 23;  // generated and written per step

struct WeightSpec {
  TensorSpec tensor;
  bool is_norm = false;  // RMSNorm weight: all ones
  bool is_bias = false;  // zeros
};

std::string_view TorchDtype(DType d) {
  switch (d) {
    case DType::kF32:
      return "float32";
    case DType::kF16:
      return "float16";
    case DType::kBF16:
      return "bfloat16";
  }
  return "bfloat16";
}

// Every tensor the Llama forward reads (engine/model/model_weights.cc), in
// Hugging Face's order.
std::vector<WeightSpec> WeightSpecs(const ModelConfig& c, DType dtype) {
  const int64_t h = c.hidden_size;
  const int64_t q_out = int64_t{c.num_attention_heads} * c.head_dim;
  const int64_t kv_out = int64_t{c.num_key_value_heads} * c.head_dim;
  const int64_t inter = c.intermediate_size;
  std::vector<WeightSpec> w;
  auto add = [&](std::string name, std::vector<int64_t> shape, bool norm = false,
                 bool bias = false) {
    w.push_back({{std::move(name), dtype, std::move(shape)}, norm, bias});
  };
  add("model.embed_tokens.weight", {c.vocab_size, h});
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = absl::StrCat("model.layers.", l, ".");
    add(p + "input_layernorm.weight", {h}, /*norm=*/true);
    add(p + "self_attn.q_proj.weight", {q_out, h});
    if (c.qkv_bias) add(p + "self_attn.q_proj.bias", {q_out}, false, true);
    add(p + "self_attn.k_proj.weight", {kv_out, h});
    if (c.qkv_bias) add(p + "self_attn.k_proj.bias", {kv_out}, false, true);
    add(p + "self_attn.v_proj.weight", {kv_out, h});
    if (c.qkv_bias) add(p + "self_attn.v_proj.bias", {kv_out}, false, true);
    add(p + "self_attn.o_proj.weight", {h, q_out});
    if (c.o_bias) add(p + "self_attn.o_proj.bias", {h}, false, true);
    add(p + "post_attention_layernorm.weight", {h}, /*norm=*/true);
    add(p + "mlp.gate_proj.weight", {inter, h});
    if (c.mlp_bias) add(p + "mlp.gate_proj.bias", {inter}, false, true);
    add(p + "mlp.up_proj.weight", {inter, h});
    if (c.mlp_bias) add(p + "mlp.up_proj.bias", {inter}, false, true);
    add(p + "mlp.down_proj.weight", {h, inter});
    if (c.mlp_bias) add(p + "mlp.down_proj.bias", {h}, false, true);
  }
  add("model.norm.weight", {h}, /*norm=*/true);
  if (!c.tie_word_embeddings) add("lm_head.weight", {c.vocab_size, h});
  return w;
}

absl::Status Invalid(std::string_view option, std::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat("--", Sv(option), " ", Sv(problem)));
}

// The config.json text for the options.
absl::StatusOr<std::string> ConfigText(const SyntheticModelOptions& o) {
  if (o.shape.empty() == o.config_file.empty()) {
    return Invalid("shape",
                   absl::StrCat("or --config: give exactly one (shapes: ", ModelShapeNames(), ")"));
  }
  if (!o.shape.empty()) {
    absl::StatusOr<ModelShape> shape = FindModelShape(o.shape);
    if (!shape.ok()) return Invalid("shape", StdSv(shape.status().message()));
    Json config = ModelShapeConfig(*shape);
    config["torch_dtype"] = std::string(TorchDtype(o.dtype));
    return config.dump(2);
  }
  absl::StatusOr<std::string> text = json::ReadFileToString(o.config_file, size_t{1} << 20);
  if (!text.ok()) return Invalid("config", StdSv(text.status().message()));
  return *std::move(text);
}

// Generates the shard's tensors chunk by chunk into two alternating buffers;
// each chunk is written by a worker while the next one is generated, so the
// disk and the generator overlap.
absl::Status WriteShard(const std::string& path, const std::vector<const WeightSpec*>& specs,
                        const std::vector<uint64_t>& seeds, float stddev, int64_t total,
                        int64_t* done, const ModelProgressFn& progress,
                        std::array<std::vector<char>, 2>* bufs) {
  std::vector<TensorSpec> tensors;
  for (const WeightSpec* s : specs) tensors.push_back(s->tensor);
  ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsStreamWriter> w,
                   SafetensorsStreamWriter::Open(path, tensors, {{"format", "pt"}}));
  std::future<absl::Status> pending;  // the write of the other buffer
  int cur = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    const TensorSpec& t = specs[i]->tensor;
    FastRandom rng(seeds[i]);
    const size_t elt = DTypeSize(t.dtype);
    for (int64_t off = 0; off < t.numel(); off += static_cast<int64_t>(kChunkElems)) {
      const size_t n = static_cast<size_t>(std::min<int64_t>(kChunkElems, t.numel() - off));
      char* buf = (*bufs)[static_cast<size_t>(cur)].data();
      if (specs[i]->is_norm) {
        FastRandom::FillConstant(buf, t.dtype, n, 1.0f);
      } else if (specs[i]->is_bias) {
        FastRandom::FillConstant(buf, t.dtype, n, 0.0f);
      } else {
        rng.FillNormal(buf, t.dtype, n, stddev);
      }
      if (pending.valid()) RETURN_IF_ERROR(pending.get());
      pending = std::async(std::launch::async,
                           [&w, buf, bytes = n * elt] { return w->Append(buf, bytes); });
      cur ^= 1;
      *done += static_cast<int64_t>(n * elt);
      if (progress) progress(*done, total);
    }
  }
  if (pending.valid()) RETURN_IF_ERROR(pending.get());
  return w->Close();
}

// Removes safetensors weights of an earlier run (another shard count would
// leave stale shards the loader could pick up).
absl::Status RemoveOldWeights(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name == "model.safetensors" || name == "model.safetensors.index.json" ||
        (name.rfind("model-", 0) == 0 && name.size() > 12 &&
         name.compare(name.size() - 12, 12, ".safetensors") == 0)) {
      std::filesystem::remove(entry.path(), ec);
      if (ec) return absl::InternalError(absl::StrCat("cannot remove ", entry.path().string()));
    }
  }
  if (ec) return absl::InternalError(absl::StrCat("cannot list ", dir, ": ", ec.message()));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SyntheticModelSummary> MakeSyntheticModel(const SyntheticModelOptions& o,
                                                         const ModelProgressFn& progress) {
  const absl::Time start = absl::Now();
  if (o.out_dir.empty()) return Invalid("out", "is empty: name the model directory to write");
  if (o.shard_bytes <= 0)
    return Invalid("shard-bytes", absl::StrCat("is ", o.shard_bytes, ", must be > 0"));
  if (!(o.stddev > 0.0f && o.stddev <= 1.0f)) {
    return Invalid("stddev", absl::StrCat("is ", o.stddev, ", must be in (0, 1]"));
  }
  ASSIGN_OR_RETURN(const std::string config_text, ConfigText(o));
  absl::StatusOr<ModelConfig> parsed = ModelConfig::Parse(config_text, "");
  if (!parsed.ok())
    return AnnotateStatus(parsed.status(), o.shape.empty() ? "--config" : "--shape");
  const ModelConfig& config = *parsed;

  RETURN_IF_ERROR(EnsureDirectory(o.out_dir));
  RETURN_IF_ERROR(RemoveOldWeights(o.out_dir));
  RETURN_IF_ERROR(WriteTextFile(o.out_dir + "/config.json", config_text));
  const int32_t bos = config.bos_token_id.value_or(1);
  const int32_t eos = config.eos_token_ids.empty() ? 2 : config.eos_token_ids.front();
  const Json generation = {
      {"_from_model_config", true}, {"bos_token_id", bos}, {"eos_token_id", eos}};
  RETURN_IF_ERROR(WriteTextFile(o.out_dir + "/generation_config.json", generation.dump(2)));
  absl::StatusOr<SyntheticTokenizerFiles> tok =
      MakeSyntheticTokenizer(config.vocab_size, bos, eos, config.max_context());
  if (!tok.ok()) return AnnotateStatus(tok.status(), "config vocab_size / bos / eos");
  RETURN_IF_ERROR(WriteTextFile(o.out_dir + "/tokenizer.json", tok->tokenizer_json));
  RETURN_IF_ERROR(WriteTextFile(o.out_dir + "/tokenizer_config.json", tok->tokenizer_config_json));
  if (!o.write_weights) {
    SyntheticModelSummary summary;
    summary.seconds = absl::ToDoubleSeconds(absl::Now() - start);
    return summary;
  }

  // Shards: tensors in order, a new shard once the current one reaches shard_bytes.
  const std::vector<WeightSpec> specs = WeightSpecs(config, o.dtype);
  std::vector<std::vector<size_t>> shards(1);
  int64_t shard_size = 0;
  int64_t total = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    if (shard_size >= o.shard_bytes) {
      shards.emplace_back();
      shard_size = 0;
    }
    shards.back().push_back(i);
    shard_size += specs[i].tensor.bytes();
    total += specs[i].tensor.bytes();
  }
  const int n = static_cast<int>(shards.size());
  Json index;
  index["metadata"] = {{"total_size", total}};
  index["weight_map"] = Json::object();
  std::array<std::vector<char>, 2> bufs;
  for (std::vector<char>& b : bufs) b.resize(kChunkElems * DTypeSize(o.dtype));
  int64_t done = 0;
  for (int s = 0; s < n; ++s) {
    const std::string file = absl::StrFormat("model-%05d-of-%05d.safetensors", s + 1, n);
    std::vector<const WeightSpec*> in_shard;
    std::vector<uint64_t> seeds;
    for (size_t i : shards[static_cast<size_t>(s)]) {
      in_shard.push_back(&specs[i]);
      seeds.push_back(DeriveSeed(o.seed, i));
      index["weight_map"][specs[i].tensor.name] = file;
    }
    RETURN_IF_ERROR(WriteShard(o.out_dir + "/" + file, in_shard, seeds, o.stddev, total, &done,
                               progress, &bufs));
  }
  RETURN_IF_ERROR(WriteTextFile(o.out_dir + "/model.safetensors.index.json", index.dump(2)));

  SyntheticModelSummary summary;
  summary.num_tensors = static_cast<int>(specs.size());
  summary.num_shards = n;
  summary.weight_bytes = total;
  summary.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return summary;
}

}  // namespace loraserve::bench
