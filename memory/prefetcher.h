// Prefetcher: copies adapters host -> unified pool off the engine thread.
//
// The engine thread Submits a job (an adapter's host weights, its packing
// plan and the pool pages already allocated for it). A worker thread builds
// the pages' image in the pool's storage dtype in a host staging buffer,
// enqueues the copies into the pool on its own copy stream and records an
// event. Poll (engine thread) returns only jobs whose event has completed,
// so a caller that publishes an adapter's page table on Poll never lets a
// kernel read pages still being written. On the CPU backend the copies are
// memcpys on the worker and the event completes at once; on CUDA they are
// async copies from pinned staging (Backend::AllocateHost) on the copy stream,
// overlapping compute, and Poll checks EventDone. Staging buffers are reused
// (a few are kept between jobs) because pinning memory is slow.
//
// Owned by AdapterResidency. Thread-safety: Submit, Poll and in_flight are
// engine-thread only; the worker shares with it only the job queue (inside
// WorkerThread) and a mutex-guarded completion list. The destructor waits for
// every submitted job's copy to finish, so pool pages are never written after
// their owner dropped the prefetcher.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "kernels/backend.h"
#include "memory/adapter_layout.h"
#include "memory/adapter_weights.h"
#include "memory/worker_thread.h"

namespace loraserve {

class Prefetcher {
 public:
  struct Options {
    Backend* backend = nullptr;  // must outlive the prefetcher
    uint8_t* pool_base = nullptr;  // [num_pages * page_bytes] backend memory
    int64_t page_bytes = 0;
  };
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Prefetcher>> Create(const Options& options);
  ~Prefetcher();
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  struct Job {
    uint64_t ticket = 0;  // caller's id for the job, echoed by Poll
    std::shared_ptr<const AdapterWeights> weights;  // kept alive until the copy is done
    std::shared_ptr<const AdapterLayout> layout;
    std::vector<int32_t> pages;  // [layout->num_pages] pool page ids, owned by the caller
  };
  struct Done {
    uint64_t ticket = 0;
    absl::Status status;  // not OK: the pages hold garbage; do not publish
    double seconds = 0;   // from Submit to completion observed
  };

  // Queues `job`; its pages must stay allocated until Poll returns its ticket.
  void Submit(Job job);
  // Jobs whose copy has completed (or failed) since the last Poll. Never blocks.
  std::vector<Done> Poll();
  // Jobs submitted and not yet returned by Poll.
  int in_flight() const { return in_flight_; }

 private:
  // Handed from the worker back to the engine thread.
  struct Enqueued {
    uint64_t ticket = 0;
    absl::Status status;
    Event event;         // recorded after the copies (empty on error)
    HostBuffer staging;  // must live until `event` completes
    int64_t submit_ns = 0;
  };

  explicit Prefetcher(const Options& options) : options_(options) {}
  // Worker thread.
  void Run(Job job, int64_t submit_ns);
  // A staging buffer of at least `bytes`: a kept one when it fits, else new.
  absl::StatusOr<HostBuffer> TakeStaging(size_t bytes);
  // Keeps `buffer` for reuse (at most kKeptStaging buffers; others are freed).
  void ReturnStaging(HostBuffer buffer);
  static constexpr size_t kKeptStaging = 4;

  Options options_;
  Stream copy_stream_;  // used by the worker only
  int in_flight_ = 0;   // engine thread
  std::vector<Enqueued> pending_;  // engine thread: enqueued, event not yet done
  absl::Mutex mu_;
  std::vector<Enqueued> completed_ ABSL_GUARDED_BY(mu_);
  std::vector<HostBuffer> kept_staging_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<WorkerThread> worker_;  // last: joined first
};

}  // namespace loraserve
