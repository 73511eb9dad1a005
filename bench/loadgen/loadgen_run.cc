#include "bench/loadgen/loadgen_run.h"

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "bench/loadgen/adapter_registrar.h"
#include "bench/loadgen/generate_client.h"
#include "bench/loadgen/latency_report.h"
#include "bench/loadgen/server_ready.h"
#include "bench/loadgen/trace_file.h"
#include "common/status.h"
#include "grpcpp/grpcpp.h"
#include "server/admin_service.h"

namespace loraserve::loadgen {
namespace {

absl::Duration Seconds(double s) { return absl::Milliseconds(s * 1000); }

absl::StatusOr<std::vector<TraceRequest>> LoadTrace(const LoadgenOptions& o) {
  if (o.trace_file.empty()) return SynthesizeTrace(o.trace);
  ASSIGN_OR_RETURN(std::vector<TraceRequest> trace, ReadTraceFile(o.trace_file));
  RETURN_IF_ERROR(FillMissingPrompts(o.trace.seed, o.trace.prompt_token_min,
                                     o.trace.prompt_token_max, &trace));
  return trace;
}

absl::Status Register(const LoadgenOptions& o, std::ostream& err) {
  std::string token;
  if (!o.admin_token_file.empty()) {
    ASSIGN_OR_RETURN(token, ReadAdminTokenFile(o.admin_token_file));
  }
  ASSIGN_OR_RETURN(std::vector<AdapterDir> dirs, FindAdapterDirs(o.register_adapters));
  auto channel = grpc::CreateChannel(o.admin_addr, grpc::InsecureChannelCredentials());
  auto stub = v1::AdapterAdmin::NewStub(channel);
  RegisterOptions ro;
  ro.max_in_flight = o.register_concurrency;
  ro.token = token;
  ro.progress = &err;
  ASSIGN_OR_RETURN(RegisterSummary s, RegisterAdapters(stub.get(), dirs, ro));
  err << absl::StrFormat(
             "loadgen: adapters from %s: %d loaded, %d already loaded, %d skipped (name taken) "
             "in %.2fs\n",
             o.register_adapters, s.loaded, s.already_loaded, s.skipped, s.seconds)
      << std::flush;
  return absl::OkStatus();
}

int SetupError(std::ostream& err, const absl::Status& s) {
  err << "loraserve-loadgen: " << s.message() << "\n";
  return kExitSetupError;
}

}  // namespace

int RunLoadgen(const LoadgenOptions& o, std::ostream& out, std::ostream& err) {
  if (absl::Status s = o.Validate(); !s.ok()) {
    err << "loraserve-loadgen: " << s.message() << "\n";
    return kExitUsage;
  }
  absl::StatusOr<std::vector<TraceRequest>> trace = LoadTrace(o);
  if (!trace.ok()) return SetupError(err, trace.status());
  if (!o.write_trace.empty()) {
    if (absl::Status s = WriteTraceFile(o.write_trace, *trace); !s.ok()) return SetupError(err, s);
    err << "loadgen: wrote " << trace->size() << " requests to " << o.write_trace << "\n";
    if (o.addr.empty()) return kExitOk;
  }

  auto channel = grpc::CreateChannel(o.addr, grpc::InsecureChannelCredentials());
  const absl::Status ready = o.wait_ready_s > 0
                                 ? WaitForServing(channel, Seconds(o.wait_ready_s), &err)
                                 : WaitForConnected(channel, o.addr, Seconds(o.connect_timeout_s));
  if (!ready.ok()) return SetupError(err, ready);
  if (!o.register_adapters.empty()) {
    if (absl::Status s = Register(o, err); !s.ok()) return SetupError(err, s);
  }

  err << absl::StrFormat("loadgen: replaying %d requests over %.1fs to %s\n", trace->size(),
                         trace->back().t, o.addr)
      << std::flush;
  auto stub = v1::Generation::NewStub(channel);
  ReplayOptions ro;
  ro.request_timeout_s = o.request_timeout_s;
  ro.drain_timeout_s = o.drain_timeout_s;
  ro.progress_interval_s = o.progress_interval_s;
  ro.progress = &err;
  const std::vector<RequestRecord> records = ReplayTrace(stub.get(), *trace, ro);

  const LatencyReport report = BuildReport(records, o.slo_ttft_s);
  out << FormatReportTable(report) << std::flush;
  if (!o.json.empty()) {
    std::ofstream f(o.json, std::ios::trunc);
    f << ReportToJson(report, o.ToJson()).dump(2) << "\n";
    f.flush();
    if (!f) return SetupError(err, absl::NotFoundError("cannot write --json " + o.json));
  }
  if (o.fail_on_error && report.ok != report.requests) {
    err << "loraserve-loadgen: " << report.requests - report.ok
        << " requests did not succeed (--fail-on-error)\n";
    return kExitSetupError;
  }
  return kExitOk;
}

}  // namespace loraserve::loadgen
