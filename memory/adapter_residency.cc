#include "memory/adapter_residency.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status.h"

namespace loraserve {

absl::StatusOr<std::unique_ptr<AdapterResidency>> AdapterResidency::Create(
    const Options& options) {
  if (options.pool == nullptr || options.host == nullptr) {
    return absl::InvalidArgumentError("AdapterResidency: pool and host cache are required");
  }
  std::unique_ptr<AdapterResidency> r(new AdapterResidency(options));
  Prefetcher::Options po;
  po.backend = options.pool->backend();
  po.pool_base = options.pool->base();
  po.page_bytes = options.pool->page_bytes();
  ASSIGN_OR_RETURN(r->prefetcher_, Prefetcher::Create(po));
  options.pool->allocator().set_reclaimer(r.get());
  return r;
}

AdapterResidency::~AdapterResidency() {
  pool_->allocator().set_reclaimer(nullptr);
  prefetcher_.reset();  // waits for copies into pages we are about to free
  for (const auto& [id, e] : entries_) {
    LS_CHECK(e.refs == 0 && e.pins == 0)
        << "AdapterResidency destroyed while adapter " << id << " is still held";
  }
}

absl::Status AdapterResidency::CheckFits(const AdapterWeights& weights) const {
  ASSIGN_OR_RETURN(AdapterLayout layout,
                   AdapterLayout::Plan(weights, pool_->page_bytes(), pool_->backend()->dtype()));
  if (layout.num_pages > pool_->num_pages()) {
    return absl::InvalidArgumentError(absl::StrCat("adapter needs ", layout.num_pages,
                                                   " pool pages; the pool has ",
                                                   pool_->num_pages()));
  }
  return absl::OkStatus();
}

void AdapterResidency::Register(AdapterId id) {
  LS_CHECK_NE(id, kBaseModelAdapterId);
  LS_CHECK(!entries_.contains(id)) << "adapter id " << id << " registered twice";
  entries_[id].last_use = ++tick_;
}

void AdapterResidency::Retire(AdapterId id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  it->second.retired = true;
  MaybeFree(id);
}

void AdapterResidency::MaybeFree(AdapterId id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  Entry& e = it->second;
  if (!e.retired || e.refs > 0 || e.pins > 0 || e.state == State::kCopying) return;
  entries_.erase(it);  // drops the pages
  host_->Remove(id);
}

absl::StatusOr<AdapterRef> AdapterResidency::Acquire(AdapterId id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) {
    return absl::NotFoundError(absl::StrCat("adapter object ", id, " is not loaded"));
  }
  ++it->second.refs;
  return AdapterRef(this, id);
}

absl::StatusOr<AdapterPin> AdapterResidency::Pin(AdapterId id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) {
    return absl::NotFoundError(absl::StrCat("adapter object ", id, " is not loaded"));
  }
  ++it->second.pins;
  it->second.last_use = ++tick_;
  return AdapterPin(this, id);
}

void AdapterResidency::Release(AdapterId id, bool pin) {
  auto it = entries_.find(id);
  LS_CHECK(it != entries_.end()) << "release of unknown adapter " << id;
  Entry& e = it->second;
  int32_t& count = pin ? e.pins : e.refs;
  LS_CHECK_GT(count, 0);
  --count;
  e.last_use = ++tick_;
  MaybeFree(id);
}

void AdapterResidency::Prefetch(std::span<const AdapterId> priority) {
  ++epoch_;
  for (size_t i = priority.size(); i-- > 0;) {  // priority[0] ends most recent
    auto it = entries_.find(priority[i]);
    if (it == entries_.end()) continue;
    it->second.wanted_epoch = epoch_;
    it->second.last_use = ++tick_;
  }
  in_prefetch_ = true;
  PageAllocator& allocator = pool_->allocator();
  for (AdapterId id : priority) {
    auto it = entries_.find(id);
    if (it == entries_.end()) continue;
    Entry& e = it->second;
    if (e.state != State::kAbsent || !e.error.ok()) continue;
    std::shared_ptr<const AdapterWeights> weights = host_->Get(id);
    if (weights == nullptr) continue;  // loading from disk (or failed there)
    if (e.layout == nullptr) {
      absl::StatusOr<AdapterLayout> layout =
          AdapterLayout::Plan(*weights, pool_->page_bytes(), pool_->backend()->dtype());
      if (!layout.ok()) {
        e.error = layout.status();
        continue;
      }
      e.layout = std::make_shared<const AdapterLayout>(*std::move(layout));
    }
    const int32_t n = e.layout->num_pages;
    if (!allocator.CanAllocate(n)) break;  // lower priorities must not jump ahead
    absl::StatusOr<PageSet> pages = allocator.Allocate(n, PageKind::kAdapter);
    if (!pages.ok()) break;
    e.pages = *std::move(pages);
    e.state = State::kCopying;
    Prefetcher::Job job;
    job.ticket = id;
    job.weights = std::move(weights);
    job.layout = e.layout;
    job.pages = e.pages.pages();
    prefetcher_->Submit(std::move(job));
  }
  in_prefetch_ = false;
}

void AdapterResidency::Publish(Entry& e) {
  const AdapterLayout& layout = *e.layout;
  const int32_t* pages = e.pages.pages().data();
  uint8_t* base = pool_->base();
  e.slices.assign(layout.modules.size(), LoraSlice{});
  for (size_t i = 0; i < layout.modules.size(); ++i) {
    const ModulePlan& p = layout.modules[i];
    if (p.rank == 0) continue;
    LoraSlice& s = e.slices[i];
    s.rank = p.rank;
    s.scale = p.scale;
    s.a_row_offsets = reinterpret_cast<const int64_t*>(base + layout.PoolOffset(p.a_table, pages));
    s.bt_row_offsets =
        reinterpret_cast<const int64_t*>(base + layout.PoolOffset(p.bt_table, pages));
  }
  e.state = State::kReady;
}

int AdapterResidency::Poll() {
  int ready = 0;
  for (const Prefetcher::Done& d : prefetcher_->Poll()) {
    auto it = entries_.find(d.ticket);
    LS_CHECK(it != entries_.end()) << "copy finished for unknown adapter " << d.ticket;
    Entry& e = it->second;
    LS_CHECK(e.state == State::kCopying);
    load_events_.push_back(
        AdapterLoadEvent{AdapterLoadEvent::Tier::kDevice, d.ticket, d.status.ok(), d.seconds});
    if (d.status.ok()) {
      ++loads_ok_;
      Publish(e);
      ++ready;
    } else {
      ++loads_failed_;
      LS_LOG(ERROR) << "adapter " << d.ticket << " host->pool copy failed: " << d.status;
      e.error = d.status;
      e.state = State::kAbsent;
      e.pages.Reset();
    }
    MaybeFree(d.ticket);
  }
  return ready;
}

bool AdapterResidency::IsReady(AdapterId id) const {
  if (id == kBaseModelAdapterId) return true;
  auto it = entries_.find(id);
  return it != entries_.end() && it->second.state == State::kReady;
}

absl::Status AdapterResidency::AdapterError(AdapterId id) const {
  if (id == kBaseModelAdapterId) return absl::OkStatus();
  auto it = entries_.find(id);
  if (it == entries_.end()) {
    return absl::NotFoundError(absl::StrCat("adapter object ", id, " is not loaded"));
  }
  RETURN_IF_ERROR(it->second.error);
  return host_->LoadError(id);
}

LoraSlice AdapterResidency::Slice(AdapterId id, int layer, int module) const {
  auto it = entries_.find(id);
  LS_CHECK(it != entries_.end() && it->second.state == State::kReady)
      << "Slice of adapter " << id << " which is not ready";
  const Entry& e = it->second;
  LS_CHECK(layer >= 0 && layer < e.layout->num_layers && module >= 0 &&
           module < kNumAdapterModules);
  return e.slices[static_cast<size_t>(layer) * kNumAdapterModules + static_cast<size_t>(module)];
}

int32_t AdapterResidency::pages_of(AdapterId id) const {
  auto it = entries_.find(id);
  return it == entries_.end() ? 0 : it->second.pages.size();
}

bool AdapterResidency::Evictable(const Entry& e) const {
  return e.state == State::kReady && e.pins == 0 && !(in_prefetch_ && e.wanted_epoch == epoch_);
}

void AdapterResidency::Evict(Entry& e) {
  e.slices.clear();
  e.pages.Reset();
  e.state = State::kAbsent;
  ++evictions_;
}

int32_t AdapterResidency::ReclaimablePages() const {
  int32_t n = 0;
  for (const auto& [id, e] : entries_) {
    if (Evictable(e)) n += e.pages.size();
  }
  return n;
}

int32_t AdapterResidency::Reclaim(int32_t pages) {
  std::vector<std::pair<uint64_t, AdapterId>> lru;
  for (const auto& [id, e] : entries_) {
    if (Evictable(e)) lru.emplace_back(e.last_use, id);
  }
  std::sort(lru.begin(), lru.end());
  int32_t freed = 0;
  for (const auto& [last_use, id] : lru) {
    if (freed >= pages) break;
    Entry& e = entries_.at(id);
    freed += e.pages.size();
    Evict(e);
  }
  return freed;
}

ResidencyStats AdapterResidency::stats() const {
  ResidencyStats s;
  for (const auto& [id, e] : entries_) {
    ++s.known;
    s.device_ready += e.state == State::kReady ? 1 : 0;
    s.device_copying += e.state == State::kCopying ? 1 : 0;
    s.pinned += e.pins > 0 ? 1 : 0;
    s.adapter_pages += e.pages.size();
  }
  s.device_loads_ok = loads_ok_;
  s.device_loads_failed = loads_failed_;
  s.evictions = evictions_;
  return s;
}

}  // namespace loraserve
