// SafetensorsStreamWriter: writes a .safetensors file whose tensors are
// declared up front and whose bytes are then streamed in, in declaration
// order, so a multi-GB shard is written without holding it in memory (the
// in-memory SafetensorsWriter in engine/model/ keeps every tensor's bytes).
// Same file layout as SafetensorsWriter: 8-byte header length, JSON header
// padded with spaces to a multiple of 8, data.
//
// Used by the synthetic-model generator. One writer per file, one thread.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/dtype.h"

namespace loraserve::bench {

struct TensorSpec {
  std::string name;
  DType dtype = DType::kBF16;
  std::vector<int64_t> shape;

  int64_t numel() const;
  int64_t bytes() const { return numel() * static_cast<int64_t>(DTypeSize(dtype)); }
};

class SafetensorsStreamWriter {
 public:
  // Creates `path` (replacing any file) and writes the header for `tensors`
  // with `metadata` as "__metadata__". Internal naming the path on I/O errors.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SafetensorsStreamWriter>> Open(
      const std::string& path, const std::vector<TensorSpec>& tensors,
      const std::vector<std::pair<std::string, std::string>>& metadata);
  ~SafetensorsStreamWriter();
  SafetensorsStreamWriter(const SafetensorsStreamWriter&) = delete;
  SafetensorsStreamWriter& operator=(const SafetensorsStreamWriter&) = delete;

  // Appends `n` bytes of tensor data.
  [[nodiscard]] absl::Status Append(const void* data, size_t n);
  // Flushes and closes; FailedPrecondition when the bytes appended differ
  // from the declared tensors' total.
  [[nodiscard]] absl::Status Close();

  int64_t data_bytes() const { return expected_; }

 private:
  SafetensorsStreamWriter(std::string path, std::FILE* f, int64_t expected)
      : path_(std::move(path)), file_(f), expected_(expected) {}

  std::string path_;
  std::FILE* file_;
  int64_t expected_;
  int64_t written_ = 0;
};

}  // namespace loraserve::bench
