// Move-only handles for backend resources: DeviceBuffer (one allocation),
// HostBuffer (host memory for fast async copies: pinned on CUDA), Stream,
// Event and Graph (a recorded op sequence), plus StreamRef, the non-owning stream argument every op
// launcher takes. A handle releases its resource through the Backend that made
// it, so the Backend must outlive every handle it returned (checked by nothing:
// the engine owns the backend for the life of the process).
// Handles are not thread-safe; move them between threads freely.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

namespace loraserve {

class Backend;

// A stream to enqueue work on. Default-constructed = the backend's default
// compute stream. On CUDA `native` is a cudaStream_t; on CPU every stream is
// synchronous and `native` is only an identity.
struct StreamRef {
  void* native = nullptr;
};

// One backend allocation ("device memory"; host memory on the CPU backend).
// Frees itself on destruction. Empty when default-constructed or moved from.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() { Reset(); }
  DeviceBuffer(DeviceBuffer&& other) noexcept { *this = std::move(other); }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      Reset();
      std::swap(owner_, other.owner_);
      std::swap(data_, other.data_);
      std::swap(bytes_, other.bytes_);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() const { return data_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data_);
  }
  // Byte pointer `offset` bytes into the allocation.
  uint8_t* bytes_at(size_t offset) const { return static_cast<uint8_t*>(data_) + offset; }
  size_t size() const { return bytes_; }
  bool empty() const { return data_ == nullptr; }

  // Frees now (no-op when empty).
  void Reset();

 private:
  friend class Backend;
  DeviceBuffer(Backend* owner, void* data, size_t bytes)
      : owner_(owner), data_(data), bytes_(bytes) {}

  Backend* owner_ = nullptr;
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

// Host memory from Backend::AllocateHost: page-locked (pinned) on CUDA, so
// CopyToDevice / CopyToHost to and from it are true asynchronous DMA (the
// pinned host tier of adapter residency and the prefetcher's copies); 64-byte
// aligned heap memory on CPU. Readable and writable by the host at any time;
// the caller must not free or rewrite it while a copy that uses it is still
// in flight (wait for an event first). Frees itself on destruction. Empty
// when default-constructed, moved from, or allocated with zero bytes.
class HostBuffer {
 public:
  HostBuffer() = default;
  ~HostBuffer() { Reset(); }
  HostBuffer(HostBuffer&& other) noexcept { *this = std::move(other); }
  HostBuffer& operator=(HostBuffer&& other) noexcept {
    if (this != &other) {
      Reset();
      std::swap(owner_, other.owner_);
      std::swap(data_, other.data_);
      std::swap(bytes_, other.bytes_);
    }
    return *this;
  }
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;

  void* data() const { return data_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data_);
  }
  // Byte pointer `offset` bytes into the allocation.
  uint8_t* bytes_at(size_t offset) const { return static_cast<uint8_t*>(data_) + offset; }
  size_t size() const { return bytes_; }
  bool empty() const { return data_ == nullptr; }

  // Frees now (no-op when empty).
  void Reset();

 private:
  friend class Backend;
  HostBuffer(Backend* owner, void* data, size_t bytes)
      : owner_(owner), data_(data), bytes_(bytes) {}

  Backend* owner_ = nullptr;
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

// An owned stream (CreateStream); ref() is what ops take.
class Stream {
 public:
  Stream() = default;
  ~Stream() { Reset(); }
  Stream(Stream&& other) noexcept { *this = std::move(other); }
  Stream& operator=(Stream&& other) noexcept {
    if (this != &other) {
      Reset();
      std::swap(owner_, other.owner_);
      std::swap(native_, other.native_);
    }
    return *this;
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  StreamRef ref() const { return StreamRef{native_}; }
  bool empty() const { return owner_ == nullptr; }
  void Reset();

 private:
  friend class Backend;
  Stream(Backend* owner, void* native) : owner_(owner), native_(native) {}
  Backend* owner_ = nullptr;
  void* native_ = nullptr;
};

// An owned event (CreateEvent): recorded on one stream, waited on by another
// stream or by the host.
class Event {
 public:
  Event() = default;
  ~Event() { Reset(); }
  Event(Event&& other) noexcept { *this = std::move(other); }
  Event& operator=(Event&& other) noexcept {
    if (this != &other) {
      Reset();
      std::swap(owner_, other.owner_);
      std::swap(native_, other.native_);
    }
    return *this;
  }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  void* native() const { return native_; }
  bool empty() const { return owner_ == nullptr; }
  void Reset();

 private:
  friend class Backend;
  Event(Backend* owner, void* native) : owner_(owner), native_(native) {}
  Backend* owner_ = nullptr;
  void* native_ = nullptr;
};

// A recorded sequence of compute-stream ops (Backend::EndCapture), replayed
// by Backend::LaunchGraph: an instantiated CUDA graph on CUDA, a list of
// deferred calls on CPU.
class Graph {
 public:
  Graph() = default;
  ~Graph() { Reset(); }
  Graph(Graph&& other) noexcept { *this = std::move(other); }
  Graph& operator=(Graph&& other) noexcept {
    if (this != &other) {
      Reset();
      std::swap(owner_, other.owner_);
      std::swap(native_, other.native_);
    }
    return *this;
  }
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  void* native() const { return native_; }
  bool empty() const { return owner_ == nullptr; }
  void Reset();

 private:
  friend class Backend;
  Graph(Backend* owner, void* native) : owner_(owner), native_(native) {}
  Backend* owner_ = nullptr;
  void* native_ = nullptr;
};

}  // namespace loraserve
