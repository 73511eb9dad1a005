#include "bench/loadgen/trace.h"

#include <algorithm>
#include <cmath>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "bench/loadgen/trace_random.h"
#include "common/status.h"
#include "common/strings.h"

namespace loraserve::loadgen {
namespace {

// Sub-stream ids: one per trace field.
constexpr uint32_t kGapStream = 1;
constexpr uint32_t kAdapterStream = 2;
constexpr uint32_t kInputLenStream = 3;
constexpr uint32_t kOutputLenStream = 4;
constexpr uint32_t kPromptStream = 5;

// More requests than this is a typo, not a benchmark.
constexpr int64_t kMaxRequests = 100'000'000;

absl::Status Bad(std::string_view flag, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("--", Sv(flag), " ", Sv(what)));
}

absl::Status CheckPositive(std::string_view flag, double value) {
  if (!(value > 0) || !std::isfinite(value)) {
    return Bad(flag, absl::StrCat("is ", value, ", must be a finite number > 0"));
  }
  return absl::OkStatus();
}

absl::Status CheckRange(std::string_view flag, const LengthRange& r) {
  if (r.lo < 1 || r.lo >= r.hi) {
    return Bad(flag, absl::StrCat("is ", r.lo, ":", r.hi, ", must be lo:hi with 1 <= lo < hi"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status TraceOptions::Validate() const {
  RETURN_IF_ERROR(CheckPositive("rate", rate));
  RETURN_IF_ERROR(CheckPositive("duration", duration_s));
  RETURN_IF_ERROR(CheckPositive("cv", cv));
  RETURN_IF_ERROR(CheckPositive("alpha", alpha));
  if (num_adapters < 0) return Bad("num-adapters", absl::StrCat("is ", num_adapters, ", must be >= 0"));
  if (num_adapters > 0) RETURN_IF_ERROR(AdapterName(adapter_format, 0).status());
  RETURN_IF_ERROR(CheckRange("input-len", input_len));
  RETURN_IF_ERROR(CheckRange("output-len", output_len));
  if (prompt_token_min >= prompt_token_max) {
    return Bad("prompt-token-min",
               absl::StrCat("is ", prompt_token_min, ", must be < --prompt-token-max (",
                            prompt_token_max, ")"));
  }
  const double total = rate * duration_s;
  if (total < 1.0 - 1e-9) {
    return Bad("duration", absl::StrCat("* --rate is ", total, ": the trace would be empty"));
  }
  if (total > static_cast<double>(kMaxRequests)) {
    return Bad("duration", absl::StrCat("* --rate is ", total, " requests, more than ", kMaxRequests));
  }
  return absl::OkStatus();
}

int64_t TraceOptions::TotalRequests() const {
  return static_cast<int64_t>(std::floor(rate * duration_s + 1e-9));
}

absl::StatusOr<std::vector<TraceRequest>> SynthesizeTrace(const TraceOptions& options) {
  RETURN_IF_ERROR(options.Validate());
  const int64_t total = options.TotalRequests();
  std::vector<TraceRequest> trace(static_cast<size_t>(total));

  std::mt19937_64 gaps = SubStream(options.seed, kGapStream);
  const double shape = 1.0 / (options.cv * options.cv);
  const double scale = options.cv * options.cv / options.rate;
  double t = 0;
  for (int64_t i = 0; i < total; ++i) {
    t += Gamma(gaps, shape, scale);
    trace[i].id = i;
    trace[i].t = t;
  }

  if (options.num_adapters > 0) {
    std::mt19937_64 adapters = SubStream(options.seed, kAdapterStream);
    // One name per index, formatted once.
    std::vector<std::string> names(static_cast<size_t>(options.num_adapters));
    for (TraceRequest& r : trace) {
      const double x = Power(adapters, options.alpha) * options.num_adapters;
      const int32_t index =
          std::min(static_cast<int32_t>(std::floor(x)), options.num_adapters - 1);
      if (names[index].empty()) {
        ASSIGN_OR_RETURN(names[index], AdapterName(options.adapter_format, index));
      }
      r.adapter = names[index];
    }
  }

  std::mt19937_64 input_lens = SubStream(options.seed, kInputLenStream);
  std::mt19937_64 output_lens = SubStream(options.seed, kOutputLenStream);
  for (TraceRequest& r : trace) {
    r.input_len = static_cast<int32_t>(
        UniformInt(input_lens, options.input_len.lo, options.input_len.hi));
    r.output_len = static_cast<int32_t>(
        UniformInt(output_lens, options.output_len.lo, options.output_len.hi));
  }
  RETURN_IF_ERROR(FillMissingPrompts(options.seed, options.prompt_token_min,
                                     options.prompt_token_max, &trace));
  return trace;
}

absl::Status FillMissingPrompts(uint64_t seed, uint32_t token_min, uint32_t token_max,
                                std::vector<TraceRequest>* trace) {
  if (token_min >= token_max) {
    return Bad("prompt-token-min", absl::StrCat("is ", token_min, ", must be < --prompt-token-max (",
                                                token_max, ")"));
  }
  std::mt19937_64 prompts = SubStream(seed, kPromptStream);
  for (TraceRequest& r : *trace) {
    const bool missing = r.prompt_ids.empty();
    for (int32_t k = 0; k < r.input_len; ++k) {
      const auto id = static_cast<uint32_t>(UniformInt(prompts, token_min, token_max));
      if (missing) r.prompt_ids.push_back(id);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> AdapterName(std::string_view format, int32_t index) {
  auto parsed = absl::ParsedFormat<'d'>::New(Sv(format));
  if (parsed == nullptr) {
    return Bad("adapter-format",
               absl::StrCat("is \"", Sv(format),
                            "\", must contain exactly one integer conversion such as %04d"));
  }
  return absl::StrFormat(*parsed, index);
}

absl::StatusOr<LengthRange> ParseLengthRange(std::string_view flag, std::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(Sv(text), ':');
  LengthRange r;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &r.lo) ||
      !absl::SimpleAtoi(parts[1], &r.hi)) {
    return Bad(flag, absl::StrCat("is \"", Sv(text), "\", must be lo:hi (e.g. 8:512)"));
  }
  RETURN_IF_ERROR(CheckRange(flag, r));
  return r;
}

}  // namespace loraserve::loadgen
