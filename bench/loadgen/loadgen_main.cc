// loraserve-loadgen: the serving load generator (S-LoRA synthetic workload,
// open loop, over the real gRPC API). Flags below; dashes or underscores
// both work (--input-len or --input_len). Exit codes: 0 the run completed
// and was reported (failed requests included, unless --fail-on-error),
// 1 setup error, 2 bad flag values. absl::ParseCommandLine itself exits 1
// on what it cannot parse at all (an unknown flag, "--rate abc").
// See bench/loadgen/loadgen_run.h.
#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "bench/loadgen/loadgen_options.h"
#include "bench/loadgen/loadgen_run.h"
#include "bench/loadgen/trace.h"
#include "common/flag_names.h"

ABSL_FLAG(std::string, addr, "", "Generation service HOST:PORT (required unless only --write-trace)");
ABSL_FLAG(std::string, admin_addr, "", "AdapterAdmin HOST:PORT (for --register-adapters)");
ABSL_FLAG(std::string, admin_token_file, "", "File holding the AdapterAdmin bearer token");
ABSL_FLAG(std::string, register_adapters, "",
          "Before the run, load every subdirectory of DIR holding adapter_config.json "
          "(name = subdirectory name)");
ABSL_FLAG(int32_t, register_concurrency, 16, "LoadAdapter calls in flight during registration");
ABSL_FLAG(double, wait_ready, 0, "Seconds to wait for grpc.health.v1 SERVING before the run (0 = no)");
ABSL_FLAG(double, connect_timeout, 10, "Seconds to wait for the connection when not --wait-ready");
ABSL_FLAG(double, rate, 1.0, "Requests per second");
ABSL_FLAG(double, duration, 60.0, "Seconds of trace: floor(rate * duration) requests");
ABSL_FLAG(double, cv, 1.0, "Coefficient of variation of the Gamma inter-arrival gaps (1 = Poisson)");
ABSL_FLAG(double, alpha, 1.0, "Adapter popularity: index = floor(power(alpha) * n); 1 = uniform");
ABSL_FLAG(int32_t, num_adapters, 0, "Adapters to spread requests over (0 = base model only)");
ABSL_FLAG(std::string, adapter_format, "adapter-%04d", "Adapter name of an index (printf, one %d)");
ABSL_FLAG(std::string, input_len, "8:512", "Prompt lengths, uniform in [lo, hi)");
ABSL_FLAG(std::string, output_len, "8:512", "Output lengths, uniform in [lo, hi)");
ABSL_FLAG(int64_t, prompt_token_min, 1, "Smallest prompt token id");
ABSL_FLAG(int64_t, prompt_token_max, 500, "Prompt token ids are < this");
ABSL_FLAG(uint64_t, seed, 42, "Seed of the synthesized trace and of missing prompts");
ABSL_FLAG(std::string, trace, "", "Replay this JSON Lines trace instead of synthesizing one");
ABSL_FLAG(std::string, write_trace, "", "Write the trace as JSON Lines (without --addr: only that)");
ABSL_FLAG(double, request_timeout, 0, "Per-request deadline in seconds (0 = none)");
ABSL_FLAG(double, drain_timeout, 600,
          "Seconds after the last send before open requests are cancelled");
ABSL_FLAG(double, slo_ttft, 6, "First-token SLO in seconds");
ABSL_FLAG(std::string, json, "", "Write the report as JSON to this file");
ABSL_FLAG(bool, fail_on_error, false, "Exit 1 when any request did not succeed");
ABSL_FLAG(double, progress_interval, 5, "Seconds between progress lines on stderr (0 = none)");

namespace loraserve::loadgen {
namespace {

int Usage(const std::string& message) {
  std::cerr << "loraserve-loadgen: " << message << "\n";
  return kExitUsage;
}

// Token ids are uint32 on the wire.
bool TokenIdFlag(int64_t v) { return v >= 0 && v <= int64_t{UINT32_MAX}; }

int Main(int argc, char** argv) {
  SetFlagsHelp(
      "the loraserve serving load generator (S-LoRA synthetic workload, open loop).\n"
      "  loraserve-loadgen --addr HOST:PORT [--rate R --duration S --cv C --alpha A\n"
      "      --num-adapters N --input-len LO:HI --output-len LO:HI] [--json FILE]",
      "loadgen_main.cc");
  std::vector<std::string> args = UnderscoreFlagNames(argc, argv);
  std::vector<char*> ptrs;
  for (std::string& a : args) ptrs.push_back(a.data());
  const std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(ptrs.size()), ptrs.data());
  if (positional.size() > 1) return Usage(std::string("unexpected argument ") + positional[1]);

  LoadgenOptions o;
  o.addr = absl::GetFlag(FLAGS_addr);
  o.admin_addr = absl::GetFlag(FLAGS_admin_addr);
  o.admin_token_file = absl::GetFlag(FLAGS_admin_token_file);
  o.register_adapters = absl::GetFlag(FLAGS_register_adapters);
  o.register_concurrency = absl::GetFlag(FLAGS_register_concurrency);
  o.wait_ready_s = absl::GetFlag(FLAGS_wait_ready);
  o.connect_timeout_s = absl::GetFlag(FLAGS_connect_timeout);
  o.trace.rate = absl::GetFlag(FLAGS_rate);
  o.trace.duration_s = absl::GetFlag(FLAGS_duration);
  o.trace.cv = absl::GetFlag(FLAGS_cv);
  o.trace.alpha = absl::GetFlag(FLAGS_alpha);
  o.trace.num_adapters = absl::GetFlag(FLAGS_num_adapters);
  o.trace.adapter_format = absl::GetFlag(FLAGS_adapter_format);
  absl::StatusOr<LengthRange> input = ParseLengthRange("input-len", absl::GetFlag(FLAGS_input_len));
  if (!input.ok()) return Usage(std::string(input.status().message()));
  o.trace.input_len = *input;
  absl::StatusOr<LengthRange> output =
      ParseLengthRange("output-len", absl::GetFlag(FLAGS_output_len));
  if (!output.ok()) return Usage(std::string(output.status().message()));
  o.trace.output_len = *output;
  const int64_t token_min = absl::GetFlag(FLAGS_prompt_token_min);
  const int64_t token_max = absl::GetFlag(FLAGS_prompt_token_max);
  if (!TokenIdFlag(token_min)) return Usage("--prompt-token-min must be in [0, 2^32)");
  if (!TokenIdFlag(token_max)) return Usage("--prompt-token-max must be in [0, 2^32)");
  o.trace.prompt_token_min = static_cast<uint32_t>(token_min);
  o.trace.prompt_token_max = static_cast<uint32_t>(token_max);
  o.trace.seed = absl::GetFlag(FLAGS_seed);
  o.trace_file = absl::GetFlag(FLAGS_trace);
  o.write_trace = absl::GetFlag(FLAGS_write_trace);
  o.request_timeout_s = absl::GetFlag(FLAGS_request_timeout);
  o.drain_timeout_s = absl::GetFlag(FLAGS_drain_timeout);
  o.slo_ttft_s = absl::GetFlag(FLAGS_slo_ttft);
  o.json = absl::GetFlag(FLAGS_json);
  o.fail_on_error = absl::GetFlag(FLAGS_fail_on_error);
  o.progress_interval_s = absl::GetFlag(FLAGS_progress_interval);
  return RunLoadgen(o, std::cout, std::cerr);
}

}  // namespace
}  // namespace loraserve::loadgen

int main(int argc, char** argv) { return loraserve::loadgen::Main(argc, argv); }
