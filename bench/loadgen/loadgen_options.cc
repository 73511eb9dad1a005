#include "bench/loadgen/loadgen_options.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"

namespace loraserve::loadgen {
namespace {

absl::Status Bad(std::string_view flag, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("--", Sv(flag), " ", Sv(what)));
}

absl::Status CheckSeconds(std::string_view flag, double value, bool allow_zero) {
  const bool ok = std::isfinite(value) && (allow_zero ? value >= 0 : value > 0);
  if (!ok) {
    return Bad(flag, absl::StrCat("is ", value, ", must be a finite number ",
                                  allow_zero ? ">= 0" : "> 0"));
  }
  return absl::OkStatus();
}

std::string RangeText(const LengthRange& r) { return absl::StrCat(r.lo, ":", r.hi); }

}  // namespace

absl::Status LoadgenOptions::Validate() const {
  if (addr.empty() && write_trace.empty()) {
    return Bad("addr", "is missing: name the server's Generation address HOST:PORT");
  }
  if (!register_adapters.empty() && admin_addr.empty()) {
    return Bad("admin-addr", "is missing: --register-adapters needs the AdapterAdmin address");
  }
  if (!admin_token_file.empty() && admin_addr.empty()) {
    return Bad("admin-token-file", "is set without --admin-addr");
  }
  if (register_concurrency < 1) {
    return Bad("register-concurrency", absl::StrCat("is ", register_concurrency, ", must be >= 1"));
  }
  RETURN_IF_ERROR(CheckSeconds("wait-ready", wait_ready_s, true));
  RETURN_IF_ERROR(CheckSeconds("connect-timeout", connect_timeout_s, false));
  RETURN_IF_ERROR(CheckSeconds("request-timeout", request_timeout_s, true));
  RETURN_IF_ERROR(CheckSeconds("drain-timeout", drain_timeout_s, true));
  RETURN_IF_ERROR(CheckSeconds("slo-ttft", slo_ttft_s, false));
  RETURN_IF_ERROR(CheckSeconds("progress-interval", progress_interval_s, true));
  if (trace_file.empty()) {
    RETURN_IF_ERROR(trace.Validate());
  } else if (trace.prompt_token_min >= trace.prompt_token_max) {
    return Bad("prompt-token-min", absl::StrCat("is ", trace.prompt_token_min,
                                                ", must be < --prompt-token-max (",
                                                trace.prompt_token_max, ")"));
  }
  if (!trace_file.empty() && trace_file == write_trace) {
    return Bad("write-trace", "names the --trace file being replayed");
  }
  return absl::OkStatus();
}

nlohmann::ordered_json LoadgenOptions::ToJson() const {
  nlohmann::ordered_json j;
  j["addr"] = addr;
  j["admin_addr"] = admin_addr;
  j["admin_token_file"] = admin_token_file;
  j["register_adapters"] = register_adapters;
  j["register_concurrency"] = register_concurrency;
  j["wait_ready"] = wait_ready_s;
  j["connect_timeout"] = connect_timeout_s;
  j["rate"] = trace.rate;
  j["duration"] = trace.duration_s;
  j["cv"] = trace.cv;
  j["alpha"] = trace.alpha;
  j["num_adapters"] = trace.num_adapters;
  j["adapter_format"] = trace.adapter_format;
  j["input_len"] = RangeText(trace.input_len);
  j["output_len"] = RangeText(trace.output_len);
  j["prompt_token_min"] = trace.prompt_token_min;
  j["prompt_token_max"] = trace.prompt_token_max;
  j["seed"] = trace.seed;
  j["trace"] = trace_file;
  j["write_trace"] = write_trace;
  j["request_timeout"] = request_timeout_s;
  j["drain_timeout"] = drain_timeout_s;
  j["slo_ttft"] = slo_ttft_s;
  j["json"] = json;
  j["fail_on_error"] = fail_on_error;
  j["progress_interval"] = progress_interval_s;
  return j;
}

}  // namespace loraserve::loadgen
