// The loraserve binary: parses ServerOptions from the flags and, once the
// engine loop lands, builds the Engine and serves it. Until then it validates
// the flags, reports what this build and machine support, and (with
// --listen_without_engine) brings the listeners up with health NOT_SERVING so
// deployment probes, /metrics and SIGTERM draining can be exercised.
//
// Signals: SIGTERM/SIGINT are blocked in every thread and taken by one
// sigwait thread, which runs Server::Shutdown (no work in a handler).
#include <csignal>
#include <cstdio>
#include <pthread.h>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/time.h"
#include "common/logging.h"
#include "kernels/backend_kind.h"
#include "server/server.h"
#include "server/server_options.h"

ABSL_FLAG(bool, listen_without_engine, false,
          "Bring the listeners up without an engine (health NOT_SERVING) until SIGTERM");

int main(int argc, char** argv) {
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

  if (!absl::GetFlag(FLAGS_listen_without_engine)) {
    std::printf(
        "loraserve: flags OK (model %s, %s backend, Generation :%d, AdapterAdmin %s:%d, HTTP "
        ":%d).\nThe engine is not yet available in this build: nothing to serve. Pass "
        "--listen_without_engine to bring the listeners up anyway.\n",
        options->model.c_str(), std::string(loraserve::BackendKindName(*kind)).c_str(),
        options->port, options->admin_host.c_str(), options->admin_port, options->http_port);
    return 0;
  }

  // Block the signals before any thread starts so every thread inherits the
  // mask. A parent may have left them ignored (shells do for background jobs),
  // and an ignored signal never reaches sigwait: restore the default first
  // (harmless: while blocked the default action never runs).
  std::signal(SIGTERM, SIG_DFL);
  std::signal(SIGINT, SIG_DFL);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto server = loraserve::Server::Start(*options, /*engine=*/nullptr);
  if (!server.ok()) {
    std::fprintf(stderr, "loraserve: %s\n", std::string(server.status().message()).c_str());
    return 1;
  }
  loraserve::Server* raw = server->get();
  const absl::Duration grace = absl::Seconds(options->drain_grace_seconds);
  std::thread signal_thread([&signals, raw, grace] {
    int sig = 0;
    sigwait(&signals, &sig);
    LS_LOG(INFO) << "signal " << sig << ": shutting down";
    raw->Shutdown(grace);
  });
  raw->Wait();
  signal_thread.join();
  server->reset();
  return 0;
}
