#include "bench/tools/safetensors_stream_writer.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/model/safetensors_writer.h"
#include "nlohmann/json.hpp"

namespace loraserve::bench {
namespace {

absl::Status IoError(const std::string& path, const char* what) {
  return absl::InternalError(absl::StrCat("cannot ", what, " ", path, ": ", std::strerror(errno)));
}

}  // namespace

int64_t TensorSpec::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

absl::StatusOr<std::unique_ptr<SafetensorsStreamWriter>> SafetensorsStreamWriter::Open(
    const std::string& path, const std::vector<TensorSpec>& tensors,
    const std::vector<std::pair<std::string, std::string>>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    for (const auto& [k, v] : metadata) header["__metadata__"][k] = v;
  }
  int64_t offset = 0;
  for (const TensorSpec& t : tensors) {
    if (t.name.empty() || header.contains(t.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("safetensors: bad or repeated tensor name \"", t.name, "\" in ", path));
    }
    header[t.name] = {{"dtype", std::string(DTypeName(t.dtype))},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.bytes()}}};
    offset += t.bytes();
  }
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return IoError(path, "create");
  auto writer =
      std::unique_ptr<SafetensorsStreamWriter>(new SafetensorsStreamWriter(path, f, offset));
  const std::string head = SafetensorsBytes(header.dump(), "");
  if (std::fwrite(head.data(), 1, head.size(), f) != head.size()) return IoError(path, "write");
  return writer;
}

SafetensorsStreamWriter::~SafetensorsStreamWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

absl::Status SafetensorsStreamWriter::Append(const void* data, size_t n) {
  if (file_ == nullptr) return absl::FailedPreconditionError(absl::StrCat(path_, " is closed"));
  if (std::fwrite(data, 1, n, file_) != n) return IoError(path_, "write");
  written_ += static_cast<int64_t>(n);
  return absl::OkStatus();
}

absl::Status SafetensorsStreamWriter::Close() {
  if (file_ == nullptr) return absl::OkStatus();
  const int close_rc = std::fclose(file_);
  file_ = nullptr;
  if (close_rc != 0) return IoError(path_, "close");
  if (written_ != expected_) {
    return absl::FailedPreconditionError(
        absl::StrCat(path_, ": wrote ", written_, " data bytes, the header declares ", expected_));
  }
  return absl::OkStatus();
}

}  // namespace loraserve::bench
