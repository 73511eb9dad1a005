// CPU forward benchmark (the model issue's): LlamaModel::Forward tokens/s at
// batch 1, 8 and 32 on a SmolLM-135M-shaped model with random BF16 weights
// (LlamaForCausalLM, hidden 576, intermediate 1536, 30 layers, 9 heads / 3 KV
// heads of 64, vocab 49152, tied embeddings), generated into a temp dir with
// SafetensorsWriter, next to the GFLOP/s a plain cblas_sgemm reaches on the
// model's biggest GEMM shapes in the same run.
//
// Per batch size B: prefill (B sequences x --prompt tokens, one Forward) and
// decode (B sequences, one new token each at context --prompt), each for the
// base model alone and with half the sequences (ceil(B/2)) on a rank-16
// all-module random PEFT adapter (PeftAdapter::Load, packed by the model's own
// adapter row cache, warmed before timing). "GFLOP/s" is the forward's useful
// work per second: 2 x matmul params x tokens + attention (4 x heads x
// head_dim x context per token and layer) + LoRA (2 x r x (in + out) per
// adapted projection and token) + the lm_head for the rows whose logits are
// asked for (the last token of each sequence).
//
// Usage: cpu_forward_bench [--batches=1,8,32] [--prompt=128] [--decode-steps=8]
//                          [--prefill-reps=1] [--keep-dir]
// Threads: the CPU backend's parallel-for uses every core; OpenBLAS its own
// (OPENBLAS_NUM_THREADS). A plain main printing tables; ~1 min on 2 cores.
#include <cblas.h>
#include <stdlib.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/logging.h"
#include "engine/adapters/peft_adapter.h"
#include "engine/model/kv_cache.h"
#include "engine/model/llama_model.h"
#include "engine/model/safetensors_writer.h"
#include "kernels/backend_factory.h"
#include "nlohmann/json.hpp"

namespace loraserve {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// SmolLM-135M's shape.
constexpr int64_t kHidden = 576, kInter = 1536, kHeads = 9, kKvHeads = 3, kHeadDim = 64,
                  kVocab = 49152;
constexpr int kLayers = 30;
constexpr int kRank = 16;

struct Flags {
  std::vector<int> batches = {1, 8, 32};
  int prompt = 128;
  int decode_steps = 8;
  int prefill_reps = 1;
  bool keep_dir = false;
};

class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed * 6364136223846793005ull + 1442695040888963407ull) {}
  uint64_t Next() {
    s_ = s_ * 6364136223846793005ull + 1442695040888963407ull;
    return s_ >> 33;
  }
  // Uniform in [-a, a).
  float Uniform(float a) {
    return (static_cast<float>(static_cast<double>(Next() & 0xffffff) / double(1 << 24)) * 2.0f -
            1.0f) *
           a;
  }

 private:
  uint64_t s_;
};

std::vector<float> RandomValues(size_t n, float a, Rng& rng) {
  std::vector<float> v(n);
  for (float& x : v) x = rng.Uniform(a);
  return v;
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  LS_CHECK(out.good()) << "cannot write " << path;
}

// config.json + model.safetensors (BF16, seed 1) + the tiny-llama tokenizer
// files when found (LlamaModel does not read them).
void WriteModel(const std::string& dir) {
  nlohmann::ordered_json c = {{"architectures", {"LlamaForCausalLM"}},
                              {"model_type", "llama"},
                              {"hidden_size", kHidden},
                              {"intermediate_size", kInter},
                              {"num_hidden_layers", kLayers},
                              {"num_attention_heads", kHeads},
                              {"num_key_value_heads", kKvHeads},
                              {"head_dim", kHeadDim},
                              {"vocab_size", kVocab},
                              {"hidden_act", "silu"},
                              {"tie_word_embeddings", true},
                              {"rope_theta", 10000.0},
                              {"rms_norm_eps", 1e-5},
                              {"max_position_embeddings", 2048},
                              {"bos_token_id", 0},
                              {"eos_token_id", 0},
                              {"torch_dtype", "bfloat16"}};
  WriteFile(dir + "/config.json", c.dump(2));
  SafetensorsWriter w;
  w.SetMetadata("format", "pt");
  Rng rng(1);
  auto add = [&](const std::string& name, std::vector<int64_t> shape, bool norm) {
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    // std 0.02 like HF's initializer_range; norms around 1.
    std::vector<float> v = norm ? std::vector<float>(n, 1.0f) : RandomValues(n, 0.0346f, rng);
    const absl::Status s = w.Add(name, DType::kBF16, std::move(shape), v);
    LS_CHECK(s.ok()) << s;
  };
  add("model.embed_tokens.weight", {kVocab, kHidden}, false);
  add("model.norm.weight", {kHidden}, true);
  for (int l = 0; l < kLayers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "self_attn.q_proj.weight", {kHeads * kHeadDim, kHidden}, false);
    add(p + "self_attn.k_proj.weight", {kKvHeads * kHeadDim, kHidden}, false);
    add(p + "self_attn.v_proj.weight", {kKvHeads * kHeadDim, kHidden}, false);
    add(p + "self_attn.o_proj.weight", {kHidden, kHeads * kHeadDim}, false);
    add(p + "mlp.gate_proj.weight", {kInter, kHidden}, false);
    add(p + "mlp.up_proj.weight", {kInter, kHidden}, false);
    add(p + "mlp.down_proj.weight", {kHidden, kInter}, false);
    add(p + "input_layernorm.weight", {kHidden}, true);
    add(p + "post_attention_layernorm.weight", {kHidden}, true);
  }
  const absl::Status s = w.Write(dir + "/model.safetensors");
  LS_CHECK(s.ok()) << s;
  std::error_code ec;
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) {
    std::filesystem::copy_file(std::string("tests/data/tiny-llama/") + f, dir + "/" + f, ec);
  }
}

// (in, out) of each LoRA projection, in LoraModule order.
std::array<std::array<int64_t, 2>, 7> ModuleShapes() {
  return {{{kHidden, kHeads * kHeadDim},
           {kHidden, kKvHeads * kHeadDim},
           {kHidden, kKvHeads * kHeadDim},
           {kHeads * kHeadDim, kHidden},
           {kHidden, kInter},
           {kHidden, kInter},
           {kInter, kHidden}}};
}

// A PEFT adapter dir: rank 16, alpha 32, all seven projections, F32, seed 2.
void WriteAdapter(const std::string& dir) {
  std::filesystem::create_directories(dir);
  nlohmann::ordered_json c = {
      {"base_model_name_or_path", "smollm-135m-shaped"},
      {"peft_type", "LORA"},
      {"task_type", "CAUSAL_LM"},
      {"r", kRank},
      {"lora_alpha", 32},
      {"lora_dropout", 0.0},
      {"bias", "none"},
      {"fan_in_fan_out", false},
      {"use_rslora", false},
      {"use_dora", false},
      {"target_modules",
       {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}}};
  WriteFile(dir + "/adapter_config.json", c.dump(2));
  SafetensorsWriter w;
  Rng rng(2);
  const auto shapes = ModuleShapes();
  for (int l = 0; l < kLayers; ++l) {
    for (int m = 0; m < 7; ++m) {
      const auto mod = static_cast<LoraModule>(m);
      const std::string p = "base_model.model.model.layers." + std::to_string(l) + "." +
                            std::string(LoraModuleParent(mod)) + "." +
                            std::string(LoraModuleName(mod)) + ".lora_";
      const int64_t in = shapes[m][0], out = shapes[m][1];
      LS_CHECK(w.Add(p + "A.weight", DType::kF32, {kRank, in},
                     RandomValues(static_cast<size_t>(kRank * in), 0.05f, rng))
                   .ok());
      LS_CHECK(w.Add(p + "B.weight", DType::kF32, {out, kRank},
                     RandomValues(static_cast<size_t>(out * kRank), 0.05f, rng))
                   .ok());
    }
  }
  const absl::Status s = w.Write(dir + "/adapter_model.safetensors");
  LS_CHECK(s.ok()) << s;
}

// Matmul parameters of one layer (q, k, v, o, gate, up, down).
constexpr double kLayerMatmulParams =
    double(kHidden) * (kHeads + 2 * kKvHeads) * kHeadDim + double(kHeads * kHeadDim) * kHidden +
    3.0 * kHidden * kInter;
double LoraFlopsPerToken() {
  double f = 0;
  for (const auto& s : ModuleShapes()) f += 2.0 * kRank * double(s[0] + s[1]);
  return f * kLayers;
}

// Useful FLOPs of one step: `tokens` new tokens per sequence after `cached`,
// `seqs` sequences of which `adapted` use the adapter, one logits row each.
double StepFlops(int seqs, int adapted, int tokens, int cached) {
  double ctx_sum = 0;  // sum over a sequence's new tokens of the context each attends to
  for (int t = 0; t < tokens; ++t) ctx_sum += cached + t + 1;
  const double per_seq = 2.0 * kLayerMatmulParams * kLayers * tokens +
                         4.0 * kHeads * kHeadDim * ctx_sum * kLayers +
                         2.0 * double(kVocab) * kHidden;
  return per_seq * seqs + LoraFlopsPerToken() * tokens * adapted;
}

// GFLOP/s of C[m,n] = A[m,k] * W[n,k]^T (the model's layout), best of
// repeats filling ~0.3 s.
double SgemmGflops(int m, int n, int k) {
  std::vector<float> a(static_cast<size_t>(m) * k, 0.01f), w(static_cast<size_t>(n) * k, 0.02f),
      c(static_cast<size_t>(m) * n);
  auto once = [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a.data(), k, w.data(), k,
                0.0f, c.data(), n);
  };
  once();
  double best = 1e30, total = 0;
  for (int r = 0; r < 50 && (r < 3 || total < 0.3); ++r) {
    const auto t0 = Clock::now();
    once();
    const double s = Seconds(t0, Clock::now());
    best = std::min(best, s);
    total += s;
  }
  return 2.0 * m * n * k / best / 1e9;
}

struct Row {
  const char* phase;
  int batch;
  int adapted;
  int64_t tokens;
  double seconds;
  double flops;
};

void Run(const Flags& flags) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "loraserve_fwd_XXXXXX").string();
  LS_CHECK(::mkdtemp(tmpl.data()) != nullptr);
  const std::string dir = tmpl;
  const auto tg = Clock::now();
  WriteModel(dir);
  WriteAdapter(dir + "/adapter");
  const double gen_s = Seconds(tg, Clock::now());

  auto backend = CreateBackend(BackendKind::kCpu, BackendOptions{});
  LS_CHECK(backend.ok()) << backend.status();
  const auto tl = Clock::now();
  LlamaModel::Options mo;
  mo.backend = backend->get();
  mo.model_dir = dir;
  auto model = LlamaModel::Create(mo);
  LS_CHECK(model.ok()) << model.status();
  auto adapter_or = PeftAdapter::Load(dir + "/adapter", (*model)->config(), AdapterLoadOptions{});
  LS_CHECK(adapter_or.ok()) << adapter_or.status();
  std::shared_ptr<const PeftAdapter> adapter = std::move(adapter_or).value();
  const double load_s = Seconds(tl, Clock::now());
  std::printf("model: SmolLM-135M-shaped, random BF16 (%s); generated in %.1f s, loaded in %.1f s;"
              " adapter rank %d on all 7 projections\n",
              dir.c_str(), gen_s, load_s, kRank);

  const int max_b = *std::max_element(flags.batches.begin(), flags.batches.end());
  constexpr int32_t kBlockTokens = 16;
  const int32_t ctx = flags.prompt + 1;
  const int64_t blocks_per_seq = (ctx + kBlockTokens - 1) / kBlockTokens;
  auto kv = KvCache::Create(
      KvCache::ForModel(backend->get(), (*model)->config(), kBlockTokens, blocks_per_seq * max_b));
  LS_CHECK(kv.ok()) << kv.status();
  std::vector<std::vector<int32_t>> tables(static_cast<size_t>(max_b));
  for (auto& t : tables) LS_CHECK((*kv)->Reserve(&t, ctx).ok());

  Rng rng(3);
  std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(max_b));
  for (auto& p : prompts) {
    p.resize(static_cast<size_t>(flags.prompt));
    for (int32_t& t : p) t = static_cast<int32_t>(rng.Next() % kVocab);
  }
  std::vector<int32_t> next(static_cast<size_t>(max_b));
  for (int32_t& t : next) t = static_cast<int32_t>(rng.Next() % kVocab);

  // One step over the first `b` sequences: `n` tokens each after `cached`.
  auto step = [&](int b, bool with_adapter, int n, int cached) {
    ForwardBatch batch;
    for (int i = 0; i < b; ++i) {
      SequenceStep s;
      s.tokens = n == 1 && cached > 0
                     ? std::span<const int32_t>(&next[static_cast<size_t>(i)], 1)
                     : std::span<const int32_t>(prompts[static_cast<size_t>(i)]).subspan(0, n);
      s.num_cached = cached;
      s.block_table = tables[static_cast<size_t>(i)];
      if (with_adapter && i % 2 == 0) s.adapter = adapter;
      batch.sequences.push_back(s);
    }
    ForwardOutput out;
    const absl::Status st = (*model)->Forward(batch, (*kv)->view(), &out);
    LS_CHECK(st.ok()) << st;
  };

  std::vector<Row> rows;
  for (int b : flags.batches) {
    for (bool with_adapter : {false, true}) {
      const int adapted = with_adapter ? (b + 1) / 2 : 0;
      step(b, with_adapter, 1, 0);  // warm-up: workspace, adapter packing
      double best = 1e30;
      for (int r = 0; r < flags.prefill_reps; ++r) {
        const auto t0 = Clock::now();
        step(b, with_adapter, flags.prompt, 0);
        best = std::min(best, Seconds(t0, Clock::now()));
      }
      rows.push_back({"prefill", b, adapted, int64_t{b} * flags.prompt, best,
                      StepFlops(b, adapted, flags.prompt, 0)});
      step(b, with_adapter, 1, flags.prompt);  // warm-up at decode shape
      const auto t0 = Clock::now();
      for (int r = 0; r < flags.decode_steps; ++r) step(b, with_adapter, 1, flags.prompt);
      const double per_step = Seconds(t0, Clock::now()) / flags.decode_steps;
      rows.push_back({"decode", b, adapted, b, per_step, StepFlops(b, adapted, 1, flags.prompt)});
      std::fflush(stdout);
    }
  }

  std::printf("\nForward (prefill: B x %d tokens in one step, best of %d; decode: B x 1 token at"
              " context %d, mean of %d steps)\n",
              flags.prompt, flags.prefill_reps, flags.prompt, flags.decode_steps);
  std::printf("%-8s %4s %8s %8s %11s %10s %9s %14s %7s\n", "phase", "B", "adapted", "tokens",
              "ms/step", "tokens/s", "GFLOP/s", "sgemm GFLOP/s", "ratio");
  for (const Row& r : rows) {
    // The model's biggest GEMM at this step's row count: the fused gate_up
    // [tokens x 576] x [576 x 3072].
    const double sg = SgemmGflops(static_cast<int>(r.tokens), 2 * kInter, kHidden);
    const double g = r.flops / r.seconds / 1e9;
    std::printf("%-8s %4d %8d %8lld %11.2f %10.1f %9.2f %14.2f %6.0f%%\n", r.phase, r.batch,
                r.adapted, static_cast<long long>(r.tokens), r.seconds * 1e3,
                static_cast<double>(r.tokens) / r.seconds, g, sg, 100.0 * g / sg);
  }

  std::printf("\ncblas_sgemm alone, C[m,n] = A[m,k] W[n,k]^T (the model's GEMMs), best GFLOP/s\n");
  std::printf("%8s  %-28s %-28s %-28s\n", "m", "gate_up n=3072 k=576", "down n=576 k=1536",
              "lm_head n=49152 k=576");
  std::vector<int> ms;
  for (int b : flags.batches) {
    ms.push_back(b);
    ms.push_back(b * flags.prompt);
  }
  std::sort(ms.begin(), ms.end());
  ms.erase(std::unique(ms.begin(), ms.end()), ms.end());
  for (int m : ms) {
    std::printf("%8d  %-28.2f %-28.2f %-28.2f\n", m, SgemmGflops(m, 2 * kInter, kHidden),
                SgemmGflops(m, kHidden, kInter),
                m <= max_b ? SgemmGflops(m, kVocab, kHidden) : 0.0);
  }
  std::printf("(lm_head only at decode row counts; the forward computes logits for 1 row per"
              " sequence)\n");

  if (flags.keep_dir) {
    std::printf("kept %s\n", dir.c_str());
  } else {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
}

std::vector<int> ParseList(const std::string& s) {
  std::vector<int> v;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    const int x = std::atoi(s.substr(i, j - i).c_str());
    if (x > 0) v.push_back(x);
    i = j + 1;
  }
  return v;
}

}  // namespace
}  // namespace loraserve

int main(int argc, char** argv) {
  loraserve::Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* prefix) -> const char* {
      const size_t n = std::strlen(prefix);
      return a.compare(0, n, prefix) == 0 ? a.c_str() + n : nullptr;
    };
    if (const char* v = value("--batches=")) {
      f.batches = loraserve::ParseList(v);
    } else if (const char* v2 = value("--prompt=")) {
      f.prompt = std::max(1, std::atoi(v2));
    } else if (const char* v3 = value("--decode-steps=")) {
      f.decode_steps = std::max(1, std::atoi(v3));
    } else if (const char* v4 = value("--prefill-reps=")) {
      f.prefill_reps = std::max(1, std::atoi(v4));
    } else if (a == "--keep-dir") {
      f.keep_dir = true;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--batches=1,8,32] [--prompt=128] [--decode-steps=8]"
                   " [--prefill-reps=1] [--keep-dir]\n",
                   argv[0]);
      return 2;
    }
  }
  if (f.batches.empty()) f.batches = {1};
  loraserve::Run(f);
  return 0;
}
