#include "kernels/backend.h"

namespace loraserve {

void DeviceBuffer::Reset() {
  if (owner_ != nullptr && data_ != nullptr) owner_->FreeBuffer(data_, bytes_);
  owner_ = nullptr;
  data_ = nullptr;
  bytes_ = 0;
}

void Stream::Reset() {
  if (owner_ != nullptr) owner_->DestroyStream(native_);
  owner_ = nullptr;
  native_ = nullptr;
}

void Event::Reset() {
  if (owner_ != nullptr) owner_->DestroyEvent(native_);
  owner_ = nullptr;
  native_ = nullptr;
}

}  // namespace loraserve
