// ProgressPrinter: the generators' progress lines on stderr, one each time
// another `step_percent` of the work is done ("make-adapters:  35% 700/2000
// 1.2 s"), so a multi-minute run shows it is alive without flooding a log.
//
// Used by the loraserve-make-* mains. One thread.
#pragma once

#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace loraserve::bench {

class ProgressPrinter {
 public:
  // `unit` names what is counted ("adapters", "MiB"); `divisor` scales the
  // printed numbers (e.g. 1 << 20 for MiB).
  ProgressPrinter(std::string label, std::string unit, int64_t total, int64_t divisor = 1,
                  int step_percent = 5);
  // Reports `done` units so far; prints when another step is crossed.
  void Update(int64_t done);
  double elapsed_seconds() const;

 private:
  std::string label_;
  std::string unit_;
  int64_t total_;
  int64_t divisor_;
  int step_percent_;
  int next_percent_;
  absl::Time start_;
};

// "1.23 GiB", "45.6 MiB", "789 B".
std::string HumanBytes(int64_t bytes);

}  // namespace loraserve::bench
