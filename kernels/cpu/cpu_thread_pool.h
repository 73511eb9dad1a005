// CpuThreadPool: the small parallel-for the CPU backend uses for attention
// and elementwise ops (OpenBLAS has its own threads for GEMMs). Owned by one
// CpuBackend. ParallelFor may be called from any thread; concurrent calls are
// serialised (the pool runs one loop at a time).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace loraserve {

class CpuThreadPool {
 public:
  // `num_threads` counts the calling thread: 1 = run inline, no workers.
  explicit CpuThreadPool(int num_threads);
  ~CpuThreadPool();
  CpuThreadPool(const CpuThreadPool&) = delete;
  CpuThreadPool& operator=(const CpuThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) on disjoint chunks covering [0, n), each at least
  // `min_chunk` long (except maybe the last), on the workers and the caller;
  // returns when all chunks are done. Never allocates. `fn` must not call
  // ParallelFor on the same pool.
  template <typename Fn>
  void ParallelFor(int64_t n, int64_t min_chunk, const Fn& fn) {
    Run(n, min_chunk, &Trampoline<Fn>, &fn);
  }

 private:
  using ChunkFn = void (*)(const void* ctx, int64_t begin, int64_t end);
  template <typename Fn>
  static void Trampoline(const void* ctx, int64_t begin, int64_t end) {
    (*static_cast<const Fn*>(ctx))(begin, end);
  }
  void Run(int64_t n, int64_t min_chunk, ChunkFn fn, const void* ctx);
  void WorkerLoop();
  void RunChunks();

  std::vector<std::thread> workers_;
  std::mutex call_mu_;  // serialises ParallelFor calls

  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  bool stop_ = false;
  uint64_t generation_ = 0;   // bumped per loop; workers wake on change
  int active_ = 0;            // workers still inside the current loop
  // The current loop (valid while a loop runs).
  ChunkFn fn_ = nullptr;
  const void* ctx_ = nullptr;
  int64_t n_ = 0;
  int64_t chunk_ = 1;
  int64_t next_ = 0;          // next chunk start, guarded by mu_
};

}  // namespace loraserve
