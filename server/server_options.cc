#include "server/server_options.h"

#include <cmath>
#include <cstdint>
#include <optional>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/flag_names.h"
#include "common/status.h"
#include "common/strings.h"
#include "server/adapter_paths.h"

ABSL_FLAG(std::string, model, "tests/data/tiny-llama", "Hugging Face model directory to serve");
ABSL_FLAG(std::string, device, "auto", "Compute backend: cpu, cuda or auto");
ABSL_FLAG(std::optional<uint64_t>, random_weights_seed, std::nullopt,
          "Benchmarking only: generate random weights on the device from this seed instead of "
          "reading --model's safetensors (config.json and tokenizer.json are still read); "
          "outputs are meaningless. Unset = read the safetensors");
ABSL_FLAG(bool, cuda_graphs, true,
          "Replay decode steps from captured CUDA graphs (CUDA backend); false = run every "
          "step op by op");
ABSL_FLAG(int, cuda_graph_max_batch, 256,
          "Decode steps of up to this many sequences replay a CUDA graph (batch padded to 1, 2, "
          "4, then multiples of 8); larger ones run op by op");
ABSL_FLAG(std::string, host, "0.0.0.0", "Bind address of the Generation and HTTP ports");
ABSL_FLAG(int, port, 50051, "gRPC Generation port (0 = any free port)");
ABSL_FLAG(int, http_port, 8080, "HTTP port for /metrics and /health (0 = any free port)");
ABSL_FLAG(std::string, admin_host, "127.0.0.1", "Bind address of the AdapterAdmin port");
ABSL_FLAG(int, admin_port, 50052, "AdapterAdmin gRPC port (0 = any free port)");
ABSL_FLAG(std::string, admin_token_file, "",
          "File holding the bearer token AdapterAdmin requires ('' = no auth)");
ABSL_FLAG(std::string, adapter_root, "",
          "Directory LoadAdapter paths must resolve inside (relative paths are relative to it)");
ABSL_FLAG(int, max_loras, 16, "Maximum number of distinct adapters in one batch");
ABSL_FLAG(int, max_lora_rank, 64, "Maximum LoRA rank the server accepts");
ABSL_FLAG(int, max_cpu_loras, 0, "Adapters kept loaded in host memory, LRU; others reload from disk when needed (0 = unlimited; else >= --max-loras)");
ABSL_FLAG(std::vector<std::string>, lora_modules, {},
          "Adapters loaded at startup: name=path[,name=path...]; repeatable");
ABSL_FLAG(int, max_num_seqs, 256, "Maximum number of running requests");
ABSL_FLAG(int, max_num_batched_tokens, 8192, "Token budget of one iteration");
ABSL_FLAG(int64_t, pool_bytes, 0, "Unified pool size in bytes (0 = from --gpu-memory-utilization)");
ABSL_FLAG(double, gpu_memory_utilization, 0.9, "Fraction of device memory for the pool, (0, 1]");
ABSL_FLAG(int, max_queue, 1024, "Waiting requests before Generate is RESOURCE_EXHAUSTED");
ABSL_FLAG(double, drain_grace_seconds, 30, "On SIGTERM, seconds to let running requests finish");

namespace loraserve {
namespace {

absl::Status Bad(std::string_view flag, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("--", Sv(flag), " ", Sv(what)));
}

absl::Status CheckPort(std::string_view flag, int port) {
  if (port < 0 || port > 65535) {
    return Bad(flag, absl::StrCat("is ", port, ", must be in [0, 65535]"));
  }
  return absl::OkStatus();
}

absl::Status CheckAtLeast(std::string_view flag, int64_t value, int64_t lo) {
  if (value < lo) return Bad(flag, absl::StrCat("is ", value, ", must be >= ", lo));
  return absl::OkStatus();
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

absl::Status ServerOptions::Validate() const {
  if (model.empty()) return Bad("model", "is empty: name a Hugging Face model directory");
  if (device != "cpu" && device != "cuda" && device != "auto") {
    return Bad("device", absl::StrCat("is \"", device, "\", must be cpu, cuda or auto"));
  }
  if (host.empty()) return Bad("host", "is empty");
  if (admin_host.empty()) return Bad("admin-host", "is empty");
  RETURN_IF_ERROR(CheckPort("port", port));
  RETURN_IF_ERROR(CheckPort("http-port", http_port));
  RETURN_IF_ERROR(CheckPort("admin-port", admin_port));
  if (port != 0 && (port == http_port || port == admin_port)) {
    return Bad("port", absl::StrCat("is ", port, ", the same as --http-port or --admin-port"));
  }
  if (admin_port != 0 && admin_port == http_port) {
    return Bad("admin-port", absl::StrCat("is ", admin_port, ", the same as --http-port"));
  }
  RETURN_IF_ERROR(CheckAtLeast("max-loras", max_loras, 1));
  RETURN_IF_ERROR(CheckAtLeast("max-lora-rank", max_lora_rank, 1));
  RETURN_IF_ERROR(CheckAtLeast("max-cpu-loras", max_cpu_loras, 0));
  if (max_cpu_loras != 0 && max_cpu_loras < max_loras) {
    return Bad("max-cpu-loras", absl::StrCat("is ", max_cpu_loras, ", must be 0 or >= --max-loras (",
                                             max_loras, ")"));
  }
  RETURN_IF_ERROR(CheckAtLeast("max-num-seqs", max_num_seqs, 1));
  RETURN_IF_ERROR(CheckAtLeast("cuda-graph-max-batch", cuda_graph_max_batch, 1));
  RETURN_IF_ERROR(CheckAtLeast("max-num-batched-tokens", max_num_batched_tokens, 1));
  RETURN_IF_ERROR(CheckAtLeast("pool-bytes", pool_bytes, 0));
  if (!(gpu_memory_utilization > 0.0 && gpu_memory_utilization <= 1.0)) {
    return Bad("gpu-memory-utilization",
               absl::StrCat("is ", gpu_memory_utilization, ", must be in (0, 1]"));
  }
  RETURN_IF_ERROR(CheckAtLeast("max-queue", max_queue, 1));
  if (!(drain_grace_seconds >= 0.0 && std::isfinite(drain_grace_seconds))) {
    return Bad("drain-grace-seconds",
               absl::StrCat("is ", drain_grace_seconds, ", must be a finite number >= 0"));
  }
  for (size_t i = 0; i < lora_modules.size(); ++i) {
    const LoraModuleSpec& m = lora_modules[i];
    absl::Status name_ok = ValidateAdapterName(m.name);
    if (!name_ok.ok()) return Bad("lora-modules", absl::StrCat("entry ", i, ": ", name_ok.message()));
    if (m.path.empty()) return Bad("lora-modules", absl::StrCat("entry ", i, " (", m.name, ") has no path"));
    for (size_t j = 0; j < i; ++j) {
      if (lora_modules[j].name == m.name) {
        return Bad("lora-modules", absl::StrCat("names \"", m.name, "\" twice"));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<LoraModuleSpec>> ParseLoraModules(const std::vector<std::string>& entries) {
  std::vector<LoraModuleSpec> out;
  for (const std::string& entry : entries) {
    for (absl::string_view item : absl::StrSplit(entry, ',', absl::SkipWhitespace())) {
      std::vector<std::string> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
      if (kv.size() != 2 || kv[0].empty() || kv[1].empty()) {
        return Bad("lora-modules", absl::StrCat("entry \"", item, "\" is not name=path"));
      }
      out.push_back({kv[0], kv[1]});
    }
  }
  return out;
}

std::vector<std::string> NormalizeFlagArgs(int argc, char** argv) {
  std::vector<std::string> out;
  std::vector<std::string> lora;
  bool in_lora_list = false;  // after "--lora-modules X": later "a=b" args belong to it
  bool positional = false;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (i == 0 || positional) {
      out.push_back(arg);
      continue;
    }
    if (arg == "--") {
      positional = true;
      out.push_back(arg);
      continue;
    }
    if (!StartsWith(arg, "-")) {
      if (in_lora_list && arg.find('=') != std::string::npos) {
        lora.push_back(arg);
        continue;
      }
      in_lora_list = false;
      out.push_back(arg);
      continue;
    }
    in_lora_list = false;
    arg = UnderscoreFlagName(std::move(arg));
    const size_t eq = arg.find('=');
    const size_t end = eq == std::string::npos ? arg.size() : eq;
    std::string name = arg.substr(0, end);
    if (name == "--lora_modules" || name == "-lora_modules") {
      if (eq != std::string::npos) {
        lora.push_back(arg.substr(eq + 1));
      } else if (i + 1 < argc) {
        lora.push_back(argv[++i]);
        in_lora_list = true;
      }
      continue;
    }
    out.push_back(arg);
  }
  if (!lora.empty()) {
    out.insert(out.begin() + 1, absl::StrCat("--lora_modules=", absl::StrJoin(lora, ",")));
  }
  return out;
}

absl::StatusOr<ServerOptions> ServerOptionsFromFlags() {
  ServerOptions o;
  o.model = absl::GetFlag(FLAGS_model);
  o.device = absl::GetFlag(FLAGS_device);
  o.random_weights_seed = absl::GetFlag(FLAGS_random_weights_seed);
  o.cuda_graphs = absl::GetFlag(FLAGS_cuda_graphs);
  o.cuda_graph_max_batch = absl::GetFlag(FLAGS_cuda_graph_max_batch);
  o.host = absl::GetFlag(FLAGS_host);
  o.port = absl::GetFlag(FLAGS_port);
  o.http_port = absl::GetFlag(FLAGS_http_port);
  o.admin_host = absl::GetFlag(FLAGS_admin_host);
  o.admin_port = absl::GetFlag(FLAGS_admin_port);
  o.admin_token_file = absl::GetFlag(FLAGS_admin_token_file);
  o.adapter_root = absl::GetFlag(FLAGS_adapter_root);
  o.max_loras = absl::GetFlag(FLAGS_max_loras);
  o.max_lora_rank = absl::GetFlag(FLAGS_max_lora_rank);
  o.max_cpu_loras = absl::GetFlag(FLAGS_max_cpu_loras);
  ASSIGN_OR_RETURN(o.lora_modules, ParseLoraModules(absl::GetFlag(FLAGS_lora_modules)));
  o.max_num_seqs = absl::GetFlag(FLAGS_max_num_seqs);
  o.max_num_batched_tokens = absl::GetFlag(FLAGS_max_num_batched_tokens);
  o.pool_bytes = absl::GetFlag(FLAGS_pool_bytes);
  o.gpu_memory_utilization = absl::GetFlag(FLAGS_gpu_memory_utilization);
  o.max_queue = absl::GetFlag(FLAGS_max_queue);
  o.drain_grace_seconds = absl::GetFlag(FLAGS_drain_grace_seconds);
  RETURN_IF_ERROR(o.Validate());
  return o;
}

}  // namespace loraserve
