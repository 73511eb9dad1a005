#include "server/cli.h"

#include <chrono>
#include <cstdlib>
#include <memory>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "loraserve/v1/admin.grpc.pb.h"
#include "loraserve/v1/generation.grpc.pb.h"
#include "server/admin_service.h"
#include "server/grpc_status.h"
#include "server/health_client.h"
#include "server/request_convert.h"

namespace loraserve {
namespace {

constexpr char kUsage[] =
    "usage: loraserve-cli [--addr HOST:PORT] [--admin-addr HOST:PORT] [--admin-token-file F]\n"
    "                     [--timeout SECONDS] COMMAND\n"
    "  generate [--adapter NAME] [--stream] [--max-tokens N] [--temperature T] [--seed S] PROMPT\n"
    "  adapters load NAME PATH | adapters unload NAME | adapters list\n"
    "  health\n";

struct Globals {
  std::string addr = "127.0.0.1:50051";
  std::string admin_addr = "127.0.0.1:50052";
  std::string admin_token_file;
  double timeout_s = 60;
};

int Usage(std::ostream& err, const std::string& problem) {
  err << "loraserve-cli: " << problem << "\n" << kUsage;
  return kCliUsage;
}

int RpcError(std::ostream& err, const grpc::Status& s) {
  err << "error: " << GrpcCodeName(s.error_code()) << ": " << s.error_message() << "\n";
  return kCliRpcError;
}

void SetDeadline(grpc::ClientContext* ctx, double seconds) {
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)));
}

std::shared_ptr<grpc::Channel> Channel(const std::string& addr) {
  return grpc::CreateChannel(addr, grpc::InsecureChannelCredentials());
}

int Generate(const Globals& g, const std::vector<std::string>& args, size_t i, std::ostream& out,
             std::ostream& err) {
  v1::GenerateRequest req;
  bool stream = false;
  std::optional<std::string> prompt;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](const char* flag) -> std::optional<std::string> {
      if (i + 1 >= args.size()) return std::nullopt;
      (void)flag;
      return args[++i];
    };
    if (a == "--stream") {
      stream = true;
    } else if (a == "--adapter") {
      auto v = value("--adapter");
      if (!v) return Usage(err, "--adapter needs a value");
      req.set_adapter_id(*v);
    } else if (a == "--max-tokens") {
      auto v = value("--max-tokens");
      uint32_t n = 0;
      if (!v || !absl::SimpleAtoi(*v, &n)) return Usage(err, "--max-tokens needs an integer");
      req.mutable_stopping()->set_max_tokens(n);
    } else if (a == "--temperature") {
      auto v = value("--temperature");
      float t = 0;
      if (!v || !absl::SimpleAtof(*v, &t)) return Usage(err, "--temperature needs a number");
      req.mutable_sampling()->set_temperature(t);
    } else if (a == "--seed") {
      auto v = value("--seed");
      uint64_t s = 0;
      if (!v || !absl::SimpleAtoi(*v, &s)) return Usage(err, "--seed needs an integer");
      req.mutable_sampling()->set_seed(s);
    } else if (a.size() > 1 && a[0] == '-' && a != "-") {
      return Usage(err, absl::StrCat("generate: unknown flag ", a));
    } else if (prompt.has_value()) {
      return Usage(err, "generate takes one PROMPT (quote it)");
    } else {
      prompt = a;
    }
  }
  if (!prompt.has_value()) return Usage(err, "generate needs a PROMPT");
  req.set_text(*prompt);
  auto stub = v1::Generation::NewStub(Channel(g.addr));
  grpc::ClientContext ctx;
  SetDeadline(&ctx, g.timeout_s);
  auto reader = stub->Generate(&ctx, req);
  v1::GenerateResponse resp;
  std::string text;
  std::optional<v1::GenerateResponse> terminal;
  while (reader->Read(&resp)) {
    if (resp.has_delta()) {
      if (stream) {
        out << resp.delta().text() << std::flush;
      } else {
        text += resp.delta().text();
      }
    } else {
      terminal = resp;
    }
  }
  grpc::Status s = reader->Finish();
  if (!s.ok()) return RpcError(err, s);
  if (!stream) out << text;
  out << "\n";
  if (!terminal.has_value()) {
    err << "error: stream ended without a terminal event\n";
    return kCliRpcError;
  }
  if (terminal->has_error()) {
    err << "error: " << GrpcCodeName(terminal->error().code()) << ": " << terminal->error().message()
        << "\n";
    return kCliRpcError;
  }
  err << "[" << terminal->request_id() << " finished: " << FinishReasonName(terminal->finished().reason())
      << ", prompt_tokens=" << terminal->usage().prompt_tokens()
      << ", completion_tokens=" << terminal->usage().completion_tokens() << "]\n";
  return kCliOk;
}

// "never" or an RFC 3339 UTC time with milliseconds.
std::string LastUsed(double unix_seconds) {
  if (unix_seconds <= 0) return "never";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ",
                          absl::UnixEpoch() + absl::Milliseconds(static_cast<int64_t>(
                                                  unix_seconds * 1000.0)),
                          absl::UTCTimeZone());
}

void PrintAdapter(const v1::AdapterInfo& a, std::ostream& out) {
  out << a.name() << "\t" << a.path() << "\tranks=" << absl::StrJoin(a.ranks(), ",")
      << "\tmodules=" << absl::StrJoin(a.target_modules(), ",") << "\tbytes=" << a.bytes()
      << "\ttier=" << v1::ResidencyTier_Name(a.tier()) << "\tin_use=" << a.in_use()
      << "\tlast_used=" << LastUsed(a.last_used_unix_seconds()) << "\n";
}

int Adapters(const Globals& g, const std::vector<std::string>& args, size_t i, std::ostream& out,
             std::ostream& err) {
  if (i >= args.size()) return Usage(err, "adapters needs load, unload or list");
  const std::string verb = args[i++];
  const size_t rest = args.size() - i;
  std::string token;
  if (!g.admin_token_file.empty()) {
    auto t = ReadAdminTokenFile(g.admin_token_file);
    if (!t.ok()) return Usage(err, std::string(t.status().message()));
    token = *t;
  }
  auto stub = v1::AdapterAdmin::NewStub(Channel(g.admin_addr));
  grpc::ClientContext ctx;
  SetDeadline(&ctx, g.timeout_s);
  if (!token.empty()) ctx.AddMetadata("authorization", absl::StrCat("Bearer ", token));
  if (verb == "load") {
    if (rest != 2) return Usage(err, "adapters load NAME PATH");
    v1::LoadAdapterRequest req;
    req.set_name(args[i]);
    req.set_path(args[i + 1]);
    v1::LoadAdapterResponse resp;
    grpc::Status s = stub->LoadAdapter(&ctx, req, &resp);
    if (!s.ok()) return RpcError(err, s);
    out << (resp.already_loaded() ? "already loaded: " : "loaded: ");
    PrintAdapter(resp.adapter(), out);
    return kCliOk;
  }
  if (verb == "unload") {
    if (rest != 1) return Usage(err, "adapters unload NAME");
    v1::UnloadAdapterRequest req;
    req.set_name(args[i]);
    v1::UnloadAdapterResponse resp;
    grpc::Status s = stub->UnloadAdapter(&ctx, req, &resp);
    if (!s.ok()) return RpcError(err, s);
    out << "unloaded: " << args[i] << "\n";
    return kCliOk;
  }
  if (verb == "list") {
    if (rest != 0) return Usage(err, "adapters list takes no arguments");
    v1::ListAdaptersResponse resp;
    grpc::Status s = stub->ListAdapters(&ctx, v1::ListAdaptersRequest(), &resp);
    if (!s.ok()) return RpcError(err, s);
    for (const v1::AdapterInfo& a : resp.adapters()) PrintAdapter(a, out);
    return kCliOk;
  }
  return Usage(err, absl::StrCat("adapters: unknown verb ", verb));
}

}  // namespace

int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  Globals g;
  size_t i = 0;
  for (; i < args.size() && args[i].size() > 2 && args[i].substr(0, 2) == "--"; ++i) {
    const std::string& a = args[i];
    if (a == "--help") {
      out << kUsage;
      return kCliOk;
    }
    if (i + 1 >= args.size()) return Usage(err, absl::StrCat(a, " needs a value"));
    const std::string& v = args[++i];
    if (a == "--addr") {
      g.addr = v;
    } else if (a == "--admin-addr") {
      g.admin_addr = v;
    } else if (a == "--admin-token-file") {
      g.admin_token_file = v;
    } else if (a == "--timeout") {
      if (!absl::SimpleAtod(v, &g.timeout_s) || !(g.timeout_s > 0)) {
        return Usage(err, "--timeout needs a number of seconds > 0");
      }
    } else {
      return Usage(err, absl::StrCat("unknown flag ", a));
    }
  }
  if (i >= args.size()) return Usage(err, "missing COMMAND");
  const std::string& command = args[i++];
  if (command == "generate") return Generate(g, args, i, out, err);
  if (command == "adapters") return Adapters(g, args, i, out, err);
  if (command == "health") {
    if (i != args.size()) return Usage(err, "health takes no arguments");
    auto h = CheckHealth(Channel(g.addr), "", absl::Milliseconds(g.timeout_s * 1000));
    if (!h.ok()) return RpcError(err, ToGrpcStatus(h.status()));
    out << HealthStatusName(*h) << "\n";
    return *h == HealthStatus::kServing ? kCliOk : kCliRpcError;
  }
  return Usage(err, absl::StrCat("unknown command ", command));
}

}  // namespace loraserve
