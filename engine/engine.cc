#include "engine/engine.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status.h"
#include "engine/engine_pool_sizing.h"
#include "kernels/backend_factory.h"

namespace loraserve {
namespace {

uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(const Options& options) {
  auto engine = std::unique_ptr<Engine>(new Engine(options));
  RETURN_IF_ERROR(engine->Init());
  absl::MutexLock lock(&engine->join_mu_);
  engine->thread_ = std::thread([e = engine.get()] { e->Loop(); });
  return engine;
}

absl::Status Engine::Init() {
  const Options& o = options_;
  if (o.max_waiting < 1) return absl::InvalidArgumentError("engine: max_waiting must be >= 1");
  if (o.block_tokens < 1) return absl::InvalidArgumentError("engine: block_tokens must be >= 1");
  if (o.max_cpu_loras < 0 || (o.max_cpu_loras > 0 && o.max_cpu_loras < o.max_loras)) {
    return absl::InvalidArgumentError(
        absl::StrCat("engine: max_cpu_loras (", o.max_cpu_loras,
                     ") must be 0 (unlimited) or >= max_loras (", o.max_loras, ")"));
  }
  const absl::Time start = absl::Now();
  LS_LOG(INFO) << "engine: loading " << o.model_dir << " on " << BackendKindName(o.backend);
  BackendOptions bo;
  bo.num_threads = o.num_threads;
  bo.device = o.device;
  if (o.backend_factory) {
    ASSIGN_OR_RETURN(backend_, o.backend_factory());
  } else {
    ASSIGN_OR_RETURN(backend_, CreateBackend(o.backend, bo));
  }

  LlamaModel::Options mo;
  mo.backend = backend_.get();
  mo.model_dir = o.model_dir;
  mo.random_weights_seed = o.random_weights_seed;
  mo.graphs = o.cuda_graphs ? LlamaModel::GraphMode::kAuto : LlamaModel::GraphMode::kOff;
  mo.max_graph_batch = o.cuda_graph_max_batch;
  if (o.random_weights_seed.has_value()) {
    LS_LOG(WARNING) << "engine: RANDOM weights (seed " << *o.random_weights_seed
                    << "), not the model's safetensors: outputs are meaningless";
  }
  ASSIGN_OR_RETURN(model_, LlamaModel::Create(mo));
  const ModelConfig& config = model_->config();
  LS_LOG(INFO) << "engine: model " << config.architecture << ", " << config.num_hidden_layers
               << " layers, hidden " << config.hidden_size << ", vocab " << config.vocab_size
               << ", context " << config.max_context();
  ASSIGN_OR_RETURN(tokenizer_, Tokenizer::Load(o.model_dir + "/tokenizer.json"));
  vocab_size_ = static_cast<int32_t>(config.vocab_size);
  max_context_ = static_cast<int32_t>(std::min<int64_t>(config.max_context(), 1 << 30));

  // The unified pool: one page = one KV block for every layer (and at least
  // the longest adapter rank-row).
  PoolGeometry geometry;
  geometry.num_layers = config.num_hidden_layers;
  geometry.num_kv_heads = config.num_key_value_heads;
  geometry.head_dim = static_cast<int32_t>(config.head_dim);
  geometry.block_tokens = o.block_tokens;
  geometry.max_row_elems = std::max<int64_t>(
      {config.hidden_size, config.intermediate_size,
       int64_t{config.num_attention_heads} * config.head_dim});
  ASSIGN_OR_RETURN(const int64_t page_bytes, ComputePageBytes(geometry, backend_->elt_size()));
  // The activation workspace first, so the pool is sized from what is left.
  RETURN_IF_ERROR(model_->ReserveActivations(o.max_num_batched_tokens, o.max_num_seqs,
                                             std::min(o.max_lora_rank, kMaxLoraRank)));
  int64_t pool_bytes = o.pool_bytes;
  if (pool_bytes <= 0 && o.kv_cache_blocks <= 0 && o.gpu_memory_utilization > 0) {
    ASSIGN_OR_RETURN(const Backend::MemoryInfo memory, backend_->GetMemoryInfo());
    ASSIGN_OR_RETURN(pool_bytes,
                     PoolBytesForUtilization(memory, o.gpu_memory_utilization, page_bytes));
    LS_LOG(INFO) << "engine: pool sized from gpu_memory_utilization=" << o.gpu_memory_utilization
                 << ": " << pool_bytes << " bytes (" << memory.free_bytes << " of "
                 << memory.total_bytes << " bytes were free)";
  } else if (pool_bytes <= 0) {
    pool_bytes = o.kv_cache_blocks > 0 ? o.kv_cache_blocks * page_bytes : o.kv_cache_bytes;
  }
  UnifiedPool::Options po;
  po.backend = backend_.get();
  po.page_bytes = page_bytes;
  po.pool_bytes = pool_bytes;
  ASSIGN_OR_RETURN(pool_, UnifiedPool::Create(po));
  EngineAdapterResidency::Options ro;
  ro.pool = pool_.get();
  ro.host_budget_bytes = o.host_cache_bytes;
  ro.host_max_adapters = o.max_cpu_loras;
  ro.loader = [base = config, load = AdapterLoadOptions{.max_rank = o.max_lora_rank}](
                  const std::string& path)
      -> absl::StatusOr<std::shared_ptr<const AdapterWeights>> {
    ASSIGN_OR_RETURN(std::unique_ptr<PeftAdapter> a, PeftAdapter::Load(path, base, load));
    return std::shared_ptr<const AdapterWeights>(std::move(a));
  };
  ASSIGN_OR_RETURN(residency_, EngineAdapterResidency::Create(ro));
  kv_ = std::make_unique<EngineKvManager>(pool_.get(), MakeKvLayout(geometry, page_bytes));
  LS_LOG(INFO) << "engine: unified pool of " << pool_->num_pages() << " pages x " << page_bytes
               << " bytes (" << o.block_tokens << " tokens of KV per page)";

  SchedulerConfig sc;
  sc.max_num_batched_tokens = o.max_num_batched_tokens;
  sc.max_num_seqs = o.max_num_seqs;
  sc.max_loras = o.max_loras;
  sc.block_tokens = o.block_tokens;
  sc.max_prefill_chunk = o.max_prefill_chunk;
  ASSIGN_OR_RETURN(scheduler_, Scheduler::Create(sc, kv_.get(), residency_.get()));
  sampler_ = std::make_unique<Sampler>(vocab_size_);

  AdapterCatalog::Options co;
  co.base = config;
  co.load.max_rank = o.max_lora_rank;
  catalog_ = std::make_unique<AdapterCatalog>(std::move(co));

  limits_.tokenizer = tokenizer_.get();
  limits_.vocab_size = vocab_size_;
  limits_.max_context = max_context_;
  limits_.eos_token_ids = config.eos_token_ids;
  for (int32_t id : tokenizer_->eos_ids()) {
    if (std::find(limits_.eos_token_ids.begin(), limits_.eos_token_ids.end(), id) ==
        limits_.eos_token_ids.end()) {
      limits_.eos_token_ids.push_back(id);
    }
  }
  {
    absl::MutexLock lock(&mu_);
    stats_.max_loras = o.max_loras;
    stats_.pool_pages_free = kv_->NumFreeBlocks();
    stats_.pool_pages_total = pool_->num_pages();
    stats_.pool_page_bytes = pool_->page_bytes();
  }
  LS_LOG(INFO) << "engine: ready in " << absl::FormatDuration(absl::Now() - start);
  return absl::OkStatus();
}

Engine::~Engine() { Shutdown(absl::ZeroDuration()); }

absl::Status Engine::Submit(GenerationRequest request, std::shared_ptr<GenerationSink> sink) {
  std::optional<AdapterCatalog::Entry> adapter;
  if (!request.adapter.empty()) {
    adapter = catalog_->Find(request.adapter);
    if (!adapter.has_value()) {
      return absl::NotFoundError(absl::StrCat("adapter \"", request.adapter, "\" is not loaded"));
    }
  }
  std::optional<uint64_t> seed;
  // The id is taken below; the seed policy needs it only when configured.
  const std::string request_id = request.request_id;
  RequestId id;
  {
    absl::MutexLock lock(&mu_);
    id = next_id_++;
  }
  if (options_.seed.has_value()) seed = SplitMix64(*options_.seed + id);
  ASSIGN_OR_RETURN(std::unique_ptr<RequestState> state,
                   RequestState::Create(std::move(request), std::move(sink), limits_, seed));
  state->id = id;
  absl::MutexLock lock(&mu_);
  if (adapter.has_value()) {
    // Resolved again under mu_, which UnloadAdapter also holds: a request
    // accepted here is in the inbox before the unload's retire.
    adapter = catalog_->Find(state->request().adapter);
    if (!adapter.has_value()) {
      return absl::NotFoundError(
          absl::StrCat("adapter \"", state->request().adapter, "\" is not loaded"));
    }
    state->adapter_key = adapter->key;
    state->adapter_path = adapter->path;
  }
  if (shutting_down_) return absl::UnavailableError("engine is shutting down");
  if (in_flight_.contains(request_id)) {
    return absl::AlreadyExistsError(absl::StrCat("request_id \"", request_id, "\" is in flight"));
  }
  if (sched_waiting_ + static_cast<int64_t>(inbox_.size()) >= options_.max_waiting) {
    return absl::ResourceExhaustedError(
        absl::StrCat("waiting queue is full (", options_.max_waiting, " requests)"));
  }
  in_flight_.emplace(request_id, id);
  inbox_.push_back(std::move(state));
  stats_current_ = false;
  return absl::OkStatus();
}

bool Engine::Abort(const std::string& request_id) {
  absl::MutexLock lock(&mu_);
  auto it = in_flight_.find(request_id);
  if (it == in_flight_.end()) return false;
  abort_inbox_.push_back(it->second);
  return true;
}

absl::StatusOr<LoadAdapterResult> Engine::LoadAdapter(const std::string& name,
                                                      const std::string& path) {
  ASSIGN_OR_RETURN(AdapterCatalog::LoadResult loaded, catalog_->Load(name, path));
  if (!loaded.already_loaded) {
    if (absl::Status fits = residency_->CheckFits(*loaded.loaded); !fits.ok()) {
      (void)UnloadAdapter(name);
      return absl::InvalidArgumentError(
          absl::StrCat("adapter \"", name, "\" cannot be served: ", fits.message()));
    }
    // Before the name can be retired: UnloadAdapter's retire comes after it.
    residency_->QueueHostCopy(loaded.entry.key, loaded.entry.path, std::move(loaded.loaded));
    absl::MutexLock lock(&mu_);
    host_copies_queued_ = true;
    stats_current_ = false;
  }
  LoadAdapterResult r;
  r.adapter = AdapterCatalog::Describe(loaded.entry);
  r.adapter.in_use = residency_->InUse(loaded.entry.key);
  r.already_loaded = loaded.already_loaded;
  return r;
}

absl::Status Engine::UnloadAdapter(const std::string& name) {
  absl::MutexLock lock(&mu_);
  std::optional<AdapterCatalog::Entry> e = catalog_->Find(name);
  RETURN_IF_ERROR(catalog_->Unload(name));
  if (e.has_value()) {
    retire_inbox_.push_back(e->key);
    stats_current_ = false;
  }
  return absl::OkStatus();
}

std::vector<AdapterDescription> Engine::ListAdapters() const {
  std::vector<AdapterDescription> out;
  for (const AdapterCatalog::Entry& e : catalog_->List()) {
    AdapterDescription d = AdapterCatalog::Describe(e);
    d.in_use = residency_->InUse(e.key);
    d.last_used = residency_->LastUsed(e.key);
    if (residency_->OnDevice(e.key)) {
      d.tier = AdapterTier::kDevice;
    } else if (residency_->OnHost(e.key)) {
      d.tier = AdapterTier::kHost;
    } else {
      d.tier = AdapterTier::kDisk;
    }
    out.push_back(std::move(d));
  }
  return out;
}

EngineStats Engine::Stats() const {
  absl::MutexLock lock(&mu_);
  EngineStats s = stats_;
  s.waiting += static_cast<int64_t>(inbox_.size());
  return s;
}

std::vector<AdapterLoadRecord> Engine::TakeAdapterLoads() {
  absl::MutexLock lock(&mu_);
  std::vector<AdapterLoadRecord> out(load_records_.begin(), load_records_.end());
  load_records_.clear();
  return out;
}

void Engine::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock lock(&mu_);
    if (!shutting_down_) {
      shutting_down_ = true;
      shutdown_deadline_ = absl::Now() + grace;
      LS_LOG(INFO) << "engine: shutting down, grace " << absl::FormatDuration(grace);
    }
  }
  absl::MutexLock lock(&join_mu_);
  if (thread_.joinable()) thread_.join();
}

absl::Status Engine::WaitIdle(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return in_flight_.empty() && inbox_.empty() && stats_current_;
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&idle), timeout)) {
    return absl::DeadlineExceededError(
        absl::StrCat("engine not idle after ", absl::FormatDuration(timeout), ": ",
                     in_flight_.size(), " in flight"));
  }
  return absl::OkStatus();
}

// ---- engine thread ----

Engine::Inbox Engine::TakeInbox(bool idle, bool* shutting_down, absl::Time* shutdown_deadline) {
  absl::MutexLock lock(&mu_);
  if (idle) {
    auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !inbox_.empty() || !abort_inbox_.empty() || !retire_inbox_.empty() ||
             host_copies_queued_ || shutting_down_;
    };
    // Copies in flight finish on their own: poll for them soon.
    const absl::Duration wait = residency_->Copying()
                                    ? std::min(options_.idle_poll, absl::Milliseconds(1))
                                    : options_.idle_poll;
    mu_.AwaitWithTimeout(absl::Condition(&has_work), wait);
  }
  Inbox in;
  in.requests.swap(inbox_);
  in.aborts.swap(abort_inbox_);
  in.retires.swap(retire_inbox_);
  host_copies_queued_ = false;
  *shutting_down = shutting_down_;
  *shutdown_deadline = shutdown_deadline_;
  return in;
}

void Engine::Loop() {
  LS_LOG(INFO) << "engine: thread started";
  bool cancelled_at_deadline = false;
  bool worked = true;  // the last step ran a batch
  while (true) {
    bool shutting_down = false;
    absl::Time shutdown_deadline;
    // Nothing to run (or nothing runnable, e.g. adapters still loading):
    // sleep until the inbox has work or idle_poll passes.
    Inbox in = TakeInbox(active_.empty() || !worked, &shutting_down, &shutdown_deadline);
    // Before the admissions (their requests may use these adapters) and the
    // retires (an unload comes after its load).
    residency_->ApplyHostCopies();
    for (auto& r : in.requests) Admit(std::move(r));
    // After the admissions: requests accepted before an unload hold their ref.
    for (AdapterKey key : in.retires) residency_->Retire(key);
    residency_->Poll();
    const absl::Time now = absl::Now();
    for (RequestId id : in.aborts) {
      auto it = active_.find(id);
      if (it == active_.end()) continue;  // ended since Abort() was called
      scheduler_->Abort(id);
      it->second->Cancel(absl::CancelledError("aborted"), now);
      Release(id);
    }
    if (num_with_deadline_ > 0) CancelExpired(now);
    if (shutting_down && !cancelled_at_deadline && now >= shutdown_deadline) {
      CancelAll(absl::UnavailableError("engine shut down before the request finished"));
      cancelled_at_deadline = true;
    }
    if (shutting_down && active_.empty()) {
      PublishStats();
      break;
    }
    worked = !active_.empty() && Step();
    PublishStats();
  }
  LS_LOG(INFO) << "engine: thread stopped; " << prompt_tokens_total_ << " prompt and "
               << generation_tokens_total_ << " generated tokens served";
}

void Engine::Admit(std::unique_ptr<RequestState> state) {
  const RequestId id = state->id;
  absl::Status s = scheduler_->AddRequest(id, state->adapter_key, state->tokens());
  if (!s.ok()) {  // not reachable after Submit's checks; never crash on it
    state->Fail(AnnotateStatus(s, "scheduler refused the request"), absl::Now());
    absl::MutexLock lock(&mu_);
    in_flight_.erase(state->request().request_id);
    stats_current_ = false;
    return;
  }
  if (state->adapter_key != kBaseModelAdapter) {
    const std::optional<AdapterCatalog::Entry> current = catalog_->Find(state->request().adapter);
    const bool is_current = current.has_value() && current->key == state->adapter_key;
    s = residency_->Attach(id, state->adapter_key, state->request().adapter, state->adapter_path,
                           is_current);
    if (!s.ok()) {  // not reachable: Attach registers unknown adapters
      scheduler_->Abort(id);
      state->Fail(AnnotateStatus(s, "adapter residency refused the request"), absl::Now());
      absl::MutexLock lock(&mu_);
      in_flight_.erase(state->request().request_id);
      stats_current_ = false;
      return;
    }
  }
  if (state->request().deadline != absl::InfiniteFuture()) ++num_with_deadline_;
  prompt_tokens_total_ += state->num_prompt_tokens();
  active_.emplace(id, std::move(state));
}

void Engine::CancelExpired(absl::Time now) {
  std::vector<RequestId> expired;
  for (const auto& [id, r] : active_) {
    if (r->request().deadline <= now) expired.push_back(id);
  }
  for (RequestId id : expired) {
    scheduler_->Abort(id);
    active_.at(id)->Cancel(absl::DeadlineExceededError("request deadline passed"), now);
    Release(id);
  }
}

void Engine::CancelAll(const absl::Status& why) {
  std::vector<RequestId> ids;
  for (const auto& [id, r] : active_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  const absl::Time now = absl::Now();
  for (RequestId id : ids) {
    scheduler_->Abort(id);
    active_.at(id)->Cancel(why, now);
    Release(id);
  }
}

void Engine::Release(RequestId id) {
  auto it = active_.find(id);
  LS_CHECK(it != active_.end()) << "release of unknown request " << id;
  RequestState& r = *it->second;
  LS_CHECK(r.done()) << "release of request " << id << " without a terminal event";
  residency_->Detach(id);
  if (r.request().deadline != absl::InfiniteFuture()) --num_with_deadline_;
  {
    absl::MutexLock lock(&mu_);
    in_flight_.erase(r.request().request_id);
    stats_current_ = false;
  }
  active_.erase(it);
}

void Engine::PublishStats() {
  EngineStats s;
  s.running = scheduler_->NumRunning();
  s.waiting = scheduler_->NumWaiting();
  const PoolStats pool = pool_->stats();
  s.pool_pages_total = pool.total_pages;
  s.pool_page_bytes = pool.page_bytes;
  s.pool_pages_free = pool.free_pages;
  s.pool_pages_kv = pool.kv_pages;
  s.pool_pages_adapter = pool.adapter_pages;
  const ResidencyStats rs = residency_->stats();
  s.adapters_device = rs.device_ready;
  s.adapters_copying = rs.device_copying;
  s.adapters_host = residency_->NumOnHost();
  s.adapter_loads_device_ok = rs.device_loads_ok;
  s.adapter_loads_device_failed = rs.device_loads_failed;
  s.adapter_evictions_total = rs.evictions;
  std::vector<AdapterLoadEvent> events = residency_->TakeLoadEvents();
  for (const AdapterLoadEvent& e : events) {
    if (e.tier == AdapterLoadEvent::Tier::kHost) ++(e.ok ? host_loads_ok_ : host_loads_failed_);
  }
  s.adapter_loads_host_ok = host_loads_ok_;
  s.adapter_loads_host_failed = host_loads_failed_;
  s.max_loras = options_.max_loras;
  s.running_adapters = residency_->Names(scheduler_->RunningAdapters());
  s.waiting_adapters = residency_->Names(scheduler_->WaitingAdapters());
  s.preemptions_total = scheduler_->NumPreemptions();
  s.adapter_pins = residency_->NumPins();
  s.prompt_tokens_total = prompt_tokens_total_;
  s.generation_tokens_total = generation_tokens_total_;
  const GraphStats graphs = model_->graph_stats();
  s.steps_graph_total = graphs.launches;
  s.steps_eager_total = graphs.eager_steps;
  s.graph_captures_total = graphs.captures;
  s.graphs_cached = graphs.cached;
  residency_->RefreshTiers();
  absl::MutexLock lock(&mu_);
  constexpr size_t kMaxLoadRecords = 4096;
  for (const AdapterLoadEvent& e : events) {
    if (load_records_.size() >= kMaxLoadRecords) load_records_.pop_front();
    load_records_.push_back(AdapterLoadRecord{
        e.tier == AdapterLoadEvent::Tier::kHost ? AdapterTier::kHost : AdapterTier::kDevice, e.ok,
        e.seconds});
  }
  sched_waiting_ = s.waiting;
  stats_ = std::move(s);
  stats_current_ = inbox_.empty() && abort_inbox_.empty() && retire_inbox_.empty() &&
                   !host_copies_queued_;
}

}  // namespace loraserve
