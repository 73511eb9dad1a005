#include "engine/model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "common/strings.h"
#include "engine/model/json_file.h"
#include "nlohmann/json.hpp"

namespace loraserve {
namespace {

constexpr size_t kMaxIndexBytes = 64u << 20;

uint64_t ReadLe64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Parses a non-negative integer that fits int64 (dims and offsets).
bool GetNonNegative(const nlohmann::json& v, uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
    return *out <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  }
  if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    if (i < 0) return false;
    *out = static_cast<uint64_t>(i);
    return true;
  }
  return false;
}

}  // namespace

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // validated not to overflow at Open
  return n;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

SafetensorsFile::~SafetensorsFile() {
  if (base_ != nullptr) ::munmap(const_cast<uint8_t*>(base_), size_);
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return absl::Status(absl::ErrnoToStatusCode(err),
                        absl::StrCat(path, ": cannot open: ", std::strerror(err)));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  file->size_ = static_cast<size_t>(st.st_size);
  if (file->size_ > 0) {
    void* m = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      return absl::Status(absl::ErrnoToStatusCode(err),
                          absl::StrCat(path, ": cannot mmap: ", std::strerror(err)));
    }
    file->base_ = static_cast<const uint8_t*>(m);
  }
  ::close(fd);  // the mapping keeps the file alive
  RETURN_IF_ERROR(file->Parse());
  return file;
}

absl::Status SafetensorsFile::Parse() {
  auto data_loss = [&](auto&&... parts) {
    return absl::DataLossError(absl::StrCat(path_, ": ", parts...));
  };
  if (size_ < 8) {
    return data_loss("file is ", size_, " bytes, too short for the 8-byte header length");
  }
  const uint64_t header_len = ReadLe64(base_);
  if (header_len > kMaxHeaderBytes) {
    return data_loss("header length ", header_len, " exceeds the limit of ", kMaxHeaderBytes,
                     " bytes");
  }
  if (header_len > size_ - 8) {
    return data_loss("header length ", header_len, " exceeds the file size (", size_,
                     " bytes, truncated?)");
  }
  const char* header_begin = reinterpret_cast<const char*>(base_ + 8);
  const char* header_end = header_begin + header_len;
  const uint8_t* data = base_ + 8 + header_len;
  const uint64_t data_size = size_ - 8 - header_len;

  // Duplicate top-level keys are silently merged by JSON parsers; refuse them.
  std::string duplicate;
  std::set<std::string> seen;
  nlohmann::json::parser_callback_t cb = [&](int depth, nlohmann::json::parse_event_t event,
                                             nlohmann::json& parsed) {
    if (depth == 1 && event == nlohmann::json::parse_event_t::key && parsed.is_string()) {
      if (!seen.insert(parsed.get<std::string>()).second && duplicate.empty()) {
        duplicate = parsed.get<std::string>();
      }
    }
    return true;
  };
  nlohmann::json header =
      nlohmann::json::parse(header_begin, header_end, cb, /*allow_exceptions=*/false);
  if (header.is_discarded()) return data_loss("header is not valid JSON");
  if (!header.is_object()) {
    return data_loss("header is not a JSON object (got ", header.type_name(), ")");
  }
  if (!duplicate.empty()) {
    return data_loss("tensor \"", duplicate, "\" appears twice in the header");
  }

  tensors_.reserve(header.size());
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& entry = it.value();
    if (name == "__metadata__") {
      if (!entry.is_object()) return data_loss("\"__metadata__\" is not an object");
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        if (!m.value().is_string()) {
          return data_loss("\"__metadata__\" value of \"", m.key(), "\" is not a string");
        }
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    auto bad = [&](auto&&... parts) { return data_loss("tensor \"", name, "\": ", parts...); };
    if (!entry.is_object()) return bad("entry is not an object");
    auto dtype_it = entry.find("dtype");
    auto shape_it = entry.find("shape");
    auto offsets_it = entry.find("data_offsets");
    if (dtype_it == entry.end()) return bad("missing \"dtype\"");
    if (shape_it == entry.end()) return bad("missing \"shape\"");
    if (offsets_it == entry.end()) return bad("missing \"data_offsets\"");
    if (!dtype_it->is_string()) return bad("\"dtype\" is not a string");
    if (!shape_it->is_array()) return bad("\"shape\" is not an array");
    if (!offsets_it->is_array() || offsets_it->size() != 2) {
      return bad("\"data_offsets\" is not an array of two integers");
    }

    TensorView view;
    view.name = name;
    absl::StatusOr<DType> dtype = ParseDType(dtype_it->get<std::string>());
    if (!dtype.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path_, ": tensor \"", name, "\": ", dtype.status().message()));
    }
    view.dtype = *dtype;

    uint64_t numel = 1;
    bool overflow = false;
    for (const nlohmann::json& d : *shape_it) {
      uint64_t dim = 0;
      if (!GetNonNegative(d, &dim)) {
        if (d.is_number_integer() && !d.is_number_unsigned()) {
          return bad("negative dimension ", d.get<int64_t>(), " in \"shape\"");
        }
        return bad("\"shape\" entries must be non-negative integers");
      }
      view.shape.push_back(static_cast<int64_t>(dim));
      if (__builtin_mul_overflow(numel, dim, &numel)) overflow = true;
    }
    uint64_t nbytes = 0;
    if (overflow || numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
        __builtin_mul_overflow(numel, static_cast<uint64_t>(DTypeSize(view.dtype)), &nbytes)) {
      return bad("shape ", ShapeString(view.shape), " overflows");
    }
    uint64_t begin = 0, end = 0;
    if (!GetNonNegative((*offsets_it)[0], &begin) || !GetNonNegative((*offsets_it)[1], &end)) {
      return bad("\"data_offsets\" must be two non-negative integers");
    }
    if (end < begin) return bad("data_offsets [", begin, ", ", end, "]: end < begin");
    if (end > data_size) {
      return bad("data_offsets [", begin, ", ", end, "] out of range: the data section is ",
                 data_size, " bytes");
    }
    if (end - begin != nbytes) {
      return bad("shape ", ShapeString(view.shape), " of ", Sv(DTypeName(view.dtype)), " needs ",
                 nbytes, " bytes but data_offsets [", begin, ", ", end, "] hold ", end - begin);
    }
    view.data = data + begin;
    view.nbytes = static_cast<size_t>(nbytes);
    tensors_.push_back(std::move(view));
  }
  // nlohmann::json objects iterate in key order, so tensors_ is sorted by name.

  // No two non-empty tensors may share bytes.
  std::vector<const TensorView*> by_offset;
  for (const TensorView& t : tensors_) {
    if (t.nbytes > 0) by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorView* a, const TensorView* b) { return a->data < b->data; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const TensorView* prev = by_offset[i - 1];
    const TensorView* cur = by_offset[i];
    if (cur->data < prev->data + prev->nbytes) {
      return data_loss("tensors \"", prev->name, "\" and \"", cur->name, "\" overlap");
    }
  }
  return absl::OkStatus();
}

const TensorView* SafetensorsFile::Find(std::string_view name) const {
  auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                             [](const TensorView& t, std::string_view n) { return t.name < n; });
  if (it == tensors_.end() || it->name != name) return nullptr;
  return &*it;
}

// ---------------------------------------------------------------------------

absl::Status SafetensorsBundle::AddFile(std::unique_ptr<SafetensorsFile> file) {
  for (const TensorView& t : file->tensors()) {
    auto [it, inserted] = by_name_.emplace(t.name, &t);
    if (!inserted) {
      // Find which file holds the first copy for the message.
      std::string other = "another file";
      for (const auto& f : files_) {
        if (f->Find(t.name) != nullptr) other = f->path();
      }
      return absl::DataLossError(
          absl::StrCat("tensor \"", t.name, "\" appears in both ", other, " and ", file->path()));
    }
    names_.push_back(t.name);
    tensor_bytes_ += t.nbytes;
  }
  files_.push_back(std::move(file));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<SafetensorsBundle>> SafetensorsBundle::Open(
    const std::vector<std::string>& paths) {
  std::unique_ptr<SafetensorsBundle> bundle(new SafetensorsBundle());
  for (const std::string& p : paths) {
    ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file, SafetensorsFile::Open(p));
    RETURN_IF_ERROR(bundle->AddFile(std::move(file)));
  }
  std::sort(bundle->names_.begin(), bundle->names_.end());
  return bundle;
}

namespace {

// A shard name from the index must be a relative path that stays inside the
// model directory: not empty, not absolute, no "." or ".." component.
absl::Status CheckShardName(const std::string& index_path, const std::string& shard) {
  bool bad = shard.empty() || shard.front() == '/' || shard.find('\\') != std::string::npos ||
             shard.find('\0') != std::string::npos;
  size_t start = 0;
  while (!bad && start <= shard.size()) {
    size_t slash = shard.find('/', start);
    if (slash == std::string::npos) slash = shard.size();
    const std::string_view part(shard.data() + start, slash - start);
    if (part.empty() || part == "." || part == "..") bad = true;
    start = slash + 1;
  }
  if (bad) {
    return absl::InvalidArgumentError(
        absl::StrCat(index_path, ": shard path \"", shard,
                     "\" escapes or is not a file in the model directory"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<SafetensorsBundle>> SafetensorsBundle::OpenDir(
    const std::string& dir) {
  const std::string single = dir + "/model.safetensors";
  const std::string index_path = dir + "/model.safetensors.index.json";
  if (json::IsRegularFile(single)) return Open({single});
  if (!json::IsRegularFile(index_path)) {
    return absl::NotFoundError(absl::StrCat(
        dir, ": no model.safetensors or model.safetensors.index.json in the model directory"));
  }
  ASSIGN_OR_RETURN(std::string text, json::ReadFileToString(index_path, kMaxIndexBytes));
  absl::StatusOr<json::Json> index = json::ParseObject(text, index_path);
  if (!index.ok()) return absl::DataLossError(index.status().message());
  const json::Json* map = json::Find(*index, "weight_map");
  if (map == nullptr || !map->is_object()) {
    return absl::DataLossError(
        absl::StrCat(index_path, ": missing \"weight_map\" object (tensor name -> shard file)"));
  }
  if (map->empty())
    return absl::DataLossError(absl::StrCat(index_path, ": \"weight_map\" is empty"));

  std::map<std::string, std::string> tensor_to_shard;
  std::set<std::string> shards;
  for (auto it = map->begin(); it != map->end(); ++it) {
    if (!it.value().is_string()) {
      return absl::DataLossError(absl::StrCat(index_path, ": \"weight_map\" entry for tensor \"",
                                              it.key(), "\" is not a string"));
    }
    const std::string shard = it.value().get<std::string>();
    RETURN_IF_ERROR(CheckShardName(index_path, shard));
    if (!tensor_to_shard.emplace(it.key(), shard).second) {
      return absl::DataLossError(
          absl::StrCat(index_path, ": tensor \"", it.key(), "\" listed twice"));
    }
    shards.insert(shard);
  }

  std::unique_ptr<SafetensorsBundle> bundle(new SafetensorsBundle());
  for (const std::string& shard : shards) {
    absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
        SafetensorsFile::Open(dir + "/" + shard);
    if (!file.ok()) {
      return AnnotateStatus(file.status(), absl::StrCat(index_path, ": shard \"", shard, "\""));
    }
    for (const TensorView& t : (*file)->tensors()) {
      auto listed = tensor_to_shard.find(t.name);
      if (listed == tensor_to_shard.end()) {
        return absl::DataLossError(absl::StrCat(index_path, ": tensor \"", t.name, "\" in shard \"",
                                                shard, "\" is not listed in \"weight_map\""));
      }
      if (listed->second != shard) {
        return absl::DataLossError(
            absl::StrCat(index_path, ": tensor \"", t.name, "\" is in shard \"", shard,
                         "\" but \"weight_map\" lists it in \"", listed->second, "\""));
      }
    }
    RETURN_IF_ERROR(bundle->AddFile(*std::move(file)));
  }
  for (const auto& [name, shard] : tensor_to_shard) {
    if (bundle->by_name_.find(name) == bundle->by_name_.end()) {
      return absl::DataLossError(absl::StrCat(index_path, ": tensor \"", name,
                                              "\" is listed in shard \"", shard,
                                              "\" but that shard does not contain it"));
    }
  }
  std::sort(bundle->names_.begin(), bundle->names_.end());
  return bundle;
}

const TensorView* SafetensorsBundle::Find(std::string_view name) const {
  auto it = by_name_.find(Sv(name));
  return it == by_name_.end() ? nullptr : it->second;
}

// ---------------------------------------------------------------------------

absl::Status ToF32(const TensorView& t, float* dst) {
  const size_t n = static_cast<size_t>(t.numel());
  if (n * DTypeSize(t.dtype) != t.nbytes) {
    return absl::InternalError(absl::StrCat("tensor \"", t.name, "\": ", t.nbytes,
                                            " bytes do not match shape ", ShapeString(t.shape)));
  }
  if (n == 0) return absl::OkStatus();
  const size_t elem = DTypeSize(t.dtype);
  if (reinterpret_cast<uintptr_t>(t.data) % elem == 0) {
    ConvertToF32(t.data, t.dtype, dst, n);
    return absl::OkStatus();
  }
  // Unaligned source: stage through an aligned buffer.
  constexpr size_t kChunk = 4096;
  alignas(8) uint8_t staging[kChunk * 4];
  for (size_t i = 0; i < n; i += kChunk) {
    const size_t m = std::min(kChunk, n - i);
    std::memcpy(staging, t.data + i * elem, m * elem);
    ConvertToF32(staging, t.dtype, dst + i, m);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>> ToF32(const TensorView& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  RETURN_IF_ERROR(ToF32(t, out.data()));
  return out;
}

}  // namespace loraserve
