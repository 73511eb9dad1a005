// Memory-mapped safetensors reader (https://github.com/huggingface/safetensors):
// an 8-byte little-endian header length N, N bytes of JSON header
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
// then the data section; offsets are relative to the data section.
//
// SafetensorsFile owns one read-only mapping and the parsed tensor table; its
// TensorViews point into the mapping and live as long as the file object.
// SafetensorsBundle owns the files of one model (model.safetensors, or the
// shards of model.safetensors.index.json) or of one adapter, and finds tensors
// by name across them. Called by the model-weight loader and the PEFT adapter
// loader. Both are immutable after Open: any number of threads may read them.
//
// Everything in the file is validated before Open returns (header length,
// JSON, each entry's fields and types, dtype, shape overflow, byte counts,
// offsets inside the data section, no overlapping tensors, no duplicate names),
// so no later read can go out of bounds. Error codes:
//   NotFound         a file (or a shard named by the index) does not exist;
//   DataLoss         the bytes are not a well-formed safetensors file / index
//                    (truncated, bad JSON, missing or mistyped fields, sizes or
//                    offsets that do not add up, overlaps, index/shard mismatch);
//   InvalidArgument  well-formed but unsupported or unsafe (dtype other than
//                    F32/F16/BF16, shard path escaping the directory).
// Every message names the file and, where there is one, the tensor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/dtype.h"

namespace loraserve {

// One tensor inside a mapped file. `data` may be unaligned for its dtype (the
// format does not require the header length to be a multiple of 8): read it
// with ToF32() or memcpy, never through a cast float*/uint16_t*.
struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;     // every dim >= 0; may be empty (a scalar)
  const uint8_t* data = nullptr;  // [nbytes], inside the owning file's mapping
  size_t nbytes = 0;              // == numel() * DTypeSize(dtype)

  int64_t numel() const;
};

// "[2, 3]" for messages.
std::string ShapeString(const std::vector<int64_t>& shape);

class SafetensorsFile {
 public:
  // The largest JSON header accepted (the format's reference reader uses the same).
  static constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

  // Maps `path` read-only and validates it entirely (see the file comment).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(
      const std::string& path);

  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  // The tensor named `name`, or nullptr. O(log n).
  const TensorView* Find(std::string_view name) const;
  // All tensors, sorted by name.
  const std::vector<TensorView>& tensors() const { return tensors_; }
  // The "__metadata__" string map (empty when absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& path() const { return path_; }
  // Size of the whole file in bytes.
  size_t file_bytes() const { return size_; }

 private:
  SafetensorsFile() = default;
  absl::Status Parse();

  std::string path_;
  const uint8_t* base_ = nullptr;  // [size_] the read-only mapping (nullptr when size_ == 0)
  size_t size_ = 0;
  std::vector<TensorView> tensors_;  // sorted by name
  std::map<std::string, std::string> metadata_;
};

// The tensors of one model or adapter, possibly spread over several files.
class SafetensorsBundle {
 public:
  // A Hugging Face model directory: `model.safetensors` when present (as
  // transformers prefers), else the shards of `model.safetensors.index.json`.
  // The index's "weight_map" (tensor -> shard file) must agree exactly with
  // the shards: every listed tensor is in its shard, every tensor of a shard is
  // listed for that shard, no name in two shards. Shard names must stay inside
  // `dir` lexically (no absolute path, no ".." component); symlinks are
  // followed, as in the Hugging Face cache.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SafetensorsBundle>> OpenDir(
      const std::string& dir);

  // The given files (e.g. an adapter's adapter_model.safetensors). A tensor
  // name present in two files is DataLoss.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SafetensorsBundle>> Open(
      const std::vector<std::string>& paths);

  SafetensorsBundle(const SafetensorsBundle&) = delete;
  SafetensorsBundle& operator=(const SafetensorsBundle&) = delete;

  // The tensor named `name` in any file, or nullptr.
  const TensorView* Find(std::string_view name) const;
  // All tensor names, sorted.
  const std::vector<std::string>& names() const { return names_; }
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }
  // Sum of the tensors' bytes.
  size_t tensor_bytes() const { return tensor_bytes_; }

 private:
  SafetensorsBundle() = default;
  absl::Status AddFile(std::unique_ptr<SafetensorsFile> file);

  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  absl::flat_hash_map<std::string, const TensorView*> by_name_;  // into files_
  std::vector<std::string> names_;
  size_t tensor_bytes_ = 0;
};

// Converts `t` to fp32 into `dst`, which holds t.numel() floats. Handles any
// alignment of t.data.
[[nodiscard]] absl::Status ToF32(const TensorView& t, float* dst /* [t.numel()] */);
// Same, into a new vector.
[[nodiscard]] absl::StatusOr<std::vector<float>> ToF32(const TensorView& t);

}  // namespace loraserve
