// Helpers for the bench_tools tests: a fresh temporary directory per test
// (removed at destruction), the fixture model's path and this folder's path.
// Test-only.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace loraserve::bench::testing {

// The whole file (binary); empty when it cannot be read.
inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string FixtureModelDir() {
  return std::string(LORASERVE_TEST_DATA_DIR) + "/tiny-llama";
}
// tests/bench_tools/ (beside tests/data/), for its own small goldens.
inline std::string BenchToolsTestDir() {
  return std::string(LORASERVE_TEST_DATA_DIR) + "/../bench_tools";
}

class ScopedTempDir {
 public:
  ScopedTempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string(info->test_suite_name()) + "." + info->name();
    for (char& c : name) {
      if (c == '/') c = '_';
    }
    path_ = std::filesystem::path(::testing::TempDir()) / ("loraserve_bench_" + name);
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScopedTempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string path() const { return path_.string(); }
  std::string Sub(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace loraserve::bench::testing
