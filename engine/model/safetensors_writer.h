// SafetensorsWriter: builds a .safetensors file the way the format's reference
// writer does: an 8-byte little-endian header length, the JSON header padded
// with spaces to a multiple of 8 (so the data section starts 8-aligned), then
// the tensors' bytes contiguous in insertion order. F32 / F16 / BF16 tensors
// are given as fp32 values and rounded to nearest even; "__metadata__" holds
// string pairs. The inverse of SafetensorsFile (engine/model/safetensors.h).
//
// Used by tools and benchmarks that generate models or adapters on disk
// (bench/forward_bench.cc) and, through tests/engine/safetensors_writer.h,
// by the engine tests. One writer per thread: not thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "common/dtype.h"
#include "nlohmann/json.hpp"

namespace loraserve {

// length + header (+ space padding to a multiple of 8 when `pad`) + data.
std::string SafetensorsBytes(std::string_view header, std::string_view data, bool pad = true);

class SafetensorsWriter {
 public:
  // Adds `values` (row-major, product of `shape` elements) stored as `dtype`.
  // When `rounded` is given it receives the values as stored, i.e. exactly
  // what a correct reader returns. InvalidArgument when the element count
  // does not match the shape, a dim is negative, the name is empty or
  // "__metadata__", or the name was already added; nothing is added then.
  [[nodiscard]] absl::Status Add(const std::string& name, DType dtype, std::vector<int64_t> shape,
                                 std::span<const float> values,
                                 std::vector<float>* rounded = nullptr);
  // Adds a tensor with an arbitrary dtype string and bytes, unchecked (to
  // build deliberately malformed files).
  void AddRaw(std::string name, std::string dtype, std::vector<int64_t> shape, std::string bytes);
  void SetMetadata(const std::string& key, const std::string& value);

  // The header JSON for the tensors so far (unpadded).
  nlohmann::ordered_json Header() const;
  // The data section: every tensor's bytes in insertion order.
  std::string Data() const;
  // The whole file in memory.
  std::string Serialize() const;
  // Writes the file to `path` (streamed, replacing any file there); Internal
  // naming the path on an I/O error.
  [[nodiscard]] absl::Status Write(const std::string& path) const;

  size_t num_tensors() const { return tensors_.size(); }
  size_t data_bytes() const { return data_bytes_; }

 private:
  struct Tensor {
    std::string name;
    std::string dtype;
    std::vector<int64_t> shape;
    std::string bytes;
  };
  std::vector<Tensor> tensors_;
  size_t data_bytes_ = 0;
  nlohmann::ordered_json metadata_ = nlohmann::ordered_json::object();
};

}  // namespace loraserve
