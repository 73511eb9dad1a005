// Test-only helpers for building model and adapter directories on disk:
//   TempDir              a fresh directory under $TMPDIR, removed on destruction;
//   WriteStringToFile    writes bytes (ADD_FAILURE on error);
//   SafetensorsWriter    builds a safetensors file the way the reference writer
//                        does (header padded with spaces to a multiple of 8, data
//                        contiguous in insertion order), and exposes the header
//                        JSON and data separately so tests can corrupt them;
//   MakeSafetensorsBytes assembles length + header + data from raw pieces.
// Header-only; used by the engine tests. Not thread-safe (one test, one writer).
#pragma once

#include <stdlib.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/dtype.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace loraserve::testutil {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "loraserve_test_XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed for " << tmpl;
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path()/name; creates the directory `name` when mkdir is true.
  std::string Sub(std::string_view name, bool mkdir = false) const {
    std::string p = path_ + "/" + std::string(name);
    if (mkdir) std::filesystem::create_directories(p);
    return p;
  }

 private:
  std::string path_;
};

inline void WriteStringToFile(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out.good()) ADD_FAILURE() << "cannot write " << path;
}

// 8-byte little-endian header length, the header, the data. With `pad` the
// header is padded with spaces to a multiple of 8 bytes, as the reference
// writer does, so the data section starts 8-aligned.
inline std::string MakeSafetensorsBytes(std::string_view header, std::string_view data,
                                        bool pad = true) {
  std::string h(header);
  if (pad) {
    while (h.size() % 8 != 0) h.push_back(' ');
  }
  std::string out(8, '\0');
  uint64_t n = h.size();
  for (int i = 0; i < 8; ++i)
    out[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  out += h;
  out.append(data.data(), data.size());
  return out;
}

class SafetensorsWriter {
 public:
  // Adds a tensor stored as `dtype` ("F32", "F16", "BF16"); `values` are
  // rounded to that dtype (round to nearest even) and the rounded values are
  // returned, i.e. exactly what a correct reader gives back.
  std::vector<float> Add(const std::string& name, std::string_view dtype,
                         std::vector<int64_t> shape, const std::vector<float>& values) {
    std::string bytes;
    std::vector<float> rounded(values.size());
    if (dtype == "F32") {
      bytes.resize(values.size() * 4);
      if (!values.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
      rounded = values;
    } else {
      const bool bf16 = dtype == "BF16";
      EXPECT_TRUE(bf16 || dtype == "F16") << dtype;
      bytes.resize(values.size() * 2);
      for (size_t i = 0; i < values.size(); ++i) {
        const uint16_t h = bf16 ? FloatToBf16(values[i]) : FloatToHalf(values[i]);
        std::memcpy(bytes.data() + 2 * i, &h, 2);
        rounded[i] = bf16 ? Bf16ToFloat(h) : HalfToFloat(h);
      }
    }
    AddRaw(name, std::string(dtype), std::move(shape), std::move(bytes));
    return rounded;
  }
  std::vector<float> AddF32(const std::string& name, std::vector<int64_t> shape,
                            const std::vector<float>& values) {
    return Add(name, "F32", std::move(shape), values);
  }

  // Adds a tensor with arbitrary dtype string and bytes (no consistency check).
  void AddRaw(std::string name, std::string dtype, std::vector<int64_t> shape, std::string bytes) {
    tensors_.push_back({std::move(name), std::move(dtype), std::move(shape), std::move(bytes)});
  }
  void SetMetadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

  // The header the reference writer would produce for the tensors so far.
  nlohmann::ordered_json Header() const {
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
  std::string Data() const {
    std::string d;
    for (const Tensor& t : tensors_) d += t.bytes;
    return d;
  }
  std::string Serialize() const { return MakeSafetensorsBytes(Header().dump(), Data()); }
  void WriteTo(const std::string& path) const { WriteStringToFile(path, Serialize()); }

 private:
  struct Tensor {
    std::string name;
    std::string dtype;
    std::vector<int64_t> shape;
    std::string bytes;
  };
  std::vector<Tensor> tensors_;
  nlohmann::ordered_json metadata_ = nlohmann::ordered_json::object();
};

// `n` deterministic pseudo-random floats in [-1, 1) from `seed` (a 64-bit LCG,
// identical on every platform).
inline std::vector<float> TestValues(size_t n, uint64_t seed) {
  std::vector<float> v(n);
  uint64_t s = seed * 6364136223846793005ull + 1442695040888963407ull;
  for (size_t i = 0; i < n; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    v[i] =
        static_cast<float>(static_cast<double>(s >> 40) / static_cast<double>(1ull << 24)) * 2.0f -
        1.0f;
  }
  return v;
}

}  // namespace loraserve::testutil
