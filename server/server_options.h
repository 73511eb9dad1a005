// ServerOptions: every knob of the loraserve binary as a plain struct, so
// tests build options without flags. server_options.cc also defines the absl
// flags (names compatible with vLLM's where the meaning is the same; dashes
// or underscores both work, see NormalizeFlagArgs) and FromFlags() reads them.
//
// Plain value type; any thread. FromFlags must run after absl::ParseCommandLine.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace loraserve {

struct LoraModuleSpec {
  std::string name;
  std::string path;
  bool operator==(const LoraModuleSpec&) const = default;
};

struct ServerOptions {
  // Model and backend.
  std::string model = "tests/data/tiny-llama";  // --model: Hugging Face directory
  std::string device = "auto";                  // --device: cpu | cuda | auto
  // --random-weights-seed: set = generate the weights on the device from this
  // seed instead of reading --model's safetensors (config.json and
  // tokenizer.json are still read): for benchmarking shapes without weight
  // files; outputs are meaningless. Unset (the default) = read safetensors.
  std::optional<uint64_t> random_weights_seed;
  bool cuda_graphs = true;  // --cuda-graphs: replay decode steps from CUDA graphs
  int cuda_graph_max_batch = 256;  // --cuda-graph-max-batch: larger decode steps run op by op

  // Listeners. Port 0 picks a free port (the Server reports the bound one).
  std::string host = "0.0.0.0";        // --host: Generation + HTTP bind address
  int port = 50051;                    // --port: gRPC Generation
  int http_port = 8080;                // --http-port: /metrics, /health
  std::string admin_host = "127.0.0.1";  // --admin-host: AdapterAdmin bind address
  int admin_port = 50052;              // --admin-port
  std::string admin_token_file;        // --admin-token-file: "" = no auth

  // Adapters.
  std::string adapter_root;            // --adapter-root: LoadAdapter paths must lie inside
  int max_loras = 16;                  // --max-loras: adapters in one batch
  int max_lora_rank = 64;              // --max-lora-rank
  int max_cpu_loras = 0;               // --max-cpu-loras: adapters in host memory; 0 = unlimited
  std::vector<LoraModuleSpec> lora_modules;  // --lora-modules name=path,...: loaded at startup

  // Scheduler and memory.
  int max_num_seqs = 256;              // --max-num-seqs: running requests
  int max_num_batched_tokens = 8192;   // --max-num-batched-tokens: per iteration
  int64_t pool_bytes = 0;              // --pool-bytes: unified pool; 0 = from utilization
  double gpu_memory_utilization = 0.9;  // --gpu-memory-utilization: (0, 1]
  int max_queue = 1024;                // --max-queue: waiting requests before RESOURCE_EXHAUSTED
  double drain_grace_seconds = 30;     // --drain-grace-seconds: SIGTERM drain period

  // InvalidArgument naming the flag ("--max-loras is 0, must be >= 1").
  absl::Status Validate() const;
};

// Parses "name=path" entries (comma-separated, possibly several strings).
// InvalidArgument naming --lora-modules and the bad entry.
absl::StatusOr<std::vector<LoraModuleSpec>> ParseLoraModules(const std::vector<std::string>& entries);

// Returns argv with "--flag-name[=v]" rewritten to "--flag_name[=v]" (absl
// flags use underscores; vLLM uses dashes), every "--lora-modules X" /
// "--lora_modules=X" occurrence merged into one comma list (the flag is
// repeatable), and vLLM's space-separated form "--lora-modules a=p b=q"
// folded in as well.
std::vector<std::string> NormalizeFlagArgs(int argc, char** argv);

// Reads the flags (after absl::ParseCommandLine) into options and validates.
absl::StatusOr<ServerOptions> ServerOptionsFromFlags();

}  // namespace loraserve
