// AdapterAdmin: load / idempotent reload / name clash / unload / list,
// --adapter-root confinement (".." and symlinks), bearer-token auth.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "server/adapter_paths.h"
#include "tests/server/server_test_util.h"

namespace loraserve {
namespace {

namespace fs = std::filesystem;

class AdminTest : public ServerFixture {
 protected:
  void SetUp() override {
    base_ = fs::temp_directory_path() /
            ("loraserve_admin_" + std::to_string(getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(base_);
    root_ = base_ / "root";
    fs::create_directories(root_ / "a1");
    fs::create_directories(root_ / "a2");
    fs::create_directories(base_ / "outside");
    fs::create_directory_symlink(base_ / "outside", root_ / "escape");
    fs::create_directory_symlink(root_ / "a1", root_ / "inner-link");
    fs::create_directories(base_ / "rootlike");  // shares the prefix "root"
  }
  void TearDown() override {
    ServerFixture::TearDown();
    fs::remove_all(base_);
  }
  void Start(const std::string& token = "") {
    ServerOptions o = LoopbackOptions();
    o.adapter_root = root_.string();
    if (!token.empty()) {
      o.admin_token_file = (base_ / "token").string();
      std::ofstream(o.admin_token_file) << token << "\n";
    }
    StartServer(o);
  }
  grpc::Status Load(const std::string& name, const std::string& path,
                    v1::LoadAdapterResponse* resp, const std::string& bearer = "") {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    if (!bearer.empty()) ctx.AddMetadata("authorization", bearer);
    v1::LoadAdapterRequest req;
    req.set_name(name);
    req.set_path(path);
    return admin_->LoadAdapter(&ctx, req, resp);
  }
  grpc::Status Unload(const std::string& name) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::UnloadAdapterRequest req;
    req.set_name(name);
    v1::UnloadAdapterResponse resp;
    return admin_->UnloadAdapter(&ctx, req, &resp);
  }
  fs::path base_, root_;
};

TEST_F(AdminTest, LoadIsIdempotentClashesAreAlreadyExistsUnknownUnloadIsNotFound) {
  Start();
  v1::LoadAdapterResponse resp;
  ASSERT_TRUE(Load("math", "a1", &resp).ok());
  EXPECT_FALSE(resp.already_loaded());
  EXPECT_EQ(resp.adapter().name(), "math");
  EXPECT_EQ(resp.adapter().path(), fs::canonical(root_ / "a1").string());

  // Same name, same place (absolute spelling, or via an inner symlink): no-op.
  ASSERT_TRUE(Load("math", (root_ / "a1").string(), &resp).ok());
  EXPECT_TRUE(resp.already_loaded());
  ASSERT_TRUE(Load("math", "inner-link", &resp).ok());
  EXPECT_TRUE(resp.already_loaded());

  grpc::Status clash = Load("math", "a2", &resp);
  EXPECT_EQ(clash.error_code(), grpc::StatusCode::ALREADY_EXISTS);

  EXPECT_TRUE(Unload("math").ok());
  EXPECT_EQ(Unload("math").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Unload("bad name").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(AdminTest, PathsOutsideTheRootArePermissionDeniedNamingThePath) {
  Start();
  v1::LoadAdapterResponse resp;
  for (const std::string& path :
       {std::string("../x"), std::string("a1/../../outside"), std::string("escape"),
        std::string("escape/sub"), (base_ / "outside").string(), (base_ / "rootlike").string(),
        std::string("/etc")}) {
    grpc::Status s = Load("x", path, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << path;
    EXPECT_NE(s.error_message().find(path), std::string::npos) << s.error_message();
  }
  EXPECT_TRUE(engine_->ListAdapters().empty());
}

TEST_F(AdminTest, NamesAreValidatedAndLoaderErrorsComeBackAsInvalidArgument) {
  Start();
  v1::LoadAdapterResponse resp;
  for (const std::string& name : {std::string(""), std::string("a b"), std::string("x/y"),
                                  std::string(129, 'a')}) {
    EXPECT_EQ(Load(name, "a1", &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT) << name;
  }
  EXPECT_TRUE(Load(std::string(128, 'a'), "a1", &resp).ok());
  engine_->set_load_error(absl::InvalidArgumentError("rank 128 exceeds --max-lora-rank 64"));
  grpc::Status s = Load("big", "a2", &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "rank 128 exceeds --max-lora-rank 64");
}

TEST_F(AdminTest, ListReturnsEveryField) {
  Start();
  v1::LoadAdapterResponse resp;
  ASSERT_TRUE(Load("b", "a2", &resp).ok());
  ASSERT_TRUE(Load("a", "a1", &resp).ok());
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::ListAdaptersResponse list;
  ASSERT_TRUE(admin_->ListAdapters(&ctx, {}, &list).ok());
  ASSERT_EQ(list.adapters_size(), 2);
  const v1::AdapterInfo& a = list.adapters(0);
  EXPECT_EQ(a.name(), "a");
  EXPECT_EQ(a.path(), fs::canonical(root_ / "a1").string());
  ASSERT_EQ(a.ranks_size(), 1);
  EXPECT_EQ(a.ranks(0), 8u);
  ASSERT_EQ(a.target_modules_size(), 2);
  EXPECT_EQ(a.target_modules(0), "q_proj");
  EXPECT_EQ(a.bytes(), 4096u);
  EXPECT_EQ(a.tier(), v1::RESIDENCY_TIER_HOST);
  EXPECT_EQ(a.in_use(), 0u);
  EXPECT_EQ(a.last_used_unix_seconds(), 0.0);
}

TEST_F(AdminTest, TokenIsRequiredWhenConfigured) {
  Start("s3cret-token");
  v1::LoadAdapterResponse resp;
  EXPECT_EQ(Load("m", "a1", &resp).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Load("m", "a1", &resp, "Bearer wrong-token").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Load("m", "a1", &resp, "Bearer s3cret-toke").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Load("m", "a1", &resp, "s3cret-token").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(Load("m", "a1", &resp, "Bearer s3cret-token").ok());
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::ListAdaptersResponse list;
  EXPECT_EQ(admin_->ListAdapters(&ctx, {}, &list).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(engine_->ListAdapters().size() == 1);
}

TEST(AdapterPaths, RootRequiredAndComponentBoundaryChecked) {
  EXPECT_EQ(ResolveAdapterPath("", "x").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ResolveAdapterPath("/tmp", "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ResolveAdapterPath("/", "etc").ok());
  EXPECT_TRUE(ValidateAdapterName("Llama-3.1_fr").ok());
  EXPECT_FALSE(ValidateAdapterName("é").ok());
}

}  // namespace
}  // namespace loraserve
