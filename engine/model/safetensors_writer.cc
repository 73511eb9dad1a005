#include "engine/model/safetensors_writer.h"

#include <cstring>
#include <fstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/strings.h"
#include "engine/model/safetensors.h"

namespace loraserve {

std::string SafetensorsBytes(std::string_view header, std::string_view data, bool pad) {
  std::string h(header);
  if (pad) {
    while (h.size() % 8 != 0) h.push_back(' ');
  }
  std::string out(8, '\0');
  const uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  out += h;
  out.append(data.data(), data.size());
  return out;
}

absl::Status SafetensorsWriter::Add(const std::string& name, DType dtype,
                                    std::vector<int64_t> shape, std::span<const float> values,
                                    std::vector<float>* rounded) {
  if (name.empty() || name == "__metadata__") {
    return absl::InvalidArgumentError(absl::StrCat("safetensors writer: bad tensor name '", name, "'"));
  }
  uint64_t numel = 1;
  for (int64_t d : shape) {
    if (d < 0) {
      return absl::InvalidArgumentError(absl::StrCat("safetensors writer: tensor ", name,
                                                     " has a negative dim ", ShapeString(shape)));
    }
    numel *= static_cast<uint64_t>(d);
  }
  if (numel != values.size()) {
    return absl::InvalidArgumentError(absl::StrCat("safetensors writer: tensor ", name, " shape ",
                                                   ShapeString(shape), " holds ", numel,
                                                   " elements, given ", values.size()));
  }
  for (const Tensor& t : tensors_) {
    if (t.name == name) {
      return absl::InvalidArgumentError(
          absl::StrCat("safetensors writer: tensor ", name, " added twice"));
    }
  }
  std::string bytes(values.size() * DTypeSize(dtype), '\0');
  if (!values.empty()) ConvertFromF32(values.data(), bytes.data(), dtype, values.size());
  if (rounded != nullptr) {
    rounded->resize(values.size());
    if (!values.empty()) ConvertToF32(bytes.data(), dtype, rounded->data(), values.size());
  }
  AddRaw(name, std::string(DTypeName(dtype)), std::move(shape), std::move(bytes));
  return absl::OkStatus();
}

void SafetensorsWriter::AddRaw(std::string name, std::string dtype, std::vector<int64_t> shape,
                               std::string bytes) {
  data_bytes_ += bytes.size();
  tensors_.push_back({std::move(name), std::move(dtype), std::move(shape), std::move(bytes)});
}

void SafetensorsWriter::SetMetadata(const std::string& key, const std::string& value) {
  metadata_[key] = value;
}

nlohmann::ordered_json SafetensorsWriter::Header() const {
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata_.empty()) h["__metadata__"] = metadata_;
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    h[t.name] = {{"dtype", t.dtype},
                 {"shape", t.shape},
                 {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  return h;
}

std::string SafetensorsWriter::Data() const {
  std::string d;
  d.reserve(data_bytes_);
  for (const Tensor& t : tensors_) d += t.bytes;
  return d;
}

std::string SafetensorsWriter::Serialize() const { return SafetensorsBytes(Header().dump(), Data()); }

absl::Status SafetensorsWriter::Write(const std::string& path) const {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  const std::string head = SafetensorsBytes(Header().dump(), "");
  out.write(head.data(), static_cast<std::streamsize>(head.size()));
  for (const Tensor& t : tensors_) {
    out.write(t.bytes.data(), static_cast<std::streamsize>(t.bytes.size()));
  }
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("safetensors writer: cannot write ", path));
  return absl::OkStatus();
}

}  // namespace loraserve
