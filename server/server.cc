#include "server/server.h"

#include <chrono>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"

namespace loraserve {
namespace {

// How long aborted requests get to deliver their cancelled terminal event
// after the grace period, and the listeners to stop after that.
constexpr absl::Duration kAbortGrace = absl::Seconds(5);
constexpr auto kListenerStop = std::chrono::seconds(2);

std::string HostPort(const std::string& host, int port) {
  const bool v6 = host.find(':') != std::string::npos && host.front() != '[';
  return v6 ? absl::StrCat("[", host, "]:", port) : absl::StrCat(host, ":", port);
}

absl::StatusOr<std::unique_ptr<grpc::Server>> BuildListener(const std::string& what,
                                                            const std::string& address,
                                                            grpc::Service* service, int* port) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), port);
  builder.RegisterService(service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || *port == 0) {
    return absl::UnavailableError(
        absl::StrCat(what, ": cannot listen on ", address, " (address in use?)"));
  }
  return server;
}

}  // namespace

Server::Server(const ServerOptions& options) : options_(options) {}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerOptions& options,
                                                      EngineApi* engine) {
  RETURN_IF_ERROR(options.Validate());
  std::string token;
  if (!options.admin_token_file.empty()) {
    ASSIGN_OR_RETURN(token, ReadAdminTokenFile(options.admin_token_file));
  }
  std::unique_ptr<Server> self(new Server(options));
  self->metrics_ = std::make_unique<MetricsCollector>(
      ServerMetrics::Options{.max_loras = options.max_loras});
  self->state_ = std::make_unique<ServingState>(self->metrics_.get());
  self->generation_ = std::make_unique<GenerationService>(self->state_.get());
  self->admin_ = std::make_unique<AdminService>(
      self->state_.get(),
      AdminService::Options{.adapter_root = options.adapter_root, .token = std::move(token)});

  // Process-wide gRPC switches (both idempotent): every server built from
  // now on gets grpc.health.v1 and server reflection.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  ASSIGN_OR_RETURN(self->grpc_server_,
                   BuildListener("Generation", HostPort(options.host, options.port),
                                 self->generation_.get(), &self->port_));
  // The default health service starts SERVING; not until the engine is.
  self->SetServing(false);
  ASSIGN_OR_RETURN(self->admin_server_,
                   BuildListener("AdapterAdmin", HostPort(options.admin_host, options.admin_port),
                                 self->admin_.get(), &self->admin_port_));
  MetricsCollector* metrics = self->metrics_.get();
  ServingState* state = self->state_.get();
  ASSIGN_OR_RETURN(self->http_,
                   HttpServer::Start({.host = options.host,
                                      .port = options.http_port,
                                      .metrics_text = [metrics, state] {
                                        return metrics->Scrape(state->engine());
                                      }}));
  self->http_->SetReady(false, "model loading");
  LS_LOG(INFO) << "Generation on " << HostPort(options.host, self->port_) << ", AdapterAdmin on "
               << HostPort(options.admin_host, self->admin_port_)
               << (options.admin_token_file.empty() ? " (no token)" : " (bearer token)");
  if (engine != nullptr) RETURN_IF_ERROR(self->SetEngineReady(engine));
  return self;
}

Server::~Server() { Shutdown(absl::ZeroDuration()); }

void Server::SetServing(bool serving) {
  grpc::HealthCheckServiceInterface* health = grpc_server_->GetHealthCheckService();
  if (health == nullptr) return;
  health->SetServingStatus(serving);  // "" and every service name
}

absl::Status Server::SetEngineReady(EngineApi* engine) {
  LS_CHECK(engine != nullptr);
  state_->set_engine(engine);
  for (const LoraModuleSpec& m : options_.lora_modules) {
    v1::LoadAdapterRequest request;
    request.set_name(m.name);
    std::filesystem::path path(m.path);
    if (path.is_relative() && !options_.adapter_root.empty()) {
      path = std::filesystem::path(options_.adapter_root) / path;
    }
    request.set_path(path.string());
    absl::StatusOr<v1::LoadAdapterResponse> loaded = admin_->DoLoad(request, /*check_root=*/false);
    if (!loaded.ok()) {
      return AnnotateStatus(loaded.status(), absl::StrCat("--lora-modules ", m.name, "=", m.path));
    }
    LS_LOG(INFO) << "adapter " << m.name << " loaded from " << request.path();
  }
  if (generation_->draining()) return absl::OkStatus();
  SetServing(true);
  http_->SetReady(true);
  LS_LOG(INFO) << "serving";
  return absl::OkStatus();
}

void Server::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_started_) {
      mu_.Await(absl::Condition(&shutdown_done_));
      return;
    }
    shutdown_started_ = true;
  }
  generation_->StartDraining();
  SetServing(false);
  http_->SetReady(false, "draining");
  LS_LOG(INFO) << "draining " << generation_->num_active() << " requests (grace "
               << absl::FormatDuration(grace) << ")";
  if (!generation_->WaitIdle(grace)) {
    const int aborted = generation_->AbortAll();
    LS_LOG(INFO) << "grace period over: cancelled " << aborted << " requests";
    if (!generation_->WaitIdle(kAbortGrace)) {
      LS_LOG(WARNING) << generation_->num_active()
                      << " requests did not end after abort; closing their streams";
    }
  }
  const auto deadline = std::chrono::system_clock::now() + kListenerStop;
  grpc_server_->Shutdown(deadline);
  admin_server_->Shutdown(deadline);
  http_->Stop();
  LS_LOG(INFO) << "shut down";
  absl::MutexLock lock(&mu_);
  shutdown_done_ = true;
}

void Server::Wait() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&shutdown_done_));
}

}  // namespace loraserve
