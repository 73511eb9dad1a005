// Test-only helpers for building model and adapter directories on disk:
//   TempDir              a fresh directory under $TMPDIR, removed on destruction;
//   WriteStringToFile    writes bytes (ADD_FAILURE on error);
//   SafetensorsWriter    the library writer (engine/model/safetensors_writer.h)
//                        with string dtypes, rounded values returned and errors
//                        as test failures; Header()/Data() let tests corrupt files;
//   MakeSafetensorsBytes assembles length + header + data from raw pieces;
//   TestValues           deterministic pseudo-random floats.
// Header-only; used by the engine tests. Not thread-safe (one test, one writer).
#pragma once

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/dtype.h"
#include "engine/model/safetensors_writer.h"
#include "gtest/gtest.h"

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

// Forwards to the library's SafetensorsBytes (engine/model/safetensors_writer.h).
inline std::string MakeSafetensorsBytes(std::string_view header, std::string_view data,
                                        bool pad = true) {
  return ::loraserve::SafetensorsBytes(header, data, pad);
}

// The library writer with the tests' conveniences: dtype as its safetensors
// string, Add returns the rounded values, and errors become test failures
// instead of statuses.
class SafetensorsWriter : public ::loraserve::SafetensorsWriter {
 public:
  // Adds a tensor stored as `dtype` ("F32", "F16", "BF16"); `values` are
  // rounded to that dtype (round to nearest even) and the rounded values are
  // returned, i.e. exactly what a correct reader gives back.
  std::vector<float> Add(const std::string& name, std::string_view dtype,
                         std::vector<int64_t> shape, const std::vector<float>& values) {
    std::vector<float> rounded;
    absl::StatusOr<DType> t = ParseDType(dtype);
    EXPECT_TRUE(t.ok()) << t.status();
    if (!t.ok()) return rounded;
    const absl::Status s =
        ::loraserve::SafetensorsWriter::Add(name, *t, std::move(shape), values, &rounded);
    EXPECT_TRUE(s.ok()) << s;
    return rounded;
  }
  std::vector<float> AddF32(const std::string& name, std::vector<int64_t> shape,
                            const std::vector<float>& values) {
    return Add(name, "F32", std::move(shape), values);
  }
  void WriteTo(const std::string& path) const {
    const absl::Status s = Write(path);
    if (!s.ok()) ADD_FAILURE() << s;
  }
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
