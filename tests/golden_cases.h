// The Hugging Face goldens of a fixture model (tests/data/<model>/golden.json,
// written by scripts/make_fixtures.py with transformers + PEFT): per case its
// name, adapter ("" = base), prompt ids and greedy ids. One loader for the
// engine tests (int32 ids) and the server tests (uint32, as on the wire).
// Test-only; any thread.
#pragma once

#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace loraserve::testing {

template <typename Id>
struct GoldenCase {
  std::string name;
  std::string adapter;
  std::vector<Id> prompt;
  std::vector<Id> greedy;
};

template <typename Id>
std::vector<GoldenCase<Id>> LoadGoldenCases(const std::string& model_dir) {
  std::ifstream in(model_dir + "/golden.json");
  EXPECT_TRUE(in.good()) << "cannot open " << model_dir << "/golden.json";
  std::vector<GoldenCase<Id>> out;
  if (!in.good()) return out;
  nlohmann::json j;
  in >> j;
  for (const auto& c : j.at("cases")) {
    out.push_back({c.at("name").template get<std::string>(),
                   c.at("adapter").template get<std::string>(),
                   c.at("prompt_ids").template get<std::vector<Id>>(),
                   c.at("greedy_ids").template get<std::vector<Id>>()});
  }
  return out;
}

}  // namespace loraserve::testing
