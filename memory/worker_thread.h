// WorkerThread: one background thread running posted tasks in FIFO order.
// Used by the prefetcher (host->pool copies) and the host adapter cache
// (disk->host loads) so neither ever runs on the engine thread.
// Owned by its user; Post may be called from any thread. The destructor
// finishes every task already posted, then joins.
#pragma once

#include <deque>
#include <functional>
#include <thread>

#include "absl/synchronization/mutex.h"

namespace loraserve {

class WorkerThread {
 public:
  WorkerThread();
  ~WorkerThread();
  WorkerThread(const WorkerThread&) = delete;
  WorkerThread& operator=(const WorkerThread&) = delete;

  void Post(std::function<void()> task);

 private:
  void Run();

  absl::Mutex mu_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: started after the state above exists
};

}  // namespace loraserve
