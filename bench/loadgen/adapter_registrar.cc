#include "bench/loadgen/adapter_registrar.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "server/grpc_status.h"

namespace loraserve::loadgen {
namespace {

namespace fs = std::filesystem;

// State shared by the issuing thread and the completion callbacks (held by
// a shared_ptr in each callback: the issuing thread may return while the
// last callback is still leaving the lock).
struct Shared {
  Shared(int64_t total, std::ostream* progress)
      : total(total), progress_step(std::max<int64_t>(1, total / 20)), progress(progress) {}
  const int64_t total;
  const int64_t progress_step;
  std::ostream* const progress;
  absl::Mutex mu;
  int32_t in_flight ABSL_GUARDED_BY(mu) = 0;
  int64_t done ABSL_GUARDED_BY(mu) = 0;
  RegisterSummary summary ABSL_GUARDED_BY(mu);
  absl::Status error ABSL_GUARDED_BY(mu);
};

// One LoadAdapter call; lives until its callback has run.
struct LoadCall {
  grpc::ClientContext context;
  v1::LoadAdapterRequest request;
  v1::LoadAdapterResponse response;
};

}  // namespace

absl::StatusOr<std::vector<AdapterDir>> FindAdapterDirs(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat("--register-adapters \"", dir, "\" is not a directory"));
  }
  const fs::path root = fs::absolute(dir, ec);
  if (ec) return absl::NotFoundError(absl::StrCat("--register-adapters \"", dir, "\": ", ec.message()));
  std::vector<AdapterDir> out;
  for (const fs::directory_entry& e : fs::directory_iterator(root, ec)) {
    if (!e.is_directory(ec)) continue;
    if (!fs::is_regular_file(e.path() / "adapter_config.json", ec)) continue;
    out.push_back({e.path().filename().string(), e.path().lexically_normal().string()});
  }
  if (ec) return absl::NotFoundError(absl::StrCat("--register-adapters \"", dir, "\": ", ec.message()));
  if (out.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--register-adapters \"", dir, "\" has no subdirectory with an adapter_config.json"));
  }
  std::sort(out.begin(), out.end(),
            [](const AdapterDir& a, const AdapterDir& b) { return a.name < b.name; });
  return out;
}

absl::StatusOr<RegisterSummary> RegisterAdapters(v1::AdapterAdmin::StubInterface* stub,
                                                 const std::vector<AdapterDir>& adapters,
                                                 const RegisterOptions& options) {
  if (options.max_in_flight < 1) {
    return absl::InvalidArgumentError(absl::StrCat("--register-concurrency is ",
                                                   options.max_in_flight, ", must be >= 1"));
  }
  const auto start = std::chrono::steady_clock::now();
  auto shared_ptr = std::make_shared<Shared>(static_cast<int64_t>(adapters.size()), options.progress);
  Shared& shared = *shared_ptr;
  auto can_issue = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(shared.mu) {
    return shared.in_flight < options.max_in_flight || !shared.error.ok();
  };
  auto all_done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(shared.mu) { return shared.in_flight == 0; };

  for (const AdapterDir& adapter : adapters) {
    {
      absl::MutexLock lock(&shared.mu);
      shared.mu.Await(absl::Condition(&can_issue));
      if (!shared.error.ok()) break;
      ++shared.in_flight;
    }
    auto* call = new LoadCall;  // deleted by its callback
    call->request.set_name(adapter.name);
    call->request.set_path(adapter.path);
    call->context.set_deadline(std::chrono::system_clock::now() +
                               std::chrono::milliseconds(
                                   static_cast<int64_t>(options.rpc_timeout_s * 1000)));
    if (!options.token.empty()) {
      call->context.AddMetadata("authorization", absl::StrCat("Bearer ", options.token));
    }
    stub->async()->LoadAdapter(
        &call->context, &call->request, &call->response,
        [shared_ptr, call, adapter](grpc::Status status) {
          Shared& shared = *shared_ptr;
          absl::MutexLock lock(&shared.mu);
          --shared.in_flight;
          ++shared.done;
          if (status.ok()) {
            ++(call->response.already_loaded() ? shared.summary.already_loaded
                                               : shared.summary.loaded);
          } else if (status.error_code() == grpc::StatusCode::ALREADY_EXISTS) {
            ++shared.summary.skipped;
          } else if (shared.error.ok()) {
            shared.error = absl::Status(
                static_cast<absl::StatusCode>(status.error_code()),
                absl::StrCat("LoadAdapter \"", adapter.name, "\" (", adapter.path,
                             ") failed: ", GrpcCodeName(status.error_code()), ": ",
                             status.error_message()));
          }
          if (shared.progress != nullptr &&
              (shared.done % shared.progress_step == 0 || shared.done == shared.total)) {
            *shared.progress << absl::StrFormat("loadgen: registered %d/%d adapters\n",
                                                shared.done, shared.total)
                             << std::flush;
          }
          delete call;
        });
  }
  absl::MutexLock lock(&shared.mu);
  shared.mu.Await(absl::Condition(&all_done));
  if (!shared.error.ok()) return shared.error;
  shared.summary.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return shared.summary;
}

}  // namespace loraserve::loadgen
