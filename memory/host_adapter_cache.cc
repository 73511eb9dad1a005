#include "memory/host_adapter_cache.h"

#include <utility>

#include "absl/time/clock.h"
#include "common/logging.h"

namespace loraserve {

absl::StatusOr<std::unique_ptr<HostAdapterCache>> HostAdapterCache::Create(
    const Options& options) {
  std::unique_ptr<HostAdapterCache> c(new HostAdapterCache(options));
  c->worker_ = std::make_unique<WorkerThread>();
  return c;
}

HostAdapterCache::~HostAdapterCache() { worker_.reset(); }

void HostAdapterCache::SetWeights(Entry& e, std::shared_ptr<const AdapterWeights> w) {
  if (e.weights != nullptr) {
    bytes_ -= e.weights->bytes();
    --on_host_;
  }
  e.weights = std::move(w);
  if (e.weights != nullptr) {
    bytes_ += e.weights->bytes();
    ++on_host_;
  }
}

void HostAdapterCache::Add(AdapterId id, std::string source,
                           std::shared_ptr<const AdapterWeights> weights) {
  LS_CHECK(!entries_.contains(id)) << "adapter id " << id << " added twice";
  Entry& e = entries_[id];
  e.source = std::move(source);
  e.last_use = ++tick_;
  SetWeights(e, std::move(weights));
  EnforceBudget(id);
}

void HostAdapterCache::StartLoad(AdapterId id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  Entry& e = it->second;
  if (e.weights != nullptr || e.loading) return;
  if (!options_.loader) {
    e.error = absl::FailedPreconditionError("host adapter cache has no disk loader");
    return;
  }
  e.loading = true;
  e.error = absl::OkStatus();
  e.generation = next_generation_++;
  ++loading_;
  worker_->Post([this, id, generation = e.generation, source = e.source] {
    const int64_t start = absl::GetCurrentTimeNanos();
    absl::StatusOr<std::shared_ptr<const AdapterWeights>> r = options_.loader(source);
    if (r.ok() && *r == nullptr) r = absl::InternalError("adapter loader returned null");
    const double seconds = static_cast<double>(absl::GetCurrentTimeNanos() - start) * 1e-9;
    absl::MutexLock lock(&mu_);
    finished_.push_back(Finished{id, generation, std::move(r), seconds});
  });
}

void HostAdapterCache::Remove(AdapterId id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  if (it->second.loading) --loading_;
  SetWeights(it->second, nullptr);
  entries_.erase(it);
}

std::shared_ptr<const AdapterWeights> HostAdapterCache::Get(AdapterId id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return nullptr;
  Entry& e = it->second;
  e.last_use = ++tick_;
  if (e.weights == nullptr && e.error.ok()) StartLoad(id);
  return e.weights;
}

absl::Status HostAdapterCache::LoadError(AdapterId id) const {
  auto it = entries_.find(id);
  if (it == entries_.end()) return absl::NotFoundError("unknown adapter id");
  return it->second.error;
}

std::vector<HostAdapterCache::LoadDone> HostAdapterCache::Poll() {
  std::vector<Finished> finished;
  {
    absl::MutexLock lock(&mu_);
    finished.swap(finished_);
  }
  std::vector<LoadDone> done;
  for (Finished& f : finished) {
    auto it = entries_.find(f.id);
    if (it == entries_.end() || !it->second.loading || it->second.generation != f.generation) {
      continue;  // removed (unloaded) while loading: drop the result
    }
    Entry& e = it->second;
    e.loading = false;
    --loading_;
    std::shared_ptr<const AdapterWeights> weights;
    if (f.result.ok()) {
      weights = *f.result;
      SetWeights(e, *std::move(f.result));
      e.last_use = ++tick_;
      EnforceBudget(f.id);
    } else {
      e.error = f.result.status();
    }
    done.push_back(LoadDone{f.id, f.result.status(), std::move(weights), f.seconds});
  }
  return done;
}

bool HostAdapterCache::OnHost(AdapterId id) const {
  auto it = entries_.find(id);
  return it != entries_.end() && it->second.weights != nullptr;
}

std::vector<AdapterId> HostAdapterCache::OnHostIds() const {
  std::vector<AdapterId> out;
  for (const auto& [id, e] : entries_) {
    if (e.weights != nullptr) out.push_back(id);
  }
  return out;
}

void HostAdapterCache::SetInUse(AdapterId id, bool in_use) {
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second.in_use == in_use) return;
  it->second.in_use = in_use;
  if (!in_use) EnforceBudget(/*keep=*/0);
}

bool HostAdapterCache::OverBudget() const {
  return (options_.budget_bytes > 0 && bytes_ > options_.budget_bytes) ||
         (options_.max_entries > 0 && on_host_ > options_.max_entries);
}

void HostAdapterCache::EnforceBudget(AdapterId keep) {
  while (OverBudget()) {
    Entry* victim = nullptr;
    for (auto& [id, e] : entries_) {
      if (id == keep || e.in_use || e.weights == nullptr) continue;
      if (victim == nullptr || e.last_use < victim->last_use) victim = &e;
    }
    if (victim == nullptr) return;  // only `keep` / in-use copies left: keep them above budget
    SetWeights(*victim, nullptr);
  }
}

}  // namespace loraserve
