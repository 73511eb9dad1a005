#include "engine/engine_adapter_residency.h"

#include <utility>

#include "common/logging.h"
#include "common/status.h"

namespace loraserve {

absl::StatusOr<std::unique_ptr<EngineAdapterResidency>> EngineAdapterResidency::Create(
    const Options& options) {
  if (options.pool == nullptr) return absl::InvalidArgumentError("adapter residency: no pool");
  auto r = std::unique_ptr<EngineAdapterResidency>(new EngineAdapterResidency());
  HostAdapterCache::Options ho;
  ho.budget_bytes = options.host_budget_bytes;
  ho.max_entries = options.host_max_adapters;
  ho.loader = options.loader;
  ASSIGN_OR_RETURN(r->host_, HostAdapterCache::Create(ho));
  AdapterResidency::Options ro;
  ro.pool = options.pool;
  ro.host = r->host_.get();
  ASSIGN_OR_RETURN(r->residency_, AdapterResidency::Create(ro));
  return r;
}

EngineAdapterResidency::~EngineAdapterResidency() {
  sched_pins_.clear();
  holders_.clear();
}

bool EngineAdapterResidency::IsReady(AdapterKey adapter) const {
  if (!residency_->IsReady(adapter)) return false;
  if (adapter != kBaseModelAdapter && !sched_pins_.contains(adapter)) {
    absl::StatusOr<AdapterPin> pin = residency_->Pin(adapter);
    if (!pin.ok()) return false;
    sched_pins_.emplace(adapter, *std::move(pin));
  }
  return true;
}

void EngineAdapterResidency::EndSchedule() { sched_pins_.clear(); }

LoraSlice EngineAdapterResidency::Slice(uint64_t key, int layer, LoraModule module) const {
  return residency_->Slice(key, layer, static_cast<int>(module));
}

void EngineAdapterResidency::QueueHostCopy(AdapterKey key, std::string path,
                                           std::shared_ptr<const PeftAdapter> adapter) {
  absl::MutexLock lock(&mu_);
  on_host_.insert(key);
  pending_host_.push_back(HostCopy{key, std::move(path), std::move(adapter)});
}

void EngineAdapterResidency::ApplyHostCopies() {
  std::vector<HostCopy> pending;
  {
    absl::MutexLock lock(&mu_);
    pending.swap(pending_host_);
  }
  for (HostCopy& c : pending) {
    if (host_->Contains(c.key)) continue;
    host_->Add(c.key, std::move(c.path), std::move(c.adapter));
  }
}

absl::Status EngineAdapterResidency::Attach(RequestId id, AdapterKey key, const std::string& name,
                                            const std::string& path, bool current) {
  LS_CHECK_NE(key, kBaseModelAdapter);
  LS_CHECK(!holders_.contains(id)) << "request " << id << " attached twice";
  if (!residency_->Known(key)) {
    if (!host_->Contains(key)) host_->Add(key, path, nullptr);  // on disk only
    residency_->Register(key);
  }
  ASSIGN_OR_RETURN(AdapterRef ref, residency_->Acquire(key));
  if (!current) residency_->Retire(key);
  Holder& h = holders_[id];
  h.key = key;
  h.ref = std::move(ref);
  absl::MutexLock lock(&mu_);
  Info& info = info_[key];
  info.name = name;
  if (info.in_use == 0) host_->SetInUse(key, true);
  ++info.in_use;
  ++total_in_use_;
  info.last_used = absl::Now();
  return absl::OkStatus();
}

void EngineAdapterResidency::PinRequest(RequestId id) {
  auto it = holders_.find(id);
  if (it == holders_.end() || !it->second.pin.empty()) return;
  absl::StatusOr<AdapterPin> pin = residency_->Pin(it->second.key);
  LS_CHECK(pin.ok()) << "pin of a referenced adapter failed: " << pin.status();
  it->second.pin = *std::move(pin);
}

void EngineAdapterResidency::UnpinRequest(RequestId id) {
  auto it = holders_.find(id);
  if (it != holders_.end()) it->second.pin.Reset();
}

void EngineAdapterResidency::Detach(RequestId id) {
  auto it = holders_.find(id);
  if (it == holders_.end()) return;
  const AdapterKey key = it->second.key;
  holders_.erase(it);  // pin, then ref: may free a retired adapter
  const bool known = residency_->Known(key);
  absl::MutexLock lock(&mu_);
  auto info = info_.find(key);
  if (info == info_.end()) return;
  --total_in_use_;
  if (--info->second.in_use == 0) {
    host_->SetInUse(key, false);  // may drop idle host copies beyond the budget
    if (!known) info_.erase(info);
  }
}

void EngineAdapterResidency::Retire(AdapterKey key) {
  if (residency_->Known(key)) {
    residency_->Retire(key);
  } else {
    host_->Remove(key);  // loaded but never attached: only the host cache has it
  }
  if (!residency_->Known(key)) {
    absl::MutexLock lock(&mu_);
    auto info = info_.find(key);
    if (info != info_.end() && info->second.in_use == 0) info_.erase(info);
  }
}

AdapterKey EngineAdapterResidency::KeyOf(RequestId id) const {
  auto it = holders_.find(id);
  return it == holders_.end() ? kBaseModelAdapter : it->second.key;
}

bool EngineAdapterResidency::Pinned(RequestId id) const {
  auto it = holders_.find(id);
  return it != holders_.end() && !it->second.pin.empty();
}

void EngineAdapterResidency::Prefetch(const std::vector<AdapterKey>& keys) {
  residency_->Prefetch(std::span<const AdapterId>(keys.data(), keys.size()));
}

int EngineAdapterResidency::Poll() {
  for (const HostAdapterCache::LoadDone& d : host_->Poll()) {
    host_events_.push_back(
        AdapterLoadEvent{AdapterLoadEvent::Tier::kHost, d.id, d.status.ok(), d.seconds});
  }
  return residency_->Poll();
}

std::vector<AdapterLoadEvent> EngineAdapterResidency::TakeLoadEvents() {
  std::vector<AdapterLoadEvent> out = std::move(host_events_);
  host_events_.clear();
  for (AdapterLoadEvent& e : residency_->TakeLoadEvents()) out.push_back(e);
  return out;
}

void EngineAdapterResidency::RefreshTiers() {
  const std::vector<AdapterId> on_host = host_->OnHostIds();
  absl::MutexLock lock(&mu_);
  for (auto& [key, info] : info_) info.on_device = residency_->IsReady(key);
  on_host_.clear();
  on_host_.insert(on_host.begin(), on_host.end());
  for (const HostCopy& c : pending_host_) on_host_.insert(c.key);
}

bool EngineAdapterResidency::OnHost(AdapterKey key) const {
  absl::MutexLock lock(&mu_);
  return on_host_.contains(key);
}

int32_t EngineAdapterResidency::InUse(AdapterKey key) const {
  absl::MutexLock lock(&mu_);
  auto it = info_.find(key);
  return it == info_.end() ? 0 : it->second.in_use;
}

absl::Time EngineAdapterResidency::LastUsed(AdapterKey key) const {
  absl::MutexLock lock(&mu_);
  auto it = info_.find(key);
  return it == info_.end() ? absl::InfinitePast() : it->second.last_used;
}

int64_t EngineAdapterResidency::NumPins() const {
  absl::MutexLock lock(&mu_);
  return total_in_use_;
}

bool EngineAdapterResidency::OnDevice(AdapterKey key) const {
  absl::MutexLock lock(&mu_);
  auto it = info_.find(key);
  return it != info_.end() && it->second.on_device;
}

std::vector<std::string> EngineAdapterResidency::Names(const std::vector<AdapterKey>& keys) const {
  std::vector<std::string> out;
  absl::MutexLock lock(&mu_);
  for (AdapterKey k : keys) {
    auto it = info_.find(k);
    if (it != info_.end()) out.push_back(it->second.name);
  }
  return out;
}

}  // namespace loraserve
