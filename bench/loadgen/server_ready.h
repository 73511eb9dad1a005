// Readiness checks before a run: WaitForServing polls grpc.health.v1 (the
// server's own health client, server/health_client.h) until the server
// reports SERVING; WaitForConnected only waits for the channel to connect.
//
// Free functions; any thread; each blocks up to its timeout.
#pragma once

#include <memory>
#include <ostream>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"

namespace loraserve::loadgen {

// OK once Check("") says SERVING; DeadlineExceeded naming the last answer
// after `timeout`. Polls every 250 ms; a line on `progress` every 5 s.
absl::Status WaitForServing(const std::shared_ptr<grpc::Channel>& channel, absl::Duration timeout,
                            std::ostream* progress);

// OK once the channel is connected; Unavailable naming `target` after `timeout`.
absl::Status WaitForConnected(const std::shared_ptr<grpc::Channel>& channel,
                              const std::string& target, absl::Duration timeout);

}  // namespace loraserve::loadgen
