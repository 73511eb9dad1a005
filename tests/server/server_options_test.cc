#include "server/server_options.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace loraserve {
namespace {

struct Case {
  const char* flag;
  void (*mutate)(ServerOptions*);
};

TEST(ServerOptions, DefaultsAreValid) { EXPECT_TRUE(ServerOptions().Validate().ok()); }

TEST(ServerOptions, EachInvalidValueIsRejectedNamingItsFlag) {
  const Case cases[] = {
      {"--model", [](ServerOptions* o) { o->model = ""; }},
      {"--device", [](ServerOptions* o) { o->device = "tpu"; }},
      {"--port", [](ServerOptions* o) { o->port = 70000; }},
      {"--http-port", [](ServerOptions* o) { o->http_port = -1; }},
      {"--admin-port", [](ServerOptions* o) { o->admin_port = 65536; }},
      {"--port", [](ServerOptions* o) { o->http_port = o->port; }},
      {"--admin-port", [](ServerOptions* o) { o->admin_port = o->http_port; }},
      {"--admin-host", [](ServerOptions* o) { o->admin_host = ""; }},
      {"--max-loras", [](ServerOptions* o) { o->max_loras = 0; }},
      {"--max-lora-rank", [](ServerOptions* o) { o->max_lora_rank = 0; }},
      {"--max-cpu-loras", [](ServerOptions* o) { o->max_cpu_loras = 3; }},
      {"--max-num-seqs", [](ServerOptions* o) { o->max_num_seqs = 0; }},
      {"--cuda-graph-max-batch", [](ServerOptions* o) { o->cuda_graph_max_batch = 0; }},
      {"--max-num-batched-tokens", [](ServerOptions* o) { o->max_num_batched_tokens = -5; }},
      {"--pool-bytes", [](ServerOptions* o) { o->pool_bytes = -1; }},
      {"--gpu-memory-utilization", [](ServerOptions* o) { o->gpu_memory_utilization = 0; }},
      {"--gpu-memory-utilization", [](ServerOptions* o) { o->gpu_memory_utilization = 1.5; }},
      {"--max-queue", [](ServerOptions* o) { o->max_queue = 0; }},
      {"--drain-grace-seconds", [](ServerOptions* o) { o->drain_grace_seconds = -1; }},
      {"--lora-modules", [](ServerOptions* o) { o->lora_modules = {{"bad name", "/p"}}; }},
      {"--lora-modules", [](ServerOptions* o) { o->lora_modules = {{"a", ""}}; }},
      {"--lora-modules", [](ServerOptions* o) { o->lora_modules = {{"a", "/p"}, {"a", "/q"}}; }},
  };
  for (const Case& c : cases) {
    ServerOptions o;
    c.mutate(&o);
    absl::Status s = o.Validate();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.flag;
    EXPECT_NE(std::string(s.message()).find(c.flag), std::string::npos) << s.message();
  }
}

TEST(ServerOptions, ParsesLoraModules) {
  auto m = ParseLoraModules({"a=/x/a,b=rel/b", "c=/y=z"});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(*m, (std::vector<LoraModuleSpec>{{"a", "/x/a"}, {"b", "rel/b"}, {"c", "/y=z"}}));
  EXPECT_FALSE(ParseLoraModules({"noequals"}).ok());
  EXPECT_FALSE(ParseLoraModules({"=path"}).ok());
  EXPECT_NE(std::string(ParseLoraModules({"a="}).status().message()).find("--lora-modules"),
            std::string::npos);
}

TEST(ServerOptions, NormalizesVllmStyleFlags) {
  std::vector<std::string> in = {"loraserve",      "--max-loras=4",  "--lora-modules",
                                 "a=/p",           "b=/q",           "--max-num-seqs",
                                 "8",              "--lora_modules=c=/r", "--",
                                 "--not-a-flag"};
  std::vector<char*> argv;
  for (std::string& s : in) argv.push_back(s.data());
  std::vector<std::string> out = NormalizeFlagArgs(static_cast<int>(argv.size()), argv.data());
  EXPECT_EQ(out, (std::vector<std::string>{"loraserve", "--lora_modules=a=/p,b=/q,c=/r",
                                           "--max_loras=4", "--max_num_seqs", "8", "--",
                                           "--not-a-flag"}));
}

}  // namespace
}  // namespace loraserve
