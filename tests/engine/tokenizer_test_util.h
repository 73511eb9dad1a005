// Shared helpers for the tokenizer tests: fixture paths and JSONL golden
// readers. Goldens come from Hugging Face tokenizers 0.19
// (scripts/fixtures/make_tokenizers.py), never from our code.
#pragma once

#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace loraserve::tokenizer_test {

inline const std::vector<std::string>& FixtureNames() {
  static const std::vector<std::string> names = {"bytelevel", "bytelevel-qwen2", "bytelevel-gpt2",
                                                 "sentencepiece", "sentencepiece-metaspace",
                                                 "sentencepiece-legacy"};
  return names;
}

inline std::string TokenizerDataDir() { return std::string(LORASERVE_TEST_DATA_DIR) + "/tokenizers"; }

inline std::string FixturePath(const std::string& name, const std::string& file) {
  return TokenizerDataDir() + "/" + name + "/" + file;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// One parsed JSON object per non-empty line.
inline std::vector<nlohmann::json> ReadJsonLines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::vector<nlohmann::json> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(j.is_discarded()) << path << ": bad line " << line;
    if (!j.is_discarded()) rows.push_back(std::move(j));
  }
  return rows;
}

inline std::vector<int32_t> Ids(const nlohmann::json& j) { return j.get<std::vector<int32_t>>(); }

}  // namespace loraserve::tokenizer_test
