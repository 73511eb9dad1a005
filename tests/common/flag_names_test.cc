// Dashed flag names become absl's underscored ones; values, positional
// arguments and everything after "--" are left alone. Expected by hand.
#include "common/flag_names.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace loraserve {
namespace {

TEST(FlagNames, OneArgument) {
  EXPECT_EQ(UnderscoreFlagName("--max-loras=4"), "--max_loras=4");
  EXPECT_EQ(UnderscoreFlagName("--adapter-format=a-%d"), "--adapter_format=a-%d");
  EXPECT_EQ(UnderscoreFlagName("-fail-on-error"), "-fail_on_error");
  EXPECT_EQ(UnderscoreFlagName("--already_fine"), "--already_fine");
  EXPECT_EQ(UnderscoreFlagName("not-a-flag"), "not-a-flag");
  EXPECT_EQ(UnderscoreFlagName("-"), "-");
  EXPECT_EQ(UnderscoreFlagName("--"), "--");
  EXPECT_EQ(UnderscoreFlagName("--=x-y"), "--=x-y");
}

TEST(FlagNames, WholeArgvStopsAtDoubleDash) {
  std::vector<std::string> in = {"prog-name", "--input-len=8:24", "--num-adapters", "5",
                                 "-fail-on-error", "value-with-dash", "--", "--keep-me"};
  std::vector<char*> argv;
  for (std::string& s : in) argv.push_back(s.data());
  EXPECT_EQ(UnderscoreFlagNames(static_cast<int>(argv.size()), argv.data()),
            (std::vector<std::string>{"prog-name", "--input_len=8:24", "--num_adapters", "5",
                                      "-fail_on_error", "value-with-dash", "--", "--keep-me"}));
}

}  // namespace
}  // namespace loraserve
