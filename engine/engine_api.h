// EngineApi: the contract between the server (gRPC/HTTP, server/) and the
// engine (engine/engine.h implements it). The server validates and tokenizes
// a request, then Submit()s it with a sink; the engine thread pushes the
// request's events into that sink: zero or more deltas, then exactly one
// terminal event (finished or error). Fakes of this interface drive the
// server's tests.
//
// Thread-safety: every method may be called from any thread (gRPC callback
// threads, the admin service, the HTTP scrape). Sinks are called from the
// engine thread and must not block.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/sampler/sampling_params.h"

namespace loraserve {

class Tokenizer;

struct StoppingOptions {
  std::optional<int32_t> max_tokens;       // unset: up to the context length
  std::vector<std::string> stop;           // stop strings (not emitted)
  std::vector<int32_t> stop_token_ids;     // emitted, then stop
  bool ignore_eos = false;
};

struct GenerationRequest {
  std::string request_id;            // unique among in-flight requests
  std::vector<int32_t> prompt_ids;   // already tokenized (BOS included if wanted)
  std::string adapter;               // adapter name; "" = base model
  SamplingParams sampling;
  StoppingOptions stopping;
  absl::Time arrival = absl::InfinitePast();  // set by the server at receipt
  // Past this time the engine ends the request with kCancelled (error:
  // DeadlineExceeded). InfiniteFuture: no deadline.
  absl::Time deadline = absl::InfiniteFuture();
};

// When things happened to one request (engine clock, absl::Now()). Fields not
// reached yet are InfinitePast. Queue time = first_scheduled - arrival; TTFT =
// first_token - arrival; e2e = end - arrival.
struct RequestTimings {
  absl::Time arrival = absl::InfinitePast();          // request.arrival, else acceptance
  absl::Time accepted = absl::InfinitePast();         // Submit returned OK
  absl::Time first_scheduled = absl::InfinitePast();  // first step that fed it
  absl::Time first_token = absl::InfinitePast();      // first token sampled
  absl::Time last_token = absl::InfinitePast();       // latest token sampled
  absl::Time end = absl::InfinitePast();              // terminal event
};

enum class GenerationFinish : uint8_t {
  kStop,           // eos, stop token id or stop string
  kLength,         // max_tokens
  kContextLength,  // the model's context is full
  kCancelled,      // Abort(), client gone, deadline, or drained at shutdown
};

struct TopLogprobEntry {
  int32_t token_id = 0;
  float logprob = 0;
};

struct TokenLogprobEntry {
  int32_t token_id = 0;
  float logprob = 0;
  std::vector<TopLogprobEntry> top;  // most likely first
};

// One item of a request's output stream.
struct GenerationEvent {
  enum class Kind : uint8_t { kDelta, kFinished, kError };
  Kind kind = Kind::kDelta;
  // kDelta: new tokens and the text they complete (never half a UTF-8
  // character; text held back while a stop string may be starting).
  std::vector<int32_t> token_ids;
  std::string text;
  std::vector<TokenLogprobEntry> logprobs;  // one per token when requested
  // kFinished.
  GenerationFinish finish = GenerationFinish::kStop;
  std::string matched_stop;  // the stop string, or the token id as text
  // kError: what went wrong. kFinished/kCancelled: why (Cancelled for
  // Abort(), DeadlineExceeded for the deadline, Unavailable for shutdown).
  absl::Status error;
  // When this event was produced (for a delta: when its token was sampled),
  // and the request's timings so far (complete on the terminal event).
  absl::Time time = absl::InfinitePast();
  RequestTimings timings;
  // Counts so far (complete on the terminal event).
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;
};

// Receives one request's events. Push must not block (queue and return).
class GenerationSink {
 public:
  virtual ~GenerationSink() = default;
  virtual void Push(GenerationEvent event) = 0;
};

enum class AdapterTier : uint8_t { kDisk, kHost, kDevice };

struct AdapterDescription {
  std::string name;
  std::string path;
  std::vector<int32_t> ranks;               // distinct, ascending
  std::vector<std::string> target_modules;  // e.g. "q_proj"
  uint64_t bytes = 0;
  AdapterTier tier = AdapterTier::kDisk;
  int32_t in_use = 0;                       // pins by running/scheduled requests
  absl::Time last_used = absl::InfinitePast();
};

struct LoadAdapterResult {
  AdapterDescription adapter;
  bool already_loaded = false;  // same name and same path: a no-op
};

// One finished adapter load (loraserve_adapter_loads_total{tier,result},
// loraserve_adapter_load_seconds). kHost: disk -> host; kDevice: host -> pool.
struct AdapterLoadRecord {
  AdapterTier tier = AdapterTier::kDevice;
  bool ok = false;
  double seconds = 0;
};

// A snapshot for metrics and readiness.
struct EngineStats {
  int64_t running = 0;
  int64_t waiting = 0;
  int64_t pool_pages_kv = 0;
  int64_t pool_pages_adapter = 0;
  int64_t pool_pages_free = 0;
  int64_t adapters_device = 0;
  int64_t adapters_host = 0;
  int32_t max_loras = 0;
  std::vector<std::string> running_adapters;
  std::vector<std::string> waiting_adapters;
  int64_t preemptions_total = 0;
  int64_t adapter_pins = 0;  // adapter pins held by in-flight requests
  // Counters since start (loraserve_*_tokens_total).
  int64_t prompt_tokens_total = 0;
  int64_t generation_tokens_total = 0;
  // Unified pool and adapter residency (additive).
  int64_t pool_pages_total = 0;
  int64_t pool_page_bytes = 0;
  int64_t adapters_copying = 0;               // host -> pool copies in flight
  int64_t adapter_loads_device_ok = 0;        // loads_total{tier="device",result="ok"}
  int64_t adapter_loads_device_failed = 0;    // ... result="error"
  int64_t adapter_loads_host_ok = 0;          // loads_total{tier="host",result="ok"}
  int64_t adapter_loads_host_failed = 0;      // ... result="error"
  int64_t adapter_evictions_total = 0;        // idle adapters evicted from the pool
  // Model steps since start by how they ran (LlamaModel::graph_stats):
  // decode-graph launches, op-by-op steps, graph captures; graphs held now.
  int64_t steps_graph_total = 0;
  int64_t steps_eager_total = 0;
  int64_t graph_captures_total = 0;
  int64_t graphs_cached = 0;
};

class EngineApi {
 public:
  virtual ~EngineApi() = default;

  // Accepts a request or explains why not, before any event is pushed:
  //   InvalidArgument   a field is out of range (the message names it)
  //   NotFound          the adapter name is not loaded
  //   ResourceExhausted the waiting queue is full
  //   Unavailable       the engine is draining / shut down
  //   AlreadyExists     request_id is already in flight
  // After OK, `sink` receives exactly one terminal event.
  virtual absl::Status Submit(GenerationRequest request,
                              std::shared_ptr<GenerationSink> sink) = 0;

  // Cancels an in-flight request (its sink gets kFinished/kCancelled).
  // False when no such request is in flight.
  virtual bool Abort(const std::string& request_id) = 0;

  // Adapter administration (paths already resolved and checked by the caller).
  // Same name + same path: already_loaded; a different path under a taken
  // name: AlreadyExists; an adapter that cannot be served exactly:
  // InvalidArgument with the loader's reason.
  virtual absl::StatusOr<LoadAdapterResult> LoadAdapter(const std::string& name,
                                                        const std::string& path) = 0;
  // NotFound for an unknown name. Running requests keep their adapter.
  virtual absl::Status UnloadAdapter(const std::string& name) = 0;
  virtual std::vector<AdapterDescription> ListAdapters() const = 0;

  virtual EngineStats Stats() const = 0;
  // Adapter loads finished since the last call (bounded backlog; oldest
  // dropped first), for the load-seconds histogram. Thread-safe.
  virtual std::vector<AdapterLoadRecord> TakeAdapterLoads() { return {}; }
  // The model's tokenizer (immutable, thread-safe) and limits.
  virtual const Tokenizer& tokenizer() const = 0;
  virtual int32_t vocab_size() const = 0;
  virtual int32_t max_context() const = 0;  // prompt + output tokens
};

}  // namespace loraserve
