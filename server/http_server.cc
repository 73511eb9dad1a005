#include "server/http_server.h"

#include <httplib.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/logging.h"

namespace loraserve {

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(Options options) {
  std::unique_ptr<HttpServer> self(new HttpServer());
  self->server_ = std::make_unique<httplib::Server>();
  httplib::Server& srv = *self->server_;
  HttpServer* raw = self.get();
  // httplib's default also sets SO_REUSEPORT, which would let a second server
  // silently share the port; keep only SO_REUSEADDR (fast restarts).
  srv.set_socket_options([](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });

  auto metrics = std::move(options.metrics_text);
  srv.Get("/metrics", [metrics](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics ? metrics() : std::string(), "text/plain; version=0.0.4");
  });
  srv.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  srv.Get("/health/ready", [raw](const httplib::Request&, httplib::Response& res) {
    absl::MutexLock lock(&raw->mu_);
    if (raw->ready_) {
      res.set_content("ready\n", "text/plain");
    } else {
      res.status = 503;
      res.set_content(absl::StrCat("not ready: ", raw->not_ready_reason_, "\n"), "text/plain");
    }
  });

  if (options.port == 0) {
    self->port_ = srv.bind_to_any_port(options.host);
    if (self->port_ <= 0) {
      return absl::UnavailableError(absl::StrCat("HTTP: cannot bind ", options.host, ":0"));
    }
  } else {
    if (!srv.bind_to_port(options.host, options.port)) {
      return absl::UnavailableError(absl::StrCat("HTTP: cannot bind ", options.host, ":",
                                                 options.port, " (port in use?)"));
    }
    self->port_ = options.port;
  }
  self->thread_ = std::thread([raw] { raw->server_->listen_after_bind(); });
  // httplib's stop() is a no-op until the accept loop runs, so a Stop() that
  // raced ahead of it would leave the thread listening forever: wait for it.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!srv.is_running()) {
    if (absl::Now() > deadline) {
      srv.stop();
      return absl::InternalError("HTTP: the accept loop did not start within 10 s");
    }
    absl::SleepFor(absl::Milliseconds(1));
  }
  LS_LOG(INFO) << "HTTP /metrics and /health listening on " << options.host << ":"
               << self->port_;
  return self;
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::SetReady(bool ready, std::string reason) {
  absl::MutexLock lock(&mu_);
  ready_ = ready;
  not_ready_reason_ = std::move(reason);
}

void HttpServer::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace loraserve
