// ServerOptionsFromFlags for the benchmarking flags --random-weights-seed
// (optional: unset by default, set from its text form, unset again by an
// empty value) and --cuda-graphs (default true), parsed from text through
// the flags' own parsers as the command line would.
#include <cstdint>
#include <optional>
#include <string>

#include "absl/flags/reflection.h"
#include "gtest/gtest.h"
#include "server/server_options.h"

namespace loraserve {
namespace {

void SetFromText(const char* name, const char* value) {
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
  ASSERT_NE(flag, nullptr) << name;
  std::string error;
  ASSERT_TRUE(flag->ParseFrom(value, &error)) << name << "=" << value << ": " << error;
}

TEST(ServerFlags, RandomWeightsSeedAndCudaGraphs) {
  absl::FlagSaver restore;
  absl::StatusOr<ServerOptions> o = ServerOptionsFromFlags();
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->random_weights_seed, std::nullopt);
  EXPECT_TRUE(o->cuda_graphs);
  EXPECT_EQ(o->cuda_graph_max_batch, 256);

  SetFromText("random_weights_seed", "18446744073709551615");
  SetFromText("cuda_graphs", "false");
  SetFromText("cuda_graph_max_batch", "64");
  o = ServerOptionsFromFlags();
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->random_weights_seed, std::optional<uint64_t>(UINT64_MAX));
  EXPECT_FALSE(o->cuda_graphs);
  EXPECT_EQ(o->cuda_graph_max_batch, 64);

  SetFromText("random_weights_seed", "");
  o = ServerOptionsFromFlags();
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->random_weights_seed, std::nullopt);

  std::string error;
  EXPECT_FALSE(absl::FindCommandLineFlag("random_weights_seed")->ParseFrom("-1", &error));
  EXPECT_FALSE(absl::FindCommandLineFlag("random_weights_seed")->ParseFrom("x", &error));
}

}  // namespace
}  // namespace loraserve
