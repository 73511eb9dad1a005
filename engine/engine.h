// Engine: the EngineApi implementation (DESIGN.md, "The data path of one
// request"). Submit() validates a request on the caller's thread and puts it
// in a mutex-guarded inbox; one engine thread owns the scheduler, the KV
// cache and adapter residency and loops: drain the inbox (new requests,
// aborts, shutdown) -> deadlines -> Schedule() -> tell residency the
// prefetch list -> one LlamaModel::Forward for the mixed multi-adapter batch
// -> sample + detokenize + stop checks -> events to the per-request sinks ->
// OnStepDone (finished requests free their KV and unpin their adapter).
// Every accepted request ends with exactly one terminal event.
//
// Adapters by name live in an AdapterCatalog (loads and validation run on
// the caller's thread; the catalog keeps path + metadata, the loaded copy
// goes to the residency's budgeted host cache). Memory is one UnifiedPool (memory/unified_pool.h) whose pages hold
// both KV blocks (EngineKvManager, engine_kv_manager.h) and adapter rank-rows
// (EngineAdapterResidency, engine_adapter_residency.h: refs per accepted
// request, pins per scheduled request, readiness after the host->pool copy,
// prefetch of the scheduler's list, LRU eviction of idle adapters before KV
// is refused). The model reads LoRA slices from the residency.
//
// Owns: backend, model, tokenizer, pool, scheduler, sampler, catalog,
// residency, the engine thread and every accepted request's state.
// Called by: the server (any thread), tests, benchmarks.
// Thread-safety: every public method is thread-safe; sinks are called on the
// engine thread (they may call Abort/Submit, never block).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/adapter_catalog.h"
#include "engine/engine_adapter_residency.h"
#include "engine/engine_api.h"
#include "engine/engine_kv_manager.h"
#include "engine/model/llama_model.h"
#include "engine/model/tokenizer.h"
#include "engine/request_state.h"
#include "engine/sampler/sampler.h"
#include "engine/scheduler/scheduler.h"
#include "kernels/backend.h"
#include "kernels/backend_kind.h"
#include "memory/unified_pool.h"

namespace loraserve {

struct EngineOptions {
  std::string model_dir;  // HF dir: config.json, safetensors, tokenizer.json
  // Set: the weights are not read from safetensors but generated on the
  // backend from this seed (ModelWeights::CreateRandom), so model_dir needs
  // only config.json and tokenizer.json. For benchmarks: outputs are noise.
  std::optional<uint64_t> random_weights_seed;
  // Decode steps replayed from captured graphs on CUDA (LlamaModel::GraphMode
  // kAuto); false runs every step op by op (kOff).
  bool cuda_graphs = true;
  // Decode steps of more sequences than this run op by op (LlamaModel::
  // Options::max_graph_batch).
  int32_t cuda_graph_max_batch = 256;
  // Rows sampled with temperature and top-k / top-p / min-p (no penalties,
  // no logprobs) copy only their candidates (Backend::SampleCandidates) and
  // are decided by Sampler::SampleFromCandidates, with the same tokens as
  // the host path; false copies every sampled row's logits (tests compare).
  bool device_sampling = true;
  BackendKind backend = BackendKind::kCpu;
  int num_threads = 0;  // backend threads; 0 = hardware concurrency
  // Scheduler (engine/scheduler/scheduler.h SchedulerConfig).
  int32_t max_num_seqs = 64;
  int32_t max_num_batched_tokens = 2048;
  int32_t max_loras = 8;
  int32_t max_prefill_chunk = 0;
  int32_t max_lora_rank = 64;  // adapters above it are refused at load
  // The host tier (DESIGN.md, "Residency tiers"): loaded adapters kept in
  // host memory, LRU by last use; adapters referenced by accepted requests
  // are never dropped. A dropped adapter is reloaded from its PEFT directory
  // (off the engine thread) when a request needs it again.
  // max_cpu_loras: adapters at most (vLLM --max-cpu-loras); 0 = unlimited,
  // else >= max_loras. host_cache_bytes: their bytes at most; 0 = unlimited.
  int32_t max_cpu_loras = 0;
  size_t host_cache_bytes = 0;
  // The unified pool (KV blocks and adapter rank-rows share its pages; one
  // page = one KV block of block_tokens tokens for every layer): pool_bytes
  // when > 0, else kv_cache_blocks pages when > 0, else kv_cache_bytes.
  int32_t block_tokens = 16;
  int64_t pool_bytes = 0;
  int64_t kv_cache_blocks = 0;
  int64_t kv_cache_bytes = int64_t{256} << 20;
  // When > 0 and neither pool_bytes nor kv_cache_blocks is set, the pool is
  // sized from the backend's memory instead (engine/engine_pool_sizing.h):
  // what is left of this share of it after the weights and the activation
  // workspace (reserved for max_num_batched_tokens) are allocated.
  double gpu_memory_utilization = 0;
  int device = 0;  // CUDA device ordinal
  // Tests only: builds the backend instead of CreateBackend(backend, ...)
  // (e.g. a wrapper that injects failures).
  std::function<absl::StatusOr<std::unique_ptr<Backend>>()> backend_factory;
  int32_t max_waiting = 1024;  // accepted, not yet running; beyond: ResourceExhausted
  // Seed policy: a request without a seed gets SplitMix64(seed + its
  // engine id) when set (reproducible runs), else a random-device seed.
  std::optional<uint64_t> seed;
  absl::Duration idle_poll = absl::Milliseconds(50);  // idle loop wake-up
};

class Engine final : public EngineApi {
 public:
  using Options = EngineOptions;
  // Loads config, tokenizer (model_dir/tokenizer.json) and weights, creates
  // the backend and the KV cache, and starts the engine thread.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(const Options& options);
  // Shutdown(ZeroDuration()) if not done yet.
  ~Engine() override;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  absl::Status Submit(GenerationRequest request, std::shared_ptr<GenerationSink> sink) override;
  bool Abort(const std::string& request_id) override;
  absl::StatusOr<LoadAdapterResult> LoadAdapter(const std::string& name,
                                                const std::string& path) override;
  absl::Status UnloadAdapter(const std::string& name) override;
  std::vector<AdapterDescription> ListAdapters() const override;
  EngineStats Stats() const override;
  std::vector<AdapterLoadRecord> TakeAdapterLoads() override;
  const Tokenizer& tokenizer() const override { return *tokenizer_; }
  int32_t vocab_size() const override { return vocab_size_; }
  int32_t max_context() const override { return max_context_; }

  // Stops accepting (Submit -> Unavailable), lets in-flight requests run for
  // up to `grace`, cancels the rest (kCancelled, error Unavailable), stops
  // the thread. Idempotent; blocks until the thread has exited.
  void Shutdown(absl::Duration grace);

  // Blocks until nothing is in flight and the stats snapshot is current, or
  // `timeout` passes (DeadlineExceeded). For tests and benchmarks.
  absl::Status WaitIdle(absl::Duration timeout) const;

  const ModelConfig& model_config() const { return model_->config(); }
  const Options& options() const { return options_; }

 private:
  struct Inbox {
    std::vector<std::unique_ptr<RequestState>> requests;
    std::vector<RequestId> aborts;
    std::vector<AdapterKey> retires;  // unloaded adapter objects
  };

  explicit Engine(const Options& options) : options_(options) {}
  absl::Status Init();

  // Engine thread.
  void Loop();
  // Moves the inbox out; waits up to idle_poll for work when `idle`.
  Inbox TakeInbox(bool idle, bool* shutting_down, absl::Time* shutdown_deadline);
  void Admit(std::unique_ptr<RequestState> state);
  void CancelExpired(absl::Time now);
  void CancelAll(const absl::Status& why);
  // One schedule + forward + sample step (engine_step.cc). False when the
  // batch was empty.
  bool Step();
  void FailBatch(const ScheduleResult& sched, const absl::Status& error);
  // Ends waiting requests whose adapter can never become ready.
  void FailUnloadable();
  // Ends `id` (its terminal event already pushed): unpin, forget.
  void Release(RequestId id);
  void PublishStats();

  const Options options_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<LlamaModel> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<AdapterCatalog> catalog_;
  // Declared in this order so they are destroyed kv_, residency_, pool_.
  std::unique_ptr<UnifiedPool> pool_;
  std::unique_ptr<EngineAdapterResidency> residency_;
  std::unique_ptr<EngineKvManager> kv_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<Sampler> sampler_;
  RequestLimits limits_;
  int32_t vocab_size_ = 0;
  int32_t max_context_ = 0;

  // Engine thread only.
  absl::flat_hash_map<RequestId, std::unique_ptr<RequestState>> active_;
  int64_t num_with_deadline_ = 0;
  int64_t prompt_tokens_total_ = 0;
  int64_t generation_tokens_total_ = 0;
  int64_t host_loads_ok_ = 0;
  int64_t host_loads_failed_ = 0;
  ForwardOutput forward_out_;
  std::vector<float> fallback_row_;  // [vocab] a row its candidates could not decide
  std::vector<SampledToken> sampled_;  // per scheduled sequence, this step's token
  std::vector<StepOutput> step_outputs_;

  // The inbox, the in-flight id table and the published snapshot.
  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<RequestState>> inbox_ ABSL_GUARDED_BY(mu_);
  std::vector<RequestId> abort_inbox_ ABSL_GUARDED_BY(mu_);
  std::vector<AdapterKey> retire_inbox_ ABSL_GUARDED_BY(mu_);
  bool host_copies_queued_ ABSL_GUARDED_BY(mu_) = false;  // LoadAdapter queued one
  std::deque<AdapterLoadRecord> load_records_ ABSL_GUARDED_BY(mu_);
  // request_id -> engine id, from acceptance to the terminal event.
  absl::flat_hash_map<std::string, RequestId> in_flight_ ABSL_GUARDED_BY(mu_);
  RequestId next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time shutdown_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  int64_t sched_waiting_ ABSL_GUARDED_BY(mu_) = 0;  // scheduler queue at last publish
  EngineStats stats_ ABSL_GUARDED_BY(mu_);
  bool stats_current_ ABSL_GUARDED_BY(mu_) = true;  // false from Submit until published

  absl::Mutex join_mu_;
  std::thread thread_ ABSL_GUARDED_BY(join_mu_);
};

}  // namespace loraserve
