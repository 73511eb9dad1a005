// The loraserve binary: parses ServerOptions from the flags, brings the
// listeners up (health NOT_SERVING while the model loads), builds the Engine
// on the chosen backend, loads --lora-modules and reports SERVING.
// --listen_without_engine brings the listeners up with no model at all, so
// deployment probes, /metrics and SIGTERM draining can be exercised.
//
// Signals: the SIGTERM/SIGINT handler only writes the signal number to a
// self-pipe (async-signal-safe, and correct whichever thread the kernel picks:
// libraries such as OpenBLAS start threads before main could block signals);
// one thread reads the pipe and runs Server::Shutdown, then the engine is
// shut down (in-flight requests already drained or cancelled).
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/time.h"
#include "common/flag_names.h"
#include "common/logging.h"
#include "engine/engine.h"
#include "kernels/backend_kind.h"
#include "server/server.h"
#include "server/server_options.h"

namespace {

int g_signal_pipe[2] = {-1, -1};

extern "C" void OnShutdownSignal(int sig) {
  const char c = static_cast<char>(sig);
  [[maybe_unused]] ssize_t n = write(g_signal_pipe[1], &c, 1);
}

// Installs the handler (a parent may have left the signals ignored: shells do
// for background jobs, so SIG_IGN is replaced too).
bool InstallShutdownSignals() {
  if (pipe(g_signal_pipe) != 0) return false;
  struct sigaction sa = {};
  sa.sa_handler = OnShutdownSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  return sigaction(SIGTERM, &sa, nullptr) == 0 && sigaction(SIGINT, &sa, nullptr) == 0;
}

// Blocks until a shutdown signal (or a self-request, 0) arrives; returns it.
int WaitForShutdownSignal() {
  char c = 0;
  while (read(g_signal_pipe[0], &c, 1) < 0 && errno == EINTR) {
  }
  return c;
}

}  // namespace

ABSL_FLAG(bool, listen_without_engine, false,
          "Bring the listeners up without an engine (health NOT_SERVING) until SIGTERM");

int main(int argc, char** argv) {
  // --help lists the server's own flags (server/*.cc: server_options.cc
  // defines most of them), not only this file's.
  loraserve::SetFlagsHelp(
      "Serves one Hugging Face Llama-family model with many LoRA adapters over gRPC "
      "(flags may be spelled with dashes, vLLM style)",
      "server/");
  // vLLM spells flags with dashes (--max-loras); absl with underscores.
  std::vector<std::string> args = loraserve::NormalizeFlagArgs(argc, argv);
  std::vector<char*> cargs;
  for (std::string& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  absl::ParseCommandLine(static_cast<int>(args.size()), cargs.data());

  absl::StatusOr<loraserve::ServerOptions> options = loraserve::ServerOptionsFromFlags();
  if (!options.ok()) {
    std::fprintf(stderr, "loraserve: %s\n", std::string(options.status().message()).c_str());
    return 2;
  }
  auto kind = loraserve::ResolveBackendKind(options->device);
  if (!kind.ok()) {
    std::fprintf(stderr, "loraserve: --device: %s\n", std::string(kind.status().message()).c_str());
    return 2;
  }
  LS_LOG(INFO) << "loraserve 0.1.0: " << loraserve::DescribeBackendSupport();
  LS_LOG(INFO) << "backend: " << loraserve::BackendKindName(*kind);

  const bool without_engine = absl::GetFlag(FLAGS_listen_without_engine);
  if (*kind == loraserve::BackendKind::kCuda) {
    // The CUDA backend is compiled (kernels) but not yet a full Backend.
    if (options->device == "auto") {
      LS_LOG(WARNING) << "--device=auto found a CUDA device, but the CUDA backend is not "
                         "complete yet: serving on the CPU backend";
      *kind = loraserve::BackendKind::kCpu;
    } else {
      std::fprintf(stderr,
                   "loraserve: --device=cuda: the CUDA backend is not available in this "
                   "version yet; use --device=cpu\n");
      return 2;
    }
  }

  if (!InstallShutdownSignals()) {
    std::fprintf(stderr, "loraserve: cannot install the SIGTERM/SIGINT handlers\n");
    return 1;
  }

  auto server = loraserve::Server::Start(*options, /*engine=*/nullptr);
  if (!server.ok()) {
    std::fprintf(stderr, "loraserve: %s\n", std::string(server.status().message()).c_str());
    return 1;
  }
  loraserve::Server* raw = server->get();
  const absl::Duration grace = absl::Seconds(options->drain_grace_seconds);
  std::thread signal_thread([raw, grace] {
    const int sig = WaitForShutdownSignal();
    if (sig != 0) LS_LOG(INFO) << "signal " << sig << ": shutting down";
    raw->Shutdown(grace);
  });

  std::unique_ptr<loraserve::Engine> engine;
  int exit_code = 0;
  if (!without_engine) {
    loraserve::EngineOptions eo;
    eo.model_dir = options->model;
    eo.backend = *kind;
    eo.random_weights_seed = options->random_weights_seed;
    eo.cuda_graphs = options->cuda_graphs;
    eo.cuda_graph_max_batch = options->cuda_graph_max_batch;
    if (eo.random_weights_seed.has_value()) {
      LS_LOG(WARNING) << "*** --random-weights-seed=" << *eo.random_weights_seed
                      << ": serving RANDOM weights, not " << eo.model_dir
                      << "'s safetensors; every output is MEANINGLESS (benchmarking only) ***";
    }
    eo.max_num_seqs = options->max_num_seqs;
    eo.max_num_batched_tokens = options->max_num_batched_tokens;
    eo.max_loras = options->max_loras;
    eo.max_lora_rank = options->max_lora_rank;
    eo.max_waiting = options->max_queue;
    eo.max_cpu_loras = options->max_cpu_loras;
    if (options->pool_bytes > 0) eo.pool_bytes = options->pool_bytes;
    if (eo.backend == loraserve::BackendKind::kCuda) {
      eo.gpu_memory_utilization = options->gpu_memory_utilization;
    }
    LS_LOG(INFO) << "loading model " << eo.model_dir << " on the "
                 << loraserve::BackendKindName(eo.backend) << " backend";
    auto created = loraserve::Engine::Create(eo);
    if (!created.ok()) {
      LS_LOG(ERROR) << "cannot start the engine: " << created.status().message();
      exit_code = 1;
    } else {
      engine = std::move(*created);
      if (absl::Status ready = raw->SetEngineReady(engine.get()); !ready.ok()) {
        LS_LOG(ERROR) << "startup failed: " << ready.message();
        exit_code = 1;
      } else {
        LS_LOG(INFO) << "serving: gRPC Generation on :" << raw->port()
                     << ", AdapterAdmin on " << options->admin_host << ":" << raw->admin_port()
                     << ", HTTP /metrics on :" << raw->http_port();
      }
    }
    if (exit_code != 0) {
      // Wake the signal thread so it runs the (idempotent) shutdown and exits.
      OnShutdownSignal(0);
    }
  }
  raw->Wait();
  signal_thread.join();
  server->reset();  // listeners down: nothing reaches the engine any more
  if (engine != nullptr) engine->Shutdown(absl::ZeroDuration());
  return exit_code;
}
