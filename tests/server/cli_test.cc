// loraserve-cli (RunCli, the whole program minus main) against an in-process
// server: generate, adapters load/list/unload, health; usage and RPC errors
// map to exit codes 2 and 1 with the gRPC code name.
#include "server/cli.h"

#include <unistd.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/server/server_test_util.h"

namespace loraserve {
namespace {

namespace fs = std::filesystem;

class CliTest : public ServerFixture {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("loraserve_cli_" + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "fr");
    ServerOptions o = LoopbackOptions();
    o.adapter_root = root_.string();
    StartServer(o);
  }
  void TearDown() override {
    ServerFixture::TearDown();
    fs::remove_all(root_);
  }
  int Run(std::vector<std::string> args) {
    out_.str("");
    err_.str("");
    std::vector<std::string> full = {"--addr", "127.0.0.1:" + std::to_string(server_->port()),
                                     "--admin-addr",
                                     "127.0.0.1:" + std::to_string(server_->admin_port()),
                                     "--timeout", "10"};
    full.insert(full.end(), args.begin(), args.end());
    return RunCli(full, out_, err_);
  }
  fs::path root_;
  std::ostringstream out_, err_;
};

TEST_F(CliTest, GenerateStreamsTextAndReportsUsage) {
  engine_->set_script({.num_deltas = 3});
  ASSERT_EQ(Run({"generate", "--stream", "--max-tokens", "3", "--temperature", "0", "--seed", "5",
                 "Hello"}),
            kCliOk)
      << err_.str();
  EXPECT_EQ(out_.str(), "t0 t1 t2 \n");
  EXPECT_NE(err_.str().find("finished: length"), std::string::npos) << err_.str();
  EXPECT_NE(err_.str().find("completion_tokens=3"), std::string::npos);
  auto s = engine_->submitted();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].stopping.max_tokens, std::optional<int32_t>(3));
  EXPECT_EQ(s[0].sampling.temperature, 0.0f);
  EXPECT_EQ(s[0].sampling.seed, std::optional<uint64_t>(5));
}

TEST_F(CliTest, AdaptersLoadListUnloadAndErrors) {
  ASSERT_EQ(Run({"adapters", "load", "fr", "fr"}), kCliOk) << err_.str();
  EXPECT_NE(out_.str().find("loaded: fr"), std::string::npos);
  ASSERT_EQ(Run({"adapters", "list"}), kCliOk);
  EXPECT_NE(out_.str().find("fr\t"), std::string::npos);
  EXPECT_NE(out_.str().find("tier=RESIDENCY_TIER_HOST"), std::string::npos);
  EXPECT_NE(out_.str().find("last_used=never"), std::string::npos) << out_.str();
  ASSERT_EQ(Run({"generate", "--adapter", "nope", "hi"}), kCliRpcError);
  EXPECT_NE(err_.str().find("error: NOT_FOUND: "), std::string::npos) << err_.str();
  ASSERT_EQ(Run({"adapters", "load", "x", "../etc"}), kCliRpcError);
  EXPECT_NE(err_.str().find("PERMISSION_DENIED"), std::string::npos);
  ASSERT_EQ(Run({"adapters", "unload", "fr"}), kCliOk);
  ASSERT_EQ(Run({"adapters", "unload", "fr"}), kCliRpcError);
  EXPECT_NE(err_.str().find("NOT_FOUND"), std::string::npos);
}

TEST_F(CliTest, HealthAndUsageErrors) {
  ASSERT_EQ(Run({"health"}), kCliOk) << err_.str();
  EXPECT_EQ(out_.str(), "SERVING\n");
  EXPECT_EQ(Run({}), kCliUsage);
  EXPECT_EQ(Run({"frobnicate"}), kCliUsage);
  EXPECT_EQ(Run({"generate"}), kCliUsage);
  EXPECT_EQ(Run({"generate", "--max-tokens", "many", "hi"}), kCliUsage);
  EXPECT_EQ(Run({"adapters", "load", "onlyname"}), kCliUsage);
  EXPECT_NE(err_.str().find("usage:"), std::string::npos);
  std::ostringstream out, err;
  EXPECT_EQ(RunCli({"--bogus", "1", "health"}, out, err), kCliUsage);
}

TEST(CliNoServer, UnreachableServerIsAnRpcError) {
  std::ostringstream out, err;
  // Port 1 on loopback: nothing listens there.
  EXPECT_EQ(RunCli({"--addr", "127.0.0.1:1", "--timeout", "2", "health"}, out, err), kCliRpcError);
  EXPECT_NE(err.str().find("UNAVAILABLE"), std::string::npos) << err.str();
}

}  // namespace
}  // namespace loraserve
