// The two resources the Scheduler schedules over, as small interfaces, so the
// policy is testable with fakes and the unified page pool plugs in later
// (DESIGN.md, "Unified paged memory"):
//
//   KvBlockManager      KV-cache blocks per sequence (grow-only, freed whole)
//   AdapterAvailability whether an adapter's weights are resident and usable
//
// Implementations are owned by the engine and called only from the engine
// thread, by the Scheduler; they need not be thread-safe for its sake.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "engine/scheduler/sequence.h"

namespace loraserve {

// KV-cache blocks of `block_tokens` tokens, held per sequence. A sequence's
// holding only grows (to hold N tokens) until Free() drops all of it.
class KvBlockManager {
 public:
  virtual ~KvBlockManager() = default;

  // True when `seq` could hold `new_total_tokens` tokens right now (it may
  // already hold some blocks; holding enough already is true). Pure query.
  virtual bool CanGrow(RequestId seq, int32_t new_total_tokens) const = 0;
  // Makes `seq` hold `new_total_tokens` tokens (never shrinks; all or
  // nothing). Fails (ResourceExhausted) only when CanGrow would be false.
  [[nodiscard]] virtual absl::Status Grow(RequestId seq, int32_t new_total_tokens) = 0;
  // Drops every block `seq` holds; a sequence holding none is a no-op.
  virtual void Free(RequestId seq) = 0;

  virtual int32_t NumFreeBlocks() const = 0;
  virtual int32_t NumTotalBlocks() const = 0;
};

// Adapter residency as the scheduler sees it.
class AdapterAvailability {
 public:
  virtual ~AdapterAvailability() = default;
  // True when the adapter's weights are resident and usable by the next step.
  // Never called for kBaseModelAdapter (always ready).
  virtual bool IsReady(AdapterKey adapter) const = 0;
};

}  // namespace loraserve
