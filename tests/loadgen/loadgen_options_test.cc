// LoadgenOptions (bench/loadgen/loadgen_options.h) and RunLoadgen's exit
// codes without a server: bad values name their flag (exit 2), a trace-only
// run writes the file (exit 0), a bad trace file or an unreachable server is
// a setup error (exit 1).
#include "bench/loadgen/loadgen_options.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bench/loadgen/loadgen_run.h"
#include "bench/loadgen/trace_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace loraserve::loadgen {
namespace {

using ::testing::HasSubstr;

std::string TempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("loadgen_options_test_" + std::to_string(getpid()) + "_" + name))
      .string();
}

LoadgenOptions Valid() {
  LoadgenOptions o;
  o.addr = "127.0.0.1:1";
  o.trace.rate = 5;
  o.trace.duration_s = 2;
  return o;
}

TEST(LoadgenOptions, DefaultsWithAnAddressAreValid) {
  EXPECT_TRUE(Valid().Validate().ok()) << Valid().Validate();
}

TEST(LoadgenOptions, BadValuesNameTheirFlag) {
  struct Case {
    const char* flag;
    void (*mutate)(LoadgenOptions&);
  };
  const std::vector<Case> cases = {
      {"--addr", [](LoadgenOptions& o) { o.addr = ""; }},
      {"--alpha", [](LoadgenOptions& o) { o.trace.alpha = 0; }},
      {"--cv", [](LoadgenOptions& o) { o.trace.cv = -2; }},
      {"--rate", [](LoadgenOptions& o) { o.trace.rate = 0; }},
      {"--input-len", [](LoadgenOptions& o) { o.trace.input_len = {20, 10}; }},
      {"--admin-addr", [](LoadgenOptions& o) { o.register_adapters = "/tmp"; }},
      {"--register-concurrency", [](LoadgenOptions& o) { o.register_concurrency = 0; }},
      {"--wait-ready", [](LoadgenOptions& o) { o.wait_ready_s = -1; }},
      {"--request-timeout", [](LoadgenOptions& o) { o.request_timeout_s = -1; }},
      {"--drain-timeout", [](LoadgenOptions& o) { o.drain_timeout_s = -1; }},
      {"--slo-ttft", [](LoadgenOptions& o) { o.slo_ttft_s = 0; }},
      {"--prompt-token-min", [](LoadgenOptions& o) {
         o.trace_file = "x.jsonl";
         o.trace.prompt_token_min = 600;
       }},
  };
  for (const Case& c : cases) {
    LoadgenOptions o = Valid();
    c.mutate(o);
    const absl::Status s = o.Validate();
    ASSERT_FALSE(s.ok()) << c.flag;
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.flag));
    std::ostringstream out, err;
    EXPECT_EQ(RunLoadgen(o, out, err), kExitUsage) << c.flag;
    EXPECT_THAT(err.str(), HasSubstr(c.flag));
  }
}

TEST(LoadgenOptions, ReplayingAFileSkipsTheSynthesisChecks) {
  LoadgenOptions o = Valid();
  o.trace_file = "x.jsonl";
  o.trace.alpha = 0;  // unused when replaying
  EXPECT_TRUE(o.Validate().ok());
}

TEST(LoadgenOptions, ConfigJsonListsEveryFlag) {
  const nlohmann::ordered_json j = Valid().ToJson();
  for (const char* key :
       {"addr", "admin_addr", "admin_token_file", "register_adapters", "register_concurrency",
        "wait_ready", "connect_timeout", "rate", "duration", "cv", "alpha", "num_adapters",
        "adapter_format", "input_len", "output_len", "prompt_token_min", "prompt_token_max",
        "seed", "trace", "write_trace", "request_timeout", "drain_timeout", "slo_ttft", "json",
        "fail_on_error", "progress_interval"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j.size(), 26u);
  EXPECT_EQ(j.at("input_len"), "8:512");
  EXPECT_EQ(j.at("rate"), 5.0);
}

TEST(RunLoadgen, WriteTraceAloneWritesTheFileAndStops) {
  LoadgenOptions o = Valid();
  o.addr = "";
  o.write_trace = TempPath("only.jsonl");
  std::ostringstream out, err;
  ASSERT_EQ(RunLoadgen(o, out, err), kExitOk) << err.str();
  absl::StatusOr<std::vector<TraceRequest>> t = ReadTraceFile(o.write_trace);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, *SynthesizeTrace(o.trace));
  std::remove(o.write_trace.c_str());
}

TEST(RunLoadgen, BadTraceFileIsASetupErrorNamingTheLine) {
  const std::string path = TempPath("bad.jsonl");
  std::ofstream(path) << "{\"id\": 0, \"t\": 0, \"adapter\": \"\", \"input_len\": 2, "
                         "\"output_len\": 0}\n";
  LoadgenOptions o = Valid();
  o.trace_file = path;
  std::ostringstream out, err;
  EXPECT_EQ(RunLoadgen(o, out, err), kExitSetupError);
  EXPECT_THAT(err.str(), HasSubstr(path + ":1:"));
  EXPECT_THAT(err.str(), HasSubstr("output_len"));
  std::remove(path.c_str());
}

TEST(RunLoadgen, UnreachableServerIsASetupError) {
  LoadgenOptions o = Valid();
  o.addr = "127.0.0.1:1";  // nothing listens on port 1
  o.connect_timeout_s = 0.3;
  std::ostringstream out, err;
  EXPECT_EQ(RunLoadgen(o, out, err), kExitSetupError);
  EXPECT_THAT(err.str(), HasSubstr("cannot connect"));
  EXPECT_TRUE(out.str().empty());
}

}  // namespace
}  // namespace loraserve::loadgen
