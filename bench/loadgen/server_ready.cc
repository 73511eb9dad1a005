#include "bench/loadgen/server_ready.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/health_client.h"

namespace loraserve::loadgen {

absl::Status WaitForServing(const std::shared_ptr<grpc::Channel>& channel, absl::Duration timeout,
                            std::ostream* progress) {
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + timeout;
  absl::Time next_line = start + absl::Seconds(5);
  std::string last = "no answer";
  while (true) {
    const absl::Duration left = deadline - absl::Now();
    absl::StatusOr<HealthStatus> h =
        CheckHealth(channel, "", std::clamp(left, absl::Milliseconds(1), absl::Seconds(2)));
    if (h.ok() && *h == HealthStatus::kServing) return absl::OkStatus();
    last = h.ok() ? HealthStatusName(*h) : h.status().ToString();
    const absl::Time now = absl::Now();
    if (now >= deadline) break;
    if (progress != nullptr && now >= next_line) {
      *progress << "loadgen: waiting for the server to be SERVING (" << last << ")\n" << std::flush;
      next_line += absl::Seconds(5);
    }
    absl::SleepFor(std::min(absl::Milliseconds(250), deadline - now));
  }
  return absl::DeadlineExceededError(absl::StrCat("server not SERVING after --wait-ready ",
                                                  absl::FormatDuration(timeout), " (last: ", last,
                                                  ")"));
}

absl::Status WaitForConnected(const std::shared_ptr<grpc::Channel>& channel,
                              const std::string& target, absl::Duration timeout) {
  const auto deadline = std::chrono::system_clock::now() +
                        std::chrono::microseconds(absl::ToInt64Microseconds(timeout));
  if (!channel->WaitForConnected(deadline)) {
    return absl::UnavailableError(absl::StrCat("cannot connect to --addr ", target, " within ",
                                               absl::FormatDuration(timeout)));
  }
  return absl::OkStatus();
}

}  // namespace loraserve::loadgen
