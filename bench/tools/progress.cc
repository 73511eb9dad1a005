#include "bench/tools/progress.h"

#include <cstdio>
#include <utility>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace loraserve::bench {

ProgressPrinter::ProgressPrinter(std::string label, std::string unit, int64_t total,
                                 int64_t divisor, int step_percent)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      divisor_(divisor > 0 ? divisor : 1),
      step_percent_(step_percent > 0 ? step_percent : 5),
      next_percent_(step_percent_),
      start_(absl::Now()) {}

void ProgressPrinter::Update(int64_t done) {
  if (total_ <= 0) return;
  const int percent = static_cast<int>(done * 100 / total_);
  if (percent < next_percent_) return;
  while (next_percent_ <= percent) next_percent_ += step_percent_;
  if (divisor_ == 1) {
    std::fprintf(stderr, "%s: %3d%% %lld/%lld %s  %.1f s\n", label_.c_str(), percent,
                 static_cast<long long>(done), static_cast<long long>(total_), unit_.c_str(),
                 elapsed_seconds());
  } else {
    const double d = static_cast<double>(divisor_);
    std::fprintf(stderr, "%s: %3d%% %.1f/%.1f %s  %.1f s\n", label_.c_str(), percent,
                 static_cast<double>(done) / d, static_cast<double>(total_) / d, unit_.c_str(),
                 elapsed_seconds());
  }
  std::fflush(stderr);
}

double ProgressPrinter::elapsed_seconds() const {
  return absl::ToDoubleSeconds(absl::Now() - start_);
}

std::string HumanBytes(int64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (b >= 1024.0 * 1024 * 1024) return absl::StrFormat("%.2f GiB", b / (1024.0 * 1024 * 1024));
  if (b >= 1024.0 * 1024) return absl::StrFormat("%.1f MiB", b / (1024.0 * 1024));
  if (b >= 1024.0) return absl::StrFormat("%.1f KiB", b / 1024.0);
  return absl::StrFormat("%d B", bytes);
}

}  // namespace loraserve::bench
