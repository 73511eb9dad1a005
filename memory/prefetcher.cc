#include "memory/prefetcher.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

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
    const size_t staging_bytes = static_cast<size_t>(layout.num_pages * page_bytes);
    ASSIGN_OR_RETURN(e.staging, TakeStaging(staging_bytes));
    std::memset(e.staging.data(), 0, staging_bytes);
    layout.Fill(*job.weights, job.pages.data(), e.staging.bytes_at(0));
    Backend* backend = options_.backend;
    // One copy per run of consecutive pool pages.
    for (int32_t i = 0; i < layout.num_pages;) {
      int32_t j = i + 1;
      while (j < layout.num_pages && job.pages[j] == job.pages[j - 1] + 1) ++j;
      const size_t bytes =
          static_cast<size_t>((j - 1 - i) * page_bytes + layout.page_used[j - 1]);
      RETURN_IF_ERROR(backend->CopyToDevice(options_.pool_base + job.pages[i] * page_bytes,
                                            e.staging.bytes_at(i * page_bytes), bytes,
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

absl::StatusOr<HostBuffer> Prefetcher::TakeStaging(size_t bytes) {
  {
    absl::MutexLock lock(&mu_);
    // The smallest kept buffer that fits.
    auto best = kept_staging_.end();
    for (auto it = kept_staging_.begin(); it != kept_staging_.end(); ++it) {
      if (it->size() >= bytes && (best == kept_staging_.end() || it->size() < best->size())) {
        best = it;
      }
    }
    if (best != kept_staging_.end()) {
      HostBuffer b = std::move(*best);
      kept_staging_.erase(best);
      return b;
    }
  }
  // Round up so similar adapters reuse one buffer.
  size_t rounded = size_t{1} << 20;
  while (rounded < bytes) rounded <<= 1;
  absl::StatusOr<HostBuffer> b = options_.backend->AllocateHost(rounded);
  if (!b.ok()) {
    return AnnotateStatus(b.status(), absl::StrCat("prefetch: pinned staging of ", rounded,
                                                   " bytes"));
  }
  return b;
}

void Prefetcher::ReturnStaging(HostBuffer buffer) {
  absl::MutexLock lock(&mu_);
  if (kept_staging_.size() < kKeptStaging) {
    kept_staging_.push_back(std::move(buffer));
    return;
  }
  // Keep the largest ones: replace the smallest kept buffer if this is bigger.
  auto smallest = kept_staging_.begin();
  for (auto it = kept_staging_.begin(); it != kept_staging_.end(); ++it) {
    if (it->size() < smallest->size()) smallest = it;
  }
  if (smallest->size() < buffer.size()) *smallest = std::move(buffer);
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
    if (!e.staging.empty()) ReturnStaging(std::move(e.staging));
  }
  pending_ = std::move(still);
  in_flight_ -= static_cast<int>(done.size());
  return done;
}

}  // namespace loraserve
