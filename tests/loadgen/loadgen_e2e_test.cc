// The load generator against the real server over loopback (CPU engine,
// tiny-llama fixture, in-process): adapter registration (loaded, already
// loaded, name taken, failure naming the adapter, bearer token), a small
// synthesized open-loop run where every request finishes OK with exactly
// output_len tokens, failures and drain-timeout cancellations that are
// reported and never dropped, and the whole RunLoadgen path with --json,
// --write-trace and --trace replay.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "bench/loadgen/adapter_registrar.h"
#include "bench/loadgen/generate_client.h"
#include "bench/loadgen/latency_report.h"
#include "bench/loadgen/loadgen_run.h"
#include "bench/loadgen/trace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/e2e_util.h"

namespace loraserve::loadgen {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// A scratch folder removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("loadgen_e2e_" + std::to_string(getpid()) + "_" + std::to_string(counter_++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

// adapter-0000 .. adapter-0004 -> the five fixture adapters (symlinks, so
// the resolved paths lie inside the server's --adapter-root), plus a folder
// and a file that are not adapters.
void MakeAdapterSet(const fs::path& dir) {
  const std::vector<std::string>& names = e2e::FixtureAdapterNames();
  for (size_t i = 0; i < names.size(); ++i) {
    fs::create_directory_symlink(fs::path(e2e::AdapterRoot()) / names[i],
                                 dir / absl::StrFormat("adapter-%04d", i));
  }
  fs::create_directories(dir / "not-an-adapter");
  std::ofstream(dir / "README") << "not an adapter\n";
}

ServerOptions NoPreloadedAdapters() {
  ServerOptions o = e2e::E2eServerOptions();
  o.lora_modules.clear();
  return o;
}

class LoadgenE2e : public e2e::E2eFixture {
 protected:
  std::string Addr() const { return "127.0.0.1:" + std::to_string(server_->port()); }
  std::string AdminAddr() const { return "127.0.0.1:" + std::to_string(server_->admin_port()); }
};

TEST_F(LoadgenE2e, RegistersAdaptersThenEveryRequestFinishesWithExactlyOutputLenTokens) {
  StartAll(true, NoPreloadedAdapters());
  TempDir dir;
  MakeAdapterSet(dir.path());
  absl::StatusOr<std::vector<AdapterDir>> dirs = FindAdapterDirs(dir.path().string());
  ASSERT_TRUE(dirs.ok()) << dirs.status();
  ASSERT_EQ(dirs->size(), 5u);
  EXPECT_EQ(dirs->front().name, "adapter-0000");
  EXPECT_TRUE(fs::path(dirs->front().path).is_absolute());

  RegisterOptions ro;
  ro.max_in_flight = 2;
  absl::StatusOr<RegisterSummary> reg = RegisterAdapters(admin_.get(), *dirs, ro);
  ASSERT_TRUE(reg.ok()) << reg.status();
  EXPECT_EQ(reg->loaded, 5);
  reg = RegisterAdapters(admin_.get(), *dirs, ro);  // same names and paths: no-ops
  ASSERT_TRUE(reg.ok()) << reg.status();
  EXPECT_EQ(reg->already_loaded, 5);
  EXPECT_EQ(reg->loaded, 0);

  TraceOptions to;
  to.rate = 20;
  to.duration_s = 1;
  to.num_adapters = 5;
  to.input_len = {8, 24};
  to.output_len = {8, 24};
  to.seed = 7;
  absl::StatusOr<std::vector<TraceRequest>> trace = SynthesizeTrace(to);
  ASSERT_TRUE(trace.ok()) << trace.status();
  ASSERT_EQ(trace->size(), 20u);
  std::set<std::string> adapters;
  for (const TraceRequest& r : *trace) adapters.insert(r.adapter);
  EXPECT_GE(adapters.size(), 3u);

  std::ostringstream progress;
  ReplayOptions rp;
  rp.request_timeout_s = 60;
  rp.drain_timeout_s = 60;
  rp.progress_interval_s = 0.2;
  rp.progress = &progress;
  const std::vector<RequestRecord> records = ReplayTrace(gen_.get(), *trace, rp);
  ASSERT_EQ(records.size(), trace->size());
  int64_t expected_output = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    const RequestRecord& r = records[i];
    const TraceRequest& t = (*trace)[i];
    SCOPED_TRACE(t.id);
    EXPECT_EQ(r.id, t.id);
    EXPECT_EQ(r.adapter, t.adapter);
    ASSERT_EQ(r.outcome, Outcome::kOk) << r.status_code << " " << r.message;
    EXPECT_EQ(r.finish_reason, "length");
    EXPECT_EQ(r.output_tokens, t.output_len);
    EXPECT_EQ(r.prompt_tokens, t.input_len);
    int64_t streamed = 0;
    for (const DeltaArrival& d : r.deltas) streamed += d.tokens;
    EXPECT_EQ(streamed, t.output_len);
    ASSERT_TRUE(r.first_token_s.has_value());
    EXPECT_GE(r.send_s, r.scheduled_s);
    EXPECT_LE(r.send_s, *r.first_token_s);
    EXPECT_LE(*r.first_token_s - r.send_s, r.end_s - r.send_s);  // TTFT <= e2e
    EXPECT_LE(r.deltas.back().t_s, r.end_s);
    expected_output += t.output_len;
  }
  const LatencyReport report = BuildReport(records, 6.0);
  EXPECT_EQ(report.requests, 20);
  EXPECT_EQ(report.ok, 20);
  EXPECT_EQ(report.failed, 0);
  EXPECT_EQ(report.cancelled, 0);
  EXPECT_TRUE(report.errors.empty());
  EXPECT_EQ(report.output_tokens, expected_output);
  EXPECT_EQ(report.finish_reasons, (std::map<std::string, int64_t>{{"length", 20}}));
  EXPECT_EQ(report.ttft_s.count, 20);
  EXPECT_LE(report.ttft_s.max, report.e2e_s.max);
  EXPECT_EQ(report.itl_s.count, expected_output - 20 - [&] {
    int64_t extra = 0;  // tokens that arrived with the first delta beyond the first one
    for (const RequestRecord& r : records) extra += r.deltas.front().tokens - 1;
    return extra;
  }());
  EXPECT_GT(report.throughput_rps, 0);
  EXPECT_THAT(progress.str(), HasSubstr("sent 20/20 done 20 failed 0 in flight 0"));
  EXPECT_TRUE(WaitEngineQuiet());
}

TEST_F(LoadgenE2e, RegistrationSkipsTakenNamesStopsOnFailuresAndSendsTheToken) {
  TempDir scratch;
  const fs::path token_file = scratch.path() / "token";
  std::ofstream(token_file) << "s3cret\n";
  ServerOptions so = NoPreloadedAdapters();
  so.admin_token_file = token_file.string();
  StartAll(true, so);

  TempDir dir;
  MakeAdapterSet(dir.path());
  absl::StatusOr<std::vector<AdapterDir>> dirs = FindAdapterDirs(dir.path().string());
  ASSERT_TRUE(dirs.ok());
  RegisterOptions ro;
  absl::StatusOr<RegisterSummary> reg = RegisterAdapters(admin_.get(), *dirs, ro);
  ASSERT_FALSE(reg.ok());  // no token
  EXPECT_EQ(reg.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(reg.status().message()), HasSubstr("LoadAdapter \"adapter-000"));
  ro.token = "s3cret";
  reg = RegisterAdapters(admin_.get(), *dirs, ro);
  ASSERT_TRUE(reg.ok()) << reg.status();
  EXPECT_EQ(reg->loaded, 5);

  // adapter-0000 under another path: the name is taken, skipped. A real
  // directory outside --adapter-root: PERMISSION_DENIED naming it.
  TempDir other;
  fs::create_directory_symlink(fs::path(e2e::AdapterRoot()) / "r2_regex",
                               other.path() / "adapter-0000");
  reg = RegisterAdapters(admin_.get(), *FindAdapterDirs(other.path().string()), ro);
  ASSERT_TRUE(reg.ok()) << reg.status();
  EXPECT_EQ(reg->skipped, 1);
  fs::copy(fs::path(e2e::AdapterRoot()) / "r8_all", other.path() / "zz-outside");
  reg = RegisterAdapters(admin_.get(), *FindAdapterDirs(other.path().string()), ro);
  ASSERT_FALSE(reg.ok());
  EXPECT_EQ(reg.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(reg.status().message()), HasSubstr("\"zz-outside\""));

  EXPECT_EQ(FindAdapterDirs((scratch.path() / "missing").string()).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(FindAdapterDirs(scratch.path().string()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

std::vector<TraceRequest> Requests(int n, const std::string& adapter, int32_t output_len) {
  std::vector<TraceRequest> trace;
  for (int i = 0; i < n; ++i) {
    TraceRequest r;
    r.id = i;
    r.t = 0.001 * i;
    r.adapter = adapter;
    r.input_len = 8;
    r.output_len = output_len;
    r.prompt_ids = {1, 2, 3, 4, 5, 6, 7, 8};
    trace.push_back(r);
  }
  return trace;
}

TEST_F(LoadgenE2e, FailuresAreRecordedWithTheirCode) {
  StartAll(true, NoPreloadedAdapters());
  ReplayOptions rp;
  std::vector<RequestRecord> records = ReplayTrace(gen_.get(), Requests(2, "no-such-adapter", 4), rp);
  ASSERT_EQ(records.size(), 2u);
  for (const RequestRecord& r : records) {
    EXPECT_EQ(r.outcome, Outcome::kFailed);
    EXPECT_EQ(r.status_code, static_cast<int>(grpc::StatusCode::NOT_FOUND));
    EXPECT_THAT(r.message, HasSubstr("no-such-adapter"));
  }
  rp.request_timeout_s = 0.001;
  records = ReplayTrace(gen_.get(), Requests(3, "", 200), rp);
  const LatencyReport report = BuildReport(records, 6.0);
  EXPECT_EQ(report.failed, 3);
  EXPECT_EQ(report.errors, (std::map<std::string, int64_t>{{"DEADLINE_EXCEEDED", 3}}));
  EXPECT_EQ(report.slo_attainment, 0.0);
  EXPECT_TRUE(WaitEngineQuiet());
}

TEST_F(LoadgenE2e, DrainTimeoutCancelsOpenRequestsAndReportsThem) {
  StartAll(true, NoPreloadedAdapters());
  ReplayOptions rp;
  rp.drain_timeout_s = 0;  // cancel whatever is open right after the last send
  const std::vector<RequestRecord> records = ReplayTrace(gen_.get(), Requests(4, "", 240), rp);
  ASSERT_EQ(records.size(), 4u);
  const LatencyReport report = BuildReport(records, 6.0);
  EXPECT_EQ(report.ok + report.failed + report.cancelled, 4);
  EXPECT_EQ(report.cancelled, 4);
  for (const RequestRecord& r : records) {
    EXPECT_EQ(r.outcome, Outcome::kCancelled);
    EXPECT_THAT(r.message, HasSubstr("drain timeout"));
  }
  EXPECT_TRUE(WaitEngineQuiet());
}

TEST_F(LoadgenE2e, RunLoadgenWritesJsonAndReplaysItsOwnTrace) {
  StartAll(true, NoPreloadedAdapters());
  TempDir dir;
  fs::create_directories(dir.path() / "set");
  MakeAdapterSet(dir.path() / "set");
  LoadgenOptions o;
  o.addr = Addr();
  o.admin_addr = AdminAddr();
  o.register_adapters = (dir.path() / "set").string();
  o.wait_ready_s = 10;
  o.trace.rate = 10;
  o.trace.duration_s = 1;
  o.trace.num_adapters = 5;
  o.trace.input_len = {8, 16};
  o.trace.output_len = {4, 12};
  o.json = (dir.path() / "report.json").string();
  o.write_trace = (dir.path() / "trace.jsonl").string();
  o.progress_interval_s = 0.5;
  std::ostringstream out, err;
  ASSERT_EQ(RunLoadgen(o, out, err), kExitOk) << err.str();
  EXPECT_THAT(err.str(), HasSubstr("5 loaded"));
  EXPECT_THAT(out.str(), HasSubstr("requests               10 (ok 10, failed 0, cancelled 0)"));
  std::ifstream in(o.json);
  const nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_EQ(j.at("summary").at("ok"), 10);
  EXPECT_EQ(j.at("summary").at("requests"), 10);
  EXPECT_TRUE(j.at("errors").empty());
  EXPECT_EQ(j.at("config").at("num_adapters"), 5);
  EXPECT_EQ(j.at("config").at("addr"), Addr());
  EXPECT_EQ(j.at("latency").at("ttft_s").at("count"), 10);
  EXPECT_EQ(j.at("slo").at("attainment"), 1.0);

  // Replay the written trace (adapters already loaded: skipped registration).
  LoadgenOptions replay;
  replay.addr = Addr();
  replay.trace_file = o.write_trace;
  replay.json = (dir.path() / "replay.json").string();
  replay.fail_on_error = true;
  std::ostringstream out2, err2;
  ASSERT_EQ(RunLoadgen(replay, out2, err2), kExitOk) << err2.str();
  std::ifstream in2(replay.json);
  const nlohmann::json j2 = nlohmann::json::parse(in2);
  EXPECT_EQ(j2.at("summary").at("ok"), 10);
  EXPECT_EQ(j2.at("summary").at("output_tokens"), j.at("summary").at("output_tokens"));

  // --fail-on-error turns failed requests into exit 1 (the report still printed).
  std::ofstream(dir.path() / "bad.jsonl")
      << R"({"id": 0, "t": 0, "adapter": "no-such-adapter", "input_len": 3, "output_len": 2})"
      << "\n";
  replay.trace_file = (dir.path() / "bad.jsonl").string();
  replay.json.clear();
  std::ostringstream out3, err3;
  EXPECT_EQ(RunLoadgen(replay, out3, err3), kExitSetupError);
  EXPECT_THAT(out3.str(), HasSubstr("error NOT_FOUND"));
  replay.fail_on_error = false;
  std::ostringstream out4, err4;
  EXPECT_EQ(RunLoadgen(replay, out4, err4), kExitOk);
  EXPECT_TRUE(WaitEngineQuiet());
}

}  // namespace
}  // namespace loraserve::loadgen
