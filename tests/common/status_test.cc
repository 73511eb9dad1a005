#include "common/status.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"

namespace loraserve {
namespace {

int g_calls = 0;

absl::Status CountedStatus(absl::Status s) {
  ++g_calls;
  return s;
}

absl::StatusOr<std::unique_ptr<int>> MakeInt(int v) {
  ++g_calls;
  if (v < 0) return absl::InvalidArgumentError("negative");
  return std::make_unique<int>(v);
}

absl::Status UsesReturnIfError(absl::Status inner, int* reached) {
  RETURN_IF_ERROR(CountedStatus(inner));
  *reached = 1;
  return absl::OkStatus();
}

absl::StatusOr<int> UsesAssign(int v) {
  ASSIGN_OR_RETURN(std::unique_ptr<int> p, MakeInt(v));  // move-only value
  ASSIGN_OR_RETURN(auto q, MakeInt(v + 1));
  int sum = 0;
  ASSIGN_OR_RETURN(sum, absl::StatusOr<int>(*p + *q));  // existing lvalue
  return sum;
}

TEST(StatusMacros, ReturnIfErrorPassesOkThrough) {
  g_calls = 0;
  int reached = 0;
  EXPECT_TRUE(UsesReturnIfError(absl::OkStatus(), &reached).ok());
  EXPECT_EQ(reached, 1);
  EXPECT_EQ(g_calls, 1);  // evaluated exactly once
}

TEST(StatusMacros, ReturnIfErrorReturnsTheSameError) {
  g_calls = 0;
  int reached = 0;
  absl::Status s = UsesReturnIfError(absl::NotFoundError("adapter \"x\""), &reached);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "adapter \"x\"");
  EXPECT_EQ(reached, 0);
  EXPECT_EQ(g_calls, 1);
}

TEST(StatusMacros, ReturnIfErrorAcceptsStatusOr) {
  auto f = []() -> absl::Status {
    RETURN_IF_ERROR(absl::StatusOr<int>(absl::DataLossError("torn")));
    return absl::OkStatus();
  };
  EXPECT_EQ(f().code(), absl::StatusCode::kDataLoss);
}

TEST(StatusMacros, AssignOrReturnMovesValues) {
  g_calls = 0;
  absl::StatusOr<int> r = UsesAssign(3);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, 7);
  EXPECT_EQ(g_calls, 2);
}

TEST(StatusMacros, AssignOrReturnStopsAtFirstError) {
  g_calls = 0;
  absl::StatusOr<int> r = UsesAssign(-5);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "negative");
  EXPECT_EQ(g_calls, 1);  // the second MakeInt never ran
}

TEST(StatusMacros, AnnotateKeepsCodeAndPrefixesContext) {
  absl::Status s = AnnotateStatus(absl::InvalidArgumentError("bad shape"), "model.safetensors");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "model.safetensors: bad shape");
  EXPECT_TRUE(AnnotateStatus(absl::OkStatus(), "ctx").ok());
}

}  // namespace
}  // namespace loraserve
