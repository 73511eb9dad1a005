// Trace files (bench/loadgen/trace_file.h): write -> read round trip is
// exact; optional prompt_ids; every malformed class is an error naming the
// file, the line and the field.
#include "bench/loadgen/trace_file.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace loraserve::loadgen {
namespace {

std::string TempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("loadgen_trace_file_test_" + std::to_string(getpid()) + "_" + name))
      .string();
}

absl::StatusOr<std::vector<TraceRequest>> Parse(const std::string& text) {
  std::istringstream in(text);
  return ParseTrace(in, "t.jsonl");
}

TEST(TraceFile, WriteThenReadGivesTheSameRequests) {
  TraceOptions o;
  o.rate = 50;
  o.duration_s = 4;
  o.num_adapters = 12;
  o.input_len = {1, 40};
  const std::vector<TraceRequest> trace = *SynthesizeTrace(o);
  const std::string path = TempPath("roundtrip.jsonl");
  ASSERT_TRUE(WriteTraceFile(path, trace).ok());
  absl::StatusOr<std::vector<TraceRequest>> back = ReadTraceFile(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, trace);  // t included, bit for bit
  std::remove(path.c_str());
}

TEST(TraceFile, LinesHaveExactlyTheDocumentedFields) {
  TraceRequest r{3, 0.125, "adapter-0007", 2, 50, {17, 4}};
  EXPECT_EQ(TraceLine(r),
            R"({"id":3,"t":0.125,"adapter":"adapter-0007","input_len":2,"output_len":50,)"
            R"("prompt_ids":[17,4]})");
}

TEST(TraceFile, PromptIdsAreOptionalAndBlankLinesSkipped) {
  absl::StatusOr<std::vector<TraceRequest>> t = Parse(
      "{\"id\": 0, \"t\": 0, \"adapter\": \"\", \"input_len\": 3, \"output_len\": 5}\n"
      "\n"
      "{\"id\": 1, \"t\": 0.5, \"adapter\": \"a\", \"input_len\": 2, \"output_len\": 1, "
      "\"prompt_ids\": [9, 8]}\n");
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->size(), 2u);
  EXPECT_TRUE((*t)[0].prompt_ids.empty());
  EXPECT_EQ((*t)[0].input_len, 3);
  EXPECT_EQ((*t)[1].prompt_ids, (std::vector<uint32_t>{9, 8}));
  EXPECT_EQ((*t)[1].adapter, "a");
  EXPECT_DOUBLE_EQ((*t)[1].t, 0.5);
}

TEST(TraceFile, MalformedLinesNameFileLineAndField) {
  const std::string good =
      R"({"id": 0, "t": 1.0, "adapter": "a", "input_len": 2, "output_len": 3, "prompt_ids": [1, 2]})";
  struct Case {
    const char* what;
    std::string line2;
    std::vector<std::string> expected;  // fragments of the message
  };
  const std::vector<Case> cases = {
      {"bad JSON", R"({"id": 1, "t": 2.0,)", {"bad JSON"}},
      {"not an object", "[1, 2]", {"not a JSON object"}},
      {"missing field", R"({"id": 1, "adapter": "a", "input_len": 2, "output_len": 3})",
       {"missing field", "\"t\""}},
      {"missing adapter", R"({"id": 1, "t": 2, "input_len": 2, "output_len": 3})",
       {"missing field", "\"adapter\""}},
      {"negative t", R"({"id": 1, "t": -0.5, "adapter": "a", "input_len": 2, "output_len": 3})",
       {"\"t\"", ">= 0"}},
      {"decreasing t", R"({"id": 1, "t": 0.5, "adapter": "a", "input_len": 2, "output_len": 3})",
       {"\"t\"", "nondecreasing"}},
      {"t not a number", R"({"id": 1, "t": "2", "adapter": "a", "input_len": 2, "output_len": 3})",
       {"\"t\"", "number"}},
      {"input_len mismatch",
       R"({"id": 1, "t": 2, "adapter": "a", "input_len": 3, "output_len": 3, "prompt_ids": [1, 2]})",
       {"\"input_len\"", "prompt_ids", "2 ids"}},
      {"output_len zero", R"({"id": 1, "t": 2, "adapter": "a", "input_len": 2, "output_len": 0})",
       {"\"output_len\"", ">= 1"}},
      {"output_len negative",
       R"({"id": 1, "t": 2, "adapter": "a", "input_len": 2, "output_len": -4})",
       {"\"output_len\"", ">= 1"}},
      {"output_len fraction",
       R"({"id": 1, "t": 2, "adapter": "a", "input_len": 2, "output_len": 2.5})",
       {"\"output_len\"", "integer"}},
      {"input_len zero", R"({"id": 1, "t": 2, "adapter": "a", "input_len": 0, "output_len": 2})",
       {"\"input_len\"", ">= 1"}},
      {"adapter not a string", R"({"id": 1, "t": 2, "adapter": 7, "input_len": 2, "output_len": 2})",
       {"\"adapter\"", "string"}},
      {"bad token id",
       R"({"id": 1, "t": 2, "adapter": "a", "input_len": 2, "output_len": 2, "prompt_ids": [1, -2]})",
       {"\"prompt_ids\"[1]"}},
      {"duplicate id", R"({"id": 0, "t": 2, "adapter": "a", "input_len": 2, "output_len": 2})",
       {"\"id\"", "repeats line 1"}},
      {"negative id", R"({"id": -1, "t": 2, "adapter": "a", "input_len": 2, "output_len": 2})",
       {"\"id\""}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    absl::StatusOr<std::vector<TraceRequest>> t = Parse(good + "\n" + c.line2 + "\n" + good);
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    const std::string message(t.status().message());
    EXPECT_EQ(message.rfind("t.jsonl:2: ", 0), 0u) << message;
    for (const std::string& fragment : c.expected) {
      EXPECT_NE(message.find(fragment), std::string::npos) << message << " lacks " << fragment;
    }
  }
}

TEST(TraceFile, EmptyAndMissingFilesAreErrors) {
  EXPECT_FALSE(Parse("\n\n").ok());
  absl::StatusOr<std::vector<TraceRequest>> t = ReadTraceFile(TempPath("does_not_exist"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(t.status().message().find("does_not_exist"), std::string::npos);
}

TEST(TraceFile, ReportedLineCountsBlankLines) {
  absl::StatusOr<std::vector<TraceRequest>> t = Parse("\n\n{\"id\": 0}\n");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(std::string(t.status().message()).rfind("t.jsonl:3: ", 0), 0u) << t.status();
}

}  // namespace
}  // namespace loraserve::loadgen
