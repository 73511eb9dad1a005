#include "server/admin_service.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "server/adapter_paths.h"
#include "server/grpc_status.h"

namespace loraserve {
namespace {

v1::ResidencyTier ToProtoTier(AdapterTier tier) {
  switch (tier) {
    case AdapterTier::kDisk:
      return v1::RESIDENCY_TIER_DISK;
    case AdapterTier::kHost:
      return v1::RESIDENCY_TIER_HOST;
    case AdapterTier::kDevice:
      return v1::RESIDENCY_TIER_DEVICE;
  }
  return v1::RESIDENCY_TIER_UNSPECIFIED;
}

const char* TierLabel(AdapterTier tier) { return tier == AdapterTier::kDevice ? "device" : "host"; }

void ToProto(const AdapterDescription& d, v1::AdapterInfo* out) {
  out->set_name(d.name);
  out->set_path(d.path);
  for (int32_t r : d.ranks) out->add_ranks(static_cast<uint32_t>(r));
  for (const std::string& m : d.target_modules) out->add_target_modules(m);
  out->set_bytes(d.bytes);
  out->set_tier(ToProtoTier(d.tier));
  out->set_in_use(static_cast<uint32_t>(d.in_use));
  out->set_last_used_unix_seconds(
      d.last_used == absl::InfinitePast() ? 0.0 : absl::ToDoubleSeconds(d.last_used - absl::UnixEpoch()));
}

grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* context, const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  // The length may leak through timing; the bytes do not.
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = a.size() < b.size() ? a.size() : b.size();
  for (size_t i = 0; i < n; ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

absl::StatusOr<std::string> ReadAdminTokenFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("--admin-token-file \"", path, "\" cannot be read"));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string token(absl::StripAsciiWhitespace(ss.str()));
  if (token.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--admin-token-file \"", path, "\" is empty"));
  }
  return token;
}

absl::Status AdminService::Authorize(const grpc::CallbackServerContext& context) const {
  if (options_.token.empty()) return absl::OkStatus();
  const auto& md = context.client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) {
    return absl::UnauthenticatedError("missing \"authorization: Bearer <token>\" metadata");
  }
  const std::string_view value(it->second.data(), it->second.size());
  const std::string expected = absl::StrCat("Bearer ", options_.token);
  if (!ConstantTimeEquals(value, expected)) {
    return absl::UnauthenticatedError("wrong admin token");
  }
  return absl::OkStatus();
}

absl::StatusOr<EngineApi*> AdminService::Engine() const {
  EngineApi* engine = state_->engine();
  if (engine == nullptr) return absl::UnavailableError("model is loading");
  return engine;
}

absl::StatusOr<v1::LoadAdapterResponse> AdminService::DoLoad(const v1::LoadAdapterRequest& request,
                                                             bool check_root) {
  RETURN_IF_ERROR(ValidateAdapterName(request.name()));
  ASSIGN_OR_RETURN(EngineApi * engine, Engine());
  std::string path = request.path();
  if (check_root) {
    ASSIGN_OR_RETURN(path, ResolveAdapterPath(options_.adapter_root, request.path()));
  } else if (path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("adapter ", request.name(), ": path is empty"));
  }
  const absl::Time start = absl::Now();
  absl::StatusOr<LoadAdapterResult> loaded = engine->LoadAdapter(request.name(), path);
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (!loaded.ok()) {
    if (loaded.status().code() != absl::StatusCode::kAlreadyExists) {
      state_->metrics()->OnAdapterLoad("host", false, seconds);
    }
    return loaded.status();
  }
  if (!loaded->already_loaded) {
    state_->metrics()->OnAdapterLoad(TierLabel(loaded->adapter.tier), true, seconds);
  }
  v1::LoadAdapterResponse response;
  ToProto(loaded->adapter, response.mutable_adapter());
  response.set_already_loaded(loaded->already_loaded);
  return response;
}

grpc::ServerUnaryReactor* AdminService::LoadAdapter(grpc::CallbackServerContext* context,
                                                    const v1::LoadAdapterRequest* request,
                                                    v1::LoadAdapterResponse* response) {
  if (absl::Status auth = Authorize(*context); !auth.ok()) return Done(context, auth);
  absl::StatusOr<v1::LoadAdapterResponse> r = DoLoad(*request, /*check_root=*/true);
  if (r.ok()) *response = *std::move(r);
  return Done(context, r.status());
}

grpc::ServerUnaryReactor* AdminService::UnloadAdapter(grpc::CallbackServerContext* context,
                                                      const v1::UnloadAdapterRequest* request,
                                                      v1::UnloadAdapterResponse* /*response*/) {
  if (absl::Status auth = Authorize(*context); !auth.ok()) return Done(context, auth);
  if (absl::Status name = ValidateAdapterName(request->name()); !name.ok()) {
    return Done(context, name);
  }
  absl::StatusOr<EngineApi*> engine = Engine();
  if (!engine.ok()) return Done(context, engine.status());
  return Done(context, (*engine)->UnloadAdapter(request->name()));
}

grpc::ServerUnaryReactor* AdminService::ListAdapters(grpc::CallbackServerContext* context,
                                                     const v1::ListAdaptersRequest* /*request*/,
                                                     v1::ListAdaptersResponse* response) {
  if (absl::Status auth = Authorize(*context); !auth.ok()) return Done(context, auth);
  absl::StatusOr<EngineApi*> engine = Engine();
  if (!engine.ok()) return Done(context, engine.status());
  std::vector<AdapterDescription> adapters = (*engine)->ListAdapters();
  std::sort(adapters.begin(), adapters.end(),
            [](const AdapterDescription& a, const AdapterDescription& b) { return a.name < b.name; });
  for (const AdapterDescription& d : adapters) ToProto(d, response->add_adapters());
  return Done(context, absl::OkStatus());
}

}  // namespace loraserve
