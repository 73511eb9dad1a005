#include "memory/prefetcher.h"

#include <utility>

#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/status.h"

namespace loraserve {

absl::StatusOr<std::unique_ptr<Prefetcher>> Prefetcher::Create(const Options& options) {
  if (options.backend == nullptr || options.pool_base == nullptr || options.page_bytes <= 0) {
    return absl::InvalidArgumentError("Prefetcher: backend, pool_base and page_bytes are required");
  }
  std::unique_ptr<Prefetcher> p(new Prefetcher(options));
  ASSIGN_OR_RETURN(p->copy_stream_, options.backend->CreateStream());
  p->worker_ = std::make_unique<WorkerThread>();
  return p;
}

Prefetcher::~Prefetcher() {
  worker_.reset();  // runs every queued job to its enqueue
  absl::MutexLock lock(&mu_);
  for (Enqueued& e : completed_) pending_.push_back(std::move(e));
  for (Enqueued& e : pending_) {
    if (!e.event.empty()) {
      absl::Status s = options_.backend->SynchronizeEvent(e.event);
      if (!s.ok()) LS_LOG(ERROR) << "prefetch copy at shutdown: " << s;
    }
  }
}

void Prefetcher::Submit(Job job) {
  LS_CHECK(job.layout != nullptr && job.weights != nullptr);
  LS_CHECK_EQ(static_cast<int32_t>(job.pages.size()), job.layout->num_pages);
  ++in_flight_;
  const int64_t now = absl::GetCurrentTimeNanos();
  worker_->Post([this, job = std::move(job), now]() mutable { Run(std::move(job), now); });
}

void Prefetcher::Run(Job job, int64_t submit_ns) {
  Enqueued e;
  e.ticket = job.ticket;
  e.submit_ns = submit_ns;
  const AdapterLayout& layout = *job.layout;
  const int64_t page_bytes = options_.page_bytes;
  e.status = [&]() -> absl::Status {
    if (layout.page_bytes != page_bytes) {
      return absl::InternalError("prefetch: layout planned for another page size");
    }
    e.staging.assign(static_cast<size_t>(layout.num_pages * page_bytes), 0);
    layout.Fill(*job.weights, job.pages.data(), e.staging.data());
    Backend* backend = options_.backend;
    // One copy per run of consecutive pool pages.
    for (int32_t i = 0; i < layout.num_pages;) {
      int32_t j = i + 1;
      while (j < layout.num_pages && job.pages[j] == job.pages[j - 1] + 1) ++j;
      const size_t bytes =
          static_cast<size_t>((j - 1 - i) * page_bytes + layout.page_used[j - 1]);
      RETURN_IF_ERROR(backend->CopyToDevice(options_.pool_base + job.pages[i] * page_bytes,
                                            e.staging.data() + i * page_bytes, bytes,
                                            copy_stream_.ref()));
      i = j;
    }
    ASSIGN_OR_RETURN(e.event, backend->CreateEvent());
    return backend->RecordEvent(e.event, copy_stream_.ref());
  }();
  if (!e.status.ok()) {
    // Nothing more will touch the staging after a failed enqueue... except
    // copies already enqueued: wait for them before handing the pages back.
    absl::Status s = options_.backend->Synchronize(copy_stream_.ref());
    if (!s.ok()) LS_LOG(ERROR) << "prefetch copy stream: " << s;
    e.event.Reset();
  }
  absl::MutexLock lock(&mu_);
  completed_.push_back(std::move(e));
}

std::vector<Prefetcher::Done> Prefetcher::Poll() {
  {
    absl::MutexLock lock(&mu_);
    for (Enqueued& e : completed_) pending_.push_back(std::move(e));
    completed_.clear();
  }
  std::vector<Done> done;
  std::vector<Enqueued> still;
  const int64_t now = absl::GetCurrentTimeNanos();
  for (Enqueued& e : pending_) {
    bool finished = true;
    absl::Status status = e.status;
    if (status.ok() && !e.event.empty()) {
      absl::StatusOr<bool> ready = options_.backend->EventDone(e.event);
      if (!ready.ok()) {
        status = ready.status();
      } else {
        finished = *ready;
      }
    }
    if (!finished) {
      still.push_back(std::move(e));
      continue;
    }
    done.push_back(Done{e.ticket, status, static_cast<double>(now - e.submit_ns) * 1e-9});
  }
  pending_ = std::move(still);
  in_flight_ -= static_cast<int>(done.size());
  return done;
}

}  // namespace loraserve
