// Forward benchmark on any backend (the model issue's CPU table; issue 7's
// decode step with and without LoRA): LlamaModel::Forward on a random BF16
// model of a built-in shape (bench/tools/model_shapes.h) written by the
// synthetic model generator into a temp dir (or --model-dir), with rank-r
// all-module PEFT adapters from the adapter-set generator, each loaded with
// PeftAdapter::Load and packed by the model's own adapter row cache (warmed
// before timing). Forward ends in a Synchronize (logits come back to the
// host), so host clocks time whole steps on every backend.
// --random-weights[=SEED] (SEED defaults to 1) writes no safetensors
// (make-model --no-weights: config + tokenizer only) and has the model
// generate its weights on the backend (LlamaModel::Options::
// random_weights_seed), so a Llama-7B/13B-shaped run needs no weight files
// and no minutes of writing them; a --model-dir with config.json is then
// used for its config alone.
//
// Sweep mode (default; the former cpu_forward_bench): per batch size B,
// prefill (B x --prompt tokens, one Forward, best of --prefill-reps) and
// decode (B x 1 token at context --prompt, mean of --decode-steps), each for
// the base model alone and with ceil(B/2) sequences on one adapter, next to
// the backend's own Gemm (cblas_sgemm on CPU) on the model's weights in the
// same run. GFLOP/s = useful work: 2 x matmul params x tokens + attention
// (4 x heads x head_dim x context per token and layer) + LoRA (2 x r x
// (in + out) per adapted projection and token) + the lm_head for 1 row per
// sequence.
//
// Decode mode (--decode-batch=B[,B...]): B sequences prefilled to --prompt
// tokens (untimed), then per --adapters entry U: --warmup steps at context
// --prompt, then --decode-steps timed steps, step s at context --prompt + s,
// every sequence one token, with the B sequences spread round-robin over
// min(U, B) adapters (U = 0: no LoRA). Reports median and p90 ms/step,
// tokens/s, the overhead over no LoRA next to issue 7's 5% target, and the
// memory-bound floor: (weights + KV + distinct adapters' rank-rows read) /
// the device copy bandwidth measured at start (CopyDeviceToDevice, read +
// write bytes per second), and whether the timed steps ran as decode-graph
// launches or op by op (--graphs=auto: graphs on CUDA; on/off force it).
//
// Usage: forward_bench [--device=cpu|cuda] [--shape=smollm-135m] [--model-dir=DIR]
//          [--random-weights[=SEED]] [--rank=16] [--prompt=128] [--decode-steps=8]
//          [--keep-dir] [--graphs=auto|on|off]
//          sweep:  [--batches=1,8,32] [--prefill-reps=1]
//          decode: --decode-batch=64 [--adapters=0,1,64] [--warmup=3]
// CPU threads: the backend's parallel-for uses every core; OpenBLAS its own.
#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/forward_bench_util.h"
#include "bench/tools/adapter_set.h"
#include "bench/tools/synthetic_model.h"
#include "common/status.h"
#include "engine/adapters/peft_adapter.h"
#include "engine/model/kv_cache.h"
#include "engine/model/llama_model.h"
#include "kernels/backend_factory.h"

namespace loraserve::forward_bench {
namespace {

constexpr double kTargetOverheadPct = 5.0;  // issue 7: one adapter <= 5% over the base step
constexpr int32_t kBlockTokens = 16;
constexpr int64_t kMaxPrefillTokens = 8192;  // decode mode's untimed prefill, per Forward

struct Flags {
  std::string device = "cpu";
  std::string shape = "smollm-135m";
  std::string model_dir;  // reused when it has config.json, else generated there and kept
  std::optional<uint64_t> random_weights;  // set: weights generated on the backend from this seed
  int rank = 16;
  std::vector<int> batches = {1, 8, 32};
  int prompt = 128;
  int decode_steps = 8;
  int prefill_reps = 1;
  std::vector<int> decode_batches;  // non-empty: decode mode
  std::vector<int> adapters = {0, 1, 64};
  int warmup = 3;
  bool keep_dir = false;
  LlamaModel::GraphMode graphs = LlamaModel::GraphMode::kAuto;  // --graphs=auto|on|off
};

using AdapterPtr = std::shared_ptr<const PeftAdapter>;

struct Bench {
  std::unique_ptr<Backend> backend;
  std::string dir;  // model dir; the temp dir's adapters/ holds the adapters
  std::string tmp;  // temp dir to remove at the end ("" when none)
  std::unique_ptr<LlamaModel> model;
  std::vector<AdapterPtr> adapters;
  std::unique_ptr<KvCache> kv;
  std::vector<std::vector<int32_t>> tables;  // per sequence
  std::vector<std::vector<int32_t>> prompts;
  std::vector<int32_t> next;  // the decode token of each sequence
  double copy_bw = 0;         // bytes read + written per second

  const ModelConfig& config() const { return model->config(); }
  // One Forward: sequence i gets tokens [0, n) of its prompt (or next[i] when
  // n == 1 and cached > 0) after `cached`, on adapter on[i] (may be null).
  absl::Status Step(int first, int b, const std::vector<AdapterPtr>& on, int n, int cached) {
    ForwardBatch batch;
    for (int i = first; i < first + b; ++i) {
      const auto u = static_cast<size_t>(i);
      SequenceStep s;
      s.tokens = n == 1 && cached > 0 ? std::span<const int32_t>(&next[u], 1)
                                      : std::span<const int32_t>(prompts[u]).subspan(0, n);
      s.num_cached = cached;
      s.block_table = tables[u];
      s.adapter = u < on.size() ? on[u] : nullptr;
      batch.sequences.push_back(s);
    }
    ForwardOutput out;
    return model->Forward(batch, kv->view(), &out);
  }
};

absl::Status Setup(const Flags& f, int num_adapters, int max_b, int ctx, Bench* b) {
  const bool cuda = f.device == "cuda";
  std::printf("backend: %s\n", std::string(b->backend->name()).c_str());
  const size_t copy_mib = cuda ? 1024 : 256;
  ASSIGN_OR_RETURN(b->copy_bw, CopyBandwidth(*b->backend, copy_mib << 20, cuda ? 20 : 5));
  std::printf("device copy bandwidth (CopyDeviceToDevice of %zu MiB, median): %.1f GB/s"
              " read+write\n", copy_mib, b->copy_bw / 1e9);

  std::string tmpl = (std::filesystem::temp_directory_path() / "loraserve_fwd_XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) return absl::InternalError("mkdtemp failed");
  b->tmp = tmpl;
  b->dir = f.model_dir.empty() ? tmpl + "/model" : f.model_dir;
  if (std::filesystem::exists(b->dir + "/config.json")) {
    std::printf("model: reusing %s (--shape ignored)\n", b->dir.c_str());
  } else {
    bench::SyntheticModelOptions mo;
    mo.shape = f.shape;
    mo.out_dir = b->dir;
    mo.seed = 1;
    mo.write_weights = !f.random_weights.has_value();
    ASSIGN_OR_RETURN(const bench::SyntheticModelSummary ms, bench::MakeSyntheticModel(mo));
    if (mo.write_weights) {
      std::printf("model: %s-shaped, random BF16, %.1f MB, written to %s in %.1f s\n",
                  f.shape.c_str(), double(ms.weight_bytes) / 1e6, b->dir.c_str(), ms.seconds);
    } else {
      std::printf("model: %s-shaped, config + tokenizer only, written to %s\n", f.shape.c_str(),
                  b->dir.c_str());
    }
  }
  if (f.random_weights.has_value()) {
    std::printf("model: --random-weights: weights generated on the backend from seed %llu"
                " (safetensors in the directory, if any, are not read)\n",
                static_cast<unsigned long long>(*f.random_weights));
  }
  bench::AdapterSetOptions ao;
  ao.base_dir = b->dir;
  ao.out_dir = tmpl + "/adapters";
  ao.num = num_adapters;
  ao.ranks = {f.rank};
  ao.distinct_weights = std::min(num_adapters, 8);  // hard links; each still loads separately
  ao.seed = 2;
  ASSIGN_OR_RETURN(const bench::AdapterSetSummary as, bench::MakeAdapterSet(ao));
  std::printf("adapters: %d x rank %d on all 7 projections, BF16, written to %s in %.1f s\n",
              as.count, f.rank, ao.out_dir.c_str(), as.seconds);

  const auto tl = Clock::now();
  LlamaModel::Options lo;
  lo.backend = b->backend.get();
  lo.model_dir = b->dir;
  lo.random_weights_seed = f.random_weights;
  lo.graphs = f.graphs;
  ASSIGN_OR_RETURN(b->model, LlamaModel::Create(lo));
  AdapterLoadOptions alo;
  alo.max_rank = std::max(alo.max_rank, f.rank);
  for (int i = 0; i < num_adapters; ++i) {
    ASSIGN_OR_RETURN(const std::string name, bench::FormatAdapterName(ao.name_format, i));
    ASSIGN_OR_RETURN(std::unique_ptr<PeftAdapter> a,
                     PeftAdapter::Load(ao.out_dir + "/" + name, b->config(), alo));
    b->adapters.push_back(std::move(a));
  }
  std::printf("loaded model (%.1f MB on the backend) and adapters in %.1f s\n",
              double(b->model->weights().bytes()) / 1e6, Seconds(tl, Clock::now()));

  const int64_t blocks_per_seq = (ctx + kBlockTokens - 1) / kBlockTokens;
  ASSIGN_OR_RETURN(b->kv, KvCache::Create(KvCache::ForModel(
                                  b->backend.get(), b->config(), kBlockTokens,
                                  blocks_per_seq * max_b)));
  b->tables.resize(static_cast<size_t>(max_b));
  for (auto& t : b->tables) RETURN_IF_ERROR(b->kv->Reserve(&t, ctx));
  Rng rng(3);
  const auto vocab = static_cast<uint64_t>(b->config().vocab_size);
  b->prompts.resize(static_cast<size_t>(max_b));
  for (auto& p : b->prompts) {
    p.resize(static_cast<size_t>(f.prompt));
    for (int32_t& t : p) t = static_cast<int32_t>(rng.Next() % vocab);
  }
  b->next.resize(static_cast<size_t>(max_b));
  for (int32_t& t : b->next) t = static_cast<int32_t>(rng.Next() % vocab);
  std::fflush(stdout);
  return absl::OkStatus();
}

// The model issue's table: prefill and decode GFLOP/s next to the backend's Gemm.
absl::Status RunSweep(const Flags& f, Bench& b) {
  struct Row {
    const char* phase;
    int batch, adapted;
    int64_t tokens;
    double seconds, flops;
  };
  const ModelConfig& c = b.config();
  const double lora_flops = LoraFlopsPerToken(*b.adapters[0]);
  std::vector<Row> rows;
  for (int bs : f.batches) {
    for (bool with_adapter : {false, true}) {
      std::vector<AdapterPtr> on(static_cast<size_t>(bs));
      for (int i = 0; with_adapter && i < bs; i += 2) on[static_cast<size_t>(i)] = b.adapters[0];
      const int adapted = with_adapter ? (bs + 1) / 2 : 0;
      RETURN_IF_ERROR(b.Step(0, bs, on, 1, 0));  // warm-up: workspace, adapter packing
      double best = 1e30;
      for (int r = 0; r < f.prefill_reps; ++r) {
        const auto t0 = Clock::now();
        RETURN_IF_ERROR(b.Step(0, bs, on, f.prompt, 0));
        best = std::min(best, Seconds(t0, Clock::now()));
      }
      rows.push_back({"prefill", bs, adapted, int64_t{bs} * f.prompt, best,
                      StepFlops(c, lora_flops, bs, adapted, f.prompt, 0)});
      RETURN_IF_ERROR(b.Step(0, bs, on, 1, f.prompt));  // warm-up at decode shape
      const auto t0 = Clock::now();
      for (int r = 0; r < f.decode_steps; ++r) RETURN_IF_ERROR(b.Step(0, bs, on, 1, f.prompt));
      const double per_step = Seconds(t0, Clock::now()) / f.decode_steps;
      rows.push_back(
          {"decode", bs, adapted, bs, per_step, StepFlops(c, lora_flops, bs, adapted, 1, f.prompt)});
    }
  }
  const LayerWeights& l0 = b.model->weights().layer(0);
  const int64_t h = c.hidden_size, inter = c.intermediate_size;
  std::printf("\nForward (prefill: B x %d tokens in one step, best of %d; decode: B x 1 token at"
              " context %d, mean of %d steps)\n",
              f.prompt, f.prefill_reps, f.prompt, f.decode_steps);
  std::printf("%-8s %4s %8s %8s %11s %10s %9s %14s %7s\n", "phase", "B", "adapted", "tokens",
              "ms/step", "tokens/s", "GFLOP/s", "gemm GFLOP/s", "ratio");
  for (const Row& r : rows) {
    // The model's biggest GEMM at this step's row count: the fused gate_up.
    ASSIGN_OR_RETURN(const double sg, GemmGflops(*b.backend, l0.gate_up.data(), r.tokens,
                                                 2 * inter, h));
    const double g = r.flops / r.seconds / 1e9;
    std::printf("%-8s %4d %8d %8lld %11.2f %10.1f %9.2f %14.2f %6.0f%%\n", r.phase, r.batch,
                r.adapted, static_cast<long long>(r.tokens), r.seconds * 1e3,
                static_cast<double>(r.tokens) / r.seconds, g, sg, 100.0 * g / sg);
  }
  std::printf("\nbackend Gemm alone (%s), y[m,n] = x[m,k] w[n,k]^T on the model's weights,"
              " best GFLOP/s\n", b.backend->kind() == BackendKind::kCpu ? "cblas_sgemm" : "cuda");
  std::printf("%8s  %-28s %-28s %-28s\n", "m",
              absl::StrCat("gate_up n=", 2 * inter, " k=", h).c_str(),
              absl::StrCat("down n=", h, " k=", inter).c_str(),
              absl::StrCat("lm_head n=", c.vocab_size, " k=", h).c_str());
  std::vector<int> ms;
  for (int bs : f.batches) ms.insert(ms.end(), {bs, bs * f.prompt});
  std::sort(ms.begin(), ms.end());
  ms.erase(std::unique(ms.begin(), ms.end()), ms.end());
  const int max_b = *std::max_element(f.batches.begin(), f.batches.end());
  for (int m : ms) {
    ASSIGN_OR_RETURN(const double gu, GemmGflops(*b.backend, l0.gate_up.data(), m, 2 * inter, h));
    ASSIGN_OR_RETURN(const double dn, GemmGflops(*b.backend, l0.down.data(), m, h, inter));
    std::string lm = "-";
    if (m <= max_b) {
      ASSIGN_OR_RETURN(const double g,
                       GemmGflops(*b.backend, b.model->weights().lm_head(), m, c.vocab_size, h));
      lm = absl::StrFormat("%.2f", g);
    }
    std::printf("%8d  %-28.2f %-28.2f %-28s\n", m, gu, dn, lm.c_str());
  }
  std::printf("(lm_head only at decode row counts; the forward computes logits for 1 row per"
              " sequence)\n");
  return absl::OkStatus();
}

// Issue 7's table: decode step time without LoRA, on one adapter, on U adapters.
absl::Status RunDecode(const Flags& f, Bench& b) {
  const ModelConfig& c = b.config();
  const size_t elt = b.backend->elt_size();
  const double weights_total = double(b.model->weights().bytes());
  // The embedding table is only gathered (B rows) unless it is also the lm_head.
  const double embed = c.tie_word_embeddings ? 0.0 : double(c.vocab_size * c.hidden_size) * elt;
  bool all_met = true;
  for (int bs : f.decode_batches) {
    for (int first = 0; first < bs;) {  // untimed prefill, chunked
      const int n = std::clamp<int>(static_cast<int>(kMaxPrefillTokens / f.prompt), 1, bs - first);
      RETURN_IF_ERROR(b.Step(first, n, {}, f.prompt, 0));
      first += n;
    }
    const double mean_ctx = f.prompt + (f.decode_steps + 1) / 2.0;
    const double fixed = weights_total - embed + double(bs * c.hidden_size) * elt +
                         bs * KvBytesRead(c, mean_ctx, elt);
    std::printf("\nDecode step, B=%d sequences x 1 token at context %d..%d (prompt %d), %d timed"
                " steps after %d warm-up; LoRA rank %d on all 7 projections\n",
                bs, f.prompt + 1, f.prompt + f.decode_steps, f.prompt, f.decode_steps, f.warmup,
                f.rank);
    std::printf("  bytes read per step: weights %.1f MB, KV %.1f MB (mean context %.1f); copy"
                " bandwidth %.1f GB/s read+write\n",
                (weights_total - embed + double(bs * c.hidden_size) * elt) / 1e6,
                bs * KvBytesRead(c, mean_ctx, elt) / 1e6, mean_ctx, b.copy_bw / 1e9);
    double base_ms = 0;
    std::vector<int> done;  // capped adapter counts already run at this B
    for (int u_flag : f.adapters) {
      const int u = std::min(u_flag, bs);
      if (std::count(done.begin(), done.end(), u) > 0) continue;
      done.push_back(u);
      std::vector<AdapterPtr> on(static_cast<size_t>(bs));
      double adapter_bytes = 0;
      for (int i = 0; i < u; ++i) adapter_bytes += AdapterRowBytes(*b.adapters[size_t(i)], elt);
      for (int i = 0; u > 0 && i < bs; ++i) on[size_t(i)] = b.adapters[size_t(i % u)];
      for (int w = 0; w < f.warmup; ++w) RETURN_IF_ERROR(b.Step(0, bs, on, 1, f.prompt));
      const int64_t launches_before = b.model->graph_stats().launches;
      std::vector<double> ms;
      for (int s = 0; s < f.decode_steps; ++s) {
        const auto t0 = Clock::now();
        RETURN_IF_ERROR(b.Step(0, bs, on, 1, f.prompt + s));
        ms.push_back(Seconds(t0, Clock::now()) * 1e3);
      }
      const double p50 = Percentile(ms, 0.5), p90 = Percentile(ms, 0.9);
      const double floor_ms = (fixed + adapter_bytes) / b.copy_bw * 1e3;
      const std::string label =
          u == 0 ? "no LoRA"
                 : absl::StrCat(u, u == 1 ? " adapter" : " adapters", u_flag > bs ? " (capped)" : "");
      std::string vs_base;
      if (u == 0) {
        base_ms = p50;
      } else if (base_ms > 0) {
        const double pct = 100.0 * (p50 / base_ms - 1.0);
        const bool met = pct <= kTargetOverheadPct;
        if (u == 1) all_met = all_met && met;
        vs_base = absl::StrFormat(", %+.1f%% over no LoRA (target <= %.0f%%: %s)", pct,
                                  kTargetOverheadPct, met ? "met" : "MISSED");
      }
      const bool graphed = b.model->graph_stats().launches - launches_before == f.decode_steps;
      std::printf("  %-22s %.3f ms/step (p90 %.3f), %.0f tokens/s%s; floor %.3f ms"
                  " (%.0f%% of the device's copy bandwidth); %s\n",
                  label.c_str(), p50, p90, bs / p50 * 1e3, vs_base.c_str(), floor_ms,
                  100.0 * floor_ms / p50, graphed ? "graph launches" : "op by op");
      std::fflush(stdout);
    }
  }
  const bool has_pair = std::count(f.adapters.begin(), f.adapters.end(), 0) > 0 &&
                        std::count(f.adapters.begin(), f.adapters.end(), 1) > 0;
  if (has_pair) {
    std::printf("\nissue 7 target (one adapter <= %.0f%% over the base decode step): %s\n",
                kTargetOverheadPct, all_met ? "met at every B" : "MISSED");
  }
  return absl::OkStatus();
}

absl::Status Run(const Flags& f) {
  if (f.device != "cpu" && f.device != "cuda") {
    return absl::InvalidArgumentError(absl::StrCat("--device=", f.device, ": cpu or cuda"));
  }
  Bench b;
  const BackendKind kind = f.device == "cuda" ? BackendKind::kCuda : BackendKind::kCpu;
  absl::StatusOr<std::unique_ptr<Backend>> backend = CreateBackend(kind, BackendOptions{});
  if (!backend.ok() && kind == BackendKind::kCuda && CudaBackendCompiled() &&
      CudaDeviceCount() == 0) {
    std::printf("forward_bench: no CUDA device (%s); nothing measured\n",
                std::string(backend.status().message()).c_str());
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(backend.status());
  b.backend = *std::move(backend);
  const bool decode = !f.decode_batches.empty();
  const int max_b = decode ? *std::max_element(f.decode_batches.begin(), f.decode_batches.end())
                           : *std::max_element(f.batches.begin(), f.batches.end());
  int num_adapters = 1;
  for (int u : f.adapters) num_adapters = std::max(num_adapters, decode ? std::min(u, max_b) : 1);
  const int ctx = decode ? f.prompt + f.decode_steps : f.prompt + 1;
  absl::Status s = Setup(f, num_adapters, max_b, ctx, &b);
  if (s.ok()) s = decode ? RunDecode(f, b) : RunSweep(f, b);
  b.kv.reset();
  b.model.reset();
  if (!b.tmp.empty() && !f.keep_dir) {
    std::error_code ec;
    std::filesystem::remove_all(b.tmp, ec);
  } else if (!b.tmp.empty()) {
    std::printf("kept %s\n", b.tmp.c_str());
  }
  return s;
}

}  // namespace
}  // namespace loraserve::forward_bench

int main(int argc, char** argv) {
  using loraserve::forward_bench::ParseList;
  loraserve::forward_bench::Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* prefix) -> const char* {
      const size_t n = std::strlen(prefix);
      return a.compare(0, n, prefix) == 0 ? a.c_str() + n : nullptr;
    };
    auto positive = [](const char* v) { return std::max(1, std::atoi(v)); };
    if (const char* v = value("--device=")) {
      f.device = v;
    } else if (const char* v1 = value("--shape=")) {
      f.shape = v1;
    } else if (const char* v2 = value("--model-dir=")) {
      f.model_dir = v2;
    } else if (const char* v3 = value("--rank=")) {
      f.rank = positive(v3);
    } else if (const char* v4 = value("--batches=")) {
      f.batches = ParseList(v4, 1);
    } else if (const char* v5 = value("--prompt=")) {
      f.prompt = positive(v5);
    } else if (const char* v6 = value("--decode-steps=")) {
      f.decode_steps = positive(v6);
    } else if (const char* v7 = value("--prefill-reps=")) {
      f.prefill_reps = positive(v7);
    } else if (const char* v8 = value("--decode-batch=")) {
      f.decode_batches = ParseList(v8, 1);
    } else if (const char* v9 = value("--adapters=")) {
      f.adapters = ParseList(v9, 0);
    } else if (const char* v10 = value("--warmup=")) {
      f.warmup = std::max(0, std::atoi(v10));
    } else if (a == "--keep-dir") {
      f.keep_dir = true;
    } else if (const char* v12 = value("--graphs=")) {
      const std::string g = v12;
      if (g == "auto") {
        f.graphs = loraserve::LlamaModel::GraphMode::kAuto;
      } else if (g == "on") {
        f.graphs = loraserve::LlamaModel::GraphMode::kOn;
      } else if (g == "off") {
        f.graphs = loraserve::LlamaModel::GraphMode::kOff;
      } else {
        std::fprintf(stderr, "forward_bench: --graphs=%s: auto, on or off\n", v12);
        return 2;
      }
    } else if (a == "--random-weights") {
      f.random_weights = 1;
    } else if (const char* v11 = value("--random-weights=")) {
      char* end = nullptr;
      f.random_weights = std::strtoull(v11, &end, 10);
      if (*v11 == '\0' || *end != '\0') {
        std::fprintf(stderr, "forward_bench: --random-weights=%s is not a seed (an unsigned"
                             " integer)\n", v11);
        return 2;
      }
    } else {
      std::fprintf(stderr,
                   "usage: %s [--device=cpu|cuda] [--shape=smollm-135m|llama-7b|llama-13b|tiny]\n"
                   "  [--model-dir=DIR] [--random-weights[=SEED]] [--rank=16] [--prompt=128]\n"
                   "  [--decode-steps=8] [--keep-dir] [--graphs=auto|on|off]\n"
                   "  sweep:  [--batches=1,8,32] [--prefill-reps=1]\n"
                   "  decode: --decode-batch=B[,B...] [--adapters=0,1,64] [--warmup=3]\n",
                   argv[0]);
      return 2;
    }
  }
  if (f.batches.empty()) f.batches = {1};
  if (f.adapters.empty()) f.adapters = {0};
  const absl::Status s = loraserve::forward_bench::Run(f);
  if (!s.ok()) {
    std::fprintf(stderr, "forward_bench: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
